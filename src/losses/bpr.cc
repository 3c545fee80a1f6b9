// bpr (Rendle et al. 2009): -log sigmoid(s(a,p) - s(a,n)).
#include <algorithm>

#include "losses/fused_form.h"
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

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_bpr(const FusedLossArgs&, double vpv, const double* vnv, float, double& up_p, double* upn, int k) {
  double L = 0;
  up_p = 0;
  for (int j = 0; j < k; ++j) {
    double x = vnv[j] - vpv;
    L += fused_softplus(x) / k;
    double sg = fused_sigmoid(x) / k;
    up_p -= sg, upn[j] = sg;
  }
  return L;
}

SIAMREC_REGISTER_FUSED_LOSS(bpr, "bpr", fused_bpr, false, false);

}  // namespace siamrec
