// cosine: a·b / (|a||b|); distance 1 - cos.
#include <algorithm>
#include <cmath>

#include "comparators/comparator.h"
#include "comparators/fused_form.h"
#include "util/vec.h"

namespace siamrec {

class CosineComparator : public Comparator {
 public:
  explicit CosineComparator(const ComparatorSpec&) {}
  torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) override {
    auto na = a.norm(2, -1).clamp_min(1e-8), nb = b.norm(2, -1).clamp_min(1e-8);
    return (a * b).sum(-1) / (na * nb);
  }
  bool is_metric() const override { return true; }
  torch::Tensor distance(const torch::Tensor& a, const torch::Tensor& b) override { return 1 - similarity(a, b); }
  torch::Tensor similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) override {
    return (a / a.norm(2, -1, true).clamp_min(1e-8)).mm((b / b.norm(2, -1, true).clamp_min(1e-8)).t());
  }
  torch::Tensor distance_matrix(const torch::Tensor& a, const torch::Tensor& b) override {
    return 1 - similarity_matrix(a, b);
  }
  bool gemm(Similarity* k) const override { return *k = Similarity::Cosine, true; }
};

SIAMREC_REGISTER_COMPARATOR("cosine", "cosine similarity; distance 1 - cos", CosineComparator);

// The fused engine's form (comparators/fused_form.h): value and gradient by hand.
static double fused_cosine_value(const float* a, const float* b, int64_t d, bool want_dist) {
  const double na = std::max(std::sqrt(static_cast<double>(vec::dot(a, a, d))), 1e-8);
  const double nb = std::max(std::sqrt(static_cast<double>(vec::dot(b, b, d))), 1e-8);
  const double c = vec::dot(a, b, d) / (na * nb);
  return want_dist ? 1 - c : c;
}
static void fused_cosine_back(const float* a, const float* b, int64_t d, double v, double up, bool want_dist, float* ga,
                              float* gb) {
  if (up == 0) return;
  const double na = std::max(std::sqrt(static_cast<double>(vec::dot(a, a, d))), 1e-8);
  const double nb = std::max(std::sqrt(static_cast<double>(vec::dot(b, b, d))), 1e-8);
  const double c = want_dist ? 1 - v : v;
  const double u = want_dist ? -up : up;
  const float f1 = static_cast<float>(u / (na * nb)), fa = static_cast<float>(u * c / (na * na)),
              fb = static_cast<float>(u * c / (nb * nb));
  float* __restrict gar = ga;
  float* __restrict gbr = gb;
#pragma omp simd
  for (int64_t i = 0; i < d; ++i) {
    gar[i] += f1 * b[i] - fa * a[i];
    gbr[i] += f1 * a[i] - fb * b[i];
  }
}

SIAMREC_REGISTER_FUSED_COMPARATOR(cosine, "cosine", fused_cosine_value, fused_cosine_back, FusedComparatorForm::kNone);

}  // namespace siamrec
