// Filters and splits: sizes, disjointness, determinism by seed, temporal order, fixed splits.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "data/registry.h"
#include "data/split.h"
#include "testutil.h"
#include "util/error.h"

using namespace siamrec;

// A small synthetic log: user u has u+3 interactions with timestamps; ratings 1..5.
// 20 users, 250 interactions (3 + 4 + ... + 22), 40 items, no repeated (user, item) pair, and
// distinct timestamps (1000 + 37 t mod 997 over the row number t: scrambled, not increasing). Ids
// are integers, so user "u" is dense id u and item "i" dense id i.
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

static std::map<int32_t, int> rows_per_user(const Interactions& x) {
  std::map<int32_t, int> n;
  for (auto u : x.user) n[u]++;
  return n;
}

// The per-user ratio split of the fixture (ratios 0.8/0.1/0.1): user u has n = u+3 rows, of which
// llround(0.1 n) test and as many validation rows: 0 for n = 3, 4; 1 for n = 5..14; 2 for n = 15..22.
static int expected_held_out(int32_t u) { return u < 2 ? 0 : u < 12 ? 1 : 2; }
static void expect_ratio_sizes(const SplitData& a) {
  EXPECT_EQ(a.train.size(), 198u);  // 250 - 26 - 26
  EXPECT_EQ(a.valid.size(), 26u);   // 10 users x 1 + 8 users x 2
  EXPECT_EQ(a.test.size(), 26u);
  auto tr = rows_per_user(a.train), va = rows_per_user(a.valid), te = rows_per_user(a.test);
  EXPECT_EQ(tr.size(), 20u);
  EXPECT_EQ(te.size(), 18u);  // users 0 and 1 are too short to hold anything out
  EXPECT_EQ(va.size(), 18u);
  for (int32_t u = 0; u < 20; ++u) {
    int h = expected_held_out(u);
    EXPECT_EQ(te.count(u) ? te[u] : 0, h) << "user " << u;
    EXPECT_EQ(va.count(u) ? va[u] : 0, h) << "user " << u;
    EXPECT_EQ(tr.count(u) ? tr[u] : 0, u + 3 - 2 * h) << "user " << u;
  }
}

TEST(Filters, RatingThresholdDedupAndKCore) {
  Dataset ds = fixture();
  FilterSpec f;
  f.min_rating = 4;
  Interactions x = apply_filters(ds.log, ds.n_users(), ds.n_items(), f);
  for (float r : x.rating) EXPECT_GE(r, 4.0f);
  // Rating 1 + (u+k) % 5 >= 4 for two residues of five: 100 of the 250 rows.
  EXPECT_EQ(x.size(), 100u);
  EXPECT_EQ(x.rating.size(), 100u);
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
  // The (10, 5)-core of the fixture (unique whatever the peeling order; found by peeling the
  // fixture's formula): users 7, 11, 15, 18, 19 with items 9, 12, ..., 36, every pair present.
  // Dense ids equal the original integers here (users 0..19 and items 0..39 all occur).
  EXPECT_EQ(z.size(), 50u);
  std::set<int32_t> core_users, core_items;
  for (auto& kv : du) core_users.insert(kv.first);
  for (auto& kv : di) core_items.insert(kv.first);
  EXPECT_EQ(core_users, (std::set<int32_t>{7, 11, 15, 18, 19}));
  EXPECT_EQ(core_items, (std::set<int32_t>{9, 12, 15, 18, 21, 24, 27, 30, 33, 36}));
}

TEST(Splits, RatioSizesDisjointAndDeterministic) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "ratio";
  s.seed = 7;
  SplitData a = make_split(ds, {}, s), b = make_split(ds, {}, s);
  ASSERT_EQ(ds.log.size(), 250u);
  EXPECT_EQ(a.train.size() + a.valid.size() + a.test.size(), ds.log.size());
  expect_ratio_sizes(a);
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
  // Non-empty parts with the per-user sizes of the ratio split (the order changes which rows, not
  // how many), so the order check below cannot pass on an empty test set.
  expect_ratio_sizes(a);
  std::map<int32_t, int64_t> last_train, first_test;
  for (size_t r = 0; r < a.train.size(); ++r)
    last_train[a.train.user[r]] = std::max(last_train[a.train.user[r]], a.train.time[r]);
  for (size_t r = 0; r < a.test.size(); ++r) {
    auto u = a.test.user[r];
    first_test[u] = first_test.count(u) ? std::min(first_test[u], a.test.time[r]) : a.test.time[r];
  }
  EXPECT_EQ(first_test.size(), 18u);
  for (auto& [u, t] : first_test) {
    ASSERT_TRUE(last_train.count(u)) << "user " << u << " has test rows but no training rows";
    EXPECT_LE(last_train[u], t) << "user " << u;
  }
  // The validation rows sit between them too.
  for (size_t r = 0; r < a.valid.size(); ++r) {
    auto u = a.valid.user[r];
    EXPECT_LE(last_train[u], a.valid.time[r]) << "user " << u;
    EXPECT_LE(a.valid.time[r], first_test[u]) << "user " << u;
  }
}

TEST(Splits, LeaveOneOutLatestWithValidation) {
  Dataset ds = fixture();
  SplitSpec s;
  s.type = "loo";
  s.order = "time";
  s.valid = true;
  SplitData a = make_split(ds, {}, s);
  // Every user has >= 3 rows: one test and one validation row each, the rest trains.
  EXPECT_EQ(a.test.size(), 20u);
  EXPECT_EQ(a.valid.size(), 20u);
  EXPECT_EQ(a.train.size(), 210u);
  EXPECT_EQ(rows_per_user(a.test).size(), 20u);
  EXPECT_EQ(rows_per_user(a.valid).size(), 20u);
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
  // 250 rows: llround(175.0) train, llround(25.0) validation, the remaining 50 test. Asserted
  // first: the min/max below need non-empty parts.
  ASSERT_EQ(a.train.size(), 175u);
  ASSERT_EQ(a.valid.size(), 25u);
  ASSERT_EQ(a.test.size(), 50u);
  int64_t max_train = *std::max_element(a.train.time.begin(), a.train.time.end());
  int64_t min_valid = *std::min_element(a.valid.time.begin(), a.valid.time.end());
  int64_t max_valid = *std::max_element(a.valid.time.begin(), a.valid.time.end());
  int64_t min_test = *std::min_element(a.test.time.begin(), a.test.time.end());
  // Timestamps are distinct, so the cuts are strict.
  EXPECT_LT(max_train, min_valid);
  EXPECT_LT(max_valid, min_test);
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
