// bce: binary cross-entropy on the similarity as a logit; positive pairs y = 1, negatives y = 0.
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

}  // namespace siamrec
