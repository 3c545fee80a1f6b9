#include "tune/asha.h"

#include <algorithm>

namespace siamrec::tune {

int Asha::rung_of(int epoch) const {
  long r = min_epochs_;
  for (int k = 0; r <= epoch && k < 30; ++k, r *= eta_)
    if (r == epoch) return k;
  return -1;
}

bool Asha::report(int epoch, double value) {
  const int k = rung_of(epoch);
  if (k < 0) return true;
  auto& v = rungs_[k];
  v.push_back(value);
  if (static_cast<int>(v.size()) < eta_) return true;
  // The top floor(n / eta) values (at least one) go on.
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  const size_t keep = std::max<size_t>(1, sorted.size() / static_cast<size_t>(eta_));
  return value >= sorted[keep - 1];
}

}  // namespace siamrec::tune
