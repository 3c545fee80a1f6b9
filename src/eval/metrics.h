// Metric formulas, one function each, on one user's ranked list (docs/metrics.md writes each out).
// `hits[r]` is 1 when the item at rank r (0-based) is relevant; `n_rel` is the number of relevant
// (test) items of the user; K is the cut-off.
#pragma once
#include <cstdint>
#include <vector>

namespace siamrec::metric {

double precision(const std::vector<char>& hits, int K);                     // hits@K / K
double recall(const std::vector<char>& hits, int n_rel, int K);             // hits@K / n_rel
double hit_rate(const std::vector<char>& hits, int K);                      // 1 if any hit in top K
double ndcg(const std::vector<char>& hits, int n_rel, int K);               // DCG@K / IDCG@min(n_rel, K), log2(r+2)
double mrr(const std::vector<char>& hits, int K);                           // 1 / (rank of first hit), 0 if none in K
double average_precision(const std::vector<char>& hits, int n_rel, int K);  // sum_{hit r<K} P@(r+1) / min(n_rel, K)
double f1(const std::vector<char>& hits, int n_rel, int K);                 // 2PR / (P + R), 0 when both are 0
// P(score of a positive > score of a negative), ties count one half. Sorted inputs not required.
double auc(std::vector<float> pos, std::vector<float> neg);
// The same AUC over a full score row: the n_pos scores in pos (the caller's positives, finite,
// each taken once from row) against every other score of row[0, n) above -inf; NaN counts
// nowhere. Up to 64 positives by counting over the row (no copies), else by sorting.
double auc_in_row(const float* row, int64_t n, const float* pos, int n_pos);

// Pair classification (labels 0/1, scores thresholded at `threshold`) and regression.
struct PairMetrics {
  double accuracy, precision, recall, f1, roc_auc;
};
PairMetrics pair_metrics(const std::vector<float>& scores, const std::vector<int>& labels, float threshold);
double rmse(const std::vector<float>& pred, const std::vector<float>& truth);
double mae(const std::vector<float>& pred, const std::vector<float>& truth);

}  // namespace siamrec::metric
