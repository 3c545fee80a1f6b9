// mse: (s(a,p) - y)^2 for rating regression; y is the rating minus the training mean.
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

}  // namespace siamrec
