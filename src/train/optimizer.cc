#include "train/optimizer.h"

#include <torch/autograd.h>
#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>

#include "util/error.h"
#include "util/names.h"

namespace siamrec {

namespace {

template <typename Opt, typename Options>
class TorchOptimizer : public Optimizer {
 public:
  TorchOptimizer(std::vector<torch::Tensor> params, Options o) : opt_(std::move(params), o) {}
  void zero_grad() override { opt_.zero_grad(); }
  void step() override { opt_.step(); }
  void set_lr(double lr) override {
    for (auto& g : opt_.param_groups()) static_cast<Options&>(g.options()).lr(lr);
  }
  void save(torch::serialize::OutputArchive& a) override { opt_.save(a); }
  void load(torch::serialize::InputArchive& a) override { opt_.load(a); }

 private:
  Opt opt_;
};

const bool registered =
    register_name("optimizer", "adam", "Adam (dense)") &&
    register_name("optimizer", "adamw", "AdamW (decoupled weight decay)") &&
    register_name("optimizer", "adagrad", "Adagrad") && register_name("optimizer", "sgd", "plain SGD") &&
    register_name("optimizer", "lazy_adam", "Adam updating only rows of sparse embedding gradients");

}  // namespace

std::vector<std::string> optimizer_names() { return registered_names("optimizer"); }

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<torch::Tensor> p, double lr, double wd,
                                          double beta2) {
  (void)registered;
  if (name == "adam")
    return std::make_unique<TorchOptimizer<torch::optim::Adam, torch::optim::AdamOptions>>(
        std::move(p), torch::optim::AdamOptions(lr).weight_decay(wd).betas({0.9, beta2}));
  if (name == "adamw")
    return std::make_unique<TorchOptimizer<torch::optim::AdamW, torch::optim::AdamWOptions>>(
        std::move(p), torch::optim::AdamWOptions(lr).weight_decay(wd).betas({0.9, beta2}));
  if (name == "adagrad")
    return std::make_unique<TorchOptimizer<torch::optim::Adagrad, torch::optim::AdagradOptions>>(
        std::move(p), torch::optim::AdagradOptions(lr).weight_decay(wd));
  if (name == "sgd")
    return std::make_unique<TorchOptimizer<torch::optim::SGD, torch::optim::SGDOptions>>(
        std::move(p), torch::optim::SGDOptions(lr).weight_decay(wd));
  if (name == "lazy_adam") return std::make_unique<LazyAdam>(std::move(p), lr, wd, 0.9, beta2);
  throw ConfigError(
      fmt::format("config key 'train.optimizer': unknown '{}'; allowed: adam, adamw, adagrad, sgd, lazy_adam", name));
}

LazyAdam::LazyAdam(std::vector<torch::Tensor> params, double lr, double wd, double b1, double b2, double eps)
    : params_(std::move(params)), lr_(lr), wd_(wd), b1_(b1), b2_(b2), eps_(eps) {
  for (auto& p : params_) {
    m_.push_back(torch::zeros_like(p));
    v_.push_back(torch::zeros_like(p));
  }
}

void LazyAdam::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void LazyAdam::step() {
  torch::NoGradGuard ng;
  ++t_;
  double bc1 = 1 - std::pow(b1_, static_cast<double>(t_)), bc2 = 1 - std::pow(b2_, static_cast<double>(t_));
  double step = lr_ * std::sqrt(bc2) / bc1;
  for (size_t k = 0; k < params_.size(); ++k) {
    auto& p = params_[k];
    auto g = p.grad();
    if (!g.defined()) continue;
    if (g.is_sparse()) {
      g = g.coalesce();
      auto idx = g.indices().select(0, 0);
      auto val = g.values();
      if (wd_ > 0) val = val + wd_ * p.index_select(0, idx);
      auto m = m_[k].index_select(0, idx).mul_(b1_).add_(val, 1 - b1_);
      auto v = v_[k].index_select(0, idx).mul_(b2_).addcmul_(val, val, 1 - b2_);
      m_[k].index_copy_(0, idx, m);
      v_[k].index_copy_(0, idx, v);
      p.index_add_(0, idx, -step * m / (v.sqrt() + eps_));
    } else {
      if (wd_ > 0) g = g + wd_ * p;
      m_[k].mul_(b1_).add_(g, 1 - b1_);
      v_[k].mul_(b2_).addcmul_(g, g, 1 - b2_);
      p.add_(-step * m_[k] / (v_[k].sqrt() + eps_));
    }
  }
}

void LazyAdam::save(torch::serialize::OutputArchive& a) {
  a.write("t", torch::tensor(t_));
  for (size_t k = 0; k < m_.size(); ++k) {
    a.write("m" + std::to_string(k), m_[k]);
    a.write("v" + std::to_string(k), v_[k]);
  }
}

void LazyAdam::load(torch::serialize::InputArchive& a) {
  torch::Tensor t;
  a.read("t", t);
  t_ = t.item<int64_t>();
  for (size_t k = 0; k < m_.size(); ++k) {
    a.read("m" + std::to_string(k), m_[k]);
    a.read("v" + std::to_string(k), v_[k]);
  }
}

}  // namespace siamrec
