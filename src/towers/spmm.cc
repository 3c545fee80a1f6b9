#include "towers/spmm.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "util/error.h"

namespace siamrec {

Csr normalized_adjacency(int64_t n, const std::vector<int64_t>& ptr, const std::vector<int64_t>& idx) {
  if (static_cast<int64_t>(ptr.size()) != n + 1 || ptr.back() != static_cast<int64_t>(idx.size()))
    throw Error("graph adjacency is malformed (row pointers do not match)");
  Csr m;
  m.indptr = ptr;
  m.indices.resize(idx.size());
  m.values.resize(idx.size());
  std::vector<float> inv(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    int64_t deg = ptr[r + 1] - ptr[r];
    inv[r] = deg > 0 ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(deg))) : 0.0f;
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t p = ptr[r]; p < ptr[r + 1]; ++p) {
      int64_t c = idx[p];
      if (c < 0 || c >= n)
        throw Error(fmt::format("graph adjacency is malformed (node {} has neighbour {} of {})", r, c, n));
      m.indices[p] = static_cast<int32_t>(c);
      m.values[p] = inv[r] * inv[c];
    }
  return m;
}

void spmm_general(const Csr& m, const float* x, int64_t d, float* y) {
  const int64_t* ptr = m.indptr.data();
  const int32_t* idx = m.indices.data();
  const float* val = m.values.data();
  const int64_t n = m.rows();
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n; ++r) {
    float* out = y + r * d;
    std::memset(out, 0, sizeof(float) * d);
    for (int64_t p = ptr[r]; p < ptr[r + 1]; ++p) {
      const float* in = x + static_cast<int64_t>(idx[p]) * d;
      const float v = val[p];
#pragma omp simd
      for (int64_t k = 0; k < d; ++k) out[k] += v * in[k];
    }
  }
}

namespace {

// A row's sums stay in registers (D / 16 AVX-512 registers) while its neighbours' rows stream in;
// the general loop loads and stores the output row for every non-zero.
template <int D>
void spmm_fixed(const Csr& m, const float* x, float* y) {
  const int64_t* ptr = m.indptr.data();
  const int32_t* idx = m.indices.data();
  const float* val = m.values.data();
  const int64_t n = m.rows();
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t r = 0; r < n; ++r) {
    float acc[D] = {};
    const int64_t end = ptr[r + 1];
    for (int64_t p = ptr[r]; p < end; ++p) {
      const float* __restrict in = x + static_cast<int64_t>(idx[p]) * D;
      if (p + 8 < end) __builtin_prefetch(x + static_cast<int64_t>(idx[p + 8]) * D);
      const float v = val[p];
#pragma GCC unroll 16
      for (int k = 0; k < D; ++k) acc[k] += v * in[k];
    }
    std::memcpy(y + r * D, acc, sizeof acc);
  }
}

}  // namespace

void spmm(const Csr& m, const float* x, int64_t d, float* y) {
  switch (d) {
    case 16:
      return spmm_fixed<16>(m, x, y);
    case 32:
      return spmm_fixed<32>(m, x, y);
    case 64:
      return spmm_fixed<64>(m, x, y);
    case 128:
      return spmm_fixed<128>(m, x, y);
    default:
      return spmm_general(m, x, d, y);
  }
}

}  // namespace siamrec
