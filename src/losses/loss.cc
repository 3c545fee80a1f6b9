#include "losses/loss.h"

#include <map>
#include <stdexcept>

#include "losses/fused_form.h"

#include "config/config.h"

namespace siamrec {

LossSpec LossSpec::from_config(const Config& c) {
  LossSpec s;
  s.type = c.str("loss.type");
  s.margin = c.real("loss.margin");
  s.margin2 = c.real("loss.margin2");
  s.temperature = c.real("loss.temperature");
  s.pos_margin = c.real("loss.pos_margin");
  s.neg_weight = c.real("loss.neg_weight");
  s.bpreg = c.real("loss.bpreg");
  return s;
}

bool register_fused_loss(const std::string& name, FusedLossForm f) {
  if (!f.coefs) throw std::logic_error("fused form of loss '" + name + "' without a function");
  return Registry<FusedLossForm>::get().add(name, "", f) && register_name("fused:loss", name, "");
}

const FusedLossForm* fused_loss_form(const std::string& name) { return Registry<FusedLossForm>::get().get(name); }

std::unique_ptr<Loss> make_loss(const LossSpec& spec) { return LossRegistry::get().find(spec.type, "loss.type")(spec); }

torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask) {
  if (!mask.defined()) return x.mean();
  auto m = mask.to(x.dtype());
  return (x * m).sum() / m.sum().clamp_min(1);
}

}  // namespace siamrec
