// dot: a·b (matrix factorization, BPR, sampled softmax).
#include "comparators/comparator.h"

namespace siamrec {

class DotComparator : public Comparator {
 public:
  explicit DotComparator(const ComparatorSpec&) {}
  torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) override { return (a * b).sum(-1); }
  torch::Tensor similarity_matrix(const torch::Tensor& a, const torch::Tensor& b) override { return a.mm(b.t()); }
  bool gemm(Similarity* k) const override { return *k = Similarity::Dot, true; }
};

SIAMREC_REGISTER_COMPARATOR("dot", "inner product a.b", DotComparator);

}  // namespace siamrec
