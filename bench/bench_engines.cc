// Training-engine benchmark on the NCF ML-1M train set (994,169 positives): the CML triplet model
// of ../shared/bench/torch_ref.py (1 uniform negative, squared euclidean, margin 1, unit-ball
// clipping, Adagrad lr 0.05) trained by the LibTorch engine, the fused engine (per-example and
// mini-batch updates, 1 and 2 threads) and, when it is there, the PyTorch reference itself, all in
// one command. Every row trains a fresh model for --epochs epochs; the rows are interleaved over
// --rounds rounds (this VM's clock drifts by up to 2x within minutes) and each figure is the
// median over rounds. Prints triplets/s and the ratios the fused engine is held to.
//
//   bench_engines [--epochs 3] [--rounds 5] [--dims 32,64,128] [--torch-ref PATH | --torch-ref none]
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/io.h"
#include "util/paths.h"
#include "util/strings.h"

using namespace siamrec;

struct Rate {
  double first = 0, mean = 0;  // epoch 1; all epochs (triplets / seconds)
};

static Rate train_rate(const Prepared& p, const std::string& engine, const std::string& update, int threads, int dim,
                       int batch, int epochs) {
  Config c;
  for (std::string s :
       {"model.type=siamese", "loss.type=triplet", "loss.margin=1", "comparator.type=sq_euclidean", "reg.max_norm=1",
        "sampler.negatives=1", "train.optimizer=adagrad", "train.lr=0.05", "train.valid_share=0"})
    c.set_override(s);
  c.set_override("train.engine=" + engine);
  c.set_override("train.update=" + update);
  c.set_override("train.batch_size=" + std::to_string(batch));
  c.set_override("tower.dim=" + std::to_string(dim));
  c.set_override("train.epochs=" + std::to_string(epochs));
  std::string log = "/tmp/siamrec-bench-engines.jsonl";
  RunOptions ro;
  ro.threads = threads;
  ro.log_path = log;
  fit_model(p, c, ro);
  std::string text = read_file(log);
  std::remove(log.c_str());
  LineReader lr(text);
  std::string_view line;
  Rate r;
  double seen = 0, secs = 0;
  while (lr.next(line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    double tps = j["tuples_per_s"].get<double>(), s = j["seconds"].get<double>();
    if (r.first == 0) r.first = tps;
    seen += tps * s, secs += s;
  }
  r.mean = seen / std::max(secs, 1e-9);
  return r;
}

// The PyTorch reference, 1 thread: its own mean triplets/s over `epochs` (0 when unavailable).
static double torch_ref_rate(const std::string& ref, int epochs) {
  std::string cmd = "OMP_NUM_THREADS=1 /usr/bin/python3 " + ref + " '" + resolve_data_dir() +
                    "' --loss triplet --dim 64 --batch 4096 --threads 1 --epochs " + std::to_string(epochs) +
                    " 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return 0;
  char buf[512];
  double rate = 0;
  while (std::fgets(buf, sizeof buf, f))
    if (const char* q = std::strstr(buf, "triplets_per_s=")) rate = std::atof(q + std::strlen("triplets_per_s="));
  const int status = pclose(f);
  if (rate <= 0)
    std::fprintf(stderr,
                 "bench_engines: %s printed no rate (exit status %d); its row is left out. It needs python3-torch and "
                 "python3-numpy (scripts/install-deps.sh bench)\n",
                 ref.c_str(), status);
  return rate;
}

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  int epochs = 3, rounds = 5;
  std::vector<int> dims = {32, 64, 128};
  std::string ref = "../shared/bench/torch_ref.py";
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--epochs"))
      epochs = std::max(1, std::atoi(argv[a + 1]));
    else if (!std::strcmp(argv[a], "--rounds"))
      rounds = std::max(1, std::atoi(argv[a + 1]));
    else if (!std::strcmp(argv[a], "--torch-ref"))
      ref = argv[a + 1];
    else if (!std::strcmp(argv[a], "--dims")) {
      dims.clear();
      for (auto& d : split_list(argv[a + 1])) dims.push_back(std::stoi(d));
    } else {
      std::fprintf(stderr, "bench_engines: unknown option %s\n", argv[a]);
      return 2;
    }
  }
  if (ref != "none" && !file_exists(ref)) {
    std::fprintf(stderr, "bench_engines: %s not found; the PyTorch reference row is skipped\n", ref.c_str());
    ref = "none";
  }
  try {
    Config c;
    c.set_override("data.dataset=ml-1m-ncf");
    c.set_override("split.type=fixed");
    c.set_override("split.name=ncf");
    Prepared p = prepare(c, RunOptions{});
    struct Row {
      std::string name, engine, update;
      int threads, dim, batch;
      std::vector<double> first, mean;  // per round: epoch 1, all epochs
    };
    std::vector<Row> rows = {
        {"LibTorch engine, batch 1024, 1 thread", "torch", "minibatch", 1, 64, 1024},
        {"LibTorch engine, batch 4096, 1 thread", "torch", "minibatch", 1, 64, 4096},
        {"fused, per-example, 1 thread", "fused", "example", 1, 64, 4096},
        {"fused, per-example, 2 threads", "fused", "example", 2, 64, 4096},
        {"fused, mini-batch 4096, 1 thread", "fused", "minibatch", 1, 64, 4096},
        {"fused, mini-batch 4096, 2 threads", "fused", "minibatch", 2, 64, 4096},
    };
    for (int d : dims)
      if (d != 64)
        rows.push_back({"fused, per-example, 1 thread, d=" + std::to_string(d), "fused", "example", 1, d, 4096});
    std::vector<double> ref_rates;
    for (int r = 0; r < rounds; ++r) {
      std::fprintf(stderr, "round %d/%d\n", r + 1, rounds);
      for (Row& row : rows) {
        Rate x = train_rate(p, row.engine, row.update, row.threads, row.dim, row.batch, epochs);
        row.first.push_back(x.first), row.mean.push_back(x.mean);
      }
      if (ref != "none") ref_rates.push_back(torch_ref_rate(ref, epochs));
    }
    const Row &t1k = rows[0], &t4k = rows[1], &ex1 = rows[2], &ex2 = rows[3], &mb1 = rows[4], &mb2 = rows[5];
    auto M = [](const Row& r) { return median(r.mean); };
    auto F = [](const Row& r) { return median(r.first); };
    std::printf(
        "engine benchmark: NCF ML-1M train set (%zu positives), CML triplet as ../shared/bench/torch_ref.py\n"
        "(1 uniform negative, sq_euclidean, margin 1, unit ball, Adagrad lr 0.05, d=64 unless said), triplets/s;\n"
        "each row trains a fresh model for %d epochs; median of %d interleaved rounds\n",
        p.split.train.size(), epochs, rounds);
    std::printf("  %-46s %12s %14s\n", "", "epoch 1", "mean, all epochs");
    for (const Row& row : rows) std::printf("  %-46s %12.0f %14.0f\n", row.name.c_str(), F(row), M(row));
    double tr = median(ref_rates);
    if (tr > 0) std::printf("  %-46s %12s %14.0f\n", "PyTorch reference torch_ref.py, batch 4096, 1 thread", "-", tr);
    std::printf("ratios (means over all epochs):\n");
    std::printf(
        "  fused per-example 1 thread / LibTorch engine 1 thread: %.1fx at batch 4096, %.1fx at batch 1024 (target >= "
        "10x)\n",
        M(ex1) / M(t4k), M(ex1) / M(t1k));
    std::printf("  fused mini-batch 1 thread / LibTorch engine 1 thread at batch 4096: %.1fx\n", M(mb1) / M(t4k));
    if (tr > 0)
      std::printf("  fused per-example 1 thread / PyTorch reference 1 thread: %.1fx (target >= 15x)\n", M(ex1) / tr);
    std::printf("  2 threads / 1 thread: per-example %.2fx, mini-batch %.2fx (target >= 1.7x)\n", M(ex2) / M(ex1),
                M(mb2) / M(mb1));
    std::printf(
        "  epoch 1 only: per-example / LibTorch batch 4096 %.1fx; 2 threads / 1 thread per-example %.2fx, mini-batch "
        "%.2fx\n",
        F(ex1) / F(t4k), F(ex2) / F(ex1), F(mb2) / F(mb1));
    // A 2-thread row below its 1-thread row in the same round means the second core was taken
    // by something else for that minute (seen on this VM): say so instead of printing a ratio
    // as if it were the engine's.
    int busy = 0;
    for (int r = 0; r < rounds; ++r) busy += ex2.mean[r] < ex1.mean[r] || mb2.mean[r] < mb1.mean[r];
    if (busy > 0)
      std::printf(
          "warning: in %d of %d rounds a 2-thread row was slower than its 1-thread row: the second core was busy\n"
          "  (the 2-thread ratios above are not the engine's; rerun)\n",
          busy, rounds);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_engines: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
