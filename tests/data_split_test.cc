// Filters and splits: sizes, disjointness, determinism by seed, temporal order, fixed splits.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data/registry.h"
#include "data/split.h"
#include "testutil.h"
#include "util/error.h"

using namespace siamrec;

// A small synthetic log: user u has u+3 interactions with increasing timestamps; ratings 1..5.
static Dataset fixture() {
  RawLog raw;
  int t = 0;
  for (int u = 0; u < 20; ++u)
    for (int k = 0; k < u + 3; ++k) {
      raw.users.push_back(std::to_string(u));
      raw.items.push_back(std::to_string((u * 7 + k * 3) % 40));
      raw.rating.push_back(static_cast<float>(1 + (u + k) % 5));
      raw.time.push_back(1000 + (t++ * 37) % 997);
    }
  Dataset ds = dataset_from_raw(raw, "fixture");
  return ds;
}

static std::multiset<std::pair<int32_t, int32_t>> pairs(const Interactions& x) {
  std::multiset<std::pair<int32_t, int32_t>> s;
  for (size_t r = 0; r < x.size(); ++r) s.insert({x.user[r], x.item[r]});
  return s;
}

TEST(Filters, RatingThresholdDedupAndKCore) {
  Dataset ds = fixture();
  FilterSpec f;
  f.min_rating = 4;
  Interactions x = apply_filters(ds.log, ds.n_users(), ds.n_items(), f);
  for (float r : x.rating) EXPECT_GE(r, 4.0f);
  EXPECT_LT(x.size(), ds.log.size());
  // Dedup keeps one row per pair: the latest.
  Interactions dup = ds.log;
  dup.append_row(ds.log, 0);
  dup.time.back() = 999999;
  FilterSpec d;
  d.dedup = true;
  Interactions y = apply_filters(dup, ds.n_users(), ds.n_items(), d);
  EXPECT_EQ(y.size(), ds.log.size());  // the fixture has no duplicate pairs: only the added copy goes
  bool found_latest = false;
  for (size_t r = 0; r < y.size(); ++r) found_latest |= y.time[r] == 999999;
  EXPECT_TRUE(found_latest);
  // k-core: every remaining user and item has >= k rows.
  FilterSpec k;
  k.user_core = 10, k.item_core = 5;
  Interactions z = apply_filters(ds.log, ds.n_users(), ds.n_items(), k);
  std::map<int32_t, int> du, di;
  for (size_t r = 0; r < z.size(); ++r) du[z.user[r]]++, di[z.item[r]]++;
  for (auto& [u, n] : du) EXPECT_GE(n, 10);
  for (auto& [i, n] : di) EXPECT_GE(n, 5);
  EXPECT_GT(z.size(), 0u);
}

TEST(Splits, RatioSizesDisjointAndDeterministic) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "ratio";
  s.seed = 7;
  SplitData a = make_split(ds, {}, s), b = make_split(ds, {}, s);
  EXPECT_EQ(a.train.size() + a.valid.size() + a.test.size(), ds.log.size());
  EXPECT_EQ(a.train.item, b.train.item);
  EXPECT_EQ(a.test.item, b.test.item);
  auto all = pairs(a.train);
  for (auto& p : pairs(a.valid)) all.insert(p);
  for (auto& p : pairs(a.test)) all.insert(p);
  EXPECT_EQ(all, pairs(ds.log));
  // Per user: test share ~ 10%, at least one training interaction.
  std::map<int32_t, int> tr;
  for (auto u : a.train.user) tr[u]++;
  EXPECT_EQ(tr.size(), 20u);
  s.seed = 8;
  SplitData c = make_split(ds, {}, s);
  EXPECT_NE(c.test.item, a.test.item);
  EXPECT_NE(a.protocol.find("seed 7"), std::string::npos);
}

