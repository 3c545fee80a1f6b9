// euclidean: distance |a - b|_2; similarity -distance.
#include <algorithm>
#include <cmath>

#include "comparators/comparator.h"
#include "comparators/fused_form.h"
#include "util/vec.h"

namespace siamrec {

class EuclideanComparator : public Comparator {
 public:
  explicit EuclideanComparator(const ComparatorSpec&) {}
  torch::Tensor distance(const torch::Tensor& a, const torch::Tensor& b) override {
    return ((a - b).pow(2).sum(-1) + 1e-12).sqrt();
  }
  torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) override { return -distance(a, b); }
  bool is_metric() const override { return true; }
  torch::Tensor distance_matrix(const torch::Tensor& a, const torch::Tensor& b) override {
    return ((a.pow(2).sum(1, true) + b.pow(2).sum(1).unsqueeze(0) - 2 * a.mm(b.t())).clamp_min(0) + 1e-12).sqrt();
  }
  torch::Tensor similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) override {
    return -distance_matrix(a, b);
  }
  bool gemm(Similarity* k) const override { return *k = Similarity::NegEuclidean, true; }
};

SIAMREC_REGISTER_COMPARATOR("euclidean", "euclidean distance |a-b|", EuclideanComparator);

// The fused engine's form (comparators/fused_form.h): value and gradient by hand.
static double fused_euclidean_value(const float* a, const float* b, int64_t d, bool want_dist) {
  const double e = std::sqrt(vec::sqdist(a, b, d) + 1e-12);
  return want_dist ? e : -e;
}
static void fused_euclidean_back(const float* a, const float* b, int64_t d, double v, double up, bool want_dist,
                                 float* ga, float* gb) {
  if (up == 0) return;
  const double f = 1.0 / (want_dist ? v : -v);
  vec::diff_pair(static_cast<float>((want_dist ? up : -up) * f), a, b, ga, gb, d);
}

SIAMREC_REGISTER_FUSED_COMPARATOR(euclidean, "euclidean", fused_euclidean_value, fused_euclidean_back,
                                  FusedComparatorForm::kNone);

}  // namespace siamrec
