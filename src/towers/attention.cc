#include "towers/attention.h"

#include <ATen/Parallel.h>
#include <torch/nn/functional/linear.h>

#include <cmath>
#include <limits>

#include "util/rng.h"

namespace siamrec {

torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  if (p >= 1) return x * 0;
  const uint64_t seed = torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kInt64).item<int64_t>();
  auto mask = torch::empty(x.sizes(), x.options().requires_grad(false));
  float* m = mask.data_ptr<float>();
  const int64_t n = mask.numel();
  const uint32_t cut = static_cast<uint32_t>(std::lround(p * 65536.0));  // drop when 16 bits < cut
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  // Blocks of 4 elements per 64-bit draw; each block's draw depends on its index only.
  at::parallel_for(0, (n + 3) / 4, 4096, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      uint64_t r = mix64(seed + static_cast<uint64_t>(b));
      const int64_t e = std::min<int64_t>(n, 4 * b + 4);
      for (int64_t i = 4 * b; i < e; ++i, r >>= 16) m[i] = (r & 0xffff) < cut ? 0.0f : keep;
    }
  });
  return x * mask;
}

torch::Tensor self_attention(torch::nn::MultiheadAttention& m, const torch::Tensor& x, const torch::Tensor& mask,
                             double dropout, bool training) {
  namespace F = torch::nn::functional;
  const int64_t L = x.size(0), B = x.size(1), d = x.size(2), h = m->options.num_heads(), dh = d / h;
  auto qkv = F::linear(x, m->in_proj_weight, m->in_proj_bias).chunk(3, -1);  // each [L, B, d]
  auto heads = [&](const torch::Tensor& t) { return t.contiguous().view({L, B * h, dh}).transpose(0, 1); };
  auto q = heads(qkv[0]) * (1.0 / std::sqrt(static_cast<double>(dh)));
  auto k = heads(qkv[1]), v = heads(qkv[2]);                         // [B h, L, dh]
  auto s = torch::baddbmm(mask.unsqueeze(0), q, k.transpose(1, 2));  // [B h, L, L]
  auto a = fast_dropout(torch::softmax(s, -1), dropout, training);
  auto o = torch::bmm(a, v).transpose(0, 1).contiguous().view({L, B, d});
  return F::linear(o, m->out_proj->weight, m->out_proj->bias);
}

}  // namespace siamrec
