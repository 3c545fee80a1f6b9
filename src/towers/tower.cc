#include "towers/tower.h"

#include <torch/nn/functional.h>

#include <cmath>

#include "config/config.h"
#include "util/error.h"

namespace siamrec {

TowerSpec TowerSpec::from_config(const Config& c, const std::string& section, const EntityFeatures* f) {
  TowerSpec s;
  s.key = section;
  s.type = c.str(section + ".type");
  s.dim = c.integer("tower.dim");
  for (auto h : c.ints(section + ".hidden")) s.hidden.push_back(h);
  s.pooling = c.str(section + ".pooling");
  s.dropout = c.real(section + ".dropout");
  s.parts = c.strs(section + ".parts");
  s.combine = c.str(section + ".combine");
  s.init_std = c.real("tower.init_std");
  s.layers = c.integer(section + ".layers");
  s.layer_combine = c.str("tower.layer_combine");
  s.propagation = c.str("tower.propagation");
  s.spmm = c.str("tower.spmm");
  s.propagate = c.str("tower.propagate");
  s.heads = c.integer(section + ".heads");
  s.max_len = c.integer(section + ".max_len");
  s.bidirectional = c.flag(section + ".bidirectional");
  if (section == "user_tower") {
    s.norm = c.str("user_tower.norm"), s.positions = c.str("user_tower.positions");
    s.rnn_kernel = c.str("user_tower.rnn_kernel"), s.rnn_fold = c.flag("user_tower.rnn_fold");
  }
  s.augment = c.flag("tower.augment");
  s.cnn_head = c.str("tower.cnn_head");
  s.cnn_pool = c.str("tower.cnn_pool");
  s.cnn_tta = c.str("tower.cnn_tta");
  s.cnn_convs = c.integer("tower.cnn_convs");
  if (section == "tower") s.precision = c.str("tower.precision");
  for (auto k : c.ints("tower.kernel_sizes")) s.kernel_sizes.push_back(k);
  s.feats = f;
  return s;
}

std::shared_ptr<Tower> make_tower(const TowerSpec& spec) {
  if (spec.precision != "fp32" && spec.type != "image_cnn" && spec.type != "audio_cnn")
    throw ConfigError(
        fmt::format("tower.precision {}: only image_cnn and audio_cnn towers compute in reduced "
                    "precision ({}.type is '{}'); use fp32",
                    spec.precision, spec.key, spec.type));
  return TowerRegistry::get().find(spec.type, spec.key + ".type")(spec);
}

torch::Tensor Tower::forward_bags(const torch::Tensor&, const torch::Tensor&) {
  throw ConfigError("this tower cannot encode an entity from a bag of tokens (fold-in needs a bag or fusion tower)");
}

torch::Tensor Tower::forward_positions(const torch::Tensor&, const torch::Tensor&) {
  throw ConfigError("this tower does not encode sequences position by position (use gru, lstm or transformer)");
}

torch::Tensor Tower::forward_packed(const torch::Tensor&, const std::vector<std::vector<int64_t>>&) {
  throw ConfigError("this tower does not read packed sequences (the pre-LN transformer does)");
}

torch::Tensor Tower::forward_stream(const torch::Tensor&, const torch::Tensor&, std::vector<torch::Tensor>&) {
  throw ConfigError("this tower does not carry states across mini-batches (the gru user tower does)");
}

void Tower::check_packed(const char* tower, int64_t rows, int64_t width,
                         const std::vector<std::vector<int64_t>>& lengths) {
  if (static_cast<int64_t>(lengths.size()) != rows)
    throw Error(fmt::format("{}: {} packed rows but {} segment lists", tower, rows, lengths.size()));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t at = 0;
    for (int64_t n : lengths[r]) {
      if (n < 1 || at + n > width)
        throw Error(fmt::format("{}: packed row {} holds segments beyond its width {}", tower, r, width));
      at += n;
    }
  }
}

void gather_tokens(const std::vector<int64_t>& ptr, const std::vector<int64_t>& tok, const torch::Tensor& ids,
                   torch::Tensor& tokens, torch::Tensor& offsets) {
  auto idc = ids.reshape({-1}).contiguous();
  const int64_t* id = idc.data_ptr<int64_t>();
  int64_t n = idc.numel(), total = 0;
  const int64_t rows = static_cast<int64_t>(ptr.size()) - 1;
  for (int64_t k = 0; k < n; ++k) {
    if (id[k] < 0 || id[k] >= rows) throw Error(fmt::format("tower: entity {} out of range (0..{})", id[k], rows - 1));
    total += ptr[id[k] + 1] - ptr[id[k]];
  }
  tokens = torch::empty({total}, torch::kInt64);
  offsets = torch::empty({n}, torch::kInt64);
  int64_t* t = tokens.data_ptr<int64_t>();
  int64_t* o = offsets.data_ptr<int64_t>();
  int64_t pos = 0;
  for (int64_t k = 0; k < n; ++k) {
    o[k] = pos;
    for (int64_t p = ptr[id[k]]; p < ptr[id[k] + 1]; ++p) t[pos++] = tok[p];
  }
}

void gather_bags(const EntityFeatures& f, const torch::Tensor& ids, torch::Tensor& tokens, torch::Tensor& offsets) {
  gather_tokens(f.bag_ptr, f.bag_tok, ids, tokens, offsets);
}

void gather_content_tokens(const EntityFeatures& f, const torch::Tensor& ids, torch::Tensor& tokens,
                           torch::Tensor& offsets) {
  if (!f.text_ptr.empty())
    gather_tokens(f.text_ptr, f.text_tok, ids, tokens, offsets);
  else
    gather_bags(f, ids, tokens, offsets);
}

int64_t content_vocab(const EntityFeatures& f) { return f.text_ptr.empty() ? f.bag_vocab : f.text_vocab; }

torch::Tensor pool_bags(const torch::Tensor& weight, const torch::Tensor& tokens, const torch::Tensor& offsets,
                        const std::string& pooling, bool sparse) {
  int64_t mode = pooling == "sum" ? 0 : 1;
  // include_last_offset = false: offsets hold each bag's start.
  return std::get<0>(torch::embedding_bag(weight, tokens, offsets, false, mode, sparse, {}, false));
}

}  // namespace siamrec
