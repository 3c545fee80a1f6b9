// Sparse propagation benchmark for the `gcn` tower on the ML-1M LightGCN train graph (users +
// items, 2 x 797,758 non-zeros): one propagation step E' = A E (d = 64) with siamrec's CSR kernel
// and with LibTorch's sparse mm (COO), 1 and 2 threads, in the same process; median of reps.
//
//   bench_gcn [--reps 15] [--dim 64]
#include <ATen/Parallel.h>
#include <malloc.h>
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tasks/pipeline.h"
#include "timing.h"
#include "towers/spmm.h"
#include "util/error.h"

using namespace siamrec;

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  int reps = 15, dim = 64;
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--reps")) reps = std::atoi(argv[a + 1]);
    if (!std::strcmp(argv[a], "--dim")) dim = std::atoi(argv[a + 1]);
  }
  try {
    Config c;
    c.set_override("data.dataset=ml-1m-lightgcn");
    c.set_override("split.type=fixed");
    c.set_override("split.name=lightgcn");
    Prepared p = prepare(c, RunOptions{});
    const int64_t I = p.ds.n_items(), U = p.ds.n_users(), n = I + U;
    std::vector<std::vector<int64_t>> adj(static_cast<size_t>(n));
    for (int32_t u = 0; u < U; ++u)
      for (int64_t q = p.train_by_user.begin(u); q < p.train_by_user.end(u); ++q) {
        int64_t i = p.train_by_user.indices[q];
        adj[I + u].push_back(i);
        adj[i].push_back(I + u);
      }
    std::vector<int64_t> ptr{0}, idx;
    for (auto& a : adj) {
      idx.insert(idx.end(), a.begin(), a.end());
      ptr.push_back(static_cast<int64_t>(idx.size()));
    }
    Csr m = normalized_adjacency(n, ptr, idx);
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t q = m.indptr[r]; q < m.indptr[r + 1]; ++q) rows.push_back(r);
    auto coo = torch::sparse_coo_tensor(
                   torch::stack({torch::tensor(rows),
                                 torch::from_blob(m.indices.data(), {m.nnz()}, torch::kInt32).to(torch::kInt64)}),
                   torch::from_blob(m.values.data(), {m.nnz()}, torch::kFloat32).clone(), {n, n})
                   .coalesce();
    auto x = torch::randn({n, dim});
    auto y = torch::empty({n, dim});
    std::printf(
        "gcn propagation benchmark: ML-1M LightGCN train graph, %ld nodes, %ld non-zeros, d=%d, one step E' = A E,\n"
        "median of %d runs (ms)\n",
        static_cast<long>(n), static_cast<long>(m.nnz()), dim, reps);
    for (int th : {1, 2}) {
      omp_set_num_threads(th);
      at::set_num_threads(th);
      double general = median_ms(reps, [&] { spmm_general(m, x.data_ptr<float>(), dim, y.data_ptr<float>()); });
      auto yg = y.clone();
      double ours = median_ms(reps, [&] { spmm(m, x.data_ptr<float>(), dim, y.data_ptr<float>()); });
      double tcoo = median_ms(reps, [&] { auto z = torch::mm(coo, x); });
      auto ref = torch::mm(coo, x);
      double err = std::max((ref - y).abs().max().item<double>(), (ref - yg).abs().max().item<double>());
      std::printf(
          "  %d thread%s: siamrec CSR kernel %7.2f | its general loop %7.2f (%.2fx slower) | LibTorch sparse (COO) mm "
          "%7.2f (%.1fx slower) | max diff %.1e\n",
          th, th > 1 ? "s" : " ", ours, general, general / ours, tcoo, tcoo / ours, err);
      std::fflush(stdout);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_gcn: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
