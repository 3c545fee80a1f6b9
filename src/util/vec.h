// Vector kernels of the fused engine's hot loop (train/fused.cc): dot products, distances, axpy and
// the row-wise optimizer updates, over rows of `d` floats.
//
// With AVX-512 (the default -march=native build on this machine) rows whose length is a multiple
// of 16 take an intrinsic path: reductions use several accumulators and a tree sum, and Adagrad
// uses rsqrt14 plus one Newton step instead of a sqrt and a division (measured: the in-order
// scalar reduction and the sqrt/div pair were the top of the profile, docs/benchmarks.md). Any
// other length or machine takes the plain loops, which compute the same values up to rounding
// (and, for Adagrad, the epsilon's form: see step()).
// Private to the fused engine; no torch.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// GCC 12 warns falsely about its own _mm512_reduce_add_ps and _mm512_sqrt_ps (an "uninitialized"
// undefined vector).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace siamrec::vec {

#if defined(__AVX512F__)
inline bool wide(int64_t d) { return (d & 15) == 0; }
#else
inline bool wide(int64_t) { return false; }
#endif

// sum a_i b_i (kDiff false) or sum (a_i - b_i)^2 (kDiff true); the wide path keeps two
// accumulators and ends with a tree sum.
template <bool kDiff>
inline float reduce(const float* __restrict a, const float* __restrict b, int64_t d) {
#if defined(__AVX512F__)
  if (wide(d)) {
    auto term = [&](int64_t i, __m512 s) {
      __m512 x = _mm512_loadu_ps(a + i), y = _mm512_loadu_ps(b + i);
      if (kDiff) x = y = _mm512_sub_ps(x, y);
      return _mm512_fmadd_ps(x, y, s);
    };
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) s0 = term(i, s0), s1 = term(i + 16, s1);
    if (i < d) s0 = term(i, s0);
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  }
#endif
  float s = 0;
  for (int64_t i = 0; i < d; ++i) {
    float x = a[i], y = b[i];
    if (kDiff) x = y = x - y;
    s += x * y;
  }
  return s;
}
inline float dot(const float* a, const float* b, int64_t d) { return reduce<false>(a, b, d); }
inline float sqdist(const float* a, const float* b, int64_t d) { return reduce<true>(a, b, d); }

// y += alpha x
inline void axpy(float alpha, const float* __restrict x, float* __restrict y, int64_t d) {
#if defined(__AVX512F__)
  if (wide(d)) {
    __m512 al = _mm512_set1_ps(alpha);
    for (int64_t i = 0; i < d; i += 16)
      _mm512_storeu_ps(y + i, _mm512_fmadd_ps(al, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    return;
  }
#endif
  for (int64_t i = 0; i < d; ++i) y[i] += alpha * x[i];
}

// gx += u (x - b); gb -= u (x - b): the gradient of u/2 |x - b|^2 w.r.t. both sides.
inline void diff_pair(float u, const float* __restrict x, const float* __restrict b, float* __restrict gx,
                      float* __restrict gb, int64_t d) {
#if defined(__AVX512F__)
  if (wide(d)) {
    __m512 uu = _mm512_set1_ps(u);
    for (int64_t i = 0; i < d; i += 16) {
      __m512 t = _mm512_mul_ps(uu, _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(b + i)));
      _mm512_storeu_ps(gx + i, _mm512_add_ps(_mm512_loadu_ps(gx + i), t));
      _mm512_storeu_ps(gb + i, _mm512_sub_ps(_mm512_loadu_ps(gb + i), t));
    }
    return;
  }
#endif
  for (int64_t i = 0; i < d; ++i) {
    float t = u * (x[i] - b[i]);
    gx[i] += t;
    gb[i] -= t;
  }
}

inline void zero(float* x, int64_t d) {
  for (int64_t i = 0; i < d; ++i) x[i] = 0.0f;
}

// Scales w into the ball of radius max_norm when it lies outside (`sq` = |w|^2).
inline void clip(float* w, float sq, float max_norm, int64_t d) {
  if (sq > max_norm * max_norm) {
    float f = max_norm / std::sqrt(sq);
    for (int64_t i = 0; i < d; ++i) w[i] *= f;
  }
}

#if defined(__AVX512F__)
// 1/sqrt(x) on 16 lanes: rsqrt14 and one Newton step, r (1.5 - 0.5 x r^2) (relative error ~1e-7).
inline __m512 rsqrt(__m512 x) {
  const __m512 r = _mm512_rsqrt14_ps(x);
  return _mm512_mul_ps(
      r, _mm512_fnmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_mul_ps(r, r), _mm512_set1_ps(1.5f)));
}

// One optimizer step on 16 lanes (chunk c of a row) with values W and gradient G: SGD (kOpt 0),
// Adagrad (1: s1 = the row's accumulator) or lazy Adam (2: s1 = m, s2 = v); nlr = -lr (lazy
// Adam: minus the bias-corrected step). Returns the new values. The lane form of step() and
// lazy_adam(), shared with the fused engine's fast kernels.
template <int kOpt>
inline __m512 opt_step(float* s1, float* s2, int64_t c, __m512 W, __m512 G, __m512 nlr) {
  if (kOpt == 1) {
    s1 += 16 * c;
    const __m512 acc = _mm512_fmadd_ps(G, G, _mm512_loadu_ps(s1));
    _mm512_storeu_ps(s1, acc);
    G = _mm512_mul_ps(G, rsqrt(_mm512_add_ps(acc, _mm512_set1_ps(1e-20f))));
  } else if (kOpt == 2) {
    s1 += 16 * c, s2 += 16 * c;
    const __m512 M = _mm512_fmadd_ps(_mm512_set1_ps(0.9f), _mm512_loadu_ps(s1), _mm512_mul_ps(_mm512_set1_ps(0.1f), G));
    const __m512 V = _mm512_fmadd_ps(_mm512_set1_ps(0.999f), _mm512_loadu_ps(s2),
                                     _mm512_mul_ps(_mm512_set1_ps(0.001f), _mm512_mul_ps(G, G)));
    _mm512_storeu_ps(s1, M);
    _mm512_storeu_ps(s2, V);
    G = _mm512_div_ps(M, _mm512_add_ps(_mm512_sqrt_ps(V), _mm512_set1_ps(1e-8f)));
  }
  return _mm512_fmadd_ps(nlr, G, W);
}

