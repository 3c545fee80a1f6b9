// triplet: max(0, d(a,p) - d(a,n) + alpha), alpha = loss.margin (1.0 by default, as in the survey),
// averaged over the k negatives of each anchor.
#include <algorithm>

#include "losses/fused_form.h"
#include "losses/loss.h"

namespace siamrec {

class TripletLoss : public Loss {
 public:
  explicit TripletLoss(const LossSpec& s) : alpha_(s.margin) {}
  bool wants_distance() const override { return true; }
  torch::Tensor forward(const LossInputs& in) override {
    return masked_mean(torch::relu(in.pos.unsqueeze(1) - in.neg + alpha_), in.neg_mask);
  }

 private:
  double alpha_;
};

SIAMREC_REGISTER_LOSS("triplet", "max(0, d(a,p) - d(a,n) + margin)", TripletLoss);

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_triplet(const FusedLossArgs& a, double vpv, const double* vnv, float, double& up_p, double* upn,
                            int k) {
  double L = 0;
  up_p = 0;
  for (int j = 0; j < k; ++j) {
    const double h = std::max(0.0, vpv - vnv[j] + a.margin);
    L += h * a.inv_k;
    upn[j] = h > 0 ? -a.inv_k : 0.0;
    up_p -= upn[j];
  }
  return L;
}

SIAMREC_REGISTER_FUSED_LOSS(triplet, "triplet", fused_triplet, true, true);

}  // namespace siamrec
