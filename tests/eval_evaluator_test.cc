// The evaluator on a tiny fixture (hand-computed), and the acceptance numbers on real data.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/config.h"
#include "data/candidates.h"
#include "data/registry.h"
#include "eval/evaluator.h"
#include "eval/metric.h"
#include "eval/validation.h"
#include "tasks/pipeline.h"
#include "testutil.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

using namespace siamrec;

// 2 users x 5 items. Scores: user 0 ranks items 4,3,2,1,0; user 1 ranks 0,1,2,3,4 (by value).
static void fixture_scores(const int32_t* users, int n, float* out) {
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < 5; ++i) out[r * 5 + i] = users[r] == 0 ? static_cast<float>(i) : static_cast<float>(5 - i);
}

struct Fixture {
  Interactions train, test;
  Csr train_csr;
  EvalContext ctx;
  Fixture() {
    // train: u0 {4}, u1 {0}; test: u0 {3, 1}, u1 {4}
    train.user = {0, 1}, train.item = {4, 0};
    test.user = {0, 0, 1}, test.item = {3, 1, 4};
    train_csr = Csr::from_interactions(train, 2, false);
    ctx.n_users = 2, ctx.n_items = 5;
    ctx.train = &train_csr;
    ctx.test = &test;
    ctx.data_protocol = "fixture";
  }
};

