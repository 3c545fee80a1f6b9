// gathered_similarity: see gathered.h. Rows are scored in place; the backward pass writes each
// anchor's gradient alone (parallel over anchors) and adds the table's gradient row by row.
#include "comparators/gathered.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.h"

namespace siamrec {

namespace {

inline float dot(const float* __restrict x, const float* __restrict y, int64_t d) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < d; ++k) s += x[k] * y[k];
  return s;
}
constexpr float kMinNorm = 1e-8f;  // as CosineComparator: norm(...).clamp_min(1e-8)

struct GatheredSimilarity : public torch::autograd::Function<GatheredSimilarity> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor a, torch::Tensor table,
                               torch::Tensor ids, bool cosine) {
    auto ac = a.contiguous(), tc = table.contiguous(), ic = ids.contiguous();
    const int64_t n = ac.size(0), d = ac.size(1), k = ic.size(1), N = tc.size(0);
    const float* A = ac.data_ptr<float>();
    const float* T = tc.data_ptr<float>();
    const int64_t* I = ic.data_ptr<int64_t>();
    for (int64_t q = 0; q < n * k; ++q)
      if (I[q] < 0 || I[q] >= N) throw Error(fmt::format("gathered_similarity: row {} of a {}-row table", I[q], N));
    auto out = torch::empty({n, k});
    float* S = out.data_ptr<float>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const float* x = A + r * d;
      const float na = cosine ? std::max(std::sqrt(dot(x, x, d)), kMinNorm) : 1.0f;
      for (int64_t j = 0; j < k; ++j) {
        const float* y = T + I[r * k + j] * d;
        float s = dot(x, y, d);
        if (cosine) s /= na * std::max(std::sqrt(dot(y, y, d)), kMinNorm);
        S[r * k + j] = s;
      }
    }
    ctx->save_for_backward({ac, tc, ic, out});
    ctx->saved_data["cosine"] = cosine;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto v = ctx->get_saved_variables();
    const auto &ac = v[0], &tc = v[1], &ic = v[2], &out = v[3];
    const bool cosine = ctx->saved_data["cosine"].toBool();
    auto g = grads[0].contiguous();
    const int64_t n = ac.size(0), d = ac.size(1), k = ic.size(1);
    const float* A = ac.data_ptr<float>();
    const float* T = tc.data_ptr<float>();
    const int64_t* I = ic.data_ptr<int64_t>();
    const float* S = out.data_ptr<float>();
    const float* G = g.data_ptr<float>();
    auto ga = torch::zeros_like(ac);
    auto gt = torch::zeros_like(tc);
    float* GA = ga.data_ptr<float>();
    float* GT = gt.data_ptr<float>();
    // ds/dx = y / (|x||y|) - s x / |x|^2 for cosine (the norm term only where |x| was not clamped);
    // y for dot. The same with x and y swapped for the row. Norms (cosine) are taken once: the
    // anchors' in ax, each scored row's in ay, read again by the row pass.
    std::vector<float> ax(cosine ? n : 0), ay(cosine ? n * k : 0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const float* x = A + r * d;
      float* gx = GA + r * d;
      const float rx = cosine ? std::sqrt(dot(x, x, d)) : 1.0f, nx = std::max(rx, kMinNorm);
      if (cosine) ax[r] = rx;
      float self = 0;  // sum of g s / |x|^2 over the row's scores (cosine)
      for (int64_t j = 0; j < k; ++j) {
        const float gj = G[r * k + j];
        if (gj == 0) continue;
        const float* y = T + I[r * k + j] * d;
        float c = gj;
        if (cosine) {
          const float ry = std::sqrt(dot(y, y, d));
          ay[r * k + j] = ry;
          c = gj / (nx * std::max(ry, kMinNorm));
          if (rx > kMinNorm) self += gj * S[r * k + j] / (nx * nx);
        }
#pragma omp simd
        for (int64_t e = 0; e < d; ++e) gx[e] += c * y[e];
      }
      if (cosine && self != 0)
#pragma omp simd
        for (int64_t e = 0; e < d; ++e) gx[e] -= self * x[e];
    }
    for (int64_t r = 0; r < n; ++r) {  // rows repeat across anchors: added one at a time
      const float* x = A + r * d;
      const float nx = cosine ? std::max(ax[r], kMinNorm) : 1.0f;
      for (int64_t j = 0; j < k; ++j) {
        const float gj = G[r * k + j];
        if (gj == 0) continue;
        const int64_t row = I[r * k + j];
        const float* y = T + row * d;
        float* gy = GT + row * d;
        float c = gj, cy = 0;
        if (cosine) {
          const float ry = ay[r * k + j], ny = std::max(ry, kMinNorm);
          c = gj / (nx * ny);
          if (ry > kMinNorm) cy = gj * S[r * k + j] / (ny * ny);
        }
#pragma omp simd
        for (int64_t e = 0; e < d; ++e) gy[e] += c * x[e] - cy * y[e];
      }
    }
    return {ga, gt, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gathered_similarity(const torch::Tensor& a, const torch::Tensor& table, const torch::Tensor& ids,
                                  bool cosine) {
  if (a.dim() != 2 || table.dim() != 2 || ids.dim() != 2 || a.size(1) != table.size(1) || ids.size(0) != a.size(0))
    throw Error("gathered_similarity: expects anchors [n, d], a table [N, d] and ids [n, k]");
  return GatheredSimilarity::apply(a.to(torch::kFloat32), table.to(torch::kFloat32), ids.to(torch::kInt64), cosine);
}

}  // namespace siamrec
