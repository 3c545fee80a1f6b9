#include "losses/loss.h"

#include "config/config.h"

namespace siamrec {

LossSpec LossSpec::from_config(const Config& c) {
  LossSpec s;
  s.type = c.str("loss.type");
  s.margin = c.real("loss.margin");
  s.margin2 = c.real("loss.margin2");
  s.temperature = c.real("loss.temperature");
  s.neg_weight = c.real("loss.neg_weight");
  return s;
}

std::unique_ptr<Loss> make_loss(const LossSpec& spec) { return LossRegistry::get().find(spec.type, "loss.type")(spec); }

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  if (!mask.defined()) return x.mean();
  auto m = mask.to(x.dtype());
  return (x * m).sum() / m.sum().clamp_min(1);
}

}  // namespace siamrec
