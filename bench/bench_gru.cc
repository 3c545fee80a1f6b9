// GRU layer benchmark (the `gru` user tower's hot loop): one layer forward, and forward + backward,
// over a batch of histories, with LibTorch's GRU (user_tower.rnn_kernel torch) and with siamrec's
// own kernel (towers/gru_kernel.cc, rnn_kernel own), in the same process on 1 thread; median of
// reps, with the arithmetic rate of the six matrix products a step needs.
//
//   bench_gru [--reps 30] [--batch 128] [--steps 50] [--dim 64]
#include <ATen/Parallel.h>
#include <malloc.h>
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "timing.h"
#include "towers/gru_kernel.h"

using namespace siamrec;

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  int reps = 30;
  int64_t B = 128, L = 50, d = 64;
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--reps")) reps = std::atoi(argv[a + 1]);
    if (!std::strcmp(argv[a], "--batch")) B = std::atoll(argv[a + 1]);
    if (!std::strcmp(argv[a], "--steps")) L = std::atoll(argv[a + 1]);
    if (!std::strcmp(argv[a], "--dim")) d = std::atoll(argv[a + 1]);
  }
  omp_set_num_threads(1);
  at::set_num_threads(1);
  torch::manual_seed(1);
  torch::nn::GRU gru(torch::nn::GRUOptions(d, d).batch_first(true));
  auto w = gru->all_weights();
  auto x = torch::randn({B, L, d});
  auto dy = torch::randn({B, L, d});
  const GruShape s{B, L, d, d};
  const GruWeights gw{w[0].data_ptr<float>(), w[1].data_ptr<float>(), w[2].data_ptr<float>(), w[3].data_ptr<float>()};
  const int64_t n = L * B * d;
  std::vector<float> y(static_cast<size_t>(n)), states(static_cast<size_t>(n + B * d)),
      gates(static_cast<size_t>(4 * n));
  std::vector<float> dx(static_cast<size_t>(n)), dwi(static_cast<size_t>(3 * d * d)), dwh(dwi.size()),
      dbi(static_cast<size_t>(3 * d)), dbh(dbi.size());
  const GruSaved keep{states.data(), gates.data(), gates.data() + n, gates.data() + 2 * n, gates.data() + 3 * n};
  const GruGrads grads{dx.data(), dwi.data(), dwh.data(), dbi.data(), dbh.data()};

  const double torch_fwd = median_ms(reps, [&] {
    torch::NoGradGuard ng;
    auto out = std::get<0>(gru->forward(x));
  });
  const double torch_all = median_ms(reps, [&] {
    auto xg = x.clone().requires_grad_(true);
    auto out = std::get<0>(gru->forward(xg));
    out.backward(dy);
  });
  const double own_fwd = median_ms(reps, [&] { gru_forward(s, gw, x.data_ptr<float>(), y.data(), GruSaved{}); });
  const double own_all = median_ms(reps, [&] {
    gru_forward(s, gw, x.data_ptr<float>(), y.data(), keep);
    gru_backward(s, gw, x.data_ptr<float>(), dy.data_ptr<float>(), keep, grads);
  });
  // Products: forward x W_ih^T and h W_hh^T; backward dx, dW_ih, dW_hh and dh: each 2 B L d 3d.
  const double gflop_fwd = 2.0 * 2 * B * L * d * 3 * d / 1e9, gflop_all = 3 * gflop_fwd;
  std::printf("GRU layer, batch %lld x %lld steps, d %lld, 1 thread, median of %d\n", static_cast<long long>(B),
              static_cast<long long>(L), static_cast<long long>(d), reps);
  std::printf("%-26s %10s %10s %12s\n", "", "ms", "GFLOP/s", "vs LibTorch");
  std::printf("%-26s %10.2f %10.1f %12s\n", "LibTorch forward", torch_fwd, gflop_fwd / torch_fwd * 1e3, "1.00x");
  std::printf("%-26s %10.2f %10.1f %11.2fx\n", "own forward", own_fwd, gflop_fwd / own_fwd * 1e3, torch_fwd / own_fwd);
  std::printf("%-26s %10.2f %10.1f %12s\n", "LibTorch forward+backward", torch_all, gflop_all / torch_all * 1e3,
              "1.00x");
  std::printf("%-26s %10.2f %10.1f %11.2fx\n", "own forward+backward", own_all, gflop_all / own_all * 1e3,
              torch_all / own_all);
  return 0;
}
