// The fused engine's internals shared by its three files: fused.cc (state and scheduling: shares,
// epochs, optimizer steps, checkpoints), fused_kernels.cc (the general per-example step, the AVX
// kernels and the example loops) and fused_cml.cc (the specialised loop of the CML family). Only
// those include it. Everything here is inline: the hot loops of every file inline it.
#pragma once
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "train/fused.h"
#include "util/vec.h"

namespace siamrec {

using vec::axpy;
using vec::dot;

// ---- where a thread's item rows are ------------------------------------------------------------
// An item row's weights and optimizer state (s1, s2: null when the optimizer keeps none).
struct RowRef {
  float* w;
  float* s1;
  float* s2;
};
// The item table as one thread sees it: the shared table, or, for the rows with a slot in
// FusedEngine::hot_slot_ (train.hot_rows), the thread's own replica of them.
struct ItemRows {
  float *w = nullptr, *s1 = nullptr, *s2 = nullptr;   // the shared table and its state
  const int32_t* slot = nullptr;                      // row -> replica slot (-1: shared); null: no replica
  float *rw = nullptr, *r1 = nullptr, *r2 = nullptr;  // this thread's replica and its state
  __attribute__((always_inline)) RowRef at(int64_t r, int64_t d) const {
    if (slot) {
      const int32_t q = slot[r];
      if (q >= 0) {
        const int64_t o = static_cast<int64_t>(q) * d;
        return {rw + o, r1 ? r1 + o : nullptr, r2 ? r2 + o : nullptr};
      }
    }
    const int64_t o = r * d;
    return {w + o, s1 ? s1 + o : nullptr, s2 ? s2 + o : nullptr};
  }
};

// ---- per-thread sparse gradient ---------------------------------------------------------------
// Per-thread state, cache-line aligned so that one thread's writes (rng, scratch) never touch a
// line another thread reads.
struct alignas(64) FusedEngine::Grad {
  struct Table {
    std::vector<int32_t> slot;
    std::vector<int64_t> rows;
    std::vector<float> g;
    // Offset of row r's gradient in g (a new zero row when r has none yet). Adding rows may move
    // g: take pointers after the last offset() of an example.
    size_t offset(int64_t r, int64_t dim) {
      if (slot[r] < 0) {
        slot[r] = static_cast<int32_t>(rows.size());
        rows.push_back(r);
        size_t off = g.size();
        if (off + dim > g.capacity()) g.reserve(std::max(2 * g.capacity(), off + dim));
        g.resize(off + dim, 0.0f);
      }
      return static_cast<size_t>(slot[r]) * dim;
    }
    float* row(int64_t r, int64_t dim) {
      size_t off = offset(r, dim);  // before g.data(): offset() may move g
      return g.data() + off;
    }
    // Adds an entity's vector gradient to its row, or to its bag's rows (pooled: mean or sum).
    void add(const FusedSpace& sp, int64_t e, const float* grad, int64_t dim) {
      if (!sp.bag) return axpy(1.0f, grad, row(e, dim), dim);
      int64_t b = sp.feats->bag_ptr[e], end = sp.feats->bag_ptr[e + 1];
      if (end == b) return;
      float f = sp.sum ? 1.0f : 1.0f / static_cast<float>(end - b);
      for (int64_t q = b; q < end; ++q) axpy(f, grad, row(sp.feats->bag_tok[q], dim), dim);
    }
    void clear() {
      for (auto r : rows) slot[r] = -1;
      rows.clear();
      g.clear();
    }
  };
  Table items, users;
  std::vector<float> va, vp, vn, ga, gp, gn;  // scratch
  std::vector<double> vals, upn;
  std::vector<const float*> vn_ptr;
  std::vector<float*> rows;  // fast kernels: the example's item rows and their dL/draw
  std::vector<RowRef> refs;  // and where they are (weights and optimizer state)
  std::vector<float> coef;
  std::vector<size_t> offs;
  std::vector<int64_t> negs;
  ItemRows items_at;                    // where this thread reads and writes item rows
  AlignedFloats rep_w, rep_s1, rep_s2;  // its replica of the hot item rows (train.hot_rows)
  std::vector<Positive> share;          // Hogwild: this thread's share of the positives (split_shares)
  std::vector<Positive> batch;          // the share in this epoch's order
  alignas(64) uint64_t rng = 0;         // splitmix64 state
  uint64_t next() {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

// An entity's vector: its row, or the pooled rows of its bag (written to tmp).
inline const float* encode(const FusedSpace& sp, int64_t e, int64_t dim, float* tmp) {
  if (!sp.bag) return sp.w + e * dim;
  std::fill(tmp, tmp + dim, 0.0f);
  int64_t b = sp.feats->bag_ptr[e], end = sp.feats->bag_ptr[e + 1];
  for (int64_t q = b; q < end; ++q) axpy(1.0f, sp.w + sp.feats->bag_tok[q] * dim, tmp, dim);
  if (!sp.sum && end > b) {
    float inv = 1.0f / static_cast<float>(end - b);
    for (int64_t i = 0; i < dim; ++i) tmp[i] *= inv;
  }
  return tmp;
}

// The loss of one example from its comparator values (vpv: positive, vnv: k negatives) and its
// derivatives up_p = dL/dvpv, upn[j] = dL/dvnv[j]: the loss's own fused form (losses/*.cc).
__attribute__((always_inline)) inline double FusedEngine::coefs(double vpv, const double* vnv, float y, double& up_p,
                                                                double* upn, int k) const {
  return loss_form_->coefs(loss_args_, vpv, vnv, y, up_p, upn, k);
}

// The triplet hinge without L2 over an example's comparator values val[0] (positive) and
// val[1..k] (negatives): the loss (mean hinge over the negatives) in L, c[j] = dL/dval_j times f
// (f folds in the comparator's sign and factor), and whether anything is learnt. One pass, so that
// the branch on it, which the CPU cannot predict, resolves early; shared by fast_forward() and
// run_cml(), which must give the same bits.
struct TripletPass {
  double L;  // the example's loss
  bool any;  // some row gets a gradient
};
__attribute__((always_inline)) inline TripletPass triplet_pass(const double* val, int k, double margin, double inv_k,
                                                               double f, float* c) {
  double L = 0, up_p = 0;
  for (int j = 1; j <= k; ++j) {
    const double h = val[0] - val[j] + margin;
    const bool on = h > 0;
    L += on ? h * inv_k : 0.0;
    up_p += on ? inv_k : 0.0;
    c[j] = on ? static_cast<float>(-inv_k * f) : 0.0f;
  }
  c[0] = static_cast<float>(up_p * f);
  return {L, up_p > 0};
}

// Calls f(C, kSq, kOpt, K) with compile-time constants: the row's chunk count (2, 4, 8, or 0 for
// any other multiple of 16), the comparator (squared euclidean or dot), the optimizer (0 SGD,
// 1 Adagrad, 2 lazy Adam: FusedEngine::Opz) and the negatives per example (1, or 0: any).
template <class F>
inline double fast_dispatch(int64_t dim, bool sq, int opt, int k, F&& f) {
  auto by_k = [&](auto c, auto s, auto o) {
    return k == 1 ? f(c, s, o, std::integral_constant<int, 1>{}) : f(c, s, o, std::integral_constant<int, 0>{});
  };
  auto by_opt = [&](auto c, auto s) {
    if (opt == 1) return by_k(c, s, std::integral_constant<int, 1>{});
    if (opt == 2) return by_k(c, s, std::integral_constant<int, 2>{});
    return by_k(c, s, std::integral_constant<int, 0>{});
  };
  auto by_cmp = [&](auto c) { return sq ? by_opt(c, std::true_type{}) : by_opt(c, std::false_type{}); };
  switch (dim) {
    case 32:
      return by_cmp(std::integral_constant<int, 2>{});
    case 64:
      return by_cmp(std::integral_constant<int, 4>{});
    case 128:
      return by_cmp(std::integral_constant<int, 8>{});
    default:
      return by_cmp(std::integral_constant<int, 0>{});
  }
}

// The example loop of both modes, software-pipelined: example r + 16's negatives are drawn and
// the words of the known-positive bitmap that test them prefetched; example r + 8's are checked
// (and redrawn when they are known positives, the positive itself or held out); example r + 4's
// rows (and, with `state`, their optimizer state) are prefetched; then body(r, negatives of r)
// runs. The memory accesses of later examples are thus in flight while r computes.
template <class Body>
double FusedEngine::pipeline(Grad& g, const Positive* ex, int64_t n, bool state, Body&& body) const {
  const int k = s_.k;
  constexpr int64_t kDraw = 16, kCheck = 8, kRows = 4, kRing = 32;  // kRing > kDraw, a power of 2
  const int kk = std::max(1, k);
  g.negs.resize(static_cast<size_t>(kRing) * kk);
  int64_t* ring = g.negs.data();
  auto slot = [&](int64_t r) { return ring + (r & (kRing - 1)) * kk; };
  const uint64_t range = static_cast<uint64_t>(sampler_.uniform_range());
  const TupleBuilder::PositiveBits pb = builder_.positive_bits();
  auto draw = [&]() -> int32_t {
    if (range) return static_cast<int32_t>((static_cast<unsigned __int128>(g.next()) * range) >> 64);
    return sampler_.map(g.next());
  };
  auto bad = [&](int32_t a, int32_t p, int32_t x) {
    if (x == p || builder_.heldout(x)) return true;
    if (pb.bits) {
      uint64_t b = static_cast<uint64_t>(a) * pb.stride + static_cast<uint64_t>(x);
      return ((pb.bits[b >> 6] >> (b & 63)) & 1) != 0;
    }
    return builder_.is_positive(a, x);
  };
  auto draw_row = [&](int64_t r) {
    int64_t* o = slot(r);
    for (int j = 0; j < k; ++j) {
      int32_t x = draw();
      o[j] = x;
      if (pb.bits)
        __builtin_prefetch(pb.bits + ((static_cast<uint64_t>(ex[r].a) * pb.stride + static_cast<uint64_t>(x)) >> 6));
    }
  };
  auto check_row = [&](int64_t r) {
    int64_t* o = slot(r);
    for (int j = 0; j < k; ++j) {
      int32_t x = static_cast<int32_t>(o[j]);
      for (int tries = 0; tries < 50 && bad(ex[r].a, ex[r].p, x); ++tries) x = draw();
      o[j] = x;
    }
  };
  for (int64_t r = 0; r < std::min(n, kDraw); ++r) draw_row(r);
  for (int64_t r = 0; r < std::min(n, kCheck); ++r) check_row(r);
  for (int64_t r = 0; r < std::min(n, kRows); ++r) prefetch_example(ex[r], slot(r), state);
  double L = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (r + kDraw < n) draw_row(r + kDraw);
    if (r + kCheck < n) check_row(r + kCheck);
    if (r + kRows < n) prefetch_example(ex[r + kRows], slot(r + kRows), state);
    L += body(r, slot(r));
  }
  return L;
}

// Prefetches the rows example r will read (and, per example, write with their optimizer state).
inline void FusedEngine::prefetch_example(const Positive& f, const int64_t* negs, bool state) const {
  const int64_t d = s_.dim;
  const FusedSpace& asp = user_space() ? s_.users : s_.items;
  const Opt& aopt = user_space() ? opt_users_ : opt_items_;
  const int64_t ae = anchor_entity(f.a);
  auto row = [&](const FusedSpace& sp, const Opt& o, int64_t e) {
    if (sp.bag) return;
    vec::prefetch_row(sp.w + e * d, d);
    if (state && !o.s1.empty()) vec::prefetch_row(o.s1.data() + e * d, d);
    if (state && !o.s2.empty()) vec::prefetch_row(o.s2.data() + e * d, d);
  };
  row(asp, aopt, ae);
  row(s_.items, opt_items_, f.p);
  for (int j = 0; j < s_.k; ++j) row(s_.items, opt_items_, negs[j]);
}

}  // namespace siamrec
