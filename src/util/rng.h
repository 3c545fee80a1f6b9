// Deterministic seeding shared by every layer: splitmix64 mixing for per-user, per-thread and
// per-batch seeds (the same seed gives the same split, negatives and initialisation).
#pragma once
#include <cstdint>

namespace siamrec {

// Deterministic 64-bit mixing (splitmix64).
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace siamrec
