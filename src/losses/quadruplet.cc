// quadruplet (Chen et al. 2017): max(0, d(a,p) - d(a,n1) + m1) + max(0, d(a,p) - d(n1,n2) + m2);
// needs two negatives per anchor.
#include "losses/loss.h"

namespace siamrec {

class QuadrupletLoss : public Loss {
 public:
  explicit QuadrupletLoss(const LossSpec& s) : m1_(s.margin), m2_(s.margin2) {}
  bool wants_distance() const override { return true; }
  int min_negatives() const override { return 2; }
  bool needs_neg_neg() const override { return true; }
  torch::Tensor forward(const LossInputs& in) override {
    auto t1 = torch::relu(in.pos - in.neg.select(1, 0) + m1_);
    auto t2 = torch::relu(in.pos - in.neg_neg + m2_);
    return (t1 + t2).mean();
  }

 private:
  double m1_, m2_;
};

SIAMREC_REGISTER_LOSS("quadruplet", "triplet + max(0, d(a,p) - d(n1,n2) + margin2)", QuadrupletLoss);

}  // namespace siamrec
