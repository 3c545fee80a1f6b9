// `image_cnn` and `audio_cnn`: conv-batchnorm-ReLU-maxpool blocks (tower.hidden = channels per
// block, default 32,64) over an entity's raw content tensor (EntityFeatures::content: an image
// C x H x W, or a log-mel spectrogram 1 x frames x mels), then global average pooling (or, with
// tower.cnn_head flatten, the last block's whole map) and a linear map to tower.dim.
// tower.cnn_pool before: conv-maxpool-batchnorm-ReLU blocks (batch norm and ReLU on a quarter of
// the values).
// tower.augment (training only): image_cnn pads by 2 and crops at a random offset and flips
// horizontally at random; audio_cnn shifts in time (random crop) only.
// tower.cnn_convs n: n conv-BN-ReLU layers per block (VGG), the block's last one pooling.
// tower.dropout (training only): dropout on what the final linear layer reads.
// tower.precision bf16: the blocks and the final linear layer run under CPU autocast to bfloat16
// (oneDNN's bf16 convolutions); parameters, batch-norm statistics and the output stay float32.
// tower.cnn_tta flip (image_cnn, outside training): the output is the mean of the outputs for the
// image and its horizontal mirror, so the embedding is mirror-invariant.
#include <ATen/autocast_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/padding.h>

#include "towers/augment.h"
#include "towers/tower.h"
#include "util/error.h"

namespace siamrec {

namespace {
// The scope of `torch.autocast("cpu", dtype=torch.bfloat16)`: the autocast state is thread-local,
// restored on exit; the cache of weights cast for this forward is dropped with the outermost scope.
class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool on) : on_(on) {
    if (!on_) return;
    prev_on_ = at::autocast::is_cpu_enabled(), prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~Bf16Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(prev_on_);
    at::autocast::set_autocast_cpu_dtype(prev_dtype_);
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_, prev_on_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};
}  // namespace

torch::Tensor crop_flip_augment(const torch::Tensor& x, bool image, int64_t p) {
  namespace F = torch::nn::functional;
  using torch::indexing::Slice;
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  auto padded = image ? F::pad(x, F::PadFuncOptions({p, p, p, p})) : F::pad(x, F::PadFuncOptions({0, 0, p, p}));
  auto off = torch::randint(0, 2 * p + 1, {B, 2}, torch::kInt64);
  auto flip = torch::rand({B});
  // One gather instead of a slice per image: rows dy..dy+H, columns dx..dx+W (reversed when
  // flipped) of each padded image. The advanced indices put (B, H, W) first, channels last.
  auto rows = off.select(1, 0).unsqueeze(1) + torch::arange(H, torch::kInt64).unsqueeze(0);
  auto cols = torch::arange(W, torch::kInt64).unsqueeze(0).expand({B, W});
  if (image) {
    cols = off.select(1, 1).unsqueeze(1) + cols;
    cols = torch::where((flip < 0.5f).unsqueeze(1), cols.flip({1}), cols);
  }
  auto b = torch::arange(B, torch::kInt64).view({B, 1, 1});
  return padded.index({b, Slice(), rows.view({B, H, 1}), cols.reshape({B, 1, W})}).permute({0, 3, 1, 2});
}

