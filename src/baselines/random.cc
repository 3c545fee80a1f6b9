// Random: a seeded, reproducible uniform score per (user, item).
#include "data/dataset.h"
#include "util/rng.h"
#include "models/model.h"
#include "config/config.h"
#include "util/io.h"

namespace siamrec {

class RandomModel : public Model {
 public:
  std::string type() const override { return "random"; }
  void fit(const FitData& d) override {
    n_users_ = d.ds->n_users();
    n_items_ = d.ds->n_items();
    seed_ = static_cast<uint64_t>(d.cfg->integer("model.seed"));
  }
  void score(const int32_t* users, int n, float* out) const override {
    for (int r = 0; r < n; ++r) row(static_cast<uint64_t>(users[r]), out + static_cast<size_t>(r) * n_items_);
  }
  void score_history(const std::vector<int32_t>& items, float* out) const override {
    uint64_t h = 0x5eed;
    for (auto i : items) h = mix64(h ^ static_cast<uint64_t>(i));
    row(h | (1ull << 63), out);
  }
  void save(BinWriter& w) const override { w.put(seed_); }
  void load(BinReader& r) override { seed_ = r.get<uint64_t>(); }

 private:
  void row(uint64_t key, float* out) const {
    uint64_t base = mix64(seed_ ^ mix64(key));
    for (int32_t i = 0; i < n_items_; ++i)
      out[i] = static_cast<float>(mix64(base + static_cast<uint64_t>(i)) >> 40) / static_cast<float>(1 << 24);
  }
  uint64_t seed_ = 0;
};

SIAMREC_REGISTER_MODEL("random", "uniform random scores, seeded by model.seed", RandomModel);

}  // namespace siamrec
