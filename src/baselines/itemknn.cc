// ItemKNN: score(u, j) = sum over the user's items i of sim(i, j), where sim is the shrunk cosine
// of item co-occurrence and each item keeps its model.neighbors most similar items.
#include "baselines/knn.h"
#include "config/config.h"
#include "models/model.h"
#include "util/io.h"

namespace siamrec {

class ItemKnnModel : public Model {
 public:
  std::string type() const override { return "itemknn"; }
  void fit(const FitData& d) override {
    n_users_ = d.ds->n_users();
    n_items_ = d.ds->n_items();
    hist_ = binary_csr(*d.train_by_user);
    Csr by_item = transpose(hist_, n_items_);      // item -> users
    Csr by_item_t = transpose(by_item, n_users_);  // == hist_
    nbr_ = cosine_neighbors(by_item, by_item_t, static_cast<int>(d.cfg->integer("model.neighbors")),
                            d.cfg->real("model.shrink"), d.threads);
  }
  void score(const int32_t* users, int n, float* out) const override {
    for (int r = 0; r < n; ++r) {
      float* o = out + static_cast<size_t>(r) * n_items_;
      std::fill(o, o + n_items_, 0.0f);
      int32_t u = users[r];
      for (int64_t p = hist_.begin(u); p < hist_.end(u); ++p) add_item(hist_.indices[p], o);
    }
  }
  void score_history(const std::vector<int32_t>& items, float* out) const override {
    std::fill(out, out + n_items_, 0.0f);
    for (auto i : items)
      if (i >= 0 && i < n_items_) add_item(i, out);
  }
  bool similar_items(int32_t item, int k, std::vector<std::pair<int32_t, float>>& out) const override {
    out.clear();
    for (int64_t q = nbr_.begin(item); q < nbr_.end(item) && static_cast<int>(out.size()) < k; ++q)
      out.emplace_back(nbr_.indices[q], nbr_.values[q]);
    return true;
  }
  void save(BinWriter& w) const override {
    write_csr(w, hist_);
    write_csr(w, nbr_);
  }
  void load(BinReader& r) override {
    hist_ = read_csr(r, n_users_, n_items_, "itemknn history");
    nbr_ = read_csr(r, n_items_, n_items_, "itemknn neighbours");
  }

 private:
  void add_item(int32_t i, float* o) const {
    for (int64_t q = nbr_.begin(i); q < nbr_.end(i); ++q) o[nbr_.indices[q]] += nbr_.values[q];
  }
  Csr hist_, nbr_;
};

SIAMREC_REGISTER_MODEL("itemknn", "item-based kNN, shrunk cosine of co-occurrence (model.neighbors, model.shrink)",
                       ItemKnnModel);

}  // namespace siamrec
