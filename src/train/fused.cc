#include "train/fused.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "config/config.h"
#include "util/rng.h"
#include "util/error.h"
#include "train/vec.h"

namespace siamrec {

std::string fused_unsupported(const Config& c) {
  auto in = [](const std::string& v, std::initializer_list<const char*> allowed) {
    for (auto* a : allowed)
      if (v == a) return true;
    return false;
  };
  if (!in(c.str("tower.type"), {"id", "bag"})) return "tower.type '" + c.str("tower.type") + "' (fused: id, bag)";
  if (!c.flag("model.shared") && !in(c.str("user_tower.type"), {"id", "bag"}))
    return "user_tower.type '" + c.str("user_tower.type") + "' (fused: id, bag)";
  if (c.str("sampler.builder") == "sequence") return "sampler.builder 'sequence' (fused: user_item, item_item, label)";
  if (!in(c.str("comparator.type"), {"dot", "cosine", "euclidean", "sq_euclidean"}))
    return "comparator.type '" + c.str("comparator.type") + "' (fused: dot, cosine, euclidean, sq_euclidean)";
  if (!in(c.str("loss.type"), {"triplet", "bpr", "contrastive", "bce", "warp", "infonce", "ccl", "mse"}))
    return "loss.type '" + c.str("loss.type") + "' (fused: triplet, bpr, contrastive, bce, warp, infonce, ccl, mse)";
  if (!in(c.str("sampler.type"), {"uniform", "popularity"}))
    return "sampler.type '" + c.str("sampler.type") + "' (fused: uniform, popularity)";
  if (!in(c.str("train.optimizer"), {"sgd", "adagrad", "lazy_adam"}))
    return "train.optimizer '" + c.str("train.optimizer") +
           "' (fused: sgd, adagrad, lazy_adam; dense adam moves untouched rows)";
  if (c.real("train.weight_decay") > 0) return "train.weight_decay > 0 (dense decay; use reg.l2)";
  if (c.real("reg.cov") > 0) return "reg.cov > 0";
  return "";
}

using vec::axpy;
using vec::dot;

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
  std::vector<float> coef;
  std::vector<size_t> offs;
  std::vector<int64_t> negs;
  std::vector<Positive> share;   // Hogwild: this thread's share of the positives (split_shares)
  std::vector<Positive> batch;   // the share in this epoch's order
  alignas(64) uint64_t rng = 0;  // splitmix64 state
  uint64_t next() {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

FusedEngine::FusedEngine(const FusedSpec& s, const TupleBuilder& b, const NegativeSampler& smp)
    : s_(s), builder_(b), sampler_(smp) {
  const std::string& c = s_.comparator;
  cmp_ = c == "dot" ? Cmp::Dot : c == "cosine" ? Cmp::Cosine : c == "euclidean" ? Cmp::Euclidean : Cmp::SqEuclidean;
  const std::string& l = s_.loss;
  loss_ = l == "triplet"       ? Lss::Triplet
          : l == "bpr"         ? Lss::Bpr
          : l == "contrastive" ? Lss::Contrastive
          : l == "bce"         ? Lss::Bce
          : l == "warp"        ? Lss::Warp
          : l == "infonce"     ? Lss::InfoNce
          : l == "ccl"         ? Lss::Ccl
                               : Lss::Mse;
  opt_ = s_.optimizer == "sgd" ? Opz::Sgd : s_.optimizer == "adagrad" ? Opz::Adagrad : Opz::LazyAdam;
  want_dist_ = loss_ == Lss::Triplet || loss_ == Lss::Contrastive || loss_ == Lss::Warp;
  inv_k_ = s_.k > 0 ? 1.0 / s_.k : 0.0;
  auto init_opt = [&](Opt& o, const FusedSpace& sp) {
    size_t n = static_cast<size_t>(sp.rows * s_.dim);
    if (opt_ == Opz::Adagrad) o.s1.assign(n, 0.0f);
    if (opt_ == Opz::LazyAdam) o.s1.assign(n, 0.0f), o.s2.assign(n, 0.0f);
  };
  init_opt(opt_items_, s_.items);
  init_opt(opt_users_, s_.users);
  {
    const bool anchor_bag = user_space() ? s_.users.bag : s_.items.bag;
    // The fast kernels: id tables, dot / sq_euclidean, AVX-512 rows of at most 256 floats.
    fast_ok_ = !s_.items.bag && !anchor_bag && (cmp_ == Cmp::Dot || cmp_ == Cmp::SqEuclidean) && vec::wide(s_.dim) &&
               s_.dim <= 256;
    cml_ok_ = fast_ok_ && s_.user_anchor && s_.k >= 1 && s_.k <= kCmlMaxK && loss_ == Lss::Triplet && s_.l2 <= 0 &&
              (s_.dim == 32 || s_.dim == 64 || s_.dim == 128) && sampler_.uniform_range() > 0 &&
              builder_.positive_bits().bits != nullptr;
  }
  int T = std::max(1, s_.threads);
  for (int t = 0; t < T; ++t) {
    auto g = std::make_unique<Grad>();
    g->items.slot.assign(s_.items.rows, -1);
    g->users.slot.assign(std::max<int64_t>(s_.users.rows, 0), -1);
    int k = std::max(1, s_.k);
    g->va.resize(s_.dim), g->vp.resize(s_.dim), g->vn.resize(static_cast<size_t>(k) * s_.dim);
    g->ga.resize(s_.dim), g->gp.resize(s_.dim), g->gn.resize(static_cast<size_t>(k) * s_.dim);
    g->vals.resize(k + 1), g->upn.resize(k + 1), g->vn_ptr.resize(k + 1);
    g->rows.resize(k + 1), g->coef.resize(k + 1), g->offs.resize(k + 1);
    // A mini-batch touches at most batch x (k + 2) rows of id tables: reserve once.
    size_t reserve_rows = static_cast<size_t>(std::min<int64_t>(s_.items.rows, s_.batch * (k + 2)));
    g->items.g.reserve(reserve_rows * s_.dim);
    g->items.rows.reserve(reserve_rows);
    grads_.push_back(std::move(g));
  }
  if (!s_.deterministic || T == 1) split_shares();
  // The LibTorch engine clips every row after each step; start from clipped tables so that rows
  // the fused engine never touches agree too.
  if (s_.max_norm > 0)
    for (FusedSpace* sp : {&s_.items, &s_.users})
      for (int64_t r = 0; r < sp->rows; ++r) {
        float* w = sp->w + r * s_.dim;
        vec::clip(w, dot(w, w, s_.dim), static_cast<float>(s_.max_norm), s_.dim);
      }
}

FusedEngine::~FusedEngine() = default;

namespace {
// An entity's vector: its row, or the pooled rows of its bag (written to tmp).
const float* encode(const FusedSpace& sp, int64_t e, int64_t dim, float* tmp) {
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
inline double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

// The loss of one example from its comparator values (vpv: positive, vnv: k negatives) and its
// derivatives up_p = dL/dvpv, upn[j] = dL/dvnv[j] (averaged over negatives as the LibTorch losses).
__attribute__((always_inline)) inline double FusedEngine::coefs(double vpv, const double* vnv, float y, double& up_p,
                                                                double* upn, int k) const {
  double L = 0;
  up_p = 0;
  const double m = s_.margin;
  const double inv_k = inv_k_;
  if (loss_ == Lss::Triplet) {  // the hot path's loss: no division, no branch on the hinge
    for (int j = 0; j < k; ++j) {
      const double h = std::max(0.0, vpv - vnv[j] + m);
      L += h * inv_k;
      upn[j] = h > 0 ? -inv_k : 0.0;
      up_p -= upn[j];
    }
    return L;
  }
  std::fill(upn, upn + k, 0.0);
  if (loss_ == Lss::Bpr) {
    for (int j = 0; j < k; ++j) {
      double x = vnv[j] - vpv;
      L += softplus(x) / k;
      double sg = sigmoid(x) / k;
      up_p -= sg, upn[j] = sg;
    }
  } else if (loss_ == Lss::Contrastive) {
    L = vpv * vpv / (1 + k), up_p = 2 * vpv / (1 + k);
    for (int j = 0; j < k; ++j) {
      double h = std::max(0.0, m - vnv[j]);
      L += h * h / (1 + k), upn[j] = -2 * h / (1 + k);
    }
  } else if (loss_ == Lss::Bce) {
    L = softplus(-vpv) / (1 + k), up_p = -sigmoid(-vpv) / (1 + k);
    for (int j = 0; j < k; ++j) L += softplus(vnv[j]) / (1 + k), upn[j] = sigmoid(vnv[j]) / (1 + k);
  } else if (loss_ == Lss::Warp) {
    int viol = 0, jmin = 0;
    for (int j = 0; j < k; ++j) {
      viol += vpv + m - vnv[j] > 0;
      if (vnv[j] < vnv[jmin]) jmin = j;
    }
    double w = std::log1p(std::floor(viol * (static_cast<double>(s_.n_items) / k)));
    double h = m + vpv - vnv[jmin];
    if (h > 0) L = w * h, up_p = w, upn[jmin] = -w;
  } else if (loss_ == Lss::InfoNce) {
    double t = s_.temperature, mx = vpv / t;
    for (int j = 0; j < k; ++j) mx = std::max(mx, vnv[j] / t);
    double z = std::exp(vpv / t - mx);
    for (int j = 0; j < k; ++j) z += std::exp(vnv[j] / t - mx);
    L = std::log(z) + mx - vpv / t;
    up_p = (std::exp(vpv / t - mx) / z - 1) / t;
    for (int j = 0; j < k; ++j) upn[j] = std::exp(vnv[j] / t - mx) / z / t;
  } else if (loss_ == Lss::Ccl) {
    L = 1 - vpv, up_p = -1;
    for (int j = 0; j < k; ++j)
      if (vnv[j] > m) L += (vnv[j] - m) / k, upn[j] = 1.0 / k;
  } else if (loss_ == Lss::Mse) {
    double r = vpv - (y - s_.label_offset);
    L = r * r, up_p = 2 * r;
  }
  return L;
}

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
  // Comparator values: distance when the loss wants one (-similarity for dot), else similarity.
  auto value = [&](const float* x, const float* b) -> double {
    if (cmp_ == Cmp::Dot) return want_dist ? -dot(x, b, d) : dot(x, b, d);
    if (cmp_ == Cmp::SqEuclidean) return want_dist ? vec::sqdist(x, b, d) : -vec::sqdist(x, b, d);
    if (cmp_ == Cmp::Euclidean) {
      double e = std::sqrt(vec::sqdist(x, b, d) + 1e-12);
      return want_dist ? e : -e;
    }
    double na = std::max(std::sqrt(static_cast<double>(dot(x, x, d))), 1e-8);
    double nb = std::max(std::sqrt(static_cast<double>(dot(b, b, d))), 1e-8);
    double c = dot(x, b, d) / (na * nb);
    return want_dist ? 1 - c : c;
  };
  // d value / d x and d value / d b, times up, accumulated into gx, gb.
  auto back = [&](const float* x, const float* b, double v, double up, float* gx, float* gb) {
    if (up == 0) return;
    if (cmp_ == Cmp::Dot) {
      float u = static_cast<float>(want_dist ? -up : up);
      axpy(u, b, gx, d), axpy(u, x, gb, d);
    } else if (cmp_ == Cmp::SqEuclidean || cmp_ == Cmp::Euclidean) {
      double f = cmp_ == Cmp::SqEuclidean ? 2.0 : 1.0 / (want_dist ? v : -v);
      vec::diff_pair(static_cast<float>((want_dist ? up : -up) * f), x, b, gx, gb, d);
    } else {  // cosine
      double na = std::max(std::sqrt(static_cast<double>(dot(x, x, d))), 1e-8);
      double nb = std::max(std::sqrt(static_cast<double>(dot(b, b, d))), 1e-8);
      double c = want_dist ? 1 - v : v;
      double u = want_dist ? -up : up;
      float f1 = static_cast<float>(u / (na * nb)), fa = static_cast<float>(u * c / (na * na)),
            fb = static_cast<float>(u * c / (nb * nb));
      float* __restrict gxr = gx;
      float* __restrict gbr = gb;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) {
        gxr[i] += f1 * b[i] - fa * x[i];
        gbr[i] += f1 * x[i] - fb * b[i];
      }
    }
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

void FusedEngine::update_row(FusedSpace& sp, Opt& o, int64_t r, const float* __restrict g, double step) {
  const int64_t d = s_.dim;
  float* w = sp.w + r * d;
  const float lr = static_cast<float>(s_.lr);
  float sq;
  if (opt_ == Opz::Sgd)
    sq = vec::step<false>(w, nullptr, g, lr, d);
  else if (opt_ == Opz::Adagrad)
    sq = vec::step<true>(w, o.s1.data() + r * d, g, lr, d);
  else  // lazy_adam: bias correction by the global step (in `step`), as the LibTorch LazyAdam
    sq = vec::lazy_adam(w, o.s1.data() + r * d, o.s2.data() + r * d, g, static_cast<float>(step), d);
  if (s_.max_norm > 0) vec::clip(w, sq, static_cast<float>(s_.max_norm), d);
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
// The triplet hinge without L2 over an example's comparator values val[0] (positive) and
// val[1..k] (negatives): the loss (mean hinge over the negatives) in L, c[j] = dL/dval_j times f
// (f folds in the comparator's sign and factor), and whether anything is learnt. One pass, so that
// the branch on it, which the CPU cannot predict, resolves early; shared by fast_forward() and
// run_cml(), which must give the same bits.
struct TripletPass {
  double L;  // the example's loss
  bool any;  // some row gets a gradient
};
static __attribute__((always_inline)) inline TripletPass triplet_pass(const double* val, int k, double margin,
                                                                      double inv_k, double f, float* c) {
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
  wb[0] = s_.items.w + p * d;
  for (int j = 0; j < k; ++j) wb[j + 1] = s_.items.w + negs[j] * d;
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
  if (loss_ == Lss::Triplet && s_.l2 <= 0) {
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
    const int64_t off = w - s_.items.w;
    float* s1 = kAdagrad || kAdam ? opt_items_.s1.data() + off : nullptr;
    float* s2 = kAdam ? opt_items_.s2.data() + off : nullptr;
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
    if (cf[j] != 0 || l2 > 0 || all_rows) off[j] = g.items.offset((wb[j] - s_.items.w) / d, d);
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

namespace {
// Calls f(C, kSq, kOpt, K) with compile-time constants: the row's chunk count (2, 4, 8, or 0 for
// any other multiple of 16), the comparator (squared euclidean or dot), the optimizer (0 SGD,
// 1 Adagrad, 2 lazy Adam: FusedEngine::Opz) and the negatives per example (1, or 0: any).
template <class F>
double fast_dispatch(int64_t dim, bool sq, int opt, int k, F&& f) {
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
}  // namespace

// The mini-batch step of one example: the fast kernel for its configurations, else the general one.
double FusedEngine::batch_example(const Positive& e, const int64_t* negs, float scale, Grad& g) {
  if (!fast_ok_ || fast_aliased(e, negs)) return example(e.a, e.p, negs, e.y, scale, g);
  return fast_dispatch(s_.dim, cmp_ == Cmp::SqEuclidean, 0, s_.k, [&](auto c, auto sq, auto, auto kk) {
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
  return fast_dispatch(
      s_.dim, cmp_ == Cmp::SqEuclidean, static_cast<int>(opt_), s_.k, [&](auto c, auto sq, auto o, auto kk) {
        return fast_example<decltype(c)::value, decltype(sq)::value, static_cast<Opz>(decltype(o)::value),
                            decltype(kk)::value>(e.a, e.p, negs, e.y, g, static_cast<float>(adam_step));
      });
}

double FusedEngine::adam_step_size(double t) const {
  return s_.lr * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
}

void FusedEngine::apply(Grad& g) {
  double t = static_cast<double>(++adam_step_);
  double step = opt_ == Opz::LazyAdam ? adam_step_size(t) : 0.0;
  for (size_t k = 0; k < g.items.rows.size(); ++k)
    update_row(s_.items, opt_items_, g.items.rows[k], g.items.g.data() + k * s_.dim, step);
  for (size_t k = 0; k < g.users.rows.size(); ++k)
    update_row(s_.users, opt_users_, g.users.rows[k], g.users.g.data() + k * s_.dim, step);
  g.items.clear();
  g.users.clear();
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
void FusedEngine::prefetch_example(const Positive& f, const int64_t* negs, bool state) const {
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

double FusedEngine::run_examples(Grad& g, const Positive* ex, int64_t n, float scale) {
  if (cml_ok_) return cml<true>(g, ex, n, scale);
  if (!fast_ok_)
    return pipeline(g, ex, n, false,
                    [&](int64_t r, const int64_t* negs) { return example(ex[r].a, ex[r].p, negs, ex[r].y, scale, g); });
  // batch_example() with the configuration dispatched once, not per example.
  return fast_dispatch(s_.dim, cmp_ == Cmp::SqEuclidean, 0, s_.k, [&](auto c, auto q, auto, auto kk) {
    return pipeline(g, ex, n, false, [&](int64_t r, const int64_t* negs) {
      const Positive& e = ex[r];
      if (fast_aliased(e, negs)) return example(e.a, e.p, negs, e.y, scale, g);
      return fast_gradient<decltype(c)::value, decltype(q)::value, decltype(kk)::value>(e.a, e.p, negs, e.y, scale, g);
    });
  });
}

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
  float* const IW = s_.items.w;
  const Opt& uo = joint ? opt_items_ : opt_users_;
  const int64_t uoff = joint ? s_.n_items * d : 0;
  float* const U1 = kAdagrad || kAdam ? const_cast<float*>(uo.s1.data()) + uoff : nullptr;
  float* const U2 = kAdam ? const_cast<float*>(uo.s2.data()) + uoff : nullptr;
  float* const I1 = kAdagrad || kAdam ? opt_items_.s1.data() : nullptr;
  float* const I2 = kAdam ? opt_items_.s2.data() : nullptr;
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
  auto prefetch_rows = [&](float* w, float* s1, float* s2, int64_t off) {
    vec::prefetch_row(w + off, d);
    if (kState && (kAdagrad || kAdam)) vec::prefetch_row(s1 + off, d);
    if (kState && kAdam) vec::prefetch_row(s2 + off, d);
  };
  auto prefetch = [&](int64_t r) {
    prefetch_rows(UW, U1, U2, ex[r].a * d);
    prefetch_rows(IW, I1, I2, ex[r].p * d);
    const int32_t* o = slot(r);
    for (int j = 0; j < k; ++j) prefetch_rows(IW, I1, I2, o[j] * d);
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
    float* wrow[kSlot + 1];
    wrow[0] = IW + ex[r].p * d;
    for (int j = 0; j < k; ++j) wrow[j + 1] = IW + negs[j] * d;
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
        if (cf[j] != 0 || kAdam) off[j] = g.items.offset((wrow[j] - IW) / d, d);
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
      const int64_t off = w - IW;
      const __m512 cv = _mm512_set1_ps(cf[j]);
      __m512 qn = _mm512_setzero_ps();
      for (int c = 0; c < C; ++c) {
        const __m512 B = _mm512_loadu_ps(w + 16 * c);
        __m512 GB = _mm512_setzero_ps();
        vec::pair_grad<kSq>(A[c], B, cv, GA[c], GB);
        X[c] = vec::opt_step<kO>(I1 ? I1 + off : nullptr, I2 ? I2 + off : nullptr, c, B, GB, nlr);
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
  return fast_dispatch(s_.dim, cmp_ == Cmp::SqEuclidean, static_cast<int>(opt_), s_.k,
                       [&](auto c, auto q, auto o, auto kk) {
                         if constexpr (decltype(c)::value == 0)
                           return 0.0;  // not reached
                         else
                           return run_cml<decltype(c)::value, decltype(q)::value, static_cast<Opz>(decltype(o)::value),
                                          decltype(kk)::value, kGrad>(g, ex, n, scale);
                       });
}

// Per-example Hogwild (StarSpace / LightFM / fastText style): each example's update is applied at
// once, no gradient tables. Lazy Adam's bias correction is refreshed every 256 steps.
double FusedEngine::run_per_example(Grad& g, const Positive* ex, int64_t n) {
  const bool sq = cmp_ == Cmp::SqEuclidean;
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

// Hogwild: the positives are split once between threads by anchor (contiguous anchor ranges of
// about N / T positives each), so with user anchors a user's row is written by one thread (until
// that thread's share is done and another takes its last blocks: epoch()); each thread keeps its
// share (Grad::share) and trains a shuffled copy every epoch.
void FusedEngine::split_shares() {
  const auto& pos = builder_.positives();
  const int64_t N = static_cast<int64_t>(pos.size());
  const int T = static_cast<int>(grads_.size());
  std::vector<int64_t> count;
  for (const Positive& q : pos) {
    if (q.a >= static_cast<int32_t>(count.size())) count.resize(static_cast<size_t>(q.a) + 1, 0);
    ++count[q.a];
  }
  std::vector<int> owner(count.size(), 0);
  int64_t run = 0;
  for (size_t a = 0; a < count.size(); ++a) {
    owner[a] = static_cast<int>(std::min<int64_t>(T - 1, run * T / std::max<int64_t>(1, N)));
    run += count[a];
  }
  std::vector<int64_t> size(T, 0);
  for (const Positive& q : pos) ++size[owner[q.a]];
  for (int t = 0; t < T; ++t) grads_[t]->share.clear(), grads_[t]->share.reserve(size[t]);
  for (const Positive& q : pos) grads_[owner[q.a]]->share.push_back(q);
  for (int t = 0; t < T; ++t) grads_[t]->batch = grads_[t]->share;  // its pages, once, here rather than in epoch 1
  share_size_ = pos.size();
}

double FusedEngine::epoch(int epoch_index) {
  const auto& pos = builder_.positives();
  const int64_t N = static_cast<int64_t>(pos.size());
  const int T = std::max(1, s_.threads);
  const int64_t B = std::max<int64_t>(1, s_.batch);
  std::vector<double> loss(T, 0.0);
  if (!s_.deterministic || T == 1) {
    // Hogwild: each thread shuffles a copy of its share (split_shares), then trains it in blocks
    // (mini-batches, or 4,096 examples per example) taken from a counter per share; a thread done
    // with its own share takes the blocks left in the others' (so a core slowed by another
    // process hands its tail over instead of holding the epoch up; the user rows of such a block
    // then have two lock-free writers, as item rows always do). One thread training per example
    // takes its share as one block.
    if (share_size_ != pos.size()) split_shares();
    const int64_t block = !s_.per_example ? B : T == 1 ? std::max<int64_t>(1, N) : 4096;
    std::unique_ptr<std::atomic<int64_t>[]> next(new std::atomic<int64_t>[T]);
    for (int t = 0; t < T; ++t) next[t] = 0;
#pragma omp parallel num_threads(T)
    {
      int t = omp_get_thread_num();
      Grad& g = *grads_[t];
      // The epoch's order depends on (seed, epoch, thread) only, so a resumed run repeats it.
      std::vector<Positive>& ep = g.batch;
      ep = g.share;
      const int64_t n = static_cast<int64_t>(ep.size());
      g.rng = mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index) * 7919ULL + static_cast<uint64_t>(t)));
      {  // Fisher-Yates with multiply-shift ranges; the swap partners are drawn 16 steps ahead and
         // prefetched (the swaps are random accesses into a buffer far larger than the caches).
        constexpr int64_t W = 16;
        int64_t ring[W];
        auto pick = [&](int64_t q) {
          return static_cast<int64_t>((static_cast<unsigned __int128>(g.next()) * static_cast<uint64_t>(q)) >> 64);
        };
        for (int64_t q = n; q > 1 && q > n - W; --q) ring[q % W] = pick(q), __builtin_prefetch(&ep[ring[q % W]], 1);
        for (int64_t q = n; q > 1; --q) {
          int64_t j = ring[q % W];
          if (q - W > 1) ring[(q - W) % W] = pick(q - W), __builtin_prefetch(&ep[ring[(q - W) % W]], 1);
          std::swap(ep[q - 1], ep[j]);
        }
      }
      g.rng = mix64(s_.seed ^
                    mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(t) * 0x632be5abULL));
#pragma omp barrier
      for (int v = 0; v < T; ++v) {
        const std::vector<Positive>& share = grads_[(t + v) % T]->batch;
        const int64_t ns = static_cast<int64_t>(share.size());
        for (int64_t b0; (b0 = next[(t + v) % T].fetch_add(1) * block) < ns;) {
          const int64_t len = std::min(ns - b0, block);
          if (s_.per_example) {
            loss[t] += run_per_example(g, share.data() + b0, len);
          } else {
            loss[t] += run_examples(g, share.data() + b0, len, 1.0f / static_cast<float>(len)) * len;
            apply(g);
          }
        }
      }
    }
  } else {
    // Deterministic: a global shuffle; each global mini-batch is split across threads; ordered
    // reduction; one update.
    std::vector<int64_t> order(N);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index))));
    for (int64_t k = N; k > 1; --k) std::swap(order[k - 1], order[rng() % k]);
    std::vector<Positive> ep(N);
    for (int64_t r = 0; r < N; ++r) ep[r] = pos[order[r]];
    for (int64_t b0 = 0; b0 < N; b0 += B) {
      int64_t b1 = std::min(N, b0 + B);
      float scale = 1.0f / static_cast<float>(b1 - b0);
#pragma omp parallel num_threads(T)
      {
        int t = omp_get_thread_num();
        Grad& g = *grads_[t];
        int64_t n = b1 - b0, lo = b0 + n * t / T, hi = b0 + n * (t + 1) / T;
        g.rng = mix64(s_.seed ^
                      mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(b0) * 131 + t));
        loss[t] += run_examples(g, ep.data() + lo, hi - lo, scale) * n;
      }
      Grad& g0 = *grads_[0];
      for (int t = 1; t < T; ++t) {
        Grad& gt = *grads_[t];
        for (auto* pair : {&gt.items, &gt.users}) {
          auto& dst = pair == &gt.items ? g0.items : g0.users;
          for (size_t q = 0; q < pair->rows.size(); ++q)
            axpy(1.0f, pair->g.data() + q * s_.dim, dst.row(pair->rows[q], s_.dim), s_.dim);
          pair->clear();
        }
      }
      apply(g0);
    }
  }
  seen_ += N;
  double total = 0;
  for (double l : loss) total += l;
  return total / std::max<int64_t>(1, N);
}

std::string FusedEngine::save_state() const {
  std::string out;
  auto put = [&](const AlignedFloats& v) {
    uint64_t n = v.size();
    out.append(reinterpret_cast<const char*>(&n), 8);
    out.append(reinterpret_cast<const char*>(v.data()), n * sizeof(float));
  };
  int64_t t = adam_step_.load();
  out.append(reinterpret_cast<const char*>(&t), 8);
  put(opt_items_.s1), put(opt_items_.s2), put(opt_users_.s1), put(opt_users_.s2);
  return out;
}

void FusedEngine::load_state(const std::string& b) {
  size_t pos = 0;
  auto need = [&](size_t n) {
    if (pos + n > b.size()) throw Error("checkpoint is malformed (fused optimizer state)");
  };
  auto get = [&](AlignedFloats& v) {
    need(8);
    uint64_t n;
    std::memcpy(&n, b.data() + pos, 8);
    pos += 8;
    if (n != v.size()) throw Error("checkpoint is malformed (fused optimizer state size)");
    need(n * sizeof(float));
    std::memcpy(v.data(), b.data() + pos, n * sizeof(float));
    pos += n * sizeof(float);
  };
  need(8);
  int64_t t;
  std::memcpy(&t, b.data(), 8);
  pos = 8;
  adam_step_ = t;
  get(opt_items_.s1), get(opt_items_.s2), get(opt_users_.s1), get(opt_users_.s2);
}

// Tests: the mean gradient of a mini-batch of (anchor, positive, k negatives, label) into thread
// 0's gradient tables; returns the mean loss.
double FusedEngine::accumulate(const std::vector<int64_t>& a, const std::vector<int64_t>& p,
                               const std::vector<int64_t>& negs, const std::vector<float>& y) {
  Grad& g = *grads_[0];
  double L = 0;
  float scale = 1.0f / static_cast<float>(a.size());
  for (size_t r = 0; r < a.size(); ++r) {
    Positive e{static_cast<int32_t>(a[r]), static_cast<int32_t>(p[r]), y.empty() ? 1.0f : y[r]};
    L += batch_example(e, negs.data() + r * s_.k, scale, g);
  }
  return L;
}

double FusedEngine::batch_gradient(const std::vector<int64_t>& a, const std::vector<int64_t>& p,
                                   const std::vector<int64_t>& negs, const std::vector<float>& y,
                                   std::vector<float>& gi, std::vector<float>& gu) {
  Grad& g = *grads_[0];
  const double L = accumulate(a, p, negs, y);
  gi.assign(static_cast<size_t>(s_.items.rows * s_.dim), 0.0f);
  gu.assign(static_cast<size_t>(std::max<int64_t>(0, s_.users.rows) * s_.dim), 0.0f);
  for (size_t q = 0; q < g.items.rows.size(); ++q)
    std::copy_n(g.items.g.data() + q * s_.dim, s_.dim, gi.data() + g.items.rows[q] * s_.dim);
  for (size_t q = 0; q < g.users.rows.size(); ++q)
    std::copy_n(g.users.g.data() + q * s_.dim, s_.dim, gu.data() + g.users.rows[q] * s_.dim);
  g.items.clear();
  g.users.clear();
  return L;
}

double FusedEngine::batch_step(const std::vector<int64_t>& a, const std::vector<int64_t>& p,
                               const std::vector<int64_t>& negs, const std::vector<float>& y) {
  const double L = accumulate(a, p, negs, y);
  apply(*grads_[0]);
  return L;
}

double FusedEngine::example_step(int64_t a, int64_t p, const std::vector<int64_t>& negs, float y) {
  Positive e{static_cast<int32_t>(a), static_cast<int32_t>(p), y};
  // Lazy Adam: this call is optimizer step t (exact bias correction, like LazyAdam::step).
  const double t = static_cast<double>(++adam_step_);
  const double st = opt_ == Opz::LazyAdam ? adam_step_size(t) : 0.0;
  return direct_example(e, negs.data(), *grads_[0], st);
}

}  // namespace siamrec
