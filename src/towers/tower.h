// A tower ("forward structure") encodes entities into vectors. Every branch of a Siamese network
// uses the same tower object (shared weights); pseudo-Siamese models use one per side.
// Torch is included here, so only engine files include this header.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "towers/features.h"
#include "util/names.h"
#include "util/registry.h"

namespace siamrec {

class Config;

struct TowerSpec {
  std::string type;  // registered name
  std::string key;   // config section ("tower" or "user_tower"), for messages
  int64_t dim = 64;
  std::vector<int64_t> hidden;   // MLP hidden sizes
  std::string pooling = "mean";  // bag: mean | sum
  double dropout = 0;
  std::vector<std::string> parts;        // fusion: sub-tower types
  std::string combine = "concat";        // fusion: concat | sum
  double init_std = 0;                   // 0: 1/sqrt(dim)
  int64_t layers = 3;                    // gcn: propagation layers; sequence encoders: stacked layers
  std::string layer_combine = "mean";    // gcn: mean | weights (learned softmax weights)
  std::string propagation = "lightgcn";  // gcn: lightgcn (linear) | gcn (per-layer weights + nonlinearity)
  std::string spmm = "csr";              // gcn: csr (siamrec's kernel) | csr_general (its general loop) | torch
  std::string propagate = "step";        // gcn: step (exact, every step) | epoch (neighbour layers cached per epoch)
  int64_t heads = 2;                     // transformer: attention heads
  int64_t max_len = 50;                  // sequence encoders: tokens (or history items) read, the latest kept
  bool bidirectional = false;            // gru/lstm over content tokens; user transformer: BERT4Rec (Cloze)
  std::string norm = "pre";              // user transformer: pre (SASRec) | post LayerNorm blocks
  std::string positions = "latest";      // user transformer: latest (counted back from the latest item) | oldest
  std::string rnn_kernel = "own";        // user gru: own (towers/gru_kernel.cc) | torch (LibTorch's GRU)
  bool rnn_fold = true;                  // user gru, own kernel: first layer folded into the item table
  bool augment = false;                  // image_cnn / audio_cnn: training-time augmentation
  std::string cnn_head = "mean";         // image_cnn / audio_cnn: mean (global average) | flatten
  std::string cnn_pool = "after";        // image_cnn / audio_cnn: max-pool after ReLU | before batch norm
  std::string precision = "fp32";        // image_cnn / audio_cnn: fp32 | bf16 (autocast)
  int64_t cnn_convs = 1;                 // image_cnn / audio_cnn: convolutions per block
  std::string cnn_tta = "none";          // image_cnn: none | flip (eval: mean over the image and its mirror)
  std::vector<int64_t> kernel_sizes;     // text_cnn: convolution widths
  // Sequence encoders over a user's history read item embeddings through the shared item tower
  // (Siamese: one item tower for every branch) and run causally; nullptr = own token table.
  class Tower* item_tower = nullptr;
  const EntityFeatures* feats = nullptr;
  static TowerSpec from_config(const Config& c, const std::string& section, const EntityFeatures* f);
};

class Tower : public torch::nn::Module {
 public:
  // ids: int64 [n] -> float [n, dim]
  virtual torch::Tensor forward(const torch::Tensor& ids) = 0;
  // Entities described only by a bag of tokens (fold-in of unseen users/items); tokens int64 [T],
  // offsets int64 [n] (start of each bag). Throws when the tower cannot.
  virtual bool supports_bags() const { return false; }
  virtual torch::Tensor forward_bags(const torch::Tensor& tokens, const torch::Tensor& offsets);
  virtual int64_t dim() const = 0;
  // Sequence encoders over histories: causal states of every position. seq int64 [B, L] right-
  // padded, lengths int64 [B] (>= 1) -> float [B, L, dim]; state t has read items 0..t only.
  virtual bool sequential() const { return false; }
  // BERT4Rec (a bidirectional transformer over histories): every position reads the whole
  // history, so training is Cloze: items replaced by kMaskItem are predicted from their states,
  // and a user is the state of a kMaskItem appended to her latest max_len - 1 items.
  virtual bool cloze() const { return false; }
  static constexpr int64_t kMaskItem = -1;
  virtual torch::Tensor forward_positions(const torch::Tensor& seq, const torch::Tensor& lengths);
  // The same states with several histories packed back to back into one row (seq [R, W], right-
  // padded; lengths[r] = row r's segments in order, summing to <= W): each segment is read alone,
  // as forward_positions would read it, but short histories no longer pad a row each. Towers that
  // can (the pre-LN transformer: a block-diagonal causal mask) say so in packs_positions().
  virtual bool packs_positions() const { return false; }
  // When forward(ids) is table.index_select(0, ids) (the id tower with dense gradients, gcn): that
  // table, with its autograd history, so scores against many of its rows can be read in place
  // (comparators/gathered.h). Undefined otherwise.
  virtual torch::Tensor gather_table() { return {}; }
  virtual torch::Tensor forward_packed(const torch::Tensor& seq, const std::vector<std::vector<int64_t>>& lengths);
  // GRU4Rec's session-parallel mini-batches: rows that continue across calls. seq int64 [R, K],
  // reset uint8 [R, K] (non-zero where a row's next history starts: state 0 before it); state:
  // the rows' carried states (tower-defined, e.g. one [R, H] per layer; empty = zeros) in, their
  // states after step K out, detached. -> states of every position [R, K, dim].
  virtual bool streams() const { return false; }
  virtual torch::Tensor forward_stream(const torch::Tensor& seq, const torch::Tensor& reset,
                                       std::vector<torch::Tensor>& state);
  // forward_packed's layout check: one segment list per row, each segment >= 1, all within the width.
  static void check_packed(const char* tower, int64_t rows, int64_t width,
                           const std::vector<std::vector<int64_t>>& lengths);
  // Called by the trainer at the start of every epoch (towers that cache per epoch refresh).
  virtual void begin_epoch() {}
  // Embedding tables (for unit-ball clipping and lazy optimizers).
  virtual std::vector<torch::Tensor> tables() { return {}; }
  // Sparse gradients for embedding tables (lazy optimizers).
  virtual void set_sparse(bool s) { sparse_ = s; }