// Stores a row's new values X[0..nc) (their squared norm in the lanes of q), scaled into the ball
// of radius max_norm when max_norm > 0: branch-free, factor min(1, max_norm / |x|) from an
// all-lanes sum and rsqrt (1 when NaN: an all-zero row).
inline void store_clipped(float* w, __m512* X, int nc, __m512 q, float max_norm) {
  if (max_norm > 0) {
    __m512 t = _mm512_add_ps(q, _mm512_shuffle_f32x4(q, q, 0x4e));
    t = _mm512_add_ps(t, _mm512_shuffle_f32x4(t, t, 0xb1));
    t = _mm512_add_ps(t, _mm512_permute_ps(t, 0x4e));
    t = _mm512_add_ps(t, _mm512_permute_ps(t, 0xb1));
    const __m512 sc = _mm512_min_ps(_mm512_mul_ps(_mm512_set1_ps(max_norm), rsqrt(t)), _mm512_set1_ps(1.0f));
    for (int c = 0; c < nc; ++c) X[c] = _mm512_mul_ps(sc, X[c]);
  }
  for (int c = 0; c < nc; ++c) _mm512_storeu_ps(w + 16 * c, X[c]);
}

// The gradient terms of a raw comparator value r(a, b) times cv, added to the anchor's GA and the
// row's GB: |a - b|^2 (kSq: dr/da = 2 (a - b), dr/db = -2 (a - b), the 2 folded into cv) or a.b.
template <bool kSq>
inline void pair_grad(__m512 A, __m512 B, __m512 cv, __m512& GA, __m512& GB) {
  if (kSq) {
    const __m512 D = _mm512_sub_ps(A, B);
    GA = _mm512_fmadd_ps(cv, D, GA);
    GB = _mm512_fnmadd_ps(cv, D, GB);
  } else {
    GA = _mm512_fmadd_ps(cv, B, GA);
    GB = _mm512_fmadd_ps(cv, A, GB);
  }
}
#endif

// One SGD (kAdagrad false: w -= lr g) or Adagrad step on a row; returns |w|^2 after it (for
// clipping). Adagrad is LibTorch's (eps 1e-10): acc += g^2; w -= lr g / (sqrt(acc) + eps). The
// wide path computes g / sqrt(acc + eps^2) with rsqrt() (relative error about 1e-7 against the
// exact form once acc >> 1e-20, far below the update's own size).
template <bool kAdagrad>
inline float step(float* __restrict w, float* __restrict acc, const float* __restrict g, float lr, int64_t d) {
#if defined(__AVX512F__)
  if (wide(d)) {
    const __m512 nl = _mm512_set1_ps(-lr);
    __m512 s = _mm512_setzero_ps();
    for (int64_t c = 0; c < d / 16; ++c) {
      const __m512 x =
          opt_step < kAdagrad ? 1 : 0 > (acc, nullptr, c, _mm512_loadu_ps(w + 16 * c), _mm512_loadu_ps(g + 16 * c), nl);
      _mm512_storeu_ps(w + 16 * c, x);
      s = _mm512_fmadd_ps(x, x, s);
    }
    return _mm512_reduce_add_ps(s);
  }
#endif
  float s = 0;
  for (int64_t i = 0; i < d; ++i) {
    if (kAdagrad) {
      acc[i] += g[i] * g[i];
      w[i] -= lr * g[i] / (std::sqrt(acc[i]) + 1e-10f);
    } else {
      w[i] -= lr * g[i];
    }
    s += w[i] * w[i];
  }
  return s;
}

// Lazy Adam (betas 0.9, 0.999, eps 1e-8) with the bias-corrected step size `st`; returns |w|^2.
inline float lazy_adam(float* __restrict w, float* __restrict m, float* __restrict v, const float* __restrict g,
                       float st, int64_t d) {
#if defined(__AVX512F__)
  if (wide(d)) {  // the same formula; |w|^2 by a tree sum (the plain loop's ends in a serial chain)
    const __m512 nst = _mm512_set1_ps(-st);
    __m512 s = _mm512_setzero_ps();
    for (int64_t c = 0; c < d / 16; ++c) {
      const __m512 x = opt_step<2>(m, v, c, _mm512_loadu_ps(w + 16 * c), _mm512_loadu_ps(g + 16 * c), nst);
      _mm512_storeu_ps(w + 16 * c, x);
      s = _mm512_fmadd_ps(x, x, s);
    }
    return _mm512_reduce_add_ps(s);
  }
#endif
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < d; ++i) {
    m[i] = 0.9f * m[i] + 0.1f * g[i];
    v[i] = 0.999f * v[i] + 0.001f * g[i] * g[i];
    w[i] -= st * m[i] / (std::sqrt(v[i]) + 1e-8f);
    s += w[i] * w[i];
  }
  return s;
}

// Prefetch the cache lines of a row (for writing).
inline void prefetch_row(const float* p, int64_t d) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < d * 4; off += 64) __builtin_prefetch(c + off, 1, 3);
}

}  // namespace siamrec::vec

#pragma GCC diagnostic pop
