// Ranking metrics registered by name (the XGBoost habit): one function of one user's ranked list
// at a cut-off K. The evaluator computes every registered metric at every K of eval.k (as
// "name@K", per user and averaged), the table and the JSON list them in registration order, and
// the parameter table accepts "name@K" for train.valid_metric. A new metric is one file plus one
// SIAMREC_REGISTER_METRIC line (eval/metrics/ndcg_graded.cc is one).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace siamrec {

// One user's ranking under the protocol being evaluated.
struct UserRanking {
  const std::vector<char>* hits = nullptr;  // hits[r]: the item at rank r (0-based) is relevant; r < max K
  const int32_t* ranked = nullptr;          // the items at ranks 0..hits->size()-1
  int n_rel = 0;                            // relevant (test) items of the user
  // The user's test items with their ratings (graded relevance), sorted by item; null when the
  // test data has no ratings.
  const std::vector<std::pair<int32_t, float>>* grades = nullptr;
  // The rating of `item` when it is one of the user's test items, else 0.
  float grade(int32_t item) const;
};

struct RankingMetric {
  std::string name;           // "ndcg": reported as ndcg@K
  std::string help;           // one line: the formula (docs/metrics.md has them all)
  bool needs_grades = false;  // computed only when the test data has ratings
  int order = 100;            // column order in tables (smaller first, then by name)
  std::function<double(const UserRanking& u, int K)> at_k;
};

// Registers a metric; returns true so it can initialize a static. Registering a name twice is a
// programming error.
bool register_ranking_metric(RankingMetric m);
#define SIAMREC_REGISTER_METRIC(ID, ...) \
  static const bool siamrec_metric_##ID = ::siamrec::register_ranking_metric(::siamrec::RankingMetric{__VA_ARGS__})

// Every registered metric, in table order.
std::vector<const RankingMetric*> ranking_metrics();

// Splits "ndcg@10" into ("ndcg", 10); throws ConfigError naming `key` and the registered metrics
// when the name is unknown or K is not a positive integer. K defaults to `default_k` without '@'.
std::pair<std::string, int> parse_metric(const std::string& text, const std::string& key, int default_k = 10);

}  // namespace siamrec
