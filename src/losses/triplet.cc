// triplet: max(0, d(a,p) - d(a,n) + alpha), alpha = loss.margin (1.0 by default, as in the survey),
// averaged over the k negatives of each anchor.
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

}  // namespace siamrec
