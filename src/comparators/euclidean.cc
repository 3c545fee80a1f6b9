// euclidean: distance |a - b|_2; similarity -distance.
#include "comparators/comparator.h"

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

}  // namespace siamrec