 protected:
  bool sparse_ = false;
};

using TowerFactory = std::function<std::shared_ptr<Tower>(const TowerSpec&)>;
using TowerRegistry = Registry<TowerFactory>;
std::shared_ptr<Tower> make_tower(const TowerSpec& spec);

// Bags of the given entities as (tokens, offsets) tensors.
void gather_bags(const EntityFeatures& f, const torch::Tensor& ids, torch::Tensor& tokens, torch::Tensor& offsets);
// Content towers' tokens: the entity's text when it has one (tower.text), else its bag; and the
// size of that token space.
void gather_content_tokens(const EntityFeatures& f, const torch::Tensor& ids, torch::Tensor& tokens,
                           torch::Tensor& offsets);
int64_t content_vocab(const EntityFeatures& f);
// Any CSR token lists (bags or text) of the given entities as (tokens, offsets) tensors.
void gather_tokens(const std::vector<int64_t>& ptr, const std::vector<int64_t>& tok, const torch::Tensor& ids,
                   torch::Tensor& tokens, torch::Tensor& offsets);
// Embedding-bag pooling of token embeddings (mean or sum); empty bags give zero vectors.
torch::Tensor pool_bags(const torch::Tensor& weight, const torch::Tensor& tokens, const torch::Tensor& offsets,
                        const std::string& pooling, bool sparse = false);

#define SIAMREC_REGISTER_TOWER(NAME, HELP, CLS)                                          \
  static const bool siamrec_tower_##CLS =                                                \
      ::siamrec::TowerRegistry::get().add(                                               \
          NAME, HELP,                                                                    \
          [](const ::siamrec::TowerSpec& s) {                                            \
            return std::static_pointer_cast<::siamrec::Tower>(std::make_shared<CLS>(s)); \
          }) &&                                                                          \
      ::siamrec::register_name("tower", NAME, HELP)

}  // namespace siamrec
