// infonce / sampled softmax: -log( exp(s_p/t) / (exp(s_p/t) + sum_n exp(s_n/t)) ), temperature t;
// with sampler in_batch the negatives are the other positives of the batch. loss.pos_margin m
// replaces s_p by s_p - m (additive margin softmax: AM-softmax, Wang et al. 2018; CosFace).
#include <algorithm>

#include "losses/fused_form.h"
#include "losses/loss.h"

namespace siamrec {

class InfoNceLoss : public Loss {
 public:
  explicit InfoNceLoss(const LossSpec& s) : t_(s.temperature), m_(s.pos_margin) {}
  torch::Tensor forward(const LossInputs& in) override {
    auto neg = in.neg;
    if (in.neg_mask.defined()) neg = neg.masked_fill(in.neg_mask.logical_not(), -1e30);
    auto logits = torch::cat({(m_ != 0 ? in.pos - m_ : in.pos).unsqueeze(1), neg}, 1) / t_;
    return (torch::logsumexp(logits, 1) - logits.select(1, 0)).mean();
  }

 private:
  double t_, m_;
};

SIAMREC_REGISTER_LOSS("infonce", "sampled softmax with temperature (loss.temperature)", InfoNceLoss);

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_infonce(const FusedLossArgs& a, double vpv, const double* vnv, float, double& up_p, double* upn,
                            int k) {
  const double t = a.temperature;
  vpv -= a.pos_margin;
  double mx = vpv / t;
  for (int j = 0; j < k; ++j) mx = std::max(mx, vnv[j] / t);
  double z = std::exp(vpv / t - mx);
  for (int j = 0; j < k; ++j) z += std::exp(vnv[j] / t - mx);
  up_p = (std::exp(vpv / t - mx) / z - 1) / t;
  for (int j = 0; j < k; ++j) upn[j] = std::exp(vnv[j] / t - mx) / z / t;
  return std::log(z) + mx - vpv / t;
}

SIAMREC_REGISTER_FUSED_LOSS(infonce, "infonce", fused_infonce, false, false);

}  // namespace siamrec
