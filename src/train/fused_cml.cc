// The fused engine's specialised loop for the CML family (see run_cml below).
#include "train/fused_impl.h"

#include <memory>
#include <numeric>

#include "config/config.h"
#include "util/error.h"
#include "util/names.h"
#include "util/rng.h"

namespace siamrec {

// The loop of the CML family, the common case (user anchors, 1 to kCmlMaxK uniform negatives, the
// triplet hinge without L2, dot or squared euclidean, id tables of 16 C floats): the pipeline and
// fast_example() (kGrad false) or fast_gradient() (kGrad true: one mini-batch, as run_examples())
// written as one loop, with nothing decided per example but the hinges, the anchor in registers
// and the example's values on the stack (K = 1: one negative at compile time; 0: k at run time).
// The same arithmetic and the same random numbers in the same order as the general loop, so the
// same result to the bit (tested).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own _mm512 intrinsics (false positive)
#pragma GCC diagnostic ignored "-Wuninitialized"
template <int C, bool kSq, FusedEngine::Opz kOpt, int K, bool kGrad>
double FusedEngine::run_cml(Grad& g, const Positive* ex, int64_t n, float scale) {
#if defined(__AVX512F__)
  constexpr bool kAdagrad = kOpt == Opz::Adagrad, kAdam = kOpt == Opz::LazyAdam;
  constexpr bool kState = !kGrad;  // per example: prefetch the optimizer state too
  constexpr int kO = static_cast<int>(kOpt), kSlot = K ? K : kCmlMaxK;
  constexpr int64_t d = 16 * C, kDraw = 16, kCheck = 8, kRows = 4, kRing = 32;
  const int k = K ? K : s_.k;
  int32_t ring[kRing * kSlot];
  auto slot = [&](int64_t r) { return ring + (r & (kRing - 1)) * kSlot; };
  const uint64_t range = static_cast<uint64_t>(sampler_.uniform_range());
  const TupleBuilder::PositiveBits pb = builder_.positive_bits();
  const bool joint = s_.joint;
  float* const UW = joint ? s_.items.w + s_.n_items * d : s_.users.w;
  const Opt& uo = joint ? opt_items_ : opt_users_;
  const int64_t uoff = joint ? s_.n_items * d : 0;
  float* const U1 = kAdagrad || kAdam ? const_cast<float*>(uo.s1.data()) + uoff : nullptr;
  float* const U2 = kAdam ? const_cast<float*>(uo.s2.data()) + uoff : nullptr;
  // Item rows: the shared table, or this thread's replica of the hot ones (train.hot_rows).
  const ItemRows items = g.items_at;
  auto draw = [&]() { return static_cast<int32_t>((static_cast<unsigned __int128>(g.next()) * range) >> 64); };
  auto bit = [&](int32_t a, int32_t x) { return static_cast<uint64_t>(a) * pb.stride + static_cast<uint64_t>(x); };
  auto bad = [&](int32_t a, int32_t p, int32_t x) {
    if (x == p || builder_.heldout(x)) return true;
    const uint64_t b = bit(a, x);
    return ((pb.bits[b >> 6] >> (b & 63)) & 1) != 0;
  };
  auto draw_row = [&](int64_t r) {
    int32_t* o = slot(r);
    for (int j = 0; j < k; ++j) {
      const int32_t x = draw();
      o[j] = x;
      __builtin_prefetch(pb.bits + (bit(ex[r].a, x) >> 6));
    }
  };
  auto check_row = [&](int64_t r) {
    int32_t* o = slot(r);
    for (int j = 0; j < k; ++j) {
      int32_t x = o[j];
      for (int tries = 0; tries < 50 && bad(ex[r].a, ex[r].p, x); ++tries) x = draw();
      o[j] = x;
    }
  };
  auto prefetch_row = [&](const RowRef& x) {
    vec::prefetch_row(x.w, d);
    if (kState && (kAdagrad || kAdam)) vec::prefetch_row(x.s1, d);
    if (kState && kAdam) vec::prefetch_row(x.s2, d);
  };
  auto prefetch = [&](int64_t r) {
    const int64_t ua = ex[r].a * d;
    prefetch_row({UW + ua, U1 ? U1 + ua : nullptr, U2 ? U2 + ua : nullptr});
    prefetch_row(items.at(ex[r].p, d));
    const int32_t* o = slot(r);
    for (int j = 0; j < k; ++j) prefetch_row(items.at(o[j], d));
  };
  for (int64_t r = 0; r < std::min(n, kDraw); ++r) draw_row(r);
  for (int64_t r = 0; r < std::min(n, kCheck); ++r) check_row(r);
  for (int64_t r = 0; r < std::min(n, kRows); ++r) prefetch(r);
  const double sign = kSq ? 1.0 : -1.0, f = kSq ? 2.0 : -1.0, m = s_.margin, inv_k = inv_k_;
  const float mn = static_cast<float>(s_.max_norm);
  __m512 nlr = _mm512_set1_ps(-static_cast<float>(s_.lr));
  double L = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (r + kDraw < n) draw_row(r + kDraw);
    if (r + kCheck < n) check_row(r + kCheck);
    if (r + kRows < n) prefetch(r + kRows);
    if (!kGrad && kAdam && (r & 255) == 0)
      nlr = _mm512_set1_ps(-static_cast<float>(adam_step_size(static_cast<double>(adam_step_ += 256))));
    const int64_t a = ex[r].a;
    const int32_t* negs = slot(r);
    float* const wa = UW + a * d;
    RowRef row[kSlot + 1];
    float* wrow[kSlot + 1];
    row[0] = items.at(ex[r].p, d);
    for (int j = 0; j < k; ++j) row[j + 1] = items.at(negs[j], d);
    for (int j = 0; j <= k; ++j) wrow[j] = row[j].w;
    __m512 A[C];
    for (int c = 0; c < C; ++c) A[c] = _mm512_loadu_ps(wa + 16 * c);
    double val[kSlot + 1];
    for (int j = 0; j <= k; ++j) {
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      for (int c = 0; c < C; ++c) {
        __m512 x = A[c], z = _mm512_loadu_ps(wrow[j] + 16 * c);
        if (kSq) x = z = _mm512_sub_ps(x, z);
        if (c & 1)
          s1 = _mm512_fmadd_ps(x, z, s1);
        else
          s0 = _mm512_fmadd_ps(x, z, s0);
      }
      val[j] = sign * _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    }
    // The hinges and coefficients as triplet_pass() (written out here: measured 2-6% faster than
    // calling it, inlined, on the benchmark configuration; the bit test holds the two together).
    float cf[kSlot + 1];
    double Lx = 0, up_p = 0;
    for (int j = 1; j <= k; ++j) {
      const double h = val[0] - val[j] + m;
      const bool on = h > 0;
      Lx += on ? h * inv_k : 0.0;
      up_p += on ? inv_k : 0.0;
      cf[j] = on ? static_cast<float>(-inv_k * f) : 0.0f;
    }
    cf[0] = static_cast<float>(up_p * f);
    if (!(up_p > 0) && !kAdam) continue;
    if constexpr (kGrad) {
      // fast_gradient(): the example's gradient times `scale` into the thread's gradient rows.
      L += Lx * scale;
      auto& ta = joint ? g.items : g.users;
      const int64_t ae = joint ? s_.n_items + a : a;
      size_t off[kSlot + 1];
      for (int j = 0; j <= k; ++j)
        if (cf[j] != 0 || kAdam) off[j] = g.items.offset(j == 0 ? ex[r].p : negs[j - 1], d);
      float* ga = ta.row(ae, d);
      __m512 GA[C];
      for (int c = 0; c < C; ++c) GA[c] = _mm512_loadu_ps(ga + 16 * c);
      for (int j = 0; j <= k; ++j) {
        if (cf[j] == 0 && !kAdam) continue;
        float* gb = g.items.g.data() + off[j];
        const __m512 cv = _mm512_set1_ps(cf[j] * scale);
        for (int c = 0; c < C; ++c) {
          const __m512 B = _mm512_loadu_ps(wrow[j] + 16 * c);
          __m512 GB = _mm512_loadu_ps(gb + 16 * c);
          vec::pair_grad<kSq>(A[c], B, cv, GA[c], GB);
          _mm512_storeu_ps(gb + 16 * c, GB);
        }
      }
      for (int c = 0; c < C; ++c) _mm512_storeu_ps(ga + 16 * c, GA[c]);  // no row added since ta.row()
      continue;
    }
    L += Lx;
    __m512 GA[C], X[C];
    for (int c = 0; c < C; ++c) GA[c] = _mm512_setzero_ps();
    for (int j = 0; j <= k; ++j) {
      if (cf[j] == 0 && !kAdam) continue;
      float* const w = wrow[j];
      const __m512 cv = _mm512_set1_ps(cf[j]);
      __m512 qn = _mm512_setzero_ps();
      for (int c = 0; c < C; ++c) {
        const __m512 B = _mm512_loadu_ps(w + 16 * c);
        __m512 GB = _mm512_setzero_ps();
        vec::pair_grad<kSq>(A[c], B, cv, GA[c], GB);
        X[c] = vec::opt_step<kO>(row[j].s1, row[j].s2, c, B, GB, nlr);
        qn = _mm512_fmadd_ps(X[c], X[c], qn);
      }
      vec::store_clipped(w, X, C, qn, mn);
    }
    __m512 qn = _mm512_setzero_ps();
    for (int c = 0; c < C; ++c) {
      X[c] = vec::opt_step<kO>(U1 ? U1 + a * d : nullptr, U2 ? U2 + a * d : nullptr, c, A[c], GA[c], nlr);
      qn = _mm512_fmadd_ps(X[c], X[c], qn);
    }
    vec::store_clipped(wa, X, C, qn, mn);
  }
  return L;
#else
  (void)g, (void)ex, (void)n, (void)scale;
  return 0;
#endif
}
#pragma GCC diagnostic pop

// run_cml() with the configuration dispatched (cml_ok_ holds: d = 32, 64 or 128).
template <bool kGrad>
double FusedEngine::cml(Grad& g, const Positive* ex, int64_t n, float scale) {
  return fast_dispatch(s_.dim, sq_, static_cast<int>(opt_), s_.k, [&](auto c, auto q, auto o, auto kk) {
    if constexpr (decltype(c)::value == 0)
      return 0.0;  // not reached
    else
      return run_cml<decltype(c)::value, decltype(q)::value, static_cast<Opz>(decltype(o)::value), decltype(kk)::value,
                     kGrad>(g, ex, n, scale);
  });
}

template double FusedEngine::cml<true>(Grad& g, const Positive* ex, int64_t n, float scale);
template double FusedEngine::cml<false>(Grad& g, const Positive* ex, int64_t n, float scale);

}  // namespace siamrec
