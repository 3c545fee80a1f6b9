// mse: (s(a,p) - y)^2 for rating regression; y is the rating minus the training mean.
#include <algorithm>

#include "losses/fused_form.h"
#include "losses/loss.h"

namespace siamrec {

class MseLoss : public Loss {
 public:
  explicit MseLoss(const LossSpec&) {}
  int min_negatives() const override { return 0; }
  bool uses_labels() const override { return true; }
  torch::Tensor forward(const LossInputs& in) override { return (in.pos - in.labels).pow(2).mean(); }
};

SIAMREC_REGISTER_LOSS("mse", "squared error of the similarity against centred ratings", MseLoss);

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_mse(const FusedLossArgs& a, double vpv, const double*, float y, double& up_p, double* upn, int k) {
  std::fill(upn, upn + k, 0.0);  // negatives, when drawn, take no part
  double r = vpv - (y - a.label_offset);
  up_p = 2 * r;
  return r * r;
}

SIAMREC_REGISTER_FUSED_LOSS(mse, "mse", fused_mse, false, false);

}  // namespace siamrec