TEST(Evaluator, FullRankingByHand) {
  Fixture f;
  EvalSpec s;
  s.ks = {2};
  EvalResult r = evaluate_ranking(fixture_scores, f.ctx, s);
  // u0: candidates {0,1,2,3} ranked 3,2,1,0 -> hits [1,0,1,...]; u1: {1,2,3,4} ranked 1,2,3,4 -> 4 is last
  ASSERT_EQ(r.users.size(), 2u);
  EXPECT_DOUBLE_EQ(r.get("precision@2"), (0.5 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(r.get("recall@2"), (0.5 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(r.get("hr@2"), 0.5);
  EXPECT_DOUBLE_EQ(r.get("mrr@2"), 0.5);
  EXPECT_NEAR(r.get("ndcg@2"), (1.0 / (1 + 1 / std::log2(3.0))) / 2, 1e-12);
  // AUC u0: pos {3,1} vs neg {2,0}: 3>2,3>0,1>0 -> 3/4; u1: pos {1} (item 4) vs neg {4,3,2} -> 0
  EXPECT_DOUBLE_EQ(r.get("auc"), 0.375);
  EXPECT_DOUBLE_EQ(r.get("gauc"), (0.75 * 2 + 0 * 1) / 3);
  EXPECT_DOUBLE_EQ(r.get("coverage@2"), 3.0 / 5);  // lists {3,2} and {1,2}
  EXPECT_NE(r.protocol.find("full ranking over all 5 items"), std::string::npos);
  EXPECT_NE(r.protocol.find("exclusions: train items"), std::string::npos);
  EXPECT_NE(r.protocol.find("K: 2"), std::string::npos);
  EXPECT_EQ(r.per_user["precision@2"], (std::vector<double>{0.5, 0.0}));
}

// ndcg_graded (eval/metrics/ndcg_graded.cc): the test ratings are the gains 2^rating - 1.
TEST(Evaluator, GradedNdcgUsesTheTestRatingsAsGains) {
  Fixture f;
  EvalSpec s;
  s.ks = {2, 4};
  // Without ratings the graded metric is not computed (and not in the table).
  EvalResult plain = evaluate_ranking(fixture_scores, f.ctx, s);
  EXPECT_TRUE(std::isnan(plain.get("ndcg_graded@2")));
  EXPECT_EQ(plain.table().find("ndcg_grad"), std::string::npos);
  // u0's test items: 3 (rating 2) and 1 (rating 5), ranked 3,2,1,0; u1's: 4 (rating 4), ranked 1,2,3,4.
  f.test.rating = {2.0f, 5.0f, 4.0f};
  EvalResult r = evaluate_ranking(fixture_scores, f.ctx, s);
  const double idcg0 = 31.0 + 3.0 / std::log2(3.0);
  EXPECT_NEAR(r.per_user["ndcg_graded@2"][0], 3.0 / idcg0, 1e-12);
  EXPECT_NEAR(r.per_user["ndcg_graded@2"][1], 0.0, 1e-12);
  EXPECT_NEAR(r.per_user["ndcg_graded@4"][0], (3.0 + 31.0 / 2.0) / idcg0, 1e-12);
  EXPECT_NEAR(r.per_user["ndcg_graded@4"][1], 1.0 / std::log2(5.0), 1e-12);
  EXPECT_NEAR(r.get("ndcg_graded@4"), ((3.0 + 15.5) / idcg0 + 1.0 / std::log2(5.0)) / 2, 1e-12);
  EXPECT_NE(r.table().find("ndcg_grad"), std::string::npos);
  // Equal ratings: graded NDCG is binary NDCG.
  f.test.rating = {3.0f, 3.0f, 3.0f};
  EvalResult e = evaluate_ranking(fixture_scores, f.ctx, s);
  for (const char* k : {"@2", "@4"})
    EXPECT_NEAR(e.get(std::string("ndcg_graded") + k), e.get(std::string("ndcg") + k), 1e-12) << k;
  // The same on sampled candidates (fixed lists): the ranked items carry their grades there too.
  std::vector<std::vector<int32_t>> negs = {{0, 2}, {2, 3}};
  f.ctx.fixed_negatives = &negs;
  f.test.rating = {2.0f, 5.0f, 4.0f};
  s.candidates = "fixed";
  EvalResult fx = evaluate_ranking(fixture_scores, f.ctx, s);
  // u0 candidates {3,1,0,2} by score 3,2,1,0 -> ranks 3,2,1,0: hits at 0 (grade 2) and 2 (grade 5).
  EXPECT_NEAR(fx.per_user["ndcg_graded@4"][0], (3.0 + 31.0 / 2.0) / idcg0, 1e-12);
}

// The metric registry: names, order, parse errors naming the key and the registered metrics.
TEST(Metrics, RegistryParsesNamesAndRefusesUnknownOnes) {
  std::vector<std::string> names;
  for (auto* m : ranking_metrics()) names.push_back(m->name);
  EXPECT_EQ(names, (std::vector<std::string>{"precision", "recall", "hr", "ndcg", "ndcg_graded", "mrr", "map", "f1"}));
  EXPECT_EQ(parse_metric("ndcg@20", "k"), (std::pair<std::string, int>{"ndcg", 20}));
  EXPECT_EQ(parse_metric("hr", "k", 7), (std::pair<std::string, int>{"hr", 7}));
  auto msg = test::error_of<ConfigError>([] { parse_metric("ndgc@10", "train.valid_metric"); });
  EXPECT_NE(msg.find("train.valid_metric"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ndcg_graded"), std::string::npos) << msg;
  EXPECT_THROW(parse_metric("ndcg@0", "k"), ConfigError);
  EXPECT_THROW(parse_metric("ndcg@x", "k"), ConfigError);
  Config c;
  EXPECT_NO_THROW(c.set("train.valid_metric", "ndcg_graded@5", "test"));
  EXPECT_THROW(c.set("train.valid_metric", "nope@5", "test"), ConfigError);
}

TEST(Evaluator, FixedCandidatesArePessimisticOnTies) {
  Fixture f;
  std::vector<std::vector<int32_t>> negs = {{2}, {1, 2}};
  f.ctx.fixed_negatives = &negs;
  EvalSpec s;
  s.candidates = "fixed";
  s.ks = {1};
  auto tied = [](const int32_t* users, int n, float* out) {
    for (int k = 0; k < n * 5; ++k) out[k] = 1.0f;  // every score tied
  };
  EvalResult r = evaluate_ranking(tied, f.ctx, s);
  EXPECT_DOUBLE_EQ(r.get("hr@1"), 0.0);  // a tied negative ranks above every positive
  EXPECT_DOUBLE_EQ(r.get("auc"), 0.5);
  EvalResult r2 = evaluate_ranking(fixture_scores, f.ctx, s);
  // u0: {3:3, 1:1, 2:2} -> 3 first (hit); u1: {4:1, 1:4, 2:3} -> 1 first (miss)
  EXPECT_DOUBLE_EQ(r2.get("hr@1"), 0.5);
  EXPECT_NE(r2.protocol.find("pessimistic"), std::string::npos);
}

TEST(Evaluator, SampledNegativesAreSeededAndUnseen) {
  Fixture f;
  EvalSpec s;
  s.candidates = "uniform:2";
  s.ks = {1, 3};
  EvalResult a = evaluate_ranking(fixture_scores, f.ctx, s), b = evaluate_ranking(fixture_scores, f.ctx, s);
  EXPECT_EQ(a.per_user["ndcg@3"], b.per_user["ndcg@3"]);
  EXPECT_NE(a.protocol.find("2 uniformly sampled unseen negatives"), std::string::npos);
  // u0 has 2 unseen non-test items {0, 2}; both are drawn: candidates {3,1,0,2} -> 3,2,1,0: hits [1,0,1]
  EXPECT_DOUBLE_EQ(a.per_user["precision@3"][0], 2.0 / 3);
  s.candidates = "popularity:1";
  EXPECT_NO_THROW(evaluate_ranking(fixture_scores, f.ctx, s));
  s.candidates = "fixed";
  EXPECT_THROW(evaluate_ranking(fixture_scores, f.ctx, s), ConfigError);
}

// Early stopping under the protocol being trained for (eval/validation.cc): sampled candidates
// drawn per user with the run's seed, and a seeded sample of validation users.
TEST(Validation, SampledCandidatesAndAUserSample) {
  // 100 users x 100 items; every score is -item, so item 50 (each user's validation item) ranks
  // 51st of all items; users 0..49 have item 0 in train (excluded), the others have item 99.
  const int32_t U = 100, I = 100;
  Interactions train, valid;
  for (int32_t u = 0; u < U; ++u) {
    train.user.push_back(u), train.item.push_back(u < 50 ? 0 : 99);
    valid.user.push_back(u), valid.item.push_back(50);
  }
  Csr excl = Csr::from_interactions(train, U, false);
  BlockScorer scorer = [](const int32_t*, int n, float* out) {
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < 100; ++i) out[r * 100 + i] = -static_cast<float>(i);
  };
  ValidationRequest q;
  q.scorer = &scorer, q.valid = &valid, q.exclude = &excl, q.metric = "hr@10", q.n_users = U, q.n_items = I;
  Validator v = ranking_validator();
  EXPECT_DOUBLE_EQ(v(q), 0.0);  // full ranking: 49 or 50 better items for every user
  q.candidates = "uniform:5";   // 6 candidates per user: the validation item is always in the top 10
  EXPECT_DOUBLE_EQ(v(q), 1.0);
  q.metric = "ndcg@1";  // the same seeded draws at every call
  const double a = v(q), b = v(q);
  EXPECT_EQ(a, b);
  EXPECT_GT(a, 0.0);
  EXPECT_LT(a, 1.0);
  // The sampled value is the evaluator's own under the same candidates and seed.
  EvalContext ctx;
  ctx.n_users = U, ctx.n_items = I, ctx.train = &excl, ctx.test = &valid;
  EvalSpec s;
  s.ks = {1}, s.candidates = "uniform:5", s.seed = q.seed;
  EXPECT_DOUBLE_EQ(evaluate_ranking(scorer, ctx, s).get("ndcg@1"), a);
  // A user sample: scores where only users with even ids rank the validation item first.
  BlockScorer half = [](const int32_t* users, int n, float* out) {
    for (int r = 0; r < n; ++r)
      for (int i = 0; i < 100; ++i) out[r * 100 + i] = users[r] % 2 == 0 && i == 50 ? 1000.f : -static_cast<float>(i);
  };
  q.scorer = &half, q.candidates = "full", q.metric = "hr@1";
  EXPECT_DOUBLE_EQ(v(q), 0.5);
  q.max_users = 10;
  const double h = v(q);
  EXPECT_EQ(h, v(q));                             // the same sample every time
  EXPECT_NEAR(h * 10, std::round(h * 10), 1e-9);  // a mean over exactly 10 users
  double differs = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) q.seed = seed, differs += v(q) != h;
  EXPECT_GT(differs, 0) << "the sample ignores the seed";
  q.max_users = 1000;  // more than there are: every user
  EXPECT_DOUBLE_EQ(v(q), 0.5);
}

// What a sampled validation mirrors of a candidate file (train.valid_candidates auto): the
// negatives of its first list, in each layout, read without the test part.
TEST(Validation, CandidateFileListLength) {
  test::TempDir t;
  EXPECT_EQ(candidate_file_list_length(t.file("a.tsv", "# comment\n\n7\t3\t1,2,5,9\n8\t4\t1,2\n")), 4);
  EXPECT_EQ(candidate_file_list_length(t.file("b.tsv", "(7,3)\t1\t2\t5\r\n")), 3);
  EXPECT_EQ(candidate_file_list_length(t.file("c.tsv", "7\t3,1,2\n")), 2);
  EXPECT_EQ(candidate_file_list_length(t.file("d.tsv", "garbage\n")), 0);
  EXPECT_EQ(candidate_file_list_length(t.path() + "/missing.tsv"), 0);
}

TEST(Evaluator, NoTestDataIsAnError) {
  Fixture f;
  Interactions empty;
  f.ctx.test = &empty;
  EXPECT_THROW(evaluate_ranking(fixture_scores, f.ctx, EvalSpec{}), Error);
}

// ---- acceptance on real data ----

static Config ua_config(const std::string& model) {
  Config c;
  c.set("data.dataset", "ml-100k", "t");
  c.set("split.type", "fixed", "t");
  c.set("split.name", "ua", "t");
  c.set("eval.k", "10", "t");
  c.set("model.type", model, "t");
  return c;
}

TEST(Acceptance, PopOnMl100kUa) {
  SIAMREC_NEED_DATA(dir);
  RunOptions ro{dir, false, 2};
  Config c = ua_config("pop");
  Prepared p = prepare(c, ro);
  EvalResult r = evaluate_model(fit_model(p, c, ro), p, c, ro);
  EXPECT_NEAR(r.get("precision@10"), 0.1215, 5e-5);
  EXPECT_NEAR(r.get("recall@10"), 0.1215, 5e-5);
  EXPECT_NEAR(r.get("ndcg@10"), 0.1331, 5e-5);
  EXPECT_NEAR(r.get("hr@10"), 0.7306, 5e-5);
  EXPECT_EQ(r.users.size(), 943u);
  // ItemKNN beats Pop on NDCG@10 under the same protocol.
  Config k = ua_config("itemknn");
  EvalResult rk = evaluate_model(fit_model(p, k, ro), p, k, ro);
  EXPECT_GT(rk.get("ndcg@10"), r.get("ndcg@10") + 0.05);
  EXPECT_GT(rk.get("coverage@10"), r.get("coverage@10"));
}

TEST(Acceptance, PopOnNcfProtocol) {
  SIAMREC_NEED_DATA(dir);
  RunOptions ro{dir, false, 2};
  Config c;
  c.set("data.dataset", "ml-1m-ncf", "t");
  c.set("split.type", "fixed", "t");
  c.set("split.name", "ncf", "t");
  c.set("eval.candidates", "fixed", "t");
  c.set("eval.k", "10", "t");
  Prepared p = prepare(c, ro);
  EvalResult r = evaluate_model(fit_model(p, c, ro), p, c, ro);
  EXPECT_NEAR(r.get("hr@10"), 0.4520, 5e-5);
  EXPECT_NEAR(r.get("ndcg@10"), 0.2526, 5e-5);
  EXPECT_EQ(r.users.size(), 6040u);
}

// End to end through the CLI: train -> model file -> recommend --all-users; the metrics recomputed
// here from the recommendation file and ua.test agree with the JSON siamrec wrote.
TEST(Cli, TrainRecommendAndIndependentRecomputation) {
  SIAMREC_NEED_DATA(dir);
  test::TempDir t;
  std::string env = "SIAMREC_DATA_DIR=" + dir + " SIAMREC_CACHE_DIR=" + t.path() + "/cache";
  std::string cfg = t.file(
      "pop.yaml",
      "data:\n  dataset: ml-100k\nsplit:\n  type: fixed\n  name: ua\neval:\n  k: [10]\nmodel:\n  type: itemknn\n");
  auto r = test::run_cli("train -c " + cfg + " --out " + t.path() + "/m.bin --json " + t.path() + "/run.json", env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("protocol: ml-100k"), std::string::npos);
  auto rec =
      test::run_cli("recommend -m " + t.path() + "/m.bin --all-users -k 10 --out " + t.path() + "/recs.tsv", env);
  ASSERT_EQ(rec.code, 0) << rec.err;
  // Independent evaluation: read ua.base / ua.test and the recommendations as plain text.
  std::map<std::string, std::set<std::string>> test_items, train_items;
  auto read_pairs = [&](const std::string& path, std::map<std::string, std::set<std::string>>& into) {
    std::ifstream in(path);
    std::string u, i, rating, ts;
    while (in >> u >> i >> rating >> ts) into[u].insert(i);
  };
  read_pairs(dir + "/ml-100k/ua.test", test_items);
  read_pairs(dir + "/ml-100k/ua.base", train_items);
  std::ifstream in(t.path() + "/recs.tsv");
  std::string line;
  double prec = 0, ndcg = 0;
  int users = 0;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    std::string u = line.substr(0, tab);
    auto items = split_list(line.substr(tab + 1), ',');
    ASSERT_EQ(items.size(), 10u);
    for (auto& i : items) ASSERT_EQ(train_items[u].count(i), 0u) << "seen item recommended";
    double dcg = 0, idcg = 0;
    int hits = 0;
    for (int k = 0; k < 10; ++k)
      if (test_items[u].count(items[k])) ++hits, dcg += 1 / std::log2(k + 2.0);
    for (int k = 0; k < std::min<int>(10, test_items[u].size()); ++k) idcg += 1 / std::log2(k + 2.0);
    prec += hits / 10.0;
    ndcg += dcg / idcg;
    ++users;
  }
  EXPECT_EQ(users, 943);
  auto j = nlohmann::json::parse(read_file(t.path() + "/run.json"));
  EXPECT_NEAR(prec / users, j["metrics"]["precision@10"].get<double>(), 1e-9);
  EXPECT_NEAR(ndcg / users, j["metrics"]["ndcg@10"].get<double>(), 1e-9);
  EXPECT_EQ(j["per_user"]["user"].size(), 943u);
  EXPECT_NE(j["protocol"].get<std::string>().find("split: fixed 'ua'"), std::string::npos);

  // Single user with titles; unknown user is a usage error.
  auto one = test::run_cli("recommend -m " + t.path() + "/m.bin --user 1 -k 3", env);
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_NE(one.out.find("(19"), std::string::npos) << one.out;  // titles carry a year
  auto bad = test::run_cli("recommend -m " + t.path() + "/m.bin --user 99999", env);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("user '99999' is not in model"), std::string::npos);

  // evaluate --model reproduces the train-time numbers from the model file alone.
  auto ev = test::run_cli("evaluate -m " + t.path() + "/m.bin --json " + t.path() + "/ev.json", env);
  ASSERT_EQ(ev.code, 0) << ev.err;
  auto je = nlohmann::json::parse(read_file(t.path() + "/ev.json"));
  EXPECT_DOUBLE_EQ(je["metrics"]["ndcg@10"].get<double>(), j["metrics"]["ndcg@10"].get<double>());

  // compare: Pop vs ItemKNN on the same protocol gives tiny p-values; different protocols refuse.
  auto pop = test::run_cli("evaluate -c " + cfg + " --set model.type=pop --json " + t.path() + "/pop.json", env);
  ASSERT_EQ(pop.code, 0) << pop.err;
  auto cmp = test::run_cli("compare " + t.path() + "/pop.json " + t.path() +
                               "/run.json --metrics ndcg@10,hr@10 --json " + t.path() + "/cmp.json",
                           env);
  ASSERT_EQ(cmp.code, 0) << cmp.err;
  auto jc = nlohmann::json::parse(read_file(t.path() + "/cmp.json"));
  EXPECT_LT(jc["metrics"]["ndcg@10"]["p_t"].get<double>(), 1e-6);
  EXPECT_LT(jc["metrics"]["ndcg@10"]["p_wilcoxon"].get<double>(), 1e-6);
  EXPECT_GT(jc["metrics"]["ndcg@10"]["b"].get<double>(), jc["metrics"]["ndcg@10"]["a"].get<double>());
  auto other =
      test::run_cli("evaluate -c " + cfg + " --set model.type=pop --set eval.k=5 --json " + t.path() + "/p5.json", env);
  ASSERT_EQ(other.code, 0);
  auto mismatch = test::run_cli("compare " + t.path() + "/pop.json " + t.path() + "/p5.json", env);
  EXPECT_EQ(mismatch.code, 2);
  EXPECT_NE(mismatch.err.find("different protocols"), std::string::npos);
  auto garbage = test::run_cli("compare " + t.file("g.json", "{not json") + " " + t.path() + "/pop.json", env);
  EXPECT_EQ(garbage.code, 3);
}

TEST(Cli, BadConfigFailsBeforeWork) {
  test::TempDir t;
  std::string cfg = t.file("bad.yaml", "data:\n  dataset: ml-100k\nmodel:\n  type: nosuchmodel\n");
  auto r = test::run_cli("train -c " + cfg + " --out " + t.path() + "/m.bin");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("model.type"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("allowed values"), std::string::npos) << r.err;
  EXPECT_FALSE(file_exists(t.path() + "/m.bin"));
  auto corrupt = test::run_cli("recommend -m " + t.file("m.bin", "garbage") + " --user 1");
  EXPECT_EQ(corrupt.code, 1);
  EXPECT_NE(corrupt.err.find("truncated"), std::string::npos) << corrupt.err;
}
