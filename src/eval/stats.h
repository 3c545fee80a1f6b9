// Paired significance tests over per-user metric vectors (siamrec compare).
#pragma once
#include <cstdint>
#include <vector>

namespace siamrec::stats {

struct TestResult {
  double statistic = 0;
  double p_value = 1;
  long n = 0;  // pairs used
};
// Two-sided paired t-test of mean(a - b) = 0.
TestResult paired_t_test(const std::vector<double>& a, const std::vector<double>& b);
// Two-sided Wilcoxon signed-rank test: zero differences dropped, average ranks for ties; exact
// distribution for n <= 25 without ties, else the normal approximation with tie and continuity
// corrections. statistic = W+ (sum of ranks of positive differences).
TestResult wilcoxon_signed_rank(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace siamrec::stats

namespace siamrec::stats {

struct Interval {
  double lo = 0, hi = 0;
};
// Percentile bootstrap confidence interval of the mean: `resamples` resamples of the values with
// replacement (NaN values dropped first), the (1-level)/2 and (1+level)/2 quantiles of their means.
// Deterministic for a seed. Fewer than two values: the interval is the mean itself (NaN if none).
// The p-quantile of ascending values, linearly interpolated between order statistics.
double quantile_sorted(const std::vector<double>& sorted, double p);
Interval bootstrap_mean_ci(const std::vector<double>& values, int resamples, double level, uint64_t seed);

}  // namespace siamrec::stats

namespace siamrec::stats {

// Indices of the non-dominated points, every objective maximised (a point is dominated when
// another is >= in every objective and > in one). Equal points are all kept.
std::vector<int> pareto_front(const std::vector<std::vector<double>>& points);

}  // namespace siamrec::stats
