// contrastive (Hadsell et al. 2006): y d^2 + (1 - y) max(0, m - d)^2 over pairs; the positive is a
// pair with y = 1, each negative a pair with y = 0. Needs a metric comparator.
#include "losses/loss.h"

namespace siamrec {

class ContrastiveLoss : public Loss {
 public:
  explicit ContrastiveLoss(const LossSpec& s) : m_(s.margin) {}
  bool wants_distance() const override { return true; }
  bool needs_metric() const override { return true; }
  torch::Tensor forward(const LossInputs& in) override {
    auto pos = in.pos.pow(2);
    if (!in.neg.defined()) return pos.mean();
    auto neg = torch::relu(m_ - in.neg).pow(2);
    auto n_pos = static_cast<double>(pos.numel());
    auto mask = in.neg_mask.defined() ? in.neg_mask.to(neg.dtype()) : torch::ones_like(neg);
    return (pos.sum() + (neg * mask).sum()) / (n_pos + mask.sum());
  }

 private:
  double m_;
};

SIAMREC_REGISTER_LOSS("contrastive", "y d^2 + (1-y) max(0, margin - d)^2 (metric comparator)", ContrastiveLoss);

}  // namespace siamrec
