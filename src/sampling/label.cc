// label: items that share a category (genre) are positives; sampler.pairs_per_item positives are
// drawn per labelled item (seeded); items sharing no category are the negatives.
#include <algorithm>
#include <random>

#include "config/config.h"
#include "util/rng.h"
#include "sampling/builder.h"
#include "util/error.h"

namespace siamrec {

class LabelBuilder : public TupleBuilder {
 public:
  void build(const Dataset& ds, const Interactions&, const Csr&, const Config& c) override {
    genres_ = &ds.item_side.genres;
    n_labels_ = static_cast<int32_t>(ds.item_side.genre_vocab.size());
    if (genres_->empty())
      throw ConfigError(
          fmt::format("sampler.builder 'label' needs item categories, but dataset '{}' has none", ds.name));
    int per = static_cast<int>(c.integer("sampler.pairs_per_item"));
    std::vector<std::vector<int32_t>> by_label(ds.item_side.genre_vocab.size());
    for (int32_t i = 0; i < ds.n_items(); ++i)
      if (!heldout(i))
        for (auto g : (*genres_)[i]) by_label[g].push_back(i);
    std::mt19937_64 rng(mix64(static_cast<uint64_t>(c.integer("train.seed")) ^ 0x1abe1));
    pos_.clear();
    for (int32_t i = 0; i < ds.n_items(); ++i) {
      const auto& g = (*genres_)[i];
      if (g.empty() || heldout(i)) continue;
      for (int k = 0; k < per; ++k) {
        const auto& pool = by_label[g[rng() % g.size()]];
        if (pool.size() < 2) break;
        int32_t j = pool[rng() % pool.size()];
        if (j != i) pos_.push_back({i, j, 1.0f});
      }
    }
  }
  bool anchor_is_user() const override { return false; }
  bool is_positive(int32_t a, int32_t j) const override {
    if (a == j) return true;
    for (auto x : (*genres_)[a])
      if (std::find((*genres_)[j].begin(), (*genres_)[j].end(), x) != (*genres_)[j].end()) return true;
    return false;
  }
  std::string describe() const override { return "label (items sharing a category)"; }
  const std::vector<std::vector<int32_t>>* item_labels() const override { return genres_; }
  int32_t n_labels() const override { return n_labels_; }

 private:
  const std::vector<std::vector<int32_t>>* genres_ = nullptr;
  int32_t n_labels_ = 0;
};

SIAMREC_REGISTER_BUILDER("label", "items sharing a category (genre) are positives", LabelBuilder);
// Pairs: the fused engine builds its examples from these too.
static const bool siamrec_fused_label = register_name("fused:builder", "label", "");

}  // namespace siamrec
