// sq_euclidean: distance |a - b|^2 (CML); similarity -distance.
#include <algorithm>
#include <cmath>

#include "comparators/comparator.h"
#include "comparators/fused_form.h"
#include "util/vec.h"

namespace siamrec {

class SqEuclideanComparator : public Comparator {
 public:
  explicit SqEuclideanComparator(const ComparatorSpec&) {}
  torch::Tensor distance(const torch::Tensor& a, const torch::Tensor& b) override { return (a - b).pow(2).sum(-1); }
  torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) override { return -distance(a, b); }
  bool is_metric() const override { return true; }
  torch::Tensor distance_matrix(const torch::Tensor& a, const torch::Tensor& b) override {
    return (a.pow(2).sum(1, true) + b.pow(2).sum(1).unsqueeze(0) - 2 * a.mm(b.t())).clamp_min(0);
  }
  torch::Tensor similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) override {
    return -distance_matrix(a, b);
  }
  bool gemm(Similarity* k) const override { return *k = Similarity::NegSqEuclidean, true; }
};

SIAMREC_REGISTER_COMPARATOR("sq_euclidean", "squared euclidean distance |a-b|^2 (CML)", SqEuclideanComparator);

// The fused engine's form (comparators/fused_form.h): value and gradient by hand.
static double fused_sq_value(const float* a, const float* b, int64_t d, bool want_dist) {
  return want_dist ? vec::sqdist(a, b, d) : -vec::sqdist(a, b, d);
}
static void fused_sq_back(const float* a, const float* b, int64_t d, double, double up, bool want_dist, float* ga,
                          float* gb) {
  if (up == 0) return;
  vec::diff_pair(static_cast<float>((want_dist ? up : -up) * 2.0), a, b, ga, gb, d);
}

SIAMREC_REGISTER_FUSED_COMPARATOR(sq_euclidean, "sq_euclidean", fused_sq_value, fused_sq_back,
                                  FusedComparatorForm::kSqEuclidean);

}  // namespace siamrec
