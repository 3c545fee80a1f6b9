// `id`: one embedding row per entity (the CML / matrix-factorization tower).
#include <cmath>

#include "towers/tower.h"

namespace siamrec {

class IdTower : public Tower {
 public:
  explicit IdTower(const TowerSpec& s) : dim_(s.dim) {
    double std = s.init_std > 0 ? s.init_std : 1.0 / std::sqrt(static_cast<double>(s.dim));
    weight_ = register_parameter("weight", torch::randn({s.feats->n, s.dim}) * std);
  }
  torch::Tensor forward(const torch::Tensor& ids) override {
    return torch::embedding(weight_, ids, -1, false, sparse_);
  }
  int64_t dim() const override { return dim_; }
  std::vector<torch::Tensor> tables() override { return {weight_}; }
  torch::Tensor gather_table() override { return sparse_ ? torch::Tensor() : weight_; }

 private:
  int64_t dim_;
  torch::Tensor weight_;
};

SIAMREC_REGISTER_TOWER("id", "one embedding row per entity", IdTower);
// The fused engine trains id towers too (train/fused.h).
static const bool siamrec_fused_id = register_name("fused:tower", "id", "");

}  // namespace siamrec
