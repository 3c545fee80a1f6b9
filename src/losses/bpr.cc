// bpr (Rendle et al. 2009): -log sigmoid(s(a,p) - s(a,n)).
#include "losses/loss.h"

namespace siamrec {

class BprLoss : public Loss {
 public:
  explicit BprLoss(const LossSpec&) {}
  torch::Tensor forward(const LossInputs& in) override {
    return masked_mean(torch::softplus(in.neg - in.pos.unsqueeze(1)), in.neg_mask);
  }
};

SIAMREC_REGISTER_LOSS("bpr", "-log sigmoid(s(a,p) - s(a,n))", BprLoss);

}  // namespace siamrec
