// sq_euclidean: distance |a - b|^2 (CML); similarity -distance.
#include "comparators/comparator.h"

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

}  // namespace siamrec