TEST(Splits, RatioByTimeKeepsTemporalOrderPerUser) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "ratio";
  s.order = "time";
  SplitData a = make_split(ds, {}, s);
  std::map<int32_t, int64_t> last_train, first_test;
  for (size_t r = 0; r < a.train.size(); ++r) last_train[a.train.user[r]] = std::max(last_train[a.train.user[r]], a.train.time[r]);
  for (size_t r = 0; r < a.test.size(); ++r) {
    auto u = a.test.user[r];
    first_test[u] = first_test.count(u) ? std::min(first_test[u], a.test.time[r]) : a.test.time[r];
  }
  for (auto& [u, t] : first_test) EXPECT_LE(last_train[u], t) << "user " << u;
}

TEST(Splits, LeaveOneOutLatestWithValidation) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "loo";
  s.order = "time";
  s.valid = true;
  SplitData a = make_split(ds, {}, s);
  EXPECT_EQ(a.test.size(), 20u);
  EXPECT_EQ(a.valid.size(), 20u);
  std::map<int32_t, int64_t> maxt;
  for (size_t r = 0; r < a.train.size(); ++r) maxt[a.train.user[r]] = std::max(maxt[a.train.user[r]], a.train.time[r]);
  for (size_t r = 0; r < a.valid.size(); ++r) EXPECT_GE(a.valid.time[r], maxt[a.valid.user[r]]);
  std::map<int32_t, int64_t> vt;
  for (size_t r = 0; r < a.valid.size(); ++r) vt[a.valid.user[r]] = a.valid.time[r];
  for (size_t r = 0; r < a.test.size(); ++r) EXPECT_GE(a.test.time[r], vt[a.test.user[r]]);
}

TEST(Splits, GlobalTemporalCut) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "temporal";
  s.ratios = {0.7, 0.1, 0.2};
  SplitData a = make_split(ds, {}, s);
  int64_t max_train = *std::max_element(a.train.time.begin(), a.train.time.end());
  int64_t min_valid = *std::min_element(a.valid.time.begin(), a.valid.time.end());
  int64_t max_valid = *std::max_element(a.valid.time.begin(), a.valid.time.end());
  int64_t min_test = *std::min_element(a.test.time.begin(), a.test.time.end());
  EXPECT_LE(max_train, min_valid);
  EXPECT_LE(max_valid, min_test);
  EXPECT_NEAR(static_cast<double>(a.train.size()) / ds.log.size(), 0.7, 0.01);
}

TEST(Splits, BadSpecsAreRejectedWithAllowedValues) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "kfold";
  try {
    make_split(ds, {}, s);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("allowed: ratio, loo, temporal, fixed"), std::string::npos);
  }
  s.type = "ratio";
  s.ratios = {0.5, 0.5, 0.5};
  EXPECT_THROW(make_split(ds, {}, s), ConfigError);
  Dataset nt = ds;
  nt.log.time.clear();
  SplitSpec t;
  t.type = "loo";
  t.order = "time";
  EXPECT_THROW(make_split(nt, {}, t), ConfigError);
}

TEST(Splits, Ml100kFixedUaSplit) {
  SIAMREC_NEED_DATA(dir);
  LoadOptions o;
  o.data_dir_flag = dir;
  o.use_cache = false;
  Dataset ds = load_dataset("ml-100k", o);
  SplitSpec s;
  s.type = "fixed";
  s.name = "ua";
  SplitData a = make_split(ds, {}, s);
  EXPECT_EQ(a.train.size(), 90570u);
  EXPECT_EQ(a.test.size(), 9430u);
  std::map<int32_t, int> per_user;
  for (auto u : a.test.user) per_user[u]++;
  EXPECT_EQ(per_user.size(), 943u);
  for (auto& [u, n] : per_user) EXPECT_EQ(n, 10);
  auto tr = pairs(a.train);
  for (auto& p : pairs(a.test)) EXPECT_EQ(tr.count(p), 0u);
  s.name = "u9";
  EXPECT_THROW(make_split(ds, {}, s), ConfigError);
  // u1..u5 are 80/20.
  s.name = "u3";
  SplitData u3 = make_split(ds, {}, s);
  EXPECT_EQ(u3.train.size(), 80000u);
  EXPECT_EQ(u3.test.size(), 20000u);
}
