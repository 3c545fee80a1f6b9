// The Siamese network: tower(s) + comparator, over the entity spaces built from the dataset.
// - shared (true Siamese, the default): one tower encodes every branch; for user-item models users
//   and items live in one joint entity space (users after items), so a `bag` tower encodes a user
//   as the bag of her items through the very table that encodes items;
// - shared: false (pseudo-Siamese): a separate user tower (user_tower.*).
// - item-anchored builders (item_item, label) encode users, when recommending, as the centroid of
//   their history items.
#pragma once
#include <torch/nn/module.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <memory>
#include <string>

#include "comparators/comparator.h"
#include "towers/tower.h"

namespace siamrec {

class Config;
struct Dataset;

// Entities encoded per forward pass outside training (embedding tables, validation, the trainer's
// health check): a CNN tower over 6,000 Fashion-MNIST images took about 4x as long in blocks of
// 1,024 as in blocks of 256 (measured in docs/towers.md).
inline constexpr int64_t kEmbedBlock = 256;

struct NetLayout {
  bool user_anchor = true;  // builder anchors users (user_item) or items
  bool shared = true;
  int64_t n_users = 0, n_items = 0;
  EntityFeatures items;  // item space (or the joint space when shared && user_anchor)
  EntityFeatures users;  // user space (two-tower only)
  // The text towers' vocabulary (Tokenizer::save; empty without text). Not part of save(): a
  // Siamese model keeps it with its side data (format 7) for updates.
  std::string tokenizer;
  void save(class BinWriter& w) const;
  void load(class BinReader& r);
};

// Builds the entity features the configured towers need from dataset side data and the user
// histories (train_by_user).
// `ordered` (each user's items in time order) feeds sequence user towers (gru, lstm, transformer).
// `tokenizer` (a Tokenizer::save blob): encode item text with this vocabulary instead of fitting
// one (updates keep the token ids the model was trained on).
NetLayout build_layout(const Config& c, const Dataset& ds, const struct Csr& train_by_user, bool user_anchor,
                       const struct Csr* ordered = nullptr, const std::string* tokenizer = nullptr);
// Is this tower type a sequence encoder (reads a user's history in time order)?
bool is_sequence_tower(const std::string& type);
// User bags = the given histories (time-ordered for sequence towers).
void set_user_bags(EntityFeatures& users, const struct Csr& histories);

class SiameseNet : public torch::nn::Module {
 public:
  SiameseNet(const Config& c, const NetLayout& layout);
  torch::Tensor items(const torch::Tensor& ids);  // [n] -> [n, d]
  // The table items(ids) gathers rows from, when the item tower is such a gather (Tower::gather_table).
  torch::Tensor item_table() { return item_tower_->gather_table(); }
  // Users by id. For item-anchored models users are the centroid of their history items.
  torch::Tensor users(const torch::Tensor& ids);
  // A user known only by a history of items (fold-in); empty histories give a zero vector.
  torch::Tensor user_from_history(const std::vector<int32_t>& items);
  // Anchors of the builder: users or items.
  torch::Tensor anchors(const torch::Tensor& ids) { return layout_.user_anchor ? users(ids) : items(ids); }
  std::shared_ptr<Comparator> comparator() { return comp_; }
  // Sequence models: is the user tower a causal encoder over her history, and its states at every
  // position of right-padded item sequences [B, L] -> [B, L, d].
  bool sequential() const { return user_tower_ && user_tower_->sequential(); }
  torch::Tensor user_positions(const torch::Tensor& seq, const torch::Tensor& lengths) {
    return user_tower_->forward_positions(seq, lengths);
  }
  // The same with histories packed back to back into rows (Tower::forward_packed), when the user
  // tower can read them so.
  bool packs_positions() const { return user_tower_ && user_tower_->packs_positions(); }
  torch::Tensor user_packed(const torch::Tensor& seq, const std::vector<std::vector<int64_t>>& lengths) {
    return user_tower_->forward_packed(seq, lengths);
  }
  // BERT4Rec: the user tower reads histories bidirectionally and trains by Cloze (Tower::cloze).
  bool cloze() const { return user_tower_ && user_tower_->cloze(); }
  // Session-parallel mini-batches (Tower::forward_stream), when the user tower carries states.
  bool streams() const { return user_tower_ && user_tower_->streams(); }
  torch::Tensor user_stream(const torch::Tensor& seq, const torch::Tensor& reset, std::vector<torch::Tensor>& state) {
    return user_tower_->forward_stream(seq, reset, state);
  }
  // Replaces the users' histories the user tower reads (e.g. train + validation items at test time).
  void set_user_histories(const struct Csr& histories) { set_user_bags(layout_.users, histories); }
  std::vector<torch::Tensor> tables();
  void set_sparse(bool s);
  bool sparse() const { return sparse_; }  // tables give sparse gradients
  void begin_epoch();
  const NetLayout& layout() const { return layout_; }
  void set_history(const struct Csr* h) { history_ = h; }
  int64_t dim() const { return dim_; }

 private:
  NetLayout layout_;
  int64_t dim_;
  std::shared_ptr<Tower> item_tower_, user_tower_;
  std::shared_ptr<Comparator> comp_;
  const struct Csr* history_ = nullptr;  // user -> train items (centroids)
  bool sparse_ = false;
};

// Parameters and buffers as (name, shape, float data) records in our binary container.
void write_state(class BinWriter& w, torch::nn::Module& m);
void read_state(class BinReader& r, torch::nn::Module& m, const std::string& what);
// Copies of every parameter (best-weights snapshots).
std::vector<torch::Tensor> snapshot(torch::nn::Module& m);
void restore(torch::nn::Module& m, const std::vector<torch::Tensor>& s);

}  // namespace siamrec
