#include "train/fused.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <cmath>
#include <numeric>

#include "config/config.h"
#include "data/split.h"
#include "util/error.h"

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
    return "train.optimizer '" + c.str("train.optimizer") + "' (fused: sgd, adagrad, lazy_adam; dense adam moves untouched rows)";
  if (c.real("train.weight_decay") > 0) return "train.weight_decay > 0 (dense decay; use reg.l2)";
  if (c.real("reg.cov") > 0) return "reg.cov > 0";
  return "";
}

// ---- small vector kernels (auto-vectorized at -O2 -march=native) ------------------------------
static inline float dotv(const float* __restrict a, const float* __restrict b, int64_t d) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}
static inline float sqdist(const float* __restrict a, const float* __restrict b, int64_t d) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < d; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}
static inline void axpy(float alpha, const float* __restrict x, float* __restrict y, int64_t d) {
#pragma omp simd
  for (int64_t i = 0; i < d; ++i) y[i] += alpha * x[i];
}

// ---- per-thread sparse gradient ---------------------------------------------------------------
struct FusedEngine::Grad {
  struct Table {
    std::vector<int32_t> slot;
    std::vector<int64_t> rows;
    std::vector<float> g;
    float* row(int64_t r, int64_t dim) {
      if (slot[r] < 0) {
        slot[r] = static_cast<int32_t>(rows.size());
        rows.push_back(r);
        size_t off = g.size();
        if (off + dim > g.capacity()) g.reserve(std::max(2 * g.capacity(), off + dim));
        g.resize(off + dim);  // within capacity: no reallocation
        std::memset(g.data() + off, 0, dim * sizeof(float));
      }
      return g.data() + static_cast<size_t>(slot[r]) * dim;
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
  std::vector<int64_t> negs;
  std::vector<Positive> batch;  // the mini-batch's positives, contiguous
  uint64_t rng = 0;             // splitmix64 state
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
  loss_ = l == "triplet" ? Lss::Triplet : l == "bpr" ? Lss::Bpr : l == "contrastive" ? Lss::Contrastive : l == "bce" ? Lss::Bce
        : l == "warp" ? Lss::Warp : l == "infonce" ? Lss::InfoNce : l == "ccl" ? Lss::Ccl : Lss::Mse;
  opt_ = s_.optimizer == "sgd" ? Opz::Sgd : s_.optimizer == "adagrad" ? Opz::Adagrad : Opz::LazyAdam;
  want_dist_ = loss_ == Lss::Triplet || loss_ == Lss::Contrastive || loss_ == Lss::Warp;
  auto init_opt = [&](Opt& o, const FusedSpace& sp) {
    size_t n = static_cast<size_t>(sp.rows * s_.dim);
    if (opt_ == Opz::Adagrad) o.s1.assign(n, 0.0f);
    if (opt_ == Opz::LazyAdam) o.s1.assign(n, 0.0f), o.s2.assign(n, 0.0f);
  };
  init_opt(opt_items_, s_.items);
  init_opt(opt_users_, s_.users);
  int T = std::max(1, s_.threads);
  for (int t = 0; t < T; ++t) {
    auto g = std::make_unique<Grad>();
    g->items.slot.assign(s_.items.rows, -1);
    g->users.slot.assign(std::max<int64_t>(s_.users.rows, 0), -1);
    int k = std::max(1, s_.k);
    g->va.resize(s_.dim), g->vp.resize(s_.dim), g->vn.resize(static_cast<size_t>(k) * s_.dim);
    g->ga.resize(s_.dim), g->gp.resize(s_.dim), g->gn.resize(static_cast<size_t>(k) * s_.dim);
    g->vals.resize(k + 1), g->upn.resize(k + 1), g->vn_ptr.resize(k + 1);
    // A mini-batch touches at most batch x (k + 2) rows of id tables: reserve once.
    size_t reserve_rows = static_cast<size_t>(std::min<int64_t>(s_.items.rows, s_.batch * (k + 2)));
    g->items.g.reserve(reserve_rows * s_.dim);
    g->items.rows.reserve(reserve_rows);
    grads_.push_back(std::move(g));
  }
  // The LibTorch engine clips every row after each step; start from clipped tables so that rows
  // the fused engine never touches agree too.
  if (s_.max_norm > 0)
    for (FusedSpace* sp : {&s_.items, &s_.users})
      for (int64_t r = 0; r < sp->rows; ++r) {
        float* w = sp->w + r * s_.dim;
        float n = std::sqrt(dotv(w, w, s_.dim));
        if (n > s_.max_norm) {
          float f = static_cast<float>(s_.max_norm / n);
          for (int64_t i = 0; i < s_.dim; ++i) w[i] *= f;
        }
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
void backprop(FusedEngine* /*unused*/, const FusedSpace& sp, int64_t e, const float* g, int64_t dim, void* table) {
  auto* t = static_cast<decltype(FusedEngine::Grad::items)*>(table);
  if (!sp.bag) {
    axpy(1.0f, g, t->row(e, dim), dim);
    return;
  }
  int64_t b = sp.feats->bag_ptr[e], end = sp.feats->bag_ptr[e + 1];
  if (end == b) return;
  float f = sp.sum ? 1.0f : 1.0f / static_cast<float>(end - b);
  for (int64_t q = b; q < end; ++q) axpy(f, g, t->row(sp.feats->bag_tok[q], dim), dim);
}
inline double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
}  // namespace

// One example: loss value (already scaled) and its gradient accumulated into g.
double FusedEngine::example(int64_t a, int64_t p, const int64_t* negs, float y, float scale, Grad& g, bool direct,
                            double adam_step) const {
  const int64_t d = s_.dim;
  const int k = s_.k;
  const bool want_dist = want_dist_;
  // Anchor space and entity.
  const FusedSpace& asp = s_.user_anchor && !s_.joint ? s_.users : s_.items;
  int64_t ae = s_.user_anchor && s_.joint ? s_.n_items + a : a;
  const float* va = encode(asp, ae, d, g.va.data());
  const float* vp = encode(s_.items, p, d, g.vp.data());
  const float** vn = g.vn_ptr.data();
  for (int j = 0; j < k; ++j) vn[j] = encode(s_.items, negs[j], d, g.vn.data() + j * d);
  // Comparator values: distance when the loss wants one (-similarity for dot), else similarity.
  auto value = [&](const float* x, const float* b) -> double {
    if (cmp_ == Cmp::Dot) return want_dist ? -dotv(x, b, d) : dotv(x, b, d);
    if (cmp_ == Cmp::SqEuclidean) return want_dist ? sqdist(x, b, d) : -sqdist(x, b, d);
    if (cmp_ == Cmp::Euclidean) {
      double e = std::sqrt(sqdist(x, b, d) + 1e-12);
      return want_dist ? e : -e;
    }
    double na = std::max(std::sqrt(static_cast<double>(dotv(x, x, d))), 1e-8);
    double nb = std::max(std::sqrt(static_cast<double>(dotv(b, b, d))), 1e-8);
    double c = dotv(x, b, d) / (na * nb);
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
      float u = static_cast<float>((want_dist ? up : -up) * f);
      float* __restrict gxr = gx;
      float* __restrict gbr = gb;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) {
        float diff = x[i] - b[i];
        gxr[i] += u * diff, gbr[i] -= u * diff;
      }
    } else {  // cosine
      double na = std::max(std::sqrt(static_cast<double>(dotv(x, x, d))), 1e-8);
      double nb = std::max(std::sqrt(static_cast<double>(dotv(b, b, d))), 1e-8);
      double c = want_dist ? 1 - v : v;
      double u = want_dist ? -up : up;
      float f1 = static_cast<float>(u / (na * nb)), fa = static_cast<float>(u * c / (na * na)), fb = static_cast<float>(u * c / (nb * nb));
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
  // Loss and dL/dvalue (already divided as the LibTorch losses average).
  double L = 0, up_p = 0;
  double* upn = g.upn.data();
  std::fill(upn, upn + k, 0.0);
  const double m = s_.margin;
  const double inv_k = k > 0 ? 1.0 / k : 0.0;
  if (loss_ == Lss::Triplet) {
    for (int j = 0; j < k; ++j) {
      double h = vpv - vnv[j] + m;
      if (h > 0) L += h * inv_k, up_p += inv_k, upn[j] = -inv_k;
    }
  } else if (loss_ == Lss::Bpr) {
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
  L *= scale, up_p *= scale;
  for (int j = 0; j < k; ++j) upn[j] *= scale;
  // Vector gradients.
  float* ga = g.ga.data();
  float* gp = g.gp.data();
  float* gn = g.gn.data();
  std::fill(ga, ga + d, 0.0f), std::fill(gp, gp + d, 0.0f), std::fill(gn, gn + static_cast<size_t>(k) * d, 0.0f);
  back(va, vp, vpv, up_p, ga, gp);
  for (int j = 0; j < k; ++j) back(va, vn[j], vnv[j], upn[j], ga, gn + j * d);
  if (s_.l2 > 0) {
    float f = static_cast<float>(2 * s_.l2 * scale);
    L += s_.l2 * scale * (dotv(va, va, d) + dotv(vp, vp, d));
    axpy(f, va, ga, d), axpy(f, vp, gp, d);
    for (int j = 0; j < k; ++j) {
      L += s_.l2 * scale * dotv(vn[j], vn[j], d) / k;
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
    const bool user_space = s_.user_anchor && !s_.joint;
    // Copy the anchor gradient first: bag updates reuse g.va as scratch.
    upd(self->s_.items, self->opt_items_, p, gp);
    for (int j = 0; j < k; ++j) upd(self->s_.items, self->opt_items_, negs[j], gn + j * d);
    if (user_space) upd(self->s_.users, self->opt_users_, ae, ga);
    else upd(self->s_.items, self->opt_items_, ae, ga);
    return L;
  }
  // Into the row gradients.
  if (s_.user_anchor && !s_.joint) backprop(nullptr, s_.users, ae, ga, d, &g.users);
  else backprop(nullptr, s_.items, ae, ga, d, &g.items);
  backprop(nullptr, s_.items, p, gp, d, &g.items);
  for (int j = 0; j < k; ++j) backprop(nullptr, s_.items, negs[j], gn + j * d, d, &g.items);
  return L;
}

void FusedEngine::update_row(FusedSpace& sp, Opt& o, int64_t r, const float* __restrict g, double step) {
  const int64_t d = s_.dim;
  float* __restrict w = sp.w + r * d;
  const float lr = static_cast<float>(s_.lr);
  if (opt_ == Opz::Sgd) {
    axpy(-lr, g, w, d);
  } else if (opt_ == Opz::Adagrad) {
    float* __restrict acc = o.s1.data() + r * d;
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) {
      acc[i] += g[i] * g[i];
      w[i] -= lr * g[i] / (std::sqrt(acc[i]) + 1e-10f);
    }
  } else {  // lazy_adam: bias correction by the global step (in `step`), as the LibTorch LazyAdam
    float* __restrict mm = o.s1.data() + r * d;
    float* __restrict vv = o.s2.data() + r * d;
    const float st = static_cast<float>(step);
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) {
      mm[i] = 0.9f * mm[i] + 0.1f * g[i];
      vv[i] = 0.999f * vv[i] + 0.001f * g[i] * g[i];
      w[i] -= st * mm[i] / (std::sqrt(vv[i]) + 1e-8f);
    }
  }
  if (s_.max_norm > 0) {
    float n = std::sqrt(dotv(w, w, d));
    if (n > s_.max_norm) {
      float f = static_cast<float>(s_.max_norm / n);
      for (int64_t i = 0; i < d; ++i) w[i] *= f;
    }
  }
}

void FusedEngine::apply(Grad& g) {
  double t = static_cast<double>(++adam_step_);
  double step = opt_ == Opz::LazyAdam ? s_.lr * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t)) : 0.0;
  for (size_t k = 0; k < g.items.rows.size(); ++k) update_row(s_.items, opt_items_, g.items.rows[k], g.items.g.data() + k * s_.dim, step);
  for (size_t k = 0; k < g.users.rows.size(); ++k) update_row(s_.users, opt_users_, g.users.rows[k], g.users.g.data() + k * s_.dim, step);
  g.items.clear();
  g.users.clear();
}

// Negatives for a mini-batch in one pass (the known-positive lookups of different examples are
// independent, so their cache misses overlap), then the examples with their rows prefetched.
double FusedEngine::run_examples(Grad& g, const Positive* ex, int64_t n, float scale) {
  const int k = s_.k;
  g.negs.resize(static_cast<size_t>(n) * std::max(1, k));
  for (int64_t r = 0; r < n; ++r)
    for (int j = 0; j < k; ++j) {
      int32_t x = sampler_.map(g.next());
      for (int tries = 0; tries < 50 && (x == ex[r].p || builder_.is_positive(ex[r].a, x) || builder_.heldout(x)); ++tries) x = sampler_.map(g.next());
      g.negs[r * k + j] = x;
    }
  const int64_t d = s_.dim;
  const bool anchor_items = !(s_.user_anchor && !s_.joint);
  const FusedSpace& asp = anchor_items ? s_.items : s_.users;
  double L = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (r + 3 < n && !s_.items.bag) {  // prefetch the rows of a later example
      const Positive& f = ex[r + 3];
      int64_t ae = s_.user_anchor && s_.joint ? s_.n_items + f.a : f.a;
      if (!asp.bag) __builtin_prefetch(asp.w + ae * d);
      __builtin_prefetch(s_.items.w + static_cast<int64_t>(f.p) * d);
      for (int j = 0; j < k; ++j) __builtin_prefetch(s_.items.w + g.negs[(r + 3) * k + j] * d);
    }
    L += example(ex[r].a, ex[r].p, g.negs.data() + r * k, ex[r].y, scale, g);
  }
  return L;
}

