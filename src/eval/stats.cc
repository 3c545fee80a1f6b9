#include "eval/stats.h"

#include <algorithm>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <numeric>

#include "util/rng.h"

namespace siamrec::stats {

TestResult paired_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  TestResult r;
  std::vector<double> d;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k)
    if (!std::isnan(a[k]) && !std::isnan(b[k])) d.push_back(a[k] - b[k]);
  r.n = static_cast<long>(d.size());
  if (r.n < 2) return r;
  double mean = std::accumulate(d.begin(), d.end(), 0.0) / r.n;
  double var = 0;
  for (double x : d) var += (x - mean) * (x - mean);
  var /= (r.n - 1);
  if (var <= 0) {
    r.statistic = mean == 0 ? 0 : (mean > 0 ? INFINITY : -INFINITY);
    r.p_value = mean == 0 ? 1.0 : 0.0;
    return r;
  }
  r.statistic = mean / std::sqrt(var / r.n);
  boost::math::students_t dist(static_cast<double>(r.n - 1));
  r.p_value = 2 * boost::math::cdf(boost::math::complement(dist, std::abs(r.statistic)));
  return r;
}

TestResult wilcoxon_signed_rank(const std::vector<double>& a, const std::vector<double>& b) {
  TestResult r;
  std::vector<double> d;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k)
    if (!std::isnan(a[k]) && !std::isnan(b[k]) && a[k] != b[k]) d.push_back(a[k] - b[k]);
  long n = static_cast<long>(d.size());
  r.n = n;
  if (n == 0) return r;
  std::vector<long> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](long x, long y) { return std::abs(d[x]) < std::abs(d[y]); });
  std::vector<double> rank(n);
  double tie_term = 0;
  bool ties = false;
  for (long i = 0; i < n;) {
    long j = i;
    while (j + 1 < n && std::abs(d[idx[j + 1]]) == std::abs(d[idx[i]])) ++j;
    double avg = (i + j) / 2.0 + 1;
    for (long k = i; k <= j; ++k) rank[idx[k]] = avg;
    double t = static_cast<double>(j - i + 1);
    if (t > 1) ties = true;
    tie_term += t * t * t - t;
    i = j + 1;
  }
  double wplus = 0;
  for (long k = 0; k < n; ++k)
    if (d[k] > 0) wplus += rank[k];
  r.statistic = wplus;
  if (n <= 25 && !ties) {
    // Exact: count subsets of {1..n} by rank sum.
    long maxs = n * (n + 1) / 2;
    std::vector<double> cnt(maxs + 1, 0.0);
    cnt[0] = 1;
    for (long k = 1; k <= n; ++k)
      for (long s = maxs; s >= k; --s) cnt[s] += cnt[s - k];
    double total = std::pow(2.0, static_cast<double>(n));
    long w = static_cast<long>(std::llround(wplus));
    long lo = std::min(w, maxs - w);
    double tail = 0;
    for (long s = 0; s <= lo; ++s) tail += cnt[s];
    r.p_value = std::min(1.0, 2 * tail / total);
    return r;
  }
  double mean = n * (n + 1) / 4.0;
  double var = n * (n + 1) * (2.0 * n + 1) / 24.0 - tie_term / 48.0;
  if (var <= 0) return r;
  double z = (std::abs(wplus - mean) - 0.5) / std::sqrt(var);
  z = std::max(0.0, z);
  boost::math::normal norm;
  r.p_value = std::min(1.0, 2 * boost::math::cdf(boost::math::complement(norm, z)));
  return r;
}

}  // namespace siamrec::stats

namespace siamrec::stats {

Interval bootstrap_mean_ci(const std::vector<double>& values, int resamples, double level, uint64_t seed) {
  std::vector<double> v;
  v.reserve(values.size());
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  if (v.empty()) return {std::nan(""), std::nan("")};
  double sum = 0;
  for (double x : v) sum += x;
  if (v.size() < 2 || resamples < 2) return {sum / v.size(), sum / v.size()};
  std::vector<double> means(static_cast<size_t>(resamples));
  uint64_t state = mix64(seed ^ 0x5eedb007ULL);
  const uint64_t n = v.size();
  for (auto& m : means) {
    double s = 0;
    for (uint64_t k = 0; k < n; ++k) {
      state = mix64(state);
      s += v[static_cast<size_t>((state >> 11) % n)];
    }
    m = s / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  return {quantile_sorted(means, (1 - level) / 2), quantile_sorted(means, (1 + level) / 2)};
}

double quantile_sorted(const std::vector<double>& sorted, double p) {
  const double pos = p * (sorted.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double f = pos - i;
  return i + 1 < sorted.size() ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

}  // namespace siamrec::stats

namespace siamrec::stats {

std::vector<int> pareto_front(const std::vector<std::vector<double>>& pts) {
  std::vector<int> front;
  for (size_t a = 0; a < pts.size(); ++a) {
    bool dominated = false;
    for (size_t b = 0; b < pts.size() && !dominated; ++b) {
      if (a == b) continue;
      bool ge = true, gt = false;
      for (size_t k = 0; k < pts[a].size(); ++k) {
        ge = ge && pts[b][k] >= pts[a][k];
        gt = gt || pts[b][k] > pts[a][k];
      }
      dominated = ge && gt;
    }
    if (!dominated) front.push_back(static_cast<int>(a));
  }
  return front;
}

}  // namespace siamrec::stats
