// Each metric against values computed by hand on tiny fixtures (docs/metrics.md has the formulas).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "eval/beyond.h"
#include "eval/metrics.h"
#include "eval/stats.h"
#include "data/dataset.h"
#include "scoring/topk.h"
#include "util/rng.h"

using namespace siamrec;

TEST(RankingMetrics, HandComputedAtFiveAndTwo) {
  std::vector<char> h = {1, 0, 1, 0, 0};  // hits at ranks 1 and 3; the user has 3 test items
  EXPECT_DOUBLE_EQ(metric::precision(h, 5), 0.4);
  EXPECT_DOUBLE_EQ(metric::recall(h, 3, 5), 2.0 / 3);
  EXPECT_DOUBLE_EQ(metric::hit_rate(h, 5), 1.0);
  // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over min(3,5)=3 ranks = 1 + 1/log2(3) + 1/2
  EXPECT_NEAR(metric::ndcg(h, 3, 5), 1.5 / (1.5 + 1 / std::log2(3.0)), 1e-12);
  EXPECT_NEAR(metric::ndcg(h, 3, 5), 0.7039180, 1e-6);
  EXPECT_DOUBLE_EQ(metric::mrr(h, 5), 1.0);
  EXPECT_NEAR(metric::average_precision(h, 3, 5), (1.0 + 2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR(metric::f1(h, 3, 5), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(metric::precision(h, 2), 0.5);
  EXPECT_DOUBLE_EQ(metric::recall(h, 3, 2), 1.0 / 3);
  EXPECT_NEAR(metric::ndcg(h, 3, 2), 1.0 / (1 + 1 / std::log2(3.0)), 1e-12);
  EXPECT_DOUBLE_EQ(metric::average_precision(h, 3, 2), 0.5);
  EXPECT_NEAR(metric::f1(h, 3, 2), 0.4, 1e-12);
}

TEST(RankingMetrics, FirstHitLateAndNoHits) {
  std::vector<char> h = {0, 0, 0, 1};
  EXPECT_DOUBLE_EQ(metric::mrr(h, 4), 0.25);
  EXPECT_DOUBLE_EQ(metric::mrr(h, 3), 0.0);
  EXPECT_DOUBLE_EQ(metric::hit_rate(h, 3), 0.0);
  EXPECT_NEAR(metric::ndcg(h, 1, 4), 1 / std::log2(5.0), 1e-12);
  std::vector<char> none = {0, 0};
  EXPECT_DOUBLE_EQ(metric::ndcg(none, 2, 2), 0.0);
  EXPECT_DOUBLE_EQ(metric::f1(none, 2, 2), 0.0);
  // A list shorter than K counts as padded with misses.
  std::vector<char> short_list = {1};
  EXPECT_DOUBLE_EQ(metric::precision(short_list, 10), 0.1);
}

TEST(RankingMetrics, AucWithTies) {
  // pos {3, 1} vs neg {2, 1, 0}: 3 beats all (3); 1 ties one (0.5) and beats one (1) -> 4.5 / 6
  EXPECT_DOUBLE_EQ(metric::auc({3, 1}, {2, 1, 0}), 0.75);
  EXPECT_DOUBLE_EQ(metric::auc({1}, {1}), 0.5);
  EXPECT_DOUBLE_EQ(metric::auc({0}, {1, 2}), 0.0);
  // More positives than negatives (the other side is sorted): 2 beats 1, both 1s tie -> 2 / 3
  EXPECT_DOUBLE_EQ(metric::auc({2, 1, 1}, {1}), 2.0 / 3);
}

TEST(RankingMetrics, AucEqualsPairCountEitherSideSmaller) {
  // Scores on a coarse grid (many ties); every (positive, negative) pair counted by hand.
  uint64_t st = 7;
  auto draw = [&] { return static_cast<float>((st = st * 6364136223846793005ULL + 1442695040888963407ULL) >> 60); };
  for (auto [np, nn] : {std::pair{3, 40}, std::pair{40, 3}, std::pair{17, 17}}) {
    std::vector<float> pos(np), neg(nn);
    for (auto& x : pos) x = draw();
    for (auto& x : neg) x = draw();
    double s = 0;
    for (float p : pos)
      for (float n : neg) s += p > n ? 1.0 : p == n ? 0.5 : 0.0;
    EXPECT_EQ(metric::auc(pos, neg), s / (np * nn)) << np << " positives, " << nn << " negatives";
  }
}

// auc_in_row (the evaluator's full-ranking AUC) equals auc() over the row split into the
// positives and the rest, skipping -inf and NaN, with few positives (counting: up to 64) and
// many (sorting), on both sides of that boundary; the same value, not just a close one.
TEST(RankingMetrics, AucInRowEqualsAucOfTheSplitRow) {
  uint64_t st = 11;
  auto next = [&] { return (st = st * 6364136223846793005ULL + 1442695040888963407ULL) >> 33; };
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int n_pos : {0, 1, 5, 64, 65, 200}) {
    std::vector<float> row(500);
    for (auto& x : row) {
      uint64_t r = next() % 20;
      x = r == 0 ? ninf : r == 1 ? std::nanf("") : static_cast<float>(next() % 16);  // many ties
    }
    std::vector<float> pos, neg;
    for (size_t i = 0; i < row.size(); ++i) {  // finite scores at even places are positives, n_pos of them
      if (!(row[i] > ninf)) continue;
      (i % 2 == 0 && static_cast<int>(pos.size()) < n_pos ? pos : neg).push_back(row[i]);
    }
    ASSERT_EQ(static_cast<int>(pos.size()), n_pos);
    EXPECT_EQ(metric::auc_in_row(row.data(), static_cast<int64_t>(row.size()), pos.data(), n_pos),
              metric::auc(pos, neg))
        << n_pos << " positives";
  }
}

TEST(PairAndRatingMetrics, HandComputed) {
  // threshold 0.5: predictions 1,1,0,0 vs labels 1,0,1,0 -> tp 1, fp 1, fn 1, tn 1
  auto m = metric::pair_metrics({0.9f, 0.6f, 0.4f, 0.1f}, {1, 0, 1, 0}, 0.5f);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(m.precision, 0.5);
  EXPECT_DOUBLE_EQ(m.recall, 0.5);
  EXPECT_DOUBLE_EQ(m.f1, 0.5);
  EXPECT_DOUBLE_EQ(m.roc_auc, 0.75);  // pos {0.9, 0.4} vs neg {0.6, 0.1}: 2 + 1 of 4
  EXPECT_NEAR(metric::rmse({1, 2, 3}, {1, 3, 5}), std::sqrt(5.0 / 3), 1e-12);
  EXPECT_NEAR(metric::mae({1, 2, 3}, {1, 3, 5}), 1.0, 1e-12);
}

TEST(BeyondAccuracy, HandComputed) {
  BeyondInputs in;
  in.n_items = 4;
  in.n_train_users = 10;
  in.item_pop = {10, 5, 2, 1};
  in.item_users = {10, 5, 2, 1};
  std::vector<std::vector<int32_t>> genres = {{0, 1}, {1}, {2}, {}};
  in.genres = &genres;
  std::vector<float> emb = {1, 0, 0, 1, 1, 0, 0, 0};
  in.emb = emb.data();
  in.dim = 2;
  in.head_share = 0.25;  // the single most popular item (0) is the head
  auto r = beyond_accuracy({{0, 1}, {0, 2}}, {5, 3}, in);
  EXPECT_DOUBLE_EQ(r.aggregate["coverage"], 0.75);
  EXPECT_DOUBLE_EQ(r.aggregate["gini"], 6.0 / 16);  // exposure sorted [0,1,1,2]
  EXPECT_DOUBLE_EQ(r.aggregate["entropy"], 1.5);
  EXPECT_NEAR(r.aggregate["novelty"], (0.5 + (0 + std::log2(5.0)) / 2) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(r.aggregate["arp"], 6.75);
  EXPECT_DOUBLE_EQ(r.aggregate["long_tail"], 0.5);
  EXPECT_DOUBLE_EQ(r.aggregate["pop_lift"], 0.75);   // (7.5/5 - 1 + 6/3 - 1) / 2
  EXPECT_DOUBLE_EQ(r.aggregate["ild_genre"], 0.75);  // Jaccard distances 0.5 and 1
  EXPECT_DOUBLE_EQ(r.aggregate["ild_emb"], 0.5);     // cosine distances 1 and 0
  EXPECT_DOUBLE_EQ(r.per_user["arp"][0], 7.5);
}

TEST(Stats, PairedTTestMatchesReference) {
  // d = b - a = [0.5, 0.1, 0.9, 0.2, 0.8]: mean 0.5, sd sqrt(0.125), t = 0.5 / sqrt(0.125/5) = 3.1623
  std::vector<double> a = {1, 2, 3, 4, 5}, b = {1.5, 2.1, 3.9, 4.2, 5.8};
  auto t = stats::paired_t_test(b, a);
  EXPECT_NEAR(t.statistic, std::sqrt(10.0), 1e-9);
  EXPECT_NEAR(t.p_value, 0.034109, 1e-5);  // scipy.stats.ttest_rel
  auto same = stats::paired_t_test(a, a);
  EXPECT_DOUBLE_EQ(same.p_value, 1.0);
}

TEST(Stats, WilcoxonExactAndNormal) {
  std::vector<double> a = {1, 2, 3, 4, 5}, b = {1.5, 2.1, 3.9, 4.2, 5.8};
  auto w = stats::wilcoxon_signed_rank(b, a);
  EXPECT_DOUBLE_EQ(w.statistic, 15.0);    // all differences positive
  EXPECT_NEAR(w.p_value, 0.0625, 1e-12);  // exact: 2 / 2^5
  // 40 pairs with ties -> normal approximation with tie and continuity corrections.
  std::vector<double> x, y;
  for (int k = 0; k < 40; ++k) {
    x.push_back(k % 7);
    y.push_back(k % 7 + (k % 3 == 0 ? -1.0 : (k % 3 == 1 ? 2.0 : 1.0)));
  }
  auto n = stats::wilcoxon_signed_rank(y, x);
  EXPECT_EQ(n.n, 40);
  EXPECT_NEAR(n.p_value, 0.00274016, 1e-6);  // scipy.stats.wilcoxon(mode="approx", correction=True)
}

TEST(TopK, TiesBySmallerIdAndMaskedNeverReturned) {
  const float ninf = -INFINITY;
  std::vector<float> s = {1, 3, 3, ninf, 2, 3, NAN};
  int32_t out[5];
  int n = topk_row(s.data(), 7, 5, out);
  ASSERT_EQ(n, 5);
  EXPECT_EQ(std::vector<int32_t>(out, out + 5), (std::vector<int32_t>{1, 2, 5, 4, 0}));
  n = topk_row(s.data(), 7, 2, out);
  EXPECT_EQ(std::vector<int32_t>(out, out + 2), (std::vector<int32_t>{1, 2}));
  std::vector<float> all_masked = {ninf, ninf};
  EXPECT_EQ(topk_row(all_masked.data(), 2, 3, out), 0);
}

TEST(TopK, EqualsAFullSortOnRowsOfEveryLength) {
  // The block-skipping scan against a stable sort by (score desc, index asc), over lengths around
  // the 16-score blocks, with ties (scores on a coarse grid), -inf and NaN scattered in.
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  int checked = 0;
  for (int32_t n : {1, 5, 15, 16, 17, 31, 32, 33, 100, 257, 1000}) {
    for (int k : {1, 3, 10, 40}) {
      for (int rep = 0; rep < 5; ++rep) {
        std::vector<float> s(static_cast<size_t>(n));
        for (auto& v : s) {
          const double r = unif(rng);
          v = r < 0.05 ? -INFINITY : r < 0.08 ? NAN : static_cast<float>(static_cast<int>(unif(rng) * 50) / 7.0);
        }
        if (rep == 0 && n > 20)
          std::sort(s.begin(), s.end(), [](float a, float b) { return a < b; });  // ascending: many refills
        std::vector<int32_t> want;
        for (int32_t i = 0; i < n; ++i)
          if (s[i] > -INFINITY) want.push_back(i);
        std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
        if (static_cast<int>(want.size()) > k) want.resize(k);
        std::vector<int32_t> got(static_cast<size_t>(k));
        got.resize(static_cast<size_t>(topk_row(s.data(), n, k, got.data())));
        ASSERT_EQ(got, want) << "n " << n << " k " << k << " rep " << rep;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 11 * 4 * 5);
}

TEST(TopK, RankUsersOnTwoThreadsEqualsOneThread) {
  // 2,000 users in 64-user blocks: 32 blocks handed out to the threads (in the TSan build on
  // std::threads, so TSan checks the region), with exclusions; every list equals the serial one.
  const int32_t n_users = 2000, n_items = 300;
  std::vector<int32_t> users(n_users);
  Interactions seen;
  for (int32_t u = 0; u < n_users; ++u) {
    users[u] = (u * 7919) % n_users;  // not in index order
    for (int32_t j = 0; j < 5; ++j) seen.user.push_back(u), seen.item.push_back((u * 13 + j * 31) % n_items);
  }
  Csr ex = Csr::from_interactions(seen, n_users, false);
  auto scorer = [&](const int32_t* us, int n, float* out) {
    for (int r = 0; r < n; ++r)
      for (int32_t i = 0; i < n_items; ++i)
        out[static_cast<size_t>(r) * n_items + i] =
            static_cast<float>(mix64(static_cast<uint64_t>(us[r]) * 1000003u + i) % 1000);
  };
  std::vector<std::vector<int32_t>> lists[2];
  for (int threads : {1, 2}) {
    auto& l = lists[threads - 1];
    l.assign(n_users, {});
    RankOptions o;
    o.k = 10, o.block = 64, o.threads = threads, o.exclude = &ex;
    rank_users(users, n_items, scorer, o,
               [&](int64_t idx, int32_t, const float*, const int32_t* top, int nt) { l[idx].assign(top, top + nt); });
  }
  EXPECT_EQ(lists[0], lists[1]);
  for (int32_t r = 0; r < n_users; ++r) {
    ASSERT_EQ(lists[1][r].size(), 10u);
    for (int32_t i : lists[1][r])  // an excluded item never appears
      for (int64_t p = ex.begin(users[r]); p < ex.end(users[r]); ++p) ASSERT_NE(i, ex.indices[p]);
  }
}

TEST(TopK, GemmScoresMatchDirectComputation) {
  // 3 users, 4 items, dim 2
  std::vector<float> U = {1, 0, 0, 2, 1, 1}, I = {1, 1, 2, 0, 0, 1, -1, 3};
  std::vector<float> norms = {2, 4, 1, 10};
  int32_t users[] = {2, 0};
  std::vector<float> out(8);
  gemm_scores(U.data(), users, 2, I.data(), 4, 2, Similarity::Dot, nullptr, out.data());
  EXPECT_EQ(out, (std::vector<float>{2, 2, 1, 2, 1, 2, 0, -1}));
  gemm_scores(U.data(), users, 2, I.data(), 4, 2, Similarity::NegSqEuclidean, norms.data(), out.data());
  // user (1,1) vs item (1,1): 0; vs (2,0): 2; vs (0,1): 1; vs (-1,3): 8
  EXPECT_FLOAT_EQ(out[0], 0);
  EXPECT_FLOAT_EQ(out[1], -2);
  EXPECT_FLOAT_EQ(out[2], -1);
  EXPECT_FLOAT_EQ(out[3], -8);
  EXPECT_FLOAT_EQ(out[7], -13);  // user (1,0) vs (-1,3): 4 + 9
}
