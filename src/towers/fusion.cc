// `fusion`: several towers over the same entities (e.g. id + bag of genres, id + text_cnn), combined
// by concat or sum, then an MLP. The ID embedding stays beside the content, so warm items keep
// what their interactions taught; cold entities (no training interactions) get a zero id part, and
// modality dropout (tower.dropout) zeroes the id part during training (or, without an id part, the
// non-first parts) so that content alone is a trained input (cold start, fold-in).
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

class FusionTower : public Tower {
 public:
  explicit FusionTower(const TowerSpec& s) : dim_(s.dim), combine_(s.combine), dropout_(s.dropout), feats_(s.feats) {
    if (s.parts.size() < 2)
      throw ConfigError(fmt::format("{}.parts: fusion needs at least two tower types, e.g. [id, bag]", s.key));
    if (combine_ != "concat" && combine_ != "sum")
      throw ConfigError(fmt::format("{}.combine '{}' is not allowed; allowed: concat, sum", s.key, combine_));
    int64_t in = 0;
    for (size_t k = 0; k < s.parts.size(); ++k) {
      if (s.parts[k] == "fusion") throw ConfigError(fmt::format("{}.parts: fusion cannot contain fusion", s.key));
      TowerSpec ps = s;
      ps.type = s.parts[k];
      ps.hidden.clear();
      parts_.push_back(register_module("part" + std::to_string(k), make_tower(ps)));
      if (s.parts[k] == "id" && id_part_ < 0) id_part_ = static_cast<int>(k);
      in = combine_ == "concat" ? in + s.dim : s.dim;
    }
    for (auto h : s.hidden) {
      head_->push_back(torch::nn::Linear(in, h));
      head_->push_back(torch::nn::ReLU());
      in = h;
    }
    if (combine_ == "concat" || !s.hidden.empty()) head_->push_back(torch::nn::Linear(in, s.dim));
    register_module("head", head_);
    // The warm flags are fixed before the network is built: one [n, 1] float column.
    if (id_part_ >= 0 && feats_ && !feats_->warm.empty())
      warm_ = torch::tensor(std::vector<float>(feats_->warm.begin(), feats_->warm.end())).unsqueeze(1);
  }
  torch::Tensor forward(const torch::Tensor& ids) override {
    std::vector<torch::Tensor> outs;
    for (size_t k = 0; k < parts_.size(); ++k) {
      auto o = parts_[k]->forward(ids);
      const bool is_id = static_cast<int>(k) == id_part_;
      if (is_id && warm_.defined())
        o = o * warm_.index_select(0, ids.reshape({-1}));  // cold entities: untrained id part
      const bool droppable = id_part_ >= 0 ? is_id : k > 0;
      if (droppable && is_training() && dropout_ > 0) {
        auto keep = (torch::rand({o.size(0), 1}) >= dropout_).to(o.dtype());
        o = o * keep;
      }
      outs.push_back(o);
    }
    return combine(outs);
  }
  bool supports_bags() const override {
    for (auto& p : parts_)
      if (p->supports_bags()) return true;
    return false;
  }
  torch::Tensor forward_bags(const torch::Tensor& tokens, const torch::Tensor& offsets) override {
    // Parts that need an id (unknown for an unseen entity) contribute zeros, as under modality dropout.
    std::vector<torch::Tensor> outs;
    for (auto& p : parts_)
      outs.push_back(p->supports_bags() ? p->forward_bags(tokens, offsets) : torch::zeros({offsets.size(0), dim_}));
    return combine(outs);
  }
  int64_t dim() const override { return dim_; }
  void begin_epoch() override {
    for (auto& p : parts_) p->begin_epoch();
  }
  void set_sparse(bool s) override {
    for (auto& p : parts_) p->set_sparse(s);
  }
  std::vector<torch::Tensor> tables() override {
    std::vector<torch::Tensor> t;
    for (auto& p : parts_)
      for (auto& x : p->tables()) t.push_back(x);
    return t;
  }

 private:
  torch::Tensor warm_;  // feats_->warm as floats (undefined: all warm)
  torch::Tensor combine(const std::vector<torch::Tensor>& outs) {
    torch::Tensor x = combine_ == "concat" ? torch::cat(outs, 1) : outs[0];
    if (combine_ == "sum")
      for (size_t k = 1; k < outs.size(); ++k) x = x + outs[k];
    return head_->size() ? head_->forward(x) : x;
  }
  int64_t dim_;
  std::string combine_;
  double dropout_;
  const EntityFeatures* feats_;
  int id_part_ = -1;
  std::vector<std::shared_ptr<Tower>> parts_;
  torch::nn::Sequential head_;
};

SIAMREC_REGISTER_TOWER("fusion", "towers of tower.parts combined (concat or sum) then an MLP; modality dropout",
                       FusionTower);

}  // namespace siamrec
