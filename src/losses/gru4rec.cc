// The GRU4Rec ranking losses (Hidasi & Karatzoglou, "Recurrent Neural Networks with Top-k Gains for
// Session-based Recommendations", 2018). Each negative j is weighted by its softmax share among the
// anchor's negatives, s_j = softmax(r)_j, so the loss is carried by the highest-scoring negatives:
//   bpr_max:  -log sum_j s_j sigmoid(r_p - r_j) + loss.bpreg * sum_j s_j r_j^2
//   top1_max: sum_j s_j (sigmoid(r_j - r_p) + sigmoid(r_j^2))
// Masked negatives (in-batch: the anchor's own positives) get no weight. Their third loss, cross-
// entropy over the positive and the negatives, is `infonce` with loss.temperature 1.
#include <limits>

#include "losses/loss.h"

namespace siamrec {

// Softmax weights over the valid negatives of each row; rows without one get zeros.
static torch::Tensor negative_weights(const torch::Tensor& neg, const torch::Tensor& mask) {
  if (!mask.defined()) return torch::softmax(neg, 1);
  // Masked entries at -inf, except in rows without a valid negative (a softmax of -inf only would
  // be NaN, and so would its gradient): those rows' weights are zeroed below.
  auto off = torch::where(mask.any(1, /*keepdim=*/true), -std::numeric_limits<double>::infinity(), 0.0);
  auto w = torch::softmax(torch::where(mask, neg, off.to(neg.dtype())), 1);
  return w.masked_fill(mask.logical_not(), 0.0);
}

// The mean over anchors that have at least one valid negative.
static torch::Tensor mean_over_rows(const torch::Tensor& per_row, const torch::Tensor& mask) {
  if (!mask.defined()) return per_row.mean();
  auto has = mask.any(1).to(per_row.dtype());
  return (per_row * has).sum() / has.sum().clamp_min(1);
}

class BprMaxLoss : public Loss {
 public:
  explicit BprMaxLoss(const LossSpec& s) : reg_(s.bpreg) {}
  torch::Tensor forward(const LossInputs& in) override {
    auto w = negative_weights(in.neg, in.neg_mask);
    auto gain = (w * torch::sigmoid(in.pos.unsqueeze(1) - in.neg)).sum(1);
    auto neg = in.neg_mask.defined() ? in.neg.masked_fill(in.neg_mask.logical_not(), 0.0) : in.neg;
    auto per_row = -torch::log(gain + 1e-24) + reg_ * (w * neg.pow(2)).sum(1);
    return mean_over_rows(per_row, in.neg_mask);
  }

 private:
  double reg_;
};

class Top1MaxLoss : public Loss {
 public:
  explicit Top1MaxLoss(const LossSpec&) {}
  torch::Tensor forward(const LossInputs& in) override {
    auto w = negative_weights(in.neg, in.neg_mask);
    auto neg = in.neg_mask.defined() ? in.neg.masked_fill(in.neg_mask.logical_not(), 0.0) : in.neg;
    auto per_row = (w * (torch::sigmoid(neg - in.pos.unsqueeze(1)) + torch::sigmoid(neg.pow(2)))).sum(1);
    return mean_over_rows(per_row, in.neg_mask);
  }
};

SIAMREC_REGISTER_LOSS("bpr_max",
                      "GRU4Rec's BPR-max: -log sum_j softmax(s_n)_j sigmoid(s_p - s_nj) + loss.bpreg sum_j "
                      "softmax(s_n)_j s_nj^2 (weights on the hardest negatives)",
                      BprMaxLoss);
SIAMREC_REGISTER_LOSS("top1_max", "GRU4Rec's TOP1-max: sum_j softmax(s_n)_j (sigmoid(s_nj - s_p) + sigmoid(s_nj^2))",
                      Top1MaxLoss);

}  // namespace siamrec
