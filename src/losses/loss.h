// A loss reads the comparator's scores of a batch of tuples (anchor, positive, k negatives) and
// returns a scalar. Scores are distances (lower = closer) when wants_distance(), else similarities.
#pragma once
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>

#include "util/names.h"
#include "util/registry.h"

namespace siamrec {

class Config;

struct LossSpec {
  std::string type;
  double margin = 1.0;       // triplet alpha (1.0 as in the survey), contrastive m, ccl m, warp margin
  double margin2 = 0.5;      // quadruplet second margin
  double temperature = 0.1;  // infonce
  double pos_margin = 0;     // infonce: additive margin on the positive score (AM-softmax / CosFace)
  double neg_weight = 1.0;   // ccl weight of the negative term
  double bpreg = 1.0;        // bpr_max score regularization
  static LossSpec from_config(const Config& c);
};

struct LossInputs {
  torch::Tensor pos;       // [B] anchor vs positive
  torch::Tensor neg;       // [B, k] anchor vs negatives (undefined when k = 0)
  torch::Tensor neg_mask;  // [B, k] bool, true = a valid negative (undefined = all valid)
  torch::Tensor neg_neg;   // [B] first vs second negative (quadruplet)
  torch::Tensor labels;    // [B] regression targets (mse), centred
  int64_t n_items = 0;     // catalogue size (WARP rank estimate)
};

class Loss {
 public:
  virtual ~Loss() = default;
  virtual torch::Tensor forward(const LossInputs& in) = 0;
  virtual bool wants_distance() const { return false; }
  virtual bool needs_metric() const { return false; }  // contrastive: a true distance is required
  virtual int min_negatives() const { return 1; }
  virtual bool uses_labels() const { return false; }
  virtual bool needs_neg_neg() const { return false; }
};

using LossFactory = std::function<std::unique_ptr<Loss>(const LossSpec&)>;
using LossRegistry = Registry<LossFactory>;
std::unique_ptr<Loss> make_loss(const LossSpec& spec);

// Mean over valid entries of x [B, k] (mask undefined = all valid).
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask);

#define SIAMREC_REGISTER_LOSS(NAME, HELP, CLS)                                                                        \
  static const bool siamrec_loss_##CLS =                                                                              \
      ::siamrec::LossRegistry::get().add(                                                                             \
          NAME, HELP,                                                                                                 \
          [](const ::siamrec::LossSpec& s) { return std::unique_ptr<::siamrec::Loss>(std::make_unique<CLS>(s)); }) && \
      ::siamrec::register_name("loss", NAME, HELP)

}  // namespace siamrec
