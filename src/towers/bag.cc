// `bag`: mean (or sum) of token embeddings. A user is the bag of her items, an item the bag of its
// own id and/or genres/tags (tower.bag): unseen users and items fold in without retraining.
#include <cmath>

#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

class BagTower : public Tower {
 public:
  explicit BagTower(const TowerSpec& s) : dim_(s.dim), pooling_(s.pooling), feats_(s.feats) {
    if (feats_->bag_vocab <= 0)
      throw ConfigError(fmt::format("{}.type 'bag': the entities have no bag tokens ({})", s.key, feats_->description));
    double std = s.init_std > 0 ? s.init_std : 1.0 / std::sqrt(static_cast<double>(s.dim));
    weight_ = register_parameter("weight", torch::randn({feats_->bag_vocab, s.dim}) * std);
  }
  torch::Tensor forward(const torch::Tensor& ids) override {
    torch::Tensor tokens, offsets;
    gather_bags(*feats_, ids, tokens, offsets);
    return pool_bags(weight_, tokens, offsets, pooling_, sparse_);
  }
  bool supports_bags() const override { return true; }
  torch::Tensor forward_bags(const torch::Tensor& tokens, const torch::Tensor& offsets) override {
    return pool_bags(weight_, tokens, offsets, pooling_, sparse_);
  }
  int64_t dim() const override { return dim_; }
  std::vector<torch::Tensor> tables() override { return {weight_}; }

 private:
  int64_t dim_;
  std::string pooling_;
  const EntityFeatures* feats_;
  torch::Tensor weight_;
};

SIAMREC_REGISTER_TOWER("bag", "mean/sum of token embeddings (history items, own id, genres, tags)", BagTower);
// The fused engine trains bag towers too (train/fused.h).
static const bool siamrec_fused_bag = register_name("fused:tower", "bag", "");

}  // namespace siamrec
