// manhattan: distance |a - b|_1; similarity -distance.
#include "comparators/comparator.h"

namespace siamrec {

class ManhattanComparator : public Comparator {
 public:
  explicit ManhattanComparator(const ComparatorSpec&) {}
  torch::Tensor distance(const torch::Tensor& a, const torch::Tensor& b) override { return (a - b).abs().sum(-1); }
  torch::Tensor similarity(const torch::Tensor& a, const torch::Tensor& b) override { return -distance(a, b); }
  bool is_metric() const override { return true; }
};

SIAMREC_REGISTER_COMPARATOR("manhattan", "L1 distance |a-b|_1", ManhattanComparator);

}  // namespace siamrec
