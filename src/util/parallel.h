// One parallel region: `threads` workers each run fn(thread_index) once, then join. OpenMP in
// normal builds; std::thread in ThreadSanitizer builds (SIAMREC_TSAN), where GCC's uninstrumented
// libgomp would hide the region's accesses from TSan (the pragmas are compiled out there): the
// workers' code is the same, so TSan checks what the OpenMP build runs in parallel.
#pragma once
#include <thread>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace siamrec {

template <class F>
void parallel_region(int threads, F&& fn) {
#if defined(SIAMREC_TSAN) || !defined(_OPENMP)
  if (threads <= 1) return fn(0);
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) workers.emplace_back([&fn, t] { fn(t); });
  fn(0);
  for (auto& w : workers) w.join();
#else
#pragma omp parallel num_threads(threads) if (threads > 1)
  fn(omp_get_thread_num());
#endif
}

}  // namespace siamrec
