// dot: a·b (matrix factorization, BPR, sampled softmax).
#include <algorithm>
#include <cmath>

#include "comparators/comparator.h"
#include "comparators/fused_form.h"
#include "util/vec.h"

namespace siamrec {

class DotComparator : public Comparator {
 public:
  explicit DotComparator(const ComparatorSpec&) {}
  torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) override { return (a * b).sum(-1); }
  torch::Tensor similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) override { return a.mm(b.t()); }
  bool gemm(Similarity* k) const override { return *k = Similarity::Dot, true; }
};

SIAMREC_REGISTER_COMPARATOR("dot", "inner product a.b", DotComparator);

// The fused engine's form (comparators/fused_form.h): value and gradient by hand.
static double fused_dot_value(const float* a, const float* b, int64_t d, bool want_dist) {
  return want_dist ? -vec::dot(a, b, d) : vec::dot(a, b, d);
}
static void fused_dot_back(const float* a, const float* b, int64_t d, double, double up, bool want_dist, float* ga,
                           float* gb) {
  if (up == 0) return;
  const float u = static_cast<float>(want_dist ? -up : up);
  vec::axpy(u, b, ga, d), vec::axpy(u, a, gb, d);
}

SIAMREC_REGISTER_FUSED_COMPARATOR(dot, "dot", fused_dot_value, fused_dot_back, FusedComparatorForm::kDot);

}  // namespace siamrec
