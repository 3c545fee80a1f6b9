// Pop: every user gets the items with the most training interactions (ties: smaller original id,
// which is the smaller dense id).
#include <algorithm>

#include "data/dataset.h"
#include "models/model.h"
#include "util/io.h"

namespace siamrec {

class PopModel : public Model {
 public:
  std::string type() const override { return "pop"; }
  void fit(const FitData& d) override {
    n_users_ = d.ds->n_users();
    n_items_ = d.ds->n_items();
    pop_.assign(n_items_, 0.0f);
    for (auto i : d.train->item) pop_[i] += 1.0f;
  }
  void score(const int32_t* users, int n, float* out) const override {
    for (int r = 0; r < n; ++r) std::copy(pop_.begin(), pop_.end(), out + static_cast<size_t>(r) * n_items_);
  }
  void score_history(const std::vector<int32_t>&, float* out) const override {
    std::copy(pop_.begin(), pop_.end(), out);
  }
  void save(BinWriter& w) const override { w.put_vec(pop_); }
  void load(BinReader& r) override {
    r.get_vec(pop_);
    if (static_cast<int32_t>(pop_.size()) != n_items_) throw Error("model file is malformed (pop vector size)");
  }

 private:
  std::vector<float> pop_;
};

SIAMREC_REGISTER_MODEL("pop", "most popular items in training (ties: smaller original item id)", PopModel);

}  // namespace siamrec
