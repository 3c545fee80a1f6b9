// cosine: a·b / (|a||b|); distance 1 - cos.
#include "comparators/comparator.h"

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

}  // namespace siamrec
