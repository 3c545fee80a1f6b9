// user_item (CML): the user anchors each of her training items.
#include "sampling/builder.h"

namespace siamrec {

class UserItemBuilder : public TupleBuilder {
 public:
  void build(const Dataset&, const Interactions& train, const Csr& by_user, const Config&) override {
    by_user_ = &by_user;
    pos_.clear();
    pos_.reserve(train.size());
    for (size_t r = 0; r < train.size(); ++r)
      pos_.push_back({train.user[r], train.item[r], train.has_rating() ? train.rating[r] : 1.0f});
  }
  bool anchor_is_user() const override { return true; }
  bool is_positive(int32_t u, int32_t j) const override { return by_user_->contains(u, j); }
  std::string describe() const override { return "user_item (user anchors her items)"; }

 private:
  const Csr* by_user_ = nullptr;
};

SIAMREC_REGISTER_BUILDER("user_item", "the user anchors each of her training items (CML)", UserItemBuilder);

}  // namespace siamrec