// Per-example Hogwild (StarSpace / LightFM / fastText style): sample, compute and update one
// example at a time; no gradient tables. Lazy Adam's bias correction is refreshed every 256 steps.
double FusedEngine::run_per_example(Grad& g, const Positive* ex, int64_t n) {
  const int k = s_.k;
  const int64_t d = s_.dim;
  g.negs.resize(static_cast<size_t>(std::max(1, k)) * 2);
  double L = 0, step = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (opt_ == Opz::LazyAdam && (r & 255) == 0) {
      double t = static_cast<double>(adam_step_ += 256);
      step = s_.lr * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
    }
    int64_t* negs = g.negs.data();
    for (int j = 0; j < k; ++j) {
      int32_t x = sampler_.map(g.next());
      for (int tries = 0; tries < 50 && (x == ex[r].p || builder_.is_positive(ex[r].a, x) || builder_.heldout(x)); ++tries)
        x = sampler_.map(g.next());
      negs[j] = x;
    }
    if (r + 2 < n && !s_.items.bag) {
      const Positive& f = ex[r + 2];
      __builtin_prefetch(s_.items.w + static_cast<int64_t>(f.p) * d);
    }
    L += example(ex[r].a, ex[r].p, negs, ex[r].y, 1.0f, g, /*direct=*/true, step);
  }
  return L;
}

