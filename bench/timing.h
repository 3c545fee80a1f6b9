// Shared timing helper of the C++ benchmarks: the median of reps runs after one warm-up run.
#pragma once
#include <algorithm>
#include <chrono>
#include <vector>

template <class F>
double median_ms(int reps, F&& f) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> t;
  f();  // warm-up
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
