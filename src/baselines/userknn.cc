// UserKNN: score(u, j) = sum over the user's model.neighbors most similar users v (shrunk cosine of
// their item sets) of sim(u, v) * [v interacted with j]. Unseen users: similarities on the fly.
#include <algorithm>

#include "baselines/knn.h"
#include "config/config.h"
#include "models/model.h"
#include "util/io.h"

namespace siamrec {

class UserKnnModel : public Model {
 public:
  std::string type() const override { return "userknn"; }
  void fit(const FitData& d) override {
    n_users_ = d.ds->n_users();
    n_items_ = d.ds->n_items();
    k_ = static_cast<int>(d.cfg->integer("model.neighbors"));
    shrink_ = d.cfg->real("model.shrink");
    hist_ = binary_csr(*d.train_by_user);
    by_item_ = transpose(hist_, n_items_);
    nbr_ = cosine_neighbors(hist_, by_item_, k_, shrink_, d.threads);
  }
  void score(const int32_t* users, int n, float* out) const override {
    for (int r = 0; r < n; ++r) {
      float* o = out + static_cast<size_t>(r) * n_items_;
      std::fill(o, o + n_items_, 0.0f);
      int32_t u = users[r];
      for (int64_t q = nbr_.begin(u); q < nbr_.end(u); ++q) add_user(nbr_.indices[q], nbr_.values[q], o);
    }
  }
  void score_history(const std::vector<int32_t>& items, float* out) const override {
    std::vector<int32_t> row;
    for (auto i : items)
      if (i >= 0 && i < n_items_) row.push_back(i);
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    std::vector<float> sims;
    cosine_row(row, hist_, by_item_, shrink_, sims);
    std::vector<std::pair<float, int32_t>> best;
    for (int32_t v = 0; v < n_users_; ++v)
      if (sims[v] > 0) best.emplace_back(sims[v], v);
    auto cmp = [](auto& x, auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); };
    std::sort(best.begin(), best.end(), cmp);
    if (static_cast<int>(best.size()) > k_) best.resize(k_);
    std::fill(out, out + n_items_, 0.0f);
    for (auto& [s, v] : best) add_user(v, s, out);
  }
  void save(BinWriter& w) const override {
    w.put<int32_t>(k_);
    w.put<double>(shrink_);
    write_csr(w, hist_);
    write_csr(w, nbr_);
  }
  void load(BinReader& r) override {
    k_ = r.get<int32_t>();
    shrink_ = r.get<double>();
    hist_ = read_csr(r, n_users_, n_items_, "userknn history");
    nbr_ = read_csr(r, n_users_, n_users_, "userknn neighbours");
    by_item_ = transpose(hist_, n_items_);
  }

 private:
  void add_user(int32_t v, float s, float* o) const {
    for (int64_t p = hist_.begin(v); p < hist_.end(v); ++p) o[hist_.indices[p]] += s;
  }
  int k_ = 100;
  double shrink_ = 10;
  Csr hist_, by_item_, nbr_;
};

SIAMREC_REGISTER_MODEL("userknn", "user-based kNN, shrunk cosine of item sets (model.neighbors, model.shrink)",
                       UserKnnModel);

}  // namespace siamrec
