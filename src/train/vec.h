// Vector kernels of the fused engine's hot loop (train/fused.cc): dot products, distances, axpy and
// the row-wise optimizer updates, over rows of `d` floats.
//
// With AVX-512 (the default -march=native build on this machine) rows whose length is a multiple
// of 16 take an intrinsic path: reductions use several accumulators and a tree sum, and Adagrad
// uses rsqrt14 plus one Newton step instead of a sqrt and a division (measured: the in-order
// scalar reduction and the sqrt/div pair were the top of the profile, docs/benchmarks.md). Any
// other length or machine takes the plain loops, which compute the same values up to rounding
// (and, for Adagrad, the epsilon's form: see adagrad()).
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
    for (int64_t i = 0; i < d; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(al, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    return;
  }
#endif
  for (int64_t i = 0; i < d; ++i) y[i] += alpha * x[i];
}

// gx += u (x - b); gb -= u (x - b): the gradient of u/2 |x - b|^2 w.r.t. both sides.
inline void diff_pair(float u, const float* __restrict x, const float* __restrict b, float* __restrict gx, float* __restrict gb,
                      int64_t d) {
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
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_mul_ps(r, r), _mm512_set1_ps(1.5f)));
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
    const __m512 nl = _mm512_set1_ps(-lr), tiny = _mm512_set1_ps(1e-20f);
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 16) {
      __m512 gi = _mm512_loadu_ps(g + i);
      if (kAdagrad) {
        __m512 a = _mm512_fmadd_ps(gi, gi, _mm512_loadu_ps(acc + i));
        _mm512_storeu_ps(acc + i, a);
        gi = _mm512_mul_ps(gi, rsqrt(_mm512_add_ps(a, tiny)));
      }
      __m512 x = _mm512_fmadd_ps(nl, gi, _mm512_loadu_ps(w + i));
      _mm512_storeu_ps(w + i, x);
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
inline float lazy_adam(float* __restrict w, float* __restrict m, float* __restrict v, const float* __restrict g, float st,
                       int64_t d) {
#if defined(__AVX512F__)
  if (wide(d)) {  // the same formula; |w|^2 by a tree sum (the plain loop's ends in a serial chain)
    const __m512 b1 = _mm512_set1_ps(0.9f), c1 = _mm512_set1_ps(0.1f), b2 = _mm512_set1_ps(0.999f), c2 = _mm512_set1_ps(0.001f);
    const __m512 nst = _mm512_set1_ps(-st), eps = _mm512_set1_ps(1e-8f);
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 16) {
      const __m512 G = _mm512_loadu_ps(g + i);
      const __m512 M = _mm512_fmadd_ps(b1, _mm512_loadu_ps(m + i), _mm512_mul_ps(c1, G));
      const __m512 V = _mm512_fmadd_ps(b2, _mm512_loadu_ps(v + i), _mm512_mul_ps(c2, _mm512_mul_ps(G, G)));
      _mm512_storeu_ps(m + i, M);
      _mm512_storeu_ps(v + i, V);
      const __m512 X = _mm512_fmadd_ps(nst, _mm512_div_ps(M, _mm512_add_ps(_mm512_sqrt_ps(V), eps)), _mm512_loadu_ps(w + i));
      _mm512_storeu_ps(w + i, X);
      s = _mm512_fmadd_ps(X, X, s);
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
