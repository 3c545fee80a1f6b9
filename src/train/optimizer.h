// Optimizers by name: adam, adamw, adagrad, sgd (LibTorch) and lazy_adam, an Adam that updates
// only the embedding rows present in a sparse gradient (LibTorch 1.13 has no SparseAdam).
#pragma once
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace siamrec {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void zero_grad() = 0;
  virtual void step() = 0;
  virtual void set_lr(double lr) = 0;
  virtual bool wants_sparse() const { return false; }
  virtual void save(torch::serialize::OutputArchive& a) = 0;
  virtual void load(torch::serialize::InputArchive& a) = 0;
};

// beta2: the Adam family's squared-gradient decay (the others ignore it).
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, std::vector<torch::Tensor> params, double lr,
                                          double weight_decay, double beta2 = 0.999);
std::vector<std::string> optimizer_names();

// Lazy Adam: for a sparse gradient only the rows it touches get their moments and weights updated
// (bias correction uses the global step); dense gradients get ordinary Adam.
class LazyAdam : public Optimizer {
 public:
  LazyAdam(std::vector<torch::Tensor> params, double lr, double wd, double b1 = 0.9, double b2 = 0.999,
           double eps = 1e-8);
  void zero_grad() override;
  void step() override;
  void set_lr(double lr) override { lr_ = lr; }
  bool wants_sparse() const override { return true; }
  void save(torch::serialize::OutputArchive& a) override;
  void load(torch::serialize::InputArchive& a) override;

 private:
  std::vector<torch::Tensor> params_, m_, v_;
  double lr_, wd_, b1_, b2_, eps_;
  int64_t t_ = 0;
};

}  // namespace siamrec
