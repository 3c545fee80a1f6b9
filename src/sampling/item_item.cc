// item_item: two items consumed by the same user within sampler.window positions of each other
// (in time order when timestamps exist) form a positive pair, in both directions.
#include <algorithm>
#include <numeric>

#include "config/config.h"
#include "sampling/builder.h"

namespace siamrec {

class ItemItemBuilder : public TupleBuilder {
 public:
  void build(const Dataset& ds, const Interactions& train, const Csr& by_user, const Config& c) override {
    int window = static_cast<int>(c.integer("sampler.window"));
    pos_.clear();
    std::vector<std::vector<int32_t>> nb(ds.n_items());
    for (int32_t u = 0; u < by_user.rows(); ++u) {
      std::vector<int64_t> idx(by_user.degree(u));
      std::iota(idx.begin(), idx.end(), by_user.begin(u));
      if (!by_user.times.empty())
        std::stable_sort(idx.begin(), idx.end(),
                         [&](int64_t a, int64_t b) { return by_user.times[a] < by_user.times[b]; });
      for (size_t t = 0; t < idx.size(); ++t)
        for (size_t d = 1; d <= static_cast<size_t>(window) && t + d < idx.size(); ++d) {
          int32_t a = by_user.indices[idx[t]], b = by_user.indices[idx[t + d]];
          if (a == b) continue;
          pos_.push_back({a, b, 1.0f});
          pos_.push_back({b, a, 1.0f});
          nb[a].push_back(b);
          nb[b].push_back(a);
        }
    }
    nbr_.indptr.assign(ds.n_items() + 1, 0);
    for (int32_t i = 0; i < ds.n_items(); ++i) {
      auto& v = nb[i];
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
      nbr_.indices.insert(nbr_.indices.end(), v.begin(), v.end());
      nbr_.indptr[i + 1] = static_cast<int64_t>(nbr_.indices.size());
    }
  }
  bool anchor_is_user() const override { return false; }
  bool is_positive(int32_t a, int32_t j) const override { return a == j || nbr_.contains(a, j); }
  std::string describe() const override { return "item_item (items co-consumed within a window)"; }

 private:
  Csr nbr_;
};

SIAMREC_REGISTER_BUILDER("item_item", "items co-consumed by a user within sampler.window positions", ItemItemBuilder);
// Pairs: the fused engine builds its examples from these too.
static const bool siamrec_fused_item_item = register_name("fused:builder", "item_item", "");

}  // namespace siamrec
