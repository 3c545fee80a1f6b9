// Paired significance tests over per-user metric vectors (siamrec compare).
#pragma once
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
