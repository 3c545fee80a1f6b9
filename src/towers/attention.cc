#include "towers/attention.h"

#include <ATen/Parallel.h>
#include <torch/nn/functional/linear.h>

#include <cmath>
#include <limits>

#include "util/rng.h"

namespace siamrec {

// Branch-free (a random branch mispredicts p of the time) and in 32-bit lanes: it vectorizes
// (GCC at -O2 leaves a loop with an unknown trip count scalar; O3's cost model vectorizes it).
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O3")))
#endif
static void
dropout_mask(float* __restrict m, int64_t n, int64_t first, uint32_t s, uint32_t cut, float keep) {
  const uint32_t base = static_cast<uint32_t>(first);
  for (int64_t k = 0; k < n; ++k) {
    uint32_t h = (base + static_cast<uint32_t>(k)) * 0x9e3779b9u + s;
    h ^= h >> 16, h *= 0x7feb352du, h ^= h >> 15, h *= 0x846ca68bu, h ^= h >> 16;
    m[k] = keep * static_cast<float>(h >= cut);
  }
}

torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  if (p >= 1) return x * 0;
  const uint64_t seed = torch::randint(std::numeric_limits<int64_t>::max(), {1}, torch::kInt64).item<int64_t>();
  auto mask = torch::empty(x.sizes(), x.options().requires_grad(false));
  float* m = mask.data_ptr<float>();
  const int64_t n = mask.numel();
  const uint32_t s = static_cast<uint32_t>(mix64(seed));
  const uint32_t cut = static_cast<uint32_t>(std::min(4294967295.0, std::round(p * 4294967296.0)));
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  // Element i keeps when a 32-bit hash of (i, seed) is >= p 2^32: 32-bit multiplies, so the loop
  // vectorizes (the attention weights alone are B x L x L elements per block).
  at::parallel_for(0, n, 1 << 16, [&](int64_t i0, int64_t i1) { dropout_mask(m + i0, i1 - i0, i0, s, cut, keep); });
  return x * mask;
}

torch::Tensor self_attention(torch::nn::MultiheadAttention& m, const torch::Tensor& x, const torch::Tensor& mask,
                             double dropout, bool training) {
  namespace F = torch::nn::functional;
  const int64_t L = x.size(0), B = x.size(1), d = x.size(2), h = m->options.num_heads(), dh = d / h;
  auto qkv = F::linear(x, m->in_proj_weight, m->in_proj_bias).chunk(3, -1);  // each [L, B, d]
  auto heads = [&](const torch::Tensor& t) { return t.contiguous().view({L, B * h, dh}).transpose(0, 1); };
  auto q = heads(qkv[0]) * (1.0 / std::sqrt(static_cast<double>(dh)));
  auto k = heads(qkv[1]), v = heads(qkv[2]);  // [B h, L, dh]
  // A mask per sequence [B, L, L] is repeated for its heads (batch index b h + head).
  auto add = mask.dim() == 2 ? mask.unsqueeze(0)
             : h == 1        ? mask
                             : mask.unsqueeze(1).expand({B, h, L, L}).reshape({B * h, L, L});
  auto s = torch::baddbmm(add, q, k.transpose(1, 2));  // [B h, L, L]
  auto a = fast_dropout(torch::softmax(s, -1), dropout, training);
  auto o = torch::bmm(a, v).transpose(0, 1).contiguous().view({L, B, d});
  return F::linear(o, m->out_proj->weight, m->out_proj->bias);
}

}  // namespace siamrec
