// The fused engine's examples: the general step (any fused loss and comparator, through their
// fused forms), the AVX kernels for id tables with dot / squared euclidean, and the example loops
// of both update modes (per example and mini-batch).
#include "train/fused_impl.h"

#include <memory>
#include <numeric>

#include "config/config.h"
#include "util/error.h"
#include "util/names.h"
#include "util/rng.h"

namespace siamrec {

// One example: loss value (already scaled) and its gradient accumulated into g.
double FusedEngine::example(int64_t a, int64_t p, const int64_t* negs, float y, float scale, Grad& g, bool direct,
                            double adam_step) const {
  const int64_t d = s_.dim;
  const int k = s_.k;
  const bool want_dist = want_dist_;
  // Anchor space and entity.
  const FusedSpace& asp = user_space() ? s_.users : s_.items;
  const int64_t ae = anchor_entity(a);
  const float* va = encode(asp, ae, d, g.va.data());
  const float* vp = encode(s_.items, p, d, g.vp.data());
  const float** vn = g.vn_ptr.data();
  for (int j = 0; j < k; ++j) vn[j] = encode(s_.items, negs[j], d, g.vn.data() + j * d);
  // Comparator values (distances when the loss wants them, else similarities) and their gradients:
  // the comparator's own fused form (comparators/*.cc).
  const auto value = [&](const float* x, const float* b) { return cmp_form_->value(x, b, d, want_dist); };
  const auto back = [&](const float* x, const float* b, double v, double up, float* gx, float* gb) {
    cmp_form_->back(x, b, d, v, up, want_dist, gx, gb);
  };
  double vpv = value(va, vp);
  double* vnv = g.vals.data();
  for (int j = 0; j < k; ++j) vnv[j] = value(va, vn[j]);
  double up_p = 0;
  double* upn = g.upn.data();
  double L = coefs(vpv, vnv, y, up_p, upn, k);
  L *= scale, up_p *= scale;
  bool any = up_p != 0;
  for (int j = 0; j < k; ++j) any |= (upn[j] *= scale) != 0;
  // Nothing to learn from this example (e.g. a satisfied hinge), or from one of its negatives: SGD
  // and Adagrad steps with a zero gradient leave rows and state unchanged, so they are skipped
  // (lazy Adam's moments would decay).
  const bool skip_zero = s_.l2 <= 0 && opt_ != Opz::LazyAdam;
  if (!any && skip_zero) return L;
  // Vector gradients.
  float* ga = g.ga.data();
  float* gp = g.gp.data();
  float* gn = g.gn.data();
  vec::zero(ga, d), vec::zero(gp, d), vec::zero(gn, static_cast<int64_t>(k) * d);
  back(va, vp, vpv, up_p, ga, gp);
  for (int j = 0; j < k; ++j) back(va, vn[j], vnv[j], upn[j], ga, gn + j * d);
  if (s_.l2 > 0) {
    float f = static_cast<float>(2 * s_.l2 * scale);
    L += s_.l2 * scale * (dot(va, va, d) + dot(vp, vp, d));
    axpy(f, va, ga, d), axpy(f, vp, gp, d);
    for (int j = 0; j < k; ++j) {
      L += s_.l2 * scale * dot(vn[j], vn[j], d) / k;
      axpy(f / k, vn[j], gn + j * d, d);
    }
  }
  if (direct) {  // per-example mode: update the rows now (Hogwild)
    auto* self = const_cast<FusedEngine*>(this);
    auto upd = [&](FusedSpace& sp, Opt& o, int64_t e, const float* gr) {
      if (!sp.bag) return self->update_row(sp, o, e, gr, adam_step);
      int64_t b = sp.feats->bag_ptr[e], end = sp.feats->bag_ptr[e + 1];
      if (end == b) return;
      float f = sp.sum ? 1.0f : 1.0f / static_cast<float>(end - b);
      float* tmp = g.va.data();  // the anchor vector is no longer needed
      for (int64_t i = 0; i < d; ++i) tmp[i] = f * gr[i];
      for (int64_t q = b; q < end; ++q) self->update_row(sp, o, sp.feats->bag_tok[q], tmp, adam_step);
    };
    // Bag updates use g.va (the anchor's pooled vector, no longer needed) as scratch.
    upd(self->s_.items, self->opt_items_, p, gp);
    for (int j = 0; j < k; ++j)
      if (!(skip_zero && upn[j] == 0)) upd(self->s_.items, self->opt_items_, negs[j], gn + j * d);
    if (user_space())
      upd(self->s_.users, self->opt_users_, ae, ga);
    else
      upd(self->s_.items, self->opt_items_, ae, ga);
    return L;
  }
  // Into the row gradients.
  if (user_space())
    g.users.add(s_.users, ae, ga, d);
  else
    g.items.add(s_.items, ae, ga, d);
  g.items.add(s_.items, p, gp, d);
  for (int j = 0; j < k; ++j)
    if (!(skip_zero && upn[j] == 0)) g.items.add(s_.items, negs[j], gn + j * d, d);
  return L;
}

// The per-example hot path for id tables with a dot or squared-euclidean comparator and SGD,
// Adagrad or lazy Adam (AVX-512, rows of d = 16 C floats, d <= 256; `adam_step` is lazy Adam's
// bias-corrected step size). The anchor row stays in registers; each
// positive/negative row is read once: its gradient (from the old values), its update, its new
// squared norm for clipping, and its share of the anchor's gradient; the anchor is updated last.
// The same arithmetic as example() + update_row(), up to float rounding (Adagrad's 1/sqrt is
// rsqrt14 plus one Newton step: relative error ~1e-7 once the accumulator is >> 1e-20), except
// that a negative drawn twice sees its first update (Hogwild-style); an anchor that is also one of
// the example's item rows takes the general code (fast_aliased). C = 0: chunk count known at run time.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's own _mm512 intrinsics (false positive)
#pragma GCC diagnostic ignored "-Wuninitialized"
// The shared forward of the fast kernels: the anchor row (wa, entity ae), the item rows
// (g.rows: positive, then negatives), the loss, and c[j] = dL/draw_j in g.coef, where raw is
// |a - b|^2 or a.b (the comparator value is +-raw: a distance when the loss wants one, else a
// similarity); `any` is false when no row gets a gradient.
template <int C, bool kSq, int K>
__attribute__((always_inline)) inline FusedEngine::Fwd FusedEngine::fast_forward(int64_t a, int64_t p,
                                                                                 const int64_t* negs, float y,
                                                                                 Grad& g) const {
  const int64_t d = s_.dim;
  const int k = K ? K : s_.k;
  Fwd r;
  r.ae = anchor_entity(a);
  float* wa = r.wa = (user_space() ? s_.users : s_.items).w + r.ae * d;
  float** wb = g.rows.data();
  double* val = g.vals.data();
  // Item rows where this thread has them (its replica of the hot rows, else the shared table).
  RowRef* ref = g.refs.data();
  ref[0] = g.items_at.at(p, d);
  for (int j = 0; j < k; ++j) ref[j + 1] = g.items_at.at(negs[j], d);
  for (int j = 0; j <= k; ++j) wb[j] = ref[j].w;
  const double sign = kSq ? (want_dist_ ? 1.0 : -1.0) : (want_dist_ ? -1.0 : 1.0);
#if defined(__AVX512F__)
  {  // rows of 16 nc floats (compile-time nc when C > 0); the anchor's chunks in registers
    const int nc = C ? C : static_cast<int>(d / 16);
    constexpr int kMax = C ? C : 16;
    __m512 A[kMax];
    for (int c = 0; c < nc; ++c) A[c] = _mm512_loadu_ps(wa + 16 * c);
    for (int j = 0; j <= k; ++j) {
      const float* b = wb[j];
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
      for (int c = 0; c < nc; ++c) {
        __m512 x = A[c], z = _mm512_loadu_ps(b + 16 * c);
        if (kSq) x = z = _mm512_sub_ps(x, z);
        if (c & 1)
          s1 = _mm512_fmadd_ps(x, z, s1);
        else
          s0 = _mm512_fmadd_ps(x, z, s0);
      }
      val[j] = sign * _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    }
  }
#else
  for (int j = 0; j <= k; ++j) val[j] = sign * (kSq ? vec::sqdist(wa, wb[j], d) : vec::dot(wa, wb[j], d));
#endif
  float* c = g.coef.data();
  const double f = sign * (kSq ? 2.0 : 1.0);  // the factor 2 of squared distances folded in
  // The triplet hinge without L2 (the common case) directly: coefs() and the coefficients in one
  // pass, and whether anything is learnt decided right after the forward, so that the branch on
  // it, which the CPU cannot predict, resolves early (measured against coefs() and the generic
  // loop below: 3-4% faster per example, 4-5% in mini-batches).
  if (triplet_ && s_.l2 <= 0) {
    const TripletPass t = triplet_pass(val, k, s_.margin, inv_k_, f, c);
    r.L = t.L, r.any = t.any;
    return r;
  }
  double up_p = 0;
  double* upn = g.upn.data();
  double L = coefs(val[0], val + 1, y, up_p, upn, k);
  if (s_.l2 > 0) {
    L += s_.l2 * (vec::dot(wa, wa, d) + vec::dot(wb[0], wb[0], d));
    for (int j = 1; j <= k; ++j) L += s_.l2 * vec::dot(wb[j], wb[j], d) / k;
  }
  c[0] = static_cast<float>(up_p * f);
  r.any = c[0] != 0 || s_.l2 > 0;
  for (int j = 0; j < k; ++j) r.any |= (c[j + 1] = static_cast<float>(upn[j] * f)) != 0;
  r.L = L;
  return r;
}

template <int C, bool kSq, FusedEngine::Opz kOpt, int K>
double FusedEngine::fast_example(int64_t a, int64_t p, const int64_t* negs, float y, Grad& g, float adam_step) {
#if defined(__AVX512F__)
  constexpr bool kAdagrad = kOpt == Opz::Adagrad, kAdam = kOpt == Opz::LazyAdam;
  const int64_t d = C ? 16 * C : s_.dim;
  const int nc = C ? C : static_cast<int>(d / 16);
  const int k = K ? K : s_.k;
  const Fwd fw = fast_forward<C, kSq, K>(a, p, negs, y, g);
  // Rows with c = 0 and no L2 get no gradient and are left alone with SGD/Adagrad (a zero gradient
  // changes nothing); lazy Adam steps every row of the example (its moments decay).
  if (!fw.any && !kAdam) return fw.L;
  float* const wa = fw.wa;
  const int64_t ae = fw.ae;
  float* const* wb = g.rows.data();
  const float* cf = g.coef.data();
  const float l2 = static_cast<float>(s_.l2);
  Opt& aopt = user_space() ? opt_users_ : opt_items_;
  const float mn = static_cast<float>(s_.max_norm);
  const __m512 nlr = _mm512_set1_ps(kAdam ? -adam_step : -static_cast<float>(s_.lr));
  constexpr int kO = static_cast<int>(kOpt);
  constexpr int kMax = C ? C : 16;
  __m512 A[kMax], GA[kMax], X[kMax];
  const __m512 l2a = _mm512_set1_ps(2 * l2);
  for (int c = 0; c < nc; ++c) {
    A[c] = _mm512_loadu_ps(wa + 16 * c);
    GA[c] = l2 > 0 ? _mm512_mul_ps(l2a, A[c]) : _mm512_setzero_ps();
  }
  for (int j = 0; j <= k; ++j) {
    const float cj = cf[j];
    const float l2j = 2 * l2 * (j == 0 ? 1.0f : 1.0f / static_cast<float>(k));
    if (cj == 0 && l2 <= 0 && !kAdam) continue;
    float* w = wb[j];
    float* s1 = kAdagrad || kAdam ? g.refs[j].s1 : nullptr;
    float* s2 = kAdam ? g.refs[j].s2 : nullptr;
    const __m512 cv = _mm512_set1_ps(cj), lv = _mm512_set1_ps(l2j);
    __m512 q = _mm512_setzero_ps();
    for (int c = 0; c < nc; ++c) {
      const __m512 B = _mm512_loadu_ps(w + 16 * c);
      __m512 GB = l2 > 0 ? _mm512_mul_ps(lv, B) : _mm512_setzero_ps();
      vec::pair_grad<kSq>(A[c], B, cv, GA[c], GB);
      X[c] = vec::opt_step<kO>(s1, s2, c, B, GB, nlr);
      q = _mm512_fmadd_ps(X[c], X[c], q);
    }
    vec::store_clipped(w, X, nc, q, mn);
  }
  float* s1 = kAdagrad || kAdam ? aopt.s1.data() + ae * d : nullptr;
  float* s2 = kAdam ? aopt.s2.data() + ae * d : nullptr;
  __m512 q = _mm512_setzero_ps();
  for (int c = 0; c < nc; ++c) {
    X[c] = vec::opt_step<kO>(s1, s2, c, A[c], GA[c], nlr);
    q = _mm512_fmadd_ps(X[c], X[c], q);
  }
  vec::store_clipped(wa, X, nc, q, mn);
  return fw.L;
#else
  return example(a, p, negs, y, 1.0f, g, /*direct=*/true, adam_step);
#endif
}
#pragma GCC diagnostic pop

// The mini-batch hot path (same configurations as fast_example): the example's gradient, times
// `scale`, accumulated into the thread's gradient rows in one pass.
template <int C, bool kSq, int K>
double FusedEngine::fast_gradient(int64_t a, int64_t p, const int64_t* negs, float y, float scale, Grad& g) {
#if defined(__AVX512F__)
  const int64_t d = C ? 16 * C : s_.dim;
  const int nc = C ? C : static_cast<int>(d / 16);
  const int k = K ? K : s_.k;
  const Fwd fw = fast_forward<C, kSq, K>(a, p, negs, y, g);
  const double L = fw.L * scale;
  // Zero-gradient rows matter to lazy Adam (the LibTorch engine's sparse step decays their moments).
  const bool all_rows = opt_ == Opz::LazyAdam;
  if (!fw.any && !all_rows) return L;
  float* const wa = fw.wa;
  const int64_t ae = fw.ae;
  float* const* wb = g.rows.data();
  const float* cf = g.coef.data();
  const float l2 = static_cast<float>(s_.l2);
  // Gradient rows first (adding rows may move a table's storage), then pointers.
  auto& ta = user_space() ? g.users : g.items;
  size_t* off = g.offs.data();
  for (int j = 0; j <= k; ++j)
    if (cf[j] != 0 || l2 > 0 || all_rows) off[j] = g.items.offset(j == 0 ? p : negs[j - 1], d);
  float* ga = ta.row(ae, d);
  constexpr int kMax = C ? C : 16;
  __m512 A[kMax], GA[kMax];
  const __m512 l2a = _mm512_set1_ps(2 * l2 * scale);
  for (int c = 0; c < nc; ++c) {
    A[c] = _mm512_loadu_ps(wa + 16 * c);
    GA[c] = _mm512_loadu_ps(ga + 16 * c);
    if (l2 > 0) GA[c] = _mm512_fmadd_ps(l2a, A[c], GA[c]);
  }
  for (int j = 0; j <= k; ++j) {
    if (cf[j] == 0 && l2 <= 0 && !all_rows) continue;
    float* gb = g.items.g.data() + off[j];
    const float* w = wb[j];
    const __m512 cv = _mm512_set1_ps(cf[j] * scale);
    const __m512 lv = _mm512_set1_ps(2 * l2 * scale * (j == 0 ? 1.0f : 1.0f / static_cast<float>(k)));
    for (int c = 0; c < nc; ++c) {
      const __m512 B = _mm512_loadu_ps(w + 16 * c);
      __m512 GB = _mm512_loadu_ps(gb + 16 * c);
      if (l2 > 0) GB = _mm512_fmadd_ps(lv, B, GB);
      vec::pair_grad<kSq>(A[c], B, cv, GA[c], GB);
      _mm512_storeu_ps(gb + 16 * c, GB);
    }
  }
  // Re-read the anchor's gradient pointer: it may share the items table with the rows above.
  ga = ta.g.data() + ta.offset(ae, d);
  for (int c = 0; c < nc; ++c) _mm512_storeu_ps(ga + 16 * c, GA[c]);
  return L;
#else
  return example(a, p, negs, y, scale, g);
#endif
}

// The mini-batch step of one example: the fast kernel for its configurations, else the general one.
double FusedEngine::batch_example(const Positive& e, const int64_t* negs, float scale, Grad& g) {
  if (!fast_ok_ || fast_aliased(e, negs)) return example(e.a, e.p, negs, e.y, scale, g);
  return fast_dispatch(s_.dim, sq_, 0, s_.k, [&](auto c, auto sq, auto, auto kk) {
    return fast_gradient<decltype(c)::value, decltype(sq)::value, decltype(kk)::value>(e.a, e.p, negs, e.y, scale, g);
  });
}

// Item anchors (item_item, label builders) live in the item table: when the anchor is also the
// positive or a negative of its example, the fast kernels would overwrite one of its two updates.
bool FusedEngine::fast_aliased(const Positive& e, const int64_t* negs) const {
  if (s_.user_anchor) return false;  // user rows are never item rows
  if (e.a == e.p) return true;
  for (int j = 0; j < s_.k; ++j)
    if (negs[j] == e.a) return true;
  return false;
}

// The per-example step: the fast kernel for its configurations, else the general one.
double FusedEngine::direct_example(const Positive& e, const int64_t* negs, Grad& g, double adam_step) {
  if (!fast_ok_ || fast_aliased(e, negs)) return example(e.a, e.p, negs, e.y, 1.0f, g, /*direct=*/true, adam_step);
  return fast_dispatch(s_.dim, sq_, static_cast<int>(opt_), s_.k, [&](auto c, auto sq, auto o, auto kk) {
    return fast_example<decltype(c)::value, decltype(sq)::value, static_cast<Opz>(decltype(o)::value),
                        decltype(kk)::value>(e.a, e.p, negs, e.y, g, static_cast<float>(adam_step));
  });
}

double FusedEngine::run_examples(Grad& g, const Positive* ex, int64_t n, float scale) {
  if (cml_ok_) return cml<true>(g, ex, n, scale);
  if (!fast_ok_)
    return pipeline(g, ex, n, false,
                    [&](int64_t r, const int64_t* negs) { return example(ex[r].a, ex[r].p, negs, ex[r].y, scale, g); });
  // batch_example() with the configuration dispatched once, not per example.
  return fast_dispatch(s_.dim, sq_, 0, s_.k, [&](auto c, auto q, auto, auto kk) {
    return pipeline(g, ex, n, false, [&](int64_t r, const int64_t* negs) {
      const Positive& e = ex[r];
      if (fast_aliased(e, negs)) return example(e.a, e.p, negs, e.y, scale, g);
      return fast_gradient<decltype(c)::value, decltype(q)::value, decltype(kk)::value>(e.a, e.p, negs, e.y, scale, g);
    });
  });
}

// Per-example Hogwild (StarSpace / LightFM / fastText style): each example's update is applied at
// once, no gradient tables. Lazy Adam's bias correction is refreshed every 256 steps.
double FusedEngine::run_per_example(Grad& g, const Positive* ex, int64_t n) {
  const bool sq = sq_;
  if (cml_ok_) return cml<false>(g, ex, n, 1.0f);
  double step = 0;
  auto adam = [&](int64_t r) {
    if (opt_ == Opz::LazyAdam && (r & 255) == 0) step = adam_step_size(static_cast<double>(adam_step_ += 256));
  };
  if (!fast_ok_)
    return pipeline(g, ex, n, true, [&](int64_t r, const int64_t* negs) {
      adam(r);
      return example(ex[r].a, ex[r].p, negs, ex[r].y, 1.0f, g, /*direct=*/true, step);
    });
  // The configuration is dispatched once, not per example (measured: 4-6% faster).
  return fast_dispatch(s_.dim, sq, static_cast<int>(opt_), s_.k, [&](auto c, auto q, auto o, auto kk) {
    return pipeline(g, ex, n, true, [&](int64_t r, const int64_t* negs) {
      adam(r);
      const Positive& e = ex[r];
      if (fast_aliased(e, negs)) return example(e.a, e.p, negs, e.y, 1.0f, g, /*direct=*/true, step);
      return fast_example<decltype(c)::value, decltype(q)::value, static_cast<Opz>(decltype(o)::value),
                          decltype(kk)::value>(e.a, e.p, negs, e.y, g, static_cast<float>(step));
    });
  });
}

}  // namespace siamrec
