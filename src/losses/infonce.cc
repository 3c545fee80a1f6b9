// infonce / sampled softmax: -log( exp(s_p/t) / (exp(s_p/t) + sum_n exp(s_n/t)) ), temperature t;
// with sampler in_batch the negatives are the other positives of the batch.
#include "losses/loss.h"

namespace siamrec {

class InfoNceLoss : public Loss {
 public:
  explicit InfoNceLoss(const LossSpec& s) : t_(s.temperature) {}
  torch::Tensor forward(const LossInputs& in) override {
    auto neg = in.neg;
    if (in.neg_mask.defined()) neg = neg.masked_fill(in.neg_mask.logical_not(), -1e30);
    auto logits = torch::cat({in.pos.unsqueeze(1), neg}, 1) / t_;
    return (torch::logsumexp(logits, 1) - logits.select(1, 0)).mean();
  }

 private:
  double t_;
};

SIAMREC_REGISTER_LOSS("infonce", "sampled softmax with temperature (loss.temperature)", InfoNceLoss);

}  // namespace siamrec
