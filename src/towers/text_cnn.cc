// `text_cnn` (Kim 2014): token embeddings -> 1-D convolutions of several widths
// (tower.kernel_sizes, tower.hidden[0] filters each, default tower.dim) -> ReLU -> max-pool over
// positions -> linear map to tower.dim. Reads the item text (tower.text) or, without text, the bag
// tokens; the first tower.max_len tokens, padded to the widest kernel. Empty texts give zeros.
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <cmath>

#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

class TextCnnTower : public Tower {
 public:
  explicit TextCnnTower(const TowerSpec& s) : dim_(s.dim), max_len_(s.max_len), feats_(s.feats) {
    vocab_ = content_vocab(*feats_);
    if (vocab_ <= 0)
      throw ConfigError(fmt::format("{}.type 'text_cnn' reads item text, but the items have none", s.key));
    widths_ = s.kernel_sizes.empty() ? std::vector<int64_t>{2, 3, 4} : s.kernel_sizes;
    const int64_t F = s.hidden.empty() ? s.dim : s.hidden[0];
    double std = s.init_std > 0 ? s.init_std : 1.0 / std::sqrt(static_cast<double>(s.dim));
    tokens_ = register_parameter("tokens", torch::randn({vocab_, s.dim}) * std);
    for (size_t k = 0; k < widths_.size(); ++k)
      conv_.push_back(register_module("conv" + std::to_string(k),
                                      torch::nn::Conv1d(torch::nn::Conv1dOptions(s.dim, F, widths_[k]))));
    out_ = register_module("out", torch::nn::Linear(F * static_cast<int64_t>(widths_.size()), s.dim));
  }
  int64_t dim() const override { return dim_; }
  std::vector<torch::Tensor> tables() override { return {tokens_}; }

  torch::Tensor forward(const torch::Tensor& ids) override {
    torch::Tensor tok, off;
    gather_content_tokens(*feats_, ids, tok, off);
    auto tk = tok.contiguous(), of = off.contiguous();
    const int64_t* t = tk.data_ptr<int64_t>();
    const int64_t* o = of.data_ptr<int64_t>();
    const int64_t B = of.numel(), T = tk.numel();
    const int64_t wmax = *std::max_element(widths_.begin(), widths_.end());
    // Padding token 0 (<pad>) embeds like any token; positions past the text are masked out of
    // the max-pool below, and texts shorter than a kernel keep their one window.
    PaddedBags pb = pad_bags(t, o, B, T, max_len_, wmax, /*latest=*/false);
    const int64_t L = pb.L;
    std::vector<int64_t>& len = pb.len;
    std::vector<float> nonempty(B, 0.0f);
    for (int64_t b = 0; b < B; ++b) nonempty[b] = len[b] > 0;
    auto S = torch::from_blob(pb.seq.data(), {B, L}, torch::kInt64).clone();
    auto x = torch::embedding(tokens_, S).transpose(1, 2);  // [B, d, L]
    auto lens = torch::from_blob(len.data(), {B}, torch::kInt64).clone();
    std::vector<torch::Tensor> pooled;
    for (size_t k = 0; k < conv_.size(); ++k) {
      auto h = torch::relu(conv_[k]->forward(x));  // [B, F, L - w + 1]
      const int64_t P = h.size(2);
      // Windows starting at p cover tokens p..p+w-1: valid when p + w <= len (at least window 0).
      auto valid = torch::arange(P, torch::kInt64).unsqueeze(0) <= (lens - widths_[k]).clamp_min(0).unsqueeze(1);
      h = h.masked_fill(valid.logical_not().unsqueeze(1), 0.0);  // ReLU outputs are >= 0
      pooled.push_back(std::get<0>(h.max(2)));
    }
    auto out = out_->forward(torch::cat(pooled, 1));
    return out * torch::from_blob(nonempty.data(), {B, 1}, torch::kFloat32).clone();
  }

 private:
  int64_t dim_, max_len_, vocab_ = 0;
  const EntityFeatures* feats_;
  std::vector<int64_t> widths_;
  torch::Tensor tokens_;
  std::vector<torch::nn::Conv1d> conv_;
  torch::nn::Linear out_{nullptr};
};

SIAMREC_REGISTER_TOWER("text_cnn",
                       "CNN over item text: token embeddings, 1-D convolutions of several widths, max-pool (Kim 2014)",
                       TextCnnTower);

}  // namespace siamrec