class CnnTower : public Tower {
 public:
  CnnTower(const TowerSpec& s, bool image)
      : dim_(s.dim),
        image_(image),
        augment_(s.augment),
        flatten_(s.cnn_head == "flatten"),
        pool_first_(s.cnn_pool == "before"),
        tta_flip_(s.cnn_tta == "flip"),
        bf16_(s.precision == "bf16"),
        dropout_(s.dropout),
        feats_(s.feats) {
    if (tta_flip_ && !image_)
      throw ConfigError(
          fmt::format("{}.cnn_tta flip mirrors images; '{}' reads spectrograms (use none)", s.key, s.type));
    const auto& shape = feats_->content_shape;
    if (shape.size() != 3)
      throw ConfigError(
          fmt::format("{}.type '{}' reads raw item content (images or spectrograms), but the dataset has none "
                      "(e.g. data.dataset fashion-mnist, or an image/audio table)",
                      s.key, s.type));
    C_ = shape[0], H_ = shape[1], W_ = shape[2];
    std::vector<int64_t> widths = s.hidden.empty() ? std::vector<int64_t>{32, 64} : s.hidden;
    int64_t in = C_, h = H_, w = W_;
    for (size_t k = 0; k < widths.size(); ++k) {
      for (int64_t j = 0; j < s.cnn_convs; ++j) {  // block k: conv{k}, bn{k}, then conv{k}_{j}, bn{k}_{j}
        auto n = std::to_string(k) + (j ? "_" + std::to_string(j) : "");
        conv_.push_back(register_module(
            "conv" + n, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, widths[k], 3).padding(1).bias(false))));
        bn_.push_back(register_module("bn" + n, torch::nn::BatchNorm2d(widths[k])));
        last_in_block_.push_back(j + 1 == s.cnn_convs);
        {  // Channels-last weights select oneDNN's NHWC path on CPU (see forward). A copy with explicit
           // strides: contiguous(ChannelsLast) leaves a one-input-channel weight's strides ambiguous.
          torch::NoGradGuard ng;
          auto& wt = conv_.back()->weight;
          wt.set_data(wt.to(wt.options(), false, true, at::MemoryFormat::ChannelsLast));
        }
        in = widths[k];
      }
      if (h >= 2 && w >= 2) h /= 2, w /= 2;
    }
    out_ = register_module("out", torch::nn::Linear(flatten_ ? in * h * w : in, s.dim));
  }
  int64_t dim() const override { return dim_; }

  torch::Tensor forward(const torch::Tensor& ids) override {
    auto idc = ids.reshape({-1}).contiguous();
    const int64_t B = idc.numel(), per = C_ * H_ * W_;
    const int64_t* id = idc.data_ptr<int64_t>();
    auto x = torch::empty({B, C_, H_, W_});
    float* dst = x.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      if (id[b] < 0 || id[b] >= feats_->n) throw Error(fmt::format("cnn tower: entity {} out of range", id[b]));
      std::copy_n(feats_->content.data() + id[b] * per, per, dst + b * per);
    }
    if (is_training() && augment_) x = crop_flip_augment(x, image_, 2);
    if (!is_training() && tta_flip_) {  // one forward over the batch and its mirror, then the mean
      auto y = blocks(torch::cat({x, x.flip({3})}));
      return 0.5 * (y.slice(0, 0, B) + y.slice(0, B));
    }
    return blocks(x);
  }

 private:
  torch::Tensor blocks(torch::Tensor x) {
    Bf16Autocast autocast(bf16_);
    // Channels-last (NHWC) activations: the same arithmetic, about a third less time per training
    // step on this CPU build (oneDNN convolutions; pooling and batch norm over contiguous channels).
    x = x.to(x.options(), false, false, at::MemoryFormat::ChannelsLast);
    for (size_t k = 0; k < conv_.size(); ++k) {
      x = conv_[k]->forward(x);
      const bool pool = last_in_block_[k] && x.size(2) >= 2 && x.size(3) >= 2;
      if (pool && pool_first_) x = torch::max_pool2d(x, 2);
      x = torch::relu(bn_[k]->forward(x));
      if (pool && !pool_first_) x = torch::max_pool2d(x, 2);
    }
    auto h = flatten_ ? x.flatten(1) : x.mean({2, 3});
    if (dropout_ > 0 && is_training()) h = torch::dropout(h, dropout_, true);
    auto y = out_->forward(h);
    return bf16_ ? y.to(torch::kFloat32) : y;
  }

  int64_t dim_, C_ = 1, H_ = 1, W_ = 1;
  bool image_, augment_, flatten_, pool_first_, tta_flip_, bf16_;
  double dropout_ = 0;
  const EntityFeatures* feats_;
  std::vector<torch::nn::Conv2d> conv_;
  std::vector<torch::nn::BatchNorm2d> bn_;
  std::vector<bool> last_in_block_;
  torch::nn::Linear out_{nullptr};
};

class ImageCnnTower : public CnnTower {
 public:
  explicit ImageCnnTower(const TowerSpec& s) : CnnTower(s, true) {}
};
class AudioCnnTower : public CnnTower {
 public:
  explicit AudioCnnTower(const TowerSpec& s) : CnnTower(s, false) {}
};

SIAMREC_REGISTER_TOWER(
    "image_cnn",
    "CNN over item images (conv-BN-ReLU-pool blocks, tower.hidden channels; optional crop/flip augmentation)",
    ImageCnnTower);
SIAMREC_REGISTER_TOWER("audio_cnn", "CNN over log-mel spectrograms (frames x mels) of item audio", AudioCnnTower);

}  // namespace siamrec
