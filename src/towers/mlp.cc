// `mlp`: a multilayer perceptron over the entity's dense features (multi-hot genres, user
// demographics, or any numeric side data).
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/activation.h>

#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

class MlpTower : public Tower {
 public:
  explicit MlpTower(const TowerSpec& s) : dim_(s.dim) {
    if (s.feats->dense_dim <= 0)
      throw ConfigError(
          fmt::format("{}.type 'mlp': the entities have no dense features ({})", s.key, s.feats->description));
    dense_ = register_buffer("dense", torch::from_blob(const_cast<float*>(s.feats->dense.data()),
                                                       {s.feats->n, s.feats->dense_dim}, torch::kFloat32)
                                          .clone());
    int64_t in = s.feats->dense_dim;
    for (auto h : s.hidden) {
      net_->push_back(torch::nn::Linear(in, h));
      net_->push_back(torch::nn::ReLU());
      if (s.dropout > 0) net_->push_back(torch::nn::Dropout(s.dropout));
      in = h;
    }
    net_->push_back(torch::nn::Linear(in, s.dim));
    register_module("net", net_);
  }
  torch::Tensor forward(const torch::Tensor& ids) override { return net_->forward(dense_.index_select(0, ids)); }
  int64_t dim() const override { return dim_; }

 private:
  int64_t dim_;
  torch::Tensor dense_;
  torch::nn::Sequential net_;
};

SIAMREC_REGISTER_TOWER("mlp", "MLP over dense side features (tower.hidden sizes, ReLU)", MlpTower);

}  // namespace siamrec
