// ccl, cosine contrastive loss (SimpleX, Mao et al. 2021): (1 - s(a,p)) + w/k sum_n max(0, s(a,n) - m),
// meant for the cosine comparator; w = loss.neg_weight, m = loss.margin.
#include <algorithm>

#include "losses/fused_form.h"
#include "losses/loss.h"

namespace siamrec {

class CclLoss : public Loss {
 public:
  explicit CclLoss(const LossSpec& s) : m_(s.margin), w_(s.neg_weight) {}
  torch::Tensor forward(const LossInputs& in) override {
    auto pos = 1 - in.pos;
    auto neg = torch::relu(in.neg - m_);
    if (in.neg_mask.defined()) {
      auto mask = in.neg_mask.to(neg.dtype());
      neg = (neg * mask).sum(1) / mask.sum(1).clamp_min(1);
    } else {
      neg = neg.mean(1);
    }
    return (pos + w_ * neg).mean();
  }

 private:
  double m_, w_;
};

SIAMREC_REGISTER_LOSS("ccl", "cosine contrastive loss (1 - s_p) + w mean max(0, s_n - margin)", CclLoss);

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_ccl(const FusedLossArgs& a, double vpv, const double* vnv, float, double& up_p, double* upn,
                        int k) {
  double L = 1 - vpv;
  up_p = -1;
  for (int j = 0; j < k; ++j) {
    upn[j] = 0;
    if (vnv[j] > a.margin) L += a.neg_weight * (vnv[j] - a.margin) / k, upn[j] = a.neg_weight / k;
  }
  return L;
}

SIAMREC_REGISTER_FUSED_LOSS(ccl, "ccl", fused_ccl, false, false);

}  // namespace siamrec
