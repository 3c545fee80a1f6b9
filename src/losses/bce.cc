// bce: binary cross-entropy on the similarity as a logit; positive pairs y = 1, negatives y = 0.
#include <algorithm>

#include "losses/fused_form.h"
#include "losses/loss.h"

namespace siamrec {

class BceLoss : public Loss {
 public:
  explicit BceLoss(const LossSpec&) {}
  torch::Tensor forward(const LossInputs& in) override {
    auto pos = torch::softplus(-in.pos);  // -log sigmoid(s)
    if (!in.neg.defined()) return pos.mean();
    auto neg = torch::softplus(in.neg);  // -log(1 - sigmoid(s))
    auto mask = in.neg_mask.defined() ? in.neg_mask.to(neg.dtype()) : torch::ones_like(neg);
    return (pos.sum() + (neg * mask).sum()) / (static_cast<double>(pos.numel()) + mask.sum());
  }
};

SIAMREC_REGISTER_LOSS("bce", "binary cross-entropy with the similarity as logit", BceLoss);

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_bce(const FusedLossArgs&, double vpv, const double* vnv, float, double& up_p, double* upn, int k) {
  double L = fused_softplus(-vpv) / (1 + k);
  up_p = -fused_sigmoid(-vpv) / (1 + k);
  for (int j = 0; j < k; ++j) L += fused_softplus(vnv[j]) / (1 + k), upn[j] = fused_sigmoid(vnv[j]) / (1 + k);
  return L;
}

SIAMREC_REGISTER_FUSED_LOSS(bce, "bce", fused_bce, false, false);

}  // namespace siamrec
