// sequence (SASRec / GRU4Rec): each user's training items in time order are cut into windows of
// user_tower.max_len + 1 items (the latest window first, then earlier ones), and every position of
// a window is a training example at once: the causal user state after items 0..t anchors item t+1.
#include <algorithm>

#include "config/config.h"
#include "sampling/builder.h"
#include "util/error.h"

namespace siamrec {

class SequenceBuilder : public TupleBuilder {
 public:
  void build(const Dataset& ds, const Interactions& train, const Csr& by_user, const Config& c) override {
    by_user_ = &by_user;
    seq_ = sequences_by_user(train, ds.n_users());
    const int64_t L = c.integer("user_tower.max_len");
    pos_.clear();
    for (int32_t u = 0; u < seq_.rows(); ++u) {
      // Windows end at the last item and step back by L (consecutive windows share one item, so
      // every transition is trained once).
      for (int64_t end = seq_.end(u); end - seq_.begin(u) >= 2; end -= L)
        pos_.push_back({u, static_cast<int32_t>(end - seq_.begin(u)), 1.0f});
    }
  }
  bool anchor_is_user() const override { return true; }
  bool is_positive(int32_t u, int32_t j) const override { return by_user_->contains(u, j); }
  const Csr* sequences() const override { return &seq_; }
  std::string describe() const override {
    return "sequence (every position of a user's time-ordered history predicts the next item)";
  }

 private:
  const Csr* by_user_ = nullptr;
  Csr seq_;
};

SIAMREC_REGISTER_BUILDER("sequence",
                         "every position of a user's time-ordered history anchors the next item (SASRec/GRU4Rec; needs "
                         "a gru/lstm/transformer user_tower)",
                         SequenceBuilder);

}  // namespace siamrec