double FusedEngine::epoch(int epoch_index) {
  const auto& pos = builder_.positives();
  const int64_t N = static_cast<int64_t>(pos.size());
  const int T = std::max(1, s_.threads);
  const int64_t B = std::max<int64_t>(1, s_.batch);
  std::vector<double> loss(T, 0.0);
  if (!s_.deterministic || T == 1) {
    // Hogwild: one global permutation (drawn once) gives each thread a fixed share of the
    // positives; every epoch each thread reshuffles its own share in parallel into a contiguous
    // buffer, so the epoch has no serial shuffle and the hot loop no random access.
    if (static_cast<int64_t>(perm_.size()) != N) {
      perm_.resize(N);
      std::iota(perm_.begin(), perm_.end(), 0);
      std::mt19937_64 rng(mix64(s_.seed ^ 0x5eedULL));
      for (int64_t k = N; k > 1; --k) std::swap(perm_[k - 1], perm_[rng() % k]);
    }
#pragma omp parallel num_threads(T)
    {
      int t = omp_get_thread_num();
      Grad& g = *grads_[t];
      int64_t lo = N * t / T, hi = N * (t + 1) / T;
      std::vector<Positive>& ep = g.batch;
      ep.resize(hi - lo);
      std::mt19937_64 rng(mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index) * 7919ULL + static_cast<uint64_t>(t))));
      std::vector<int64_t> idx(perm_.begin() + lo, perm_.begin() + hi);
      for (int64_t k = static_cast<int64_t>(idx.size()); k > 1; --k) std::swap(idx[k - 1], idx[rng() % k]);
      for (size_t r = 0; r < idx.size(); ++r) ep[r] = pos[idx[r]];
      if (s_.per_example) {
        g.rng = mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(lo)));
        loss[t] += run_per_example(g, ep.data(), hi - lo);
      }
      for (int64_t b0 = 0; b0 < (s_.per_example ? 0 : hi - lo); b0 += B) {
        int64_t b1 = std::min(hi - lo, b0 + B);
        g.rng = mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(lo + b0)));
        loss[t] += run_examples(g, ep.data() + b0, b1 - b0, 1.0f / static_cast<float>(b1 - b0)) * (b1 - b0);
        apply(g);
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
        g.rng = mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(b0) * 131 + t));
        loss[t] += run_examples(g, ep.data() + lo, hi - lo, scale) * n;
      }
      Grad& g0 = *grads_[0];
      for (int t = 1; t < T; ++t) {
        Grad& gt = *grads_[t];
        for (auto* pair : {&gt.items, &gt.users}) {
          auto& dst = pair == &gt.items ? g0.items : g0.users;
          for (size_t q = 0; q < pair->rows.size(); ++q) axpy(1.0f, pair->g.data() + q * s_.dim, dst.row(pair->rows[q], s_.dim), s_.dim);
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
  auto put = [&](const std::vector<float>& v) {
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
  auto get = [&](std::vector<float>& v) {
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

double FusedEngine::batch_gradient(const std::vector<int64_t>& a, const std::vector<int64_t>& p, const std::vector<int64_t>& negs,
                                   const std::vector<float>& y, std::vector<float>& gi, std::vector<float>& gu) {
  Grad& g = *grads_[0];
  double L = 0;
  float scale = 1.0f / static_cast<float>(a.size());
  for (size_t r = 0; r < a.size(); ++r) L += example(a[r], p[r], negs.data() + r * s_.k, y.empty() ? 1.0f : y[r], scale, g);
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

double FusedEngine::batch_step(const std::vector<int64_t>& a, const std::vector<int64_t>& p, const std::vector<int64_t>& negs,
                               const std::vector<float>& y) {
  Grad& g = *grads_[0];
  double L = 0;
  float scale = 1.0f / static_cast<float>(a.size());
  for (size_t r = 0; r < a.size(); ++r) L += example(a[r], p[r], negs.data() + r * s_.k, y.empty() ? 1.0f : y[r], scale, g);
  apply(g);
  return L;
}

}  // namespace siamrec
