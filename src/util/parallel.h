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
  // One thread runs fn directly: even a serialized OpenMP region (if false) costs libgomp's team
  // set-up and a futex wake per call (one per request in the server, 2026-12-04).
  if (threads <= 1) return fn(0);
#if defined(SIAMREC_TSAN) || !defined(_OPENMP)
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) workers.emplace_back([&fn, t] { fn(t); });
  fn(0);
  for (auto& w : workers) w.join();
#else
#pragma omp parallel num_threads(threads)
  fn(omp_get_thread_num());
#endif
}

}  // namespace siamrec
