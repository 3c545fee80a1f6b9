// ANN vs exact retrieval on a large catalogue: the item embeddings of a trained model replicated
// with Gaussian noise to N items; HNSW (hnswlib) and IVF (faiss IndexIVFFlat) recall@10 against
// exact BLAS scoring of every item, and the per-query speed-up, for a sample of the model's users;
// build, save and (memory-mapped) load times of the index cached beside a model.
//
//   bench_ann MODEL [--items 1000000] [--queries 500] [--ef 50,100,200] [--nprobe 4,16,64] [--ivf off]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <filesystem>
#include <vector>

#include "scoring/topk.h"
#include "models/model_file.h"
#include "retrieval/ann.h"
#include "util/io.h"
#include "util/error.h"
#include "util/strings.h"

using namespace siamrec;
using Clock = std::chrono::steady_clock;
static double secs(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  if (argc < 2) return std::fprintf(stderr, "usage: bench_ann MODEL [--items N] [--queries Q] [--ef a,b]\n"), 2;
  int64_t N = 1000000;
  int Q = 500;
  std::vector<int> efs = {50, 100, 200};
  std::vector<int> nprobes = {4, 16, 64};  // the IVF rows (faiss IndexIVFFlat, sqrt(N) lists)
  bool ivf = true;
  for (int a = 2; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--items")) N = std::atoll(argv[a + 1]);
    if (!std::strcmp(argv[a], "--queries")) Q = std::atoi(argv[a + 1]);
    if (!std::strcmp(argv[a], "--ivf")) ivf = std::strcmp(argv[a + 1], "off") != 0;
    if (!std::strcmp(argv[a], "--nprobe")) {
      nprobes.clear();
      for (auto& x : split_list(argv[a + 1])) nprobes.push_back(std::stoi(x));
    }
    if (!std::strcmp(argv[a], "--ef")) {
      efs.clear();
      for (auto& x : split_list(argv[a + 1])) efs.push_back(std::stoi(x));
    }
  }
  try {
    TrainedModel m = load_model_file(argv[1]);
    int dim = 0, du = 0;
    const float* I = m.model->item_embeddings(&dim);
    const float* U = m.model->user_embeddings(&du);
    Similarity kind;
    if (!I || !U || !m.model->retrieval_kind(&kind))
      throw Error("the model needs user/item embeddings with a GEMM similarity");
    // Catalogue: item j = original item (j mod n) + N(0, (0.1 * mean |x| / sqrt(d))^2) noise.
    const int64_t n0 = m.items.size();
    double mean_norm = 0;
    for (int64_t i = 0; i < n0; ++i) {
      double s = 0;
      for (int d = 0; d < dim; ++d) s += I[i * dim + d] * I[i * dim + d];
      mean_norm += std::sqrt(s) / n0;
    }
    std::vector<float> cat(static_cast<size_t>(N) * dim);
    std::mt19937 rng(1);
    std::normal_distribution<float> noise(0, static_cast<float>(0.1 * mean_norm / std::sqrt(dim)));
    for (int64_t j = 0; j < N; ++j)
      for (int d = 0; d < dim; ++d) cat[j * dim + d] = I[(j % n0) * dim + d] + noise(rng);
    std::vector<float> sq(N, 0.0f);
    for (int64_t j = 0; j < N; ++j)
      for (int d = 0; d < dim; ++d) sq[j] += cat[j * dim + d] * cat[j * dim + d];
    std::vector<float> catn = cat;  // unit rows for exact cosine
    if (kind == Similarity::Cosine)
      for (int64_t j = 0; j < N; ++j) {
        float s = std::sqrt(std::max(sq[j], 1e-12f));
        for (int d = 0; d < dim; ++d) catn[j * dim + d] /= s;
      }
    std::printf("ANN benchmark: %lld items (%lld item embeddings of %s x noise), %d dims, %d user queries, top-10\n",
                static_cast<long long>(N), static_cast<long long>(n0), argv[1], dim, Q);
    std::fflush(stdout);
    auto t0 = Clock::now();
    AnnOptions ao;
    AnnIndex ann(cat.data(), N, dim, kind, ao);
    std::printf("  HNSW build (M 16, efConstruction 200, 2 threads): %.1f s\n", secs(t0));
    // The cache serve keeps beside a model: write once (build + save), then load (checksum first,
    // memory-mapped) instead of rebuilding; the loaded index must answer as the saved one.
    struct Cached {
      std::string dir, path;
      std::unique_ptr<AnnIndex> index;
      double build_save = 0, load = 0;
      int same = 0;
      std::string how;
    };
    auto cache = [&](const AnnOptions& opts) {
      Cached c;
      char tmpl[] = "/tmp/bench-ann-XXXXXX";
      c.dir = mkdtemp(tmpl);
      c.path = c.dir + "/m." + opts.type;
      t0 = Clock::now();
      auto built = load_or_build_ann(c.path, "bench", cat.data(), N, dim, kind, opts, true, &c.how);
      c.build_save = secs(t0);
      t0 = Clock::now();
      c.index = load_or_build_ann(c.path, "bench", cat.data(), N, dim, kind, opts, true, &c.how);
      c.load = secs(t0);
      for (int q = 0; q < 50; ++q)
        c.same += c.index->search(catn.data() + q * dim, 10) == built->search(catn.data() + q * dim, 10);
      return c;
    };
    {
      Cached c = cache(ao);
      std::printf(
          "  cache beside the model: build + save %.1f s (%.0f MB), load %.2f s (%s; %d/50 queries identical "
          "to the saved graph)\n",
          c.build_save, file_size(c.path) / 1e6, c.load, c.how.c_str(), c.same);
      c.index.reset();
      std::filesystem::remove_all(c.dir);
    }
    // Exact top-10 for each query.
    std::vector<int32_t> users(Q);
    for (int q = 0; q < Q; ++q) users[q] = static_cast<int32_t>(rng() % m.users.size());
    std::vector<std::vector<int32_t>> exact(Q, std::vector<int32_t>(10));
    std::vector<float> row(N);
    t0 = Clock::now();
    for (int q = 0; q < Q; ++q) {
      std::vector<float> u(U + static_cast<size_t>(users[q]) * dim, U + static_cast<size_t>(users[q] + 1) * dim);
      if (kind == Similarity::Cosine) {
        double s = 0;
        for (float x : u) s += x * x;
        for (auto& x : u) x = static_cast<float>(x / std::sqrt(std::max(s, 1e-12)));
      }
      int32_t zero = 0;
      gemm_scores(u.data(), &zero, 1, catn.data(), static_cast<int32_t>(N), dim, kind, sq.data(), row.data());
      topk_row(row.data(), static_cast<int32_t>(N), 10, exact[q].data());
    }
    double exact_ms = 1e3 * secs(t0) / Q;
    std::printf("  exact (BLAS over all items + top-10, 1 thread): %.3f ms/query\n", exact_ms);
    auto recall_rows = [&](AnnIndex& index, const char* param, const std::vector<int>& values) {
      std::printf("  %6s %10s %12s %10s\n", param, "recall@10", "ms/query", "speed-up");
      for (int ef : values) {
        index.set_ef(ef);
        double hits = 0;
        t0 = Clock::now();
        std::vector<std::vector<std::pair<int32_t, float>>> res(Q);
        for (int q = 0; q < Q; ++q) res[q] = index.search(U + static_cast<size_t>(users[q]) * dim, 10);
        double ms = 1e3 * secs(t0) / Q;
        for (int q = 0; q < Q; ++q) {
          std::set<int32_t> e(exact[q].begin(), exact[q].end());
          for (auto& [i, v] : res[q]) hits += e.count(i);
        }
        std::printf("  %6d %10.4f %12.3f %9.1fx\n", ef, hits / (10.0 * Q), ms, exact_ms / ms);
      }
    };
    recall_rows(ann, "ef", efs);
    if (ivf) {
      // The faiss inverted file (serve --index ivf): build, the cache beside the model (memory-mapped
      // load), then recall against the same exact top-10.
      AnnOptions io;
      io.type = "ivf";
      Cached c = cache(io);
      std::printf(
          "  IVF (faiss IndexIVFFlat, %lld lists, 2 threads): build + save %.1f s (%.0f MB), load %.2f s (%s; %d/50 "
          "queries identical to the saved index)\n",
          static_cast<long long>(std::llround(std::sqrt(static_cast<double>(N)))), c.build_save,
          file_size(c.path) / 1e6, c.load, c.how.c_str(), c.same);
      recall_rows(*c.index, "nprobe", nprobes);
      c.index.reset();
      std::filesystem::remove_all(c.dir);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_ann: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
