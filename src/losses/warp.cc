// warp: rank-weighted hinge as in CML (Hsieh et al. 2017). Of the k sampled negatives, M violate
// the margin; the positive's rank is estimated as floor(n_items * M / k) and the hinge against the
// closest negative, max(0, margin + d(a,p) - min_n d(a,n)), is weighted by log(rank + 1).
#include <cmath>

#include <algorithm>

#include "losses/fused_form.h"
#include "losses/loss.h"

namespace siamrec {

class WarpLoss : public Loss {
 public:
  explicit WarpLoss(const LossSpec& s) : m_(s.margin) {}
  bool wants_distance() const override { return true; }
  torch::Tensor forward(const LossInputs& in) override {
    auto neg = in.neg;
    if (in.neg_mask.defined()) neg = neg.masked_fill(in.neg_mask.logical_not(), 1e30);
    auto viol = (in.pos.unsqueeze(1) + m_ - neg) > 0;
    auto k = static_cast<double>(neg.size(1));
    auto rank = torch::floor(viol.to(torch::kFloat32).sum(1) * (static_cast<double>(in.n_items) / k));
    auto w = torch::log1p(rank).detach();
    auto hinge = torch::relu(m_ + in.pos - std::get<0>(neg.min(1)));
    return (w * hinge).mean();
  }

 private:
  double m_;
};

SIAMREC_REGISTER_LOSS("warp", "CML rank-weighted hinge over k negatives", WarpLoss);

// The fused engine's form (losses/fused_form.h): the same function, with its derivatives by hand.
static double fused_warp(const FusedLossArgs& a, double vpv, const double* vnv, float, double& up_p, double* upn,
                         int k) {
  double L = 0;
  up_p = 0;
  std::fill(upn, upn + k, 0.0);
  int viol = 0, jmin = 0;
  for (int j = 0; j < k; ++j) {
    viol += vpv + a.margin - vnv[j] > 0;
    if (vnv[j] < vnv[jmin]) jmin = j;
  }
  double w = std::log1p(std::floor(viol * (static_cast<double>(a.n_items) / k)));
  double h = a.margin + vpv - vnv[jmin];
  if (h > 0) L = w * h, up_p = w, upn[jmin] = -w;
  return L;
}

SIAMREC_REGISTER_FUSED_LOSS(warp, "warp", fused_warp, true, false);

}  // namespace siamrec
