// contrastive (Hadsell et al. 2006): y d^2 + (1 - y) max(0, m - d)^2 over pairs; the positive is a
// pair with y = 1, each negative a pair with y = 0. Needs a metric comparator.
#include <algorithm>

#include "losses/fused_form.h"
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

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_contrastive(const FusedLossArgs& a, double vpv, const double* vnv, float, double& up_p, double* upn,
                                int k) {
  double L = vpv * vpv / (1 + k);
  up_p = 2 * vpv / (1 + k);
  for (int j = 0; j < k; ++j) {
    double h = std::max(0.0, a.margin - vnv[j]);
    L += h * h / (1 + k), upn[j] = -2 * h / (1 + k);
  }
  return L;
}

SIAMREC_REGISTER_FUSED_LOSS(contrastive, "contrastive", fused_contrastive, true, false);

}  // namespace siamrec
