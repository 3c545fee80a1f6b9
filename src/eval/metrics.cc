#include "eval/metrics.h"

#include <algorithm>
#include <limits>
#include <cmath>
#include <iterator>

namespace siamrec::metric {

static int hits_at(const std::vector<char>& h, int K) {
  int n = 0, e = std::min<int>(K, static_cast<int>(h.size()));
  for (int r = 0; r < e; ++r) n += h[r] != 0;
  return n;
}

double precision(const std::vector<char>& h, int K) { return K > 0 ? static_cast<double>(hits_at(h, K)) / K : 0; }
double recall(const std::vector<char>& h, int n_rel, int K) {
  return n_rel > 0 ? static_cast<double>(hits_at(h, K)) / n_rel : 0;
}
double hit_rate(const std::vector<char>& h, int K) { return hits_at(h, K) > 0 ? 1 : 0; }

double ndcg(const std::vector<char>& h, int n_rel, int K) {
  if (n_rel <= 0) return 0;
  double dcg = 0, idcg = 0;
  int e = std::min<int>(K, static_cast<int>(h.size()));
  for (int r = 0; r < e; ++r)
    if (h[r]) dcg += 1.0 / std::log2(r + 2.0);
  for (int r = 0; r < std::min(n_rel, K); ++r) idcg += 1.0 / std::log2(r + 2.0);
  return dcg / idcg;
}

double mrr(const std::vector<char>& h, int K) {
  int e = std::min<int>(K, static_cast<int>(h.size()));
  for (int r = 0; r < e; ++r)
    if (h[r]) return 1.0 / (r + 1);
  return 0;
}

double average_precision(const std::vector<char>& h, int n_rel, int K) {
  if (n_rel <= 0) return 0;
  double s = 0;
  int hits = 0, e = std::min<int>(K, static_cast<int>(h.size()));
  for (int r = 0; r < e; ++r)
    if (h[r]) s += static_cast<double>(++hits) / (r + 1);
  return s / std::min(n_rel, K);
}

double f1(const std::vector<char>& h, int n_rel, int K) {
  double p = precision(h, K), r = recall(h, n_rel, K);
  return p + r > 0 ? 2 * p * r / (p + r) : 0;
}

// The fraction of (positive, negative) pairs in order, ties counting half. The smaller side is
// sorted and the other searched in it: O(n log m) for m the smaller side (a user's few positives
// against the catalogue; sorting the catalogue instead was half of a validation-heavy training
// run's time). The sum is of integers and halves, exact in a double either way.
double auc(std::vector<float> pos, std::vector<float> neg) {
  if (pos.empty() || neg.empty()) return 0.5;
  const double pairs = static_cast<double>(pos.size()) * static_cast<double>(neg.size());
  double s = 0;
  if (pos.size() <= neg.size()) {
    std::sort(pos.begin(), pos.end());
    for (float x : neg) {  // positives above x, ties half
      auto lo = std::lower_bound(pos.begin(), pos.end(), x);
      auto hi = std::upper_bound(lo, pos.end(), x);
      s += static_cast<double>(pos.end() - hi) + 0.5 * static_cast<double>(hi - lo);
    }
  } else {
    std::sort(neg.begin(), neg.end());
    for (float p : pos) {  // negatives below p, ties half
      auto lo = std::lower_bound(neg.begin(), neg.end(), p);
      auto hi = std::upper_bound(lo, neg.end(), p);
      s += static_cast<double>(lo - neg.begin()) + 0.5 * static_cast<double>(hi - lo);
    }
  }
  return s / pairs;
}

double auc_in_row(const float* row, int64_t n, const float* pos, int n_pos) {
  const float ninf = -std::numeric_limits<float>::infinity();
  if (n_pos > 64) {  // many positives: the finite scores minus the positives', then auc()
    std::vector<float> all, p(pos, pos + n_pos), rest;
    for (int64_t i = 0; i < n; ++i)
      if (row[i] > ninf) all.push_back(row[i]);
    std::sort(all.begin(), all.end());
    std::sort(p.begin(), p.end());
    std::set_difference(all.begin(), all.end(), p.begin(), p.end(), std::back_inserter(rest));
    return auc(std::move(p), std::move(rest));
  }
  int64_t valid = 0;
  for (int64_t i = 0; i < n; ++i) valid += row[i] > ninf;
  const int64_t n_neg = valid - n_pos;
  if (n_pos == 0 || n_neg <= 0) return 0.5;
  double s = 0;
  for (int k = 0; k < n_pos; ++k) {
    const float x = pos[k];
    int32_t lt = 0, eq = 0;  // finite scores of the row below x, equal to x (n < 2^31 items)
#pragma omp simd reduction(+ : lt, eq)
    for (int64_t i = 0; i < n; ++i) {  // no && (a branch): vectorized compares
      const float v = row[i];
      lt += static_cast<int32_t>(v < x) & static_cast<int32_t>(v > ninf);
      eq += static_cast<int32_t>(v == x);
    }
    for (int q = 0; q < n_pos; ++q) lt -= pos[q] < x, eq -= pos[q] == x;  // not the positives themselves
    s += static_cast<double>(lt) + 0.5 * static_cast<double>(eq);
  }
  return s / (static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

PairMetrics pair_metrics(const std::vector<float>& scores, const std::vector<int>& labels, float threshold) {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  std::vector<float> pos, neg;
  for (size_t k = 0; k < scores.size(); ++k) {
    bool pred = scores[k] >= threshold, y = labels[k] != 0;
    tp += pred && y, fp += pred && !y, tn += !pred && !y, fn += !pred && y;
    (y ? pos : neg).push_back(scores[k]);
  }
  PairMetrics m;
  double n = static_cast<double>(scores.size());
  m.accuracy = n > 0 ? (tp + tn) / n : 0;
  m.precision = tp + fp > 0 ? static_cast<double>(tp) / (tp + fp) : 0;
  m.recall = tp + fn > 0 ? static_cast<double>(tp) / (tp + fn) : 0;
  m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
  m.roc_auc = auc(pos, neg);
  return m;
}

double rmse(const std::vector<float>& p, const std::vector<float>& t) {
  double s = 0;
  for (size_t k = 0; k < p.size(); ++k) s += (p[k] - t[k]) * static_cast<double>(p[k] - t[k]);
  return p.empty() ? 0 : std::sqrt(s / p.size());
}
double mae(const std::vector<float>& p, const std::vector<float>& t) {
  double s = 0;
  for (size_t k = 0; k < p.size(); ++k) s += std::abs(static_cast<double>(p[k]) - t[k]);
  return p.empty() ? 0 : s / p.size();
}

}  // namespace siamrec::metric
