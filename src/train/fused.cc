// The fused engine: state and scheduling (the positives' shares per thread, epochs in Hogwild
// and deterministic modes, optimizer steps, checkpoints) and what it can train. The per-example
// step and the kernels are in fused_kernels.cc, the CML family's loop in fused_cml.cc.
#include "train/fused_impl.h"

#include <memory>
#include <numeric>

#include "config/config.h"
#include "dist/group.h"
#include "util/error.h"
#include "util/names.h"
#include "util/parallel.h"
#include "util/rng.h"

namespace siamrec {

std::string fused_unsupported(const Config& c) {
  auto capable = [](const char* kind, const std::string& v) {
    auto names = registered_names(std::string("fused:") + kind);
    return std::find(names.begin(), names.end(), v) != names.end();
  };
  auto which = [](const char* kind) {
    return fmt::format("{}", fmt::join(registered_names(std::string("fused:") + kind), ", "));
  };
  auto part = [&](const char* key, const char* kind) -> std::string {
    const std::string& v = c.str(key);
    if (capable(kind, v)) return "";
    return fmt::format("{} '{}' (fused: {})", key, v, which(kind));
  };
  for (auto [key, kind] : {std::pair{"tower.type", "tower"},
                           {"sampler.builder", "builder"},
                           {"comparator.type", "comparator"},
                           {"loss.type", "loss"},
                           {"sampler.type", "sampler"},
                           {"train.optimizer", "optimizer"}}) {
    if (std::string why = part(key, kind); !why.empty()) {
      if (std::string(kind) == "optimizer") why.insert(why.size() - 1, "; dense adam moves untouched rows");
      return why;
    }
  }
  if (!c.flag("model.shared")) {
    if (std::string why = part("user_tower.type", "tower"); !why.empty()) return why;
  }
  if (c.real("train.weight_decay") > 0) return "train.weight_decay > 0 (dense decay; use reg.l2)";
  if (c.real("reg.cov") > 0) return "reg.cov > 0";
  return "";
}

// What this engine trains, beside the fused forms of losses and comparators (which register
// themselves in their own files): declared here because the engine implements them.
static const bool fused_capabilities = register_name("fused:optimizer", "sgd", "") &&
                                       register_name("fused:optimizer", "adagrad", "") &&
                                       register_name("fused:optimizer", "lazy_adam", "");

FusedEngine::FusedEngine(const FusedSpec& s, const TupleBuilder& b, const NegativeSampler& smp)
    : s_(s), builder_(b), sampler_(smp) {
  loss_form_ = fused_loss_form(s_.loss);
  cmp_form_ = fused_comparator_form(s_.comparator);
  if (!loss_form_ || !cmp_form_)
    throw ConfigError(
        fmt::format("the fused engine has no form of loss '{}' or comparator '{}'", s_.loss, s_.comparator));
  sq_ = cmp_form_->fast == FusedComparatorForm::kSqEuclidean;
  triplet_ = loss_form_->triplet_hinge;
  opt_ = s_.optimizer == "sgd" ? Opz::Sgd : s_.optimizer == "adagrad" ? Opz::Adagrad : Opz::LazyAdam;
  want_dist_ = loss_form_->wants_distance;
  inv_k_ = s_.k > 0 ? 1.0 / s_.k : 0.0;
  loss_args_.margin = s_.margin, loss_args_.temperature = s_.temperature, loss_args_.neg_weight = s_.neg_weight;
  loss_args_.pos_margin = s_.pos_margin;
  loss_args_.n_items = s_.n_items, loss_args_.label_offset = s_.label_offset, loss_args_.inv_k = inv_k_;
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
    fast_ok_ = !s_.items.bag && !anchor_bag && cmp_form_->fast != FusedComparatorForm::kNone && vec::wide(s_.dim) &&
               s_.dim <= 256;
    cml_ok_ = fast_ok_ && s_.user_anchor && s_.k >= 1 && s_.k <= kCmlMaxK && triplet_ && s_.l2 <= 0 &&
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
    g->rows.resize(k + 1), g->refs.resize(k + 1), g->coef.resize(k + 1), g->offs.resize(k + 1);
    // A mini-batch touches at most batch x (k + 2) rows of id tables: reserve once.
    size_t reserve_rows = static_cast<size_t>(std::min<int64_t>(s_.items.rows, s_.batch * (k + 2)));
    g->items.g.reserve(reserve_rows * s_.dim);
    g->items.rows.reserve(reserve_rows);
    grads_.push_back(std::move(g));
  }
  for (auto& g : grads_) {
    ItemRows& v = g->items_at;
    v.w = s_.items.w;
    v.s1 = opt_items_.s1.empty() ? nullptr : opt_items_.s1.data();
    v.s2 = opt_items_.s2.empty() ? nullptr : opt_items_.s2.data();
  }
  if (!s_.deterministic || T == 1) split_shares();
  // Replicas of the hot rows: Hogwild threads of the fast kernels and the CML loop with user
  // anchors (so the replicated rows are item rows only, never an anchor's); on auto with more than
  // one thread, and at any count when asked for.
  if ((T > 1 || s_.hot_rows > 0) && !s_.deterministic && fast_ok_ && s_.user_anchor && s_.hot_rows != 0)
    choose_hot_rows();
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

void FusedEngine::update_row(FusedSpace& sp, Opt& o, int64_t r, const float* __restrict g, double step) {
  const int64_t d = s_.dim;
  update_ref(sp.w + r * d, o.s1.empty() ? nullptr : o.s1.data() + r * d, o.s2.empty() ? nullptr : o.s2.data() + r * d,
             g, step);
}

void FusedEngine::update_ref(float* w, float* s1, float* s2, const float* __restrict g, double step) {
  const int64_t d = s_.dim;
  const float lr = static_cast<float>(s_.lr);
  float sq;
  if (opt_ == Opz::Sgd)
    sq = vec::step<false>(w, nullptr, g, lr, d);
  else if (opt_ == Opz::Adagrad)
    sq = vec::step<true>(w, s1, g, lr, d);
  else  // lazy_adam: bias correction by the global step (in `step`), as the LibTorch LazyAdam
    sq = vec::lazy_adam(w, s1, s2, g, static_cast<float>(step), d);
  if (s_.max_norm > 0) vec::clip(w, sq, static_cast<float>(s_.max_norm), d);
}

// The hot rows: the most popular items (a positive's row takes an update per example; uniform
// negatives spread theirs evenly), as many as train.hot_rows or, on auto, as fit in 4 MB per
// thread with their optimizer state (every item of a catalogue up to ~4,000 items at d = 64 with
// Adagrad). docs/benchmarks.md ("Scaling across cores") measures the choice.
void FusedEngine::choose_hot_rows() {
  const int64_t d = s_.dim, n = s_.n_items;
  const int64_t states = opt_ == Opz::Sgd ? 0 : opt_ == Opz::Adagrad ? 1 : 2;
  const int64_t budget = (int64_t{4} << 20) / (d * static_cast<int64_t>(sizeof(float)) * (1 + states));
  const int64_t H = std::min(n, s_.hot_rows > 0 ? s_.hot_rows : std::max<int64_t>(1, budget));
  std::vector<int64_t> pop(n, 0);
  for (const Positive& q : builder_.positives())
    if (q.p >= 0 && q.p < n) ++pop[q.p];
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return pop[x] > pop[y]; });
  hot_ids_.assign(order.begin(), order.begin() + H);
  std::sort(hot_ids_.begin(), hot_ids_.end());  // the replica in table order: merges stream through it
  hot_slot_.assign(s_.items.rows, -1);
  for (int64_t q = 0; q < H; ++q) hot_slot_[hot_ids_[q]] = static_cast<int32_t>(q);
  // A merge reads every replica's hot rows and writes them back: about as costly as 2 H row
  // updates per thread, much of it lines moving between cores, so at least 64 H / (k + 2) examples
  // (each updates k + 2 rows) pass between merges. Between two merges a thread does not see the
  // others' updates: 262,144 / (threads - 1) examples bounds what it misses to 262,144 (NCF
  // quality did not move between 16,384 and 262,144 on 2 threads; docs/benchmarks.md).
  const int64_t T = static_cast<int64_t>(grads_.size());
  merge_every_ = s_.merge_every > 0 ? s_.merge_every
                                    : std::max<int64_t>(262144 / std::max<int64_t>(1, T - 1), 64 * H / (s_.k + 2));
}

// Every thread's replica from the shared table (an epoch's start: checkpoints, validation and
// process-group merges read and write the shared table between epochs). Each thread copies its
// own, so that its pages are first touched by the core that uses them.
void FusedEngine::load_replicas() {
  const int64_t d = s_.dim, H = static_cast<int64_t>(hot_ids_.size());
  parallel_region(static_cast<int>(grads_.size()), [&](int t) {
    Grad& g = *grads_[t];
    auto fill = [&](AlignedFloats& rep, const AlignedFloats* state, const float* w) {
      rep.resize(static_cast<size_t>(H * d));
      const float* src = state ? state->data() : w;
      for (int64_t q = 0; q < H; ++q) std::memcpy(rep.data() + q * d, src + hot_ids_[q] * d, d * sizeof(float));
    };
    fill(g.rep_w, nullptr, s_.items.w);
    if (!opt_items_.s1.empty()) fill(g.rep_s1, &opt_items_.s1, nullptr);
    if (!opt_items_.s2.empty()) fill(g.rep_s2, &opt_items_.s2, nullptr);
    ItemRows& v = g.items_at;
    v.slot = hot_slot_.data();
    v.rw = g.rep_w.data();
    v.r1 = g.rep_s1.empty() ? nullptr : g.rep_s1.data();
    v.r2 = g.rep_s2.empty() ? nullptr : g.rep_s2.data();
  });
}

// The replicas into the shared table and back: a hot row becomes its value at the last merge plus
// the sum of the changes every thread made to it since (as if each thread's updates had been
// applied one after the other: Hogwild's sum, without the threads writing one cache line), and so
// does its Adagrad accumulator; lazy Adam's moments take the replicas' mean (a sum of decays
// could turn v negative). The threads split the rows.
void FusedEngine::merge_replicas() {
  const int64_t d = s_.dim, H = static_cast<int64_t>(hot_ids_.size());
  const int T = static_cast<int>(grads_.size());
  const float mn = static_cast<float>(s_.max_norm);
  std::vector<float*> rw(T), r1(T), r2(T);
  for (int t = 0; t < T; ++t)
    rw[t] = grads_[t]->rep_w.data(), r1[t] = grads_[t]->rep_s1.data(), r2[t] = grads_[t]->rep_s2.data();
  parallel_region(T, [&](int t) {
    float acc[256];
    auto sum_deltas = [&](float* base, const std::vector<float*>& reps, int64_t o) {
      if (T == 1) return (void)std::memcpy(acc, reps[0] + o, d * sizeof(float));  // exact: the replica is the row
      for (int64_t j = 0; j < d; ++j) acc[j] = base[j];
      for (int u = 0; u < T; ++u)
        for (int64_t j = 0; j < d; ++j) acc[j] += reps[u][o + j] - base[j];
    };
    auto mean = [&](const std::vector<float*>& reps, int64_t o) {
      if (T == 1) return (void)std::memcpy(acc, reps[0] + o, d * sizeof(float));
      for (int64_t j = 0; j < d; ++j) acc[j] = 0;
      for (int u = 0; u < T; ++u)
        for (int64_t j = 0; j < d; ++j) acc[j] += reps[u][o + j];
      for (int64_t j = 0; j < d; ++j) acc[j] /= static_cast<float>(T);
    };
    auto store = [&](float* base, const std::vector<float*>&, int64_t) { std::memcpy(base, acc, d * sizeof(float)); };
    for (int64_t q = H * t / T; q < H * (t + 1) / T; ++q) {
      const int64_t r = hot_ids_[q], o = q * d;
      float* w = s_.items.w + r * d;
      sum_deltas(w, rw, o);
      if (mn > 0 && T > 1) vec::clip(acc, dot(acc, acc, d), mn, d);  // a sum of clipped changes may leave the ball
      store(w, rw, o);
      if (opt_ == Opz::Adagrad) {
        float* s1 = opt_items_.s1.data() + r * d;
        sum_deltas(s1, r1, o);
        store(s1, r1, o);
      } else if (opt_ == Opz::LazyAdam) {
        float* m = opt_items_.s1.data() + r * d;
        float* v = opt_items_.s2.data() + r * d;
        mean(r1, o), store(m, r1, o);
        mean(r2, o), store(v, r2, o);
      }
    }
  });
  // Then each thread copies the merged rows into its own replica: a replica's lines are only ever
  // written by the core that trains on them.
  parallel_region(T, [&](int t) {
    Grad& g = *grads_[t];
    for (int64_t q = 0; q < H; ++q) {
      const int64_t r = hot_ids_[q];
      std::memcpy(g.rep_w.data() + q * d, s_.items.w + r * d, d * sizeof(float));
      if (!g.rep_s1.empty()) std::memcpy(g.rep_s1.data() + q * d, opt_items_.s1.data() + r * d, d * sizeof(float));
      if (!g.rep_s2.empty()) std::memcpy(g.rep_s2.data() + q * d, opt_items_.s2.data() + r * d, d * sizeof(float));
    }
  });
}

double FusedEngine::adam_step_size(double t) const {
  return s_.lr * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
}

void FusedEngine::apply(Grad& g) {
  double t = static_cast<double>(++adam_step_);
  double step = opt_ == Opz::LazyAdam ? adam_step_size(t) : 0.0;
  for (size_t k = 0; k < g.items.rows.size(); ++k) {
    const RowRef r = g.items_at.at(g.items.rows[k], s_.dim);
    update_ref(r.w, r.s1, r.s2, g.items.g.data() + k * s_.dim, step);
  }
  for (size_t k = 0; k < g.users.rows.size(); ++k)
    update_row(s_.users, opt_users_, g.users.rows[k], g.users.g.data() + k * s_.dim, step);
  g.items.clear();
  g.users.clear();
}

// Each anchor's part when the positives are split by anchor into `parts` contiguous anchor ranges
// of about N / parts positives (threads of a process; ranks of a group): with user anchors a
// user's row then has one writer.
static std::vector<int> owners_by_anchor(const std::vector<Positive>& pos, int parts) {
  const int64_t N = static_cast<int64_t>(pos.size());
  std::vector<int64_t> count;
  for (const Positive& q : pos) {
    if (q.a >= static_cast<int32_t>(count.size())) count.resize(static_cast<size_t>(q.a) + 1, 0);
    ++count[q.a];
  }
  std::vector<int> owner(count.size(), 0);
  int64_t run = 0;
  for (size_t a = 0; a < count.size(); ++a) {
    owner[a] = static_cast<int>(std::min<int64_t>(parts - 1, run * parts / std::max<int64_t>(1, N)));
    run += count[a];
  }
  return owner;
}

// Hogwild: the positives are split once between threads by anchor (owners_by_anchor), so with
// user anchors a user's row is written by one thread (until that thread's share is done and
// another takes its last blocks: epoch()); each thread keeps its share (Grad::share) and trains a
// shuffled copy every epoch.
void FusedEngine::split_shares() {
  const auto& pos = trained_positives();
  const int T = static_cast<int>(grads_.size());
  const std::vector<int> owner = owners_by_anchor(pos, T);
  std::vector<int64_t> size(T, 0);
  for (const Positive& q : pos) ++size[owner[q.a]];
  for (int t = 0; t < T; ++t) grads_[t]->share.clear(), grads_[t]->share.reserve(size[t]);
  for (const Positive& q : pos) grads_[owner[q.a]]->share.push_back(q);
  for (int t = 0; t < T; ++t) grads_[t]->batch = grads_[t]->share;  // its pages, once, here rather than in epoch 1
  share_size_ = pos.size();
}

const std::vector<Positive>& FusedEngine::trained_positives() const {
  dist::Group* G = dist::active();
  return G && s_.per_example ? rank_pos_ : builder_.positives();
}

// Local SGD: rank R's shard of the positives, and every rank's shard size.
static void shard_by_anchor(const std::vector<Positive>& pos, int W, int R, std::vector<Positive>& mine,
                            std::vector<int64_t>& sizes) {
  const std::vector<int> owner = owners_by_anchor(pos, W);
  sizes.assign(W, 0);
  mine.clear();
  for (const Positive& q : pos) {
    ++sizes[owner[q.a]];
    if (owner[q.a] == R) mine.push_back(q);
  }
}

void FusedEngine::exchange_rows(dist::Group& G, Grad& g) {
  const int64_t d = s_.dim;
  std::vector<int64_t> ids;  // item rows r, user rows -(r + 1)
  std::vector<float> vals;
  ids.reserve(g.items.rows.size() + g.users.rows.size());
  for (auto r : g.items.rows) ids.push_back(r);
  for (auto r : g.users.rows) ids.push_back(-r - 1);
  vals.reserve(ids.size() * d);
  vals.insert(vals.end(), g.items.g.begin(), g.items.g.end());
  vals.insert(vals.end(), g.users.g.begin(), g.users.g.end());
  G.sum_rows(ids, vals, d, "the exchange of gradient rows");
  g.items.clear();
  g.users.clear();
  for (size_t q = 0; q < ids.size(); ++q) {
    const int64_t id = ids[q];
    std::copy_n(vals.data() + q * d, d, id >= 0 ? g.items.row(id, d) : g.users.row(-id - 1, d));
  }
}

void FusedEngine::merge_rows(dist::Group& G) {
  const int64_t d = s_.dim;
  struct Tab {
    FusedSpace* sp;
    AlignedFloats* snap;
  };
  Tab tabs[2] = {{&s_.items, &snap_items_}, {&s_.users, &snap_users_}};
  auto at = [&](int64_t id, float*& w, float*& sn) {
    const Tab& t = tabs[id >= 0 ? 0 : 1];
    const int64_t r = id >= 0 ? id : -id - 1;
    w = t.sp->w + r * d, sn = t.snap->data() + r * d;
  };
  // The rows this rank changed since the last merge (items r, users -(r + 1)) and their deltas.
  std::vector<int64_t> ids;
  std::vector<float> delta;
  for (int k = 0; k < 2; ++k)
    for (int64_t r = 0; r < tabs[k].sp->rows; ++r) {
      const float *w = tabs[k].sp->w + r * d, *sn = tabs[k].snap->data() + r * d;
      if (std::memcmp(w, sn, d * sizeof(float)) == 0) continue;
      ids.push_back(k == 0 ? r : -r - 1);
      for (int64_t j = 0; j < d; ++j) delta.push_back(w[j] - sn[j]);
    }
  G.sum_rows(ids, delta, d, "the merge of touched rows");
  for (size_t q = 0; q < ids.size(); ++q) {
    float *w, *sn;
    at(ids[q], w, sn);
    for (int64_t j = 0; j < d; ++j) w[j] = sn[j] + delta[q * d + j];
    if (s_.max_norm > 0) vec::clip(w, dot(w, w, d), static_cast<float>(s_.max_norm), d);
    std::memcpy(sn, w, d * sizeof(float));
  }
}

double FusedEngine::epoch(int epoch_index) {
  dist::Group* G = dist::active();
  const int W = G ? G->size() : 1, R = G ? G->rank() : 0;
  if (G && s_.per_example && rank_pos_.empty()) {
    shard_by_anchor(builder_.positives(), W, R, rank_pos_, shard_sizes_);
    share_size_ = 0;  // the threads split this rank's shard
    auto copy = [&](const FusedSpace& sp, AlignedFloats& snap) { snap.assign(sp.w, sp.w + sp.rows * s_.dim); };
    copy(s_.items, snap_items_);
    copy(s_.users, snap_users_);
  }
  const auto& pos = trained_positives();
  const int64_t N = static_cast<int64_t>(pos.size());
  const int T = std::max(1, s_.threads);
  const int64_t B = std::max<int64_t>(1, s_.batch);
  struct alignas(64) Sum {  // per thread, a cache line each
    double v = 0;
  };
  std::vector<Sum> loss_sum(T);
  auto loss = [&](int t) -> double& { return loss_sum[t].v; };
  if ((!s_.deterministic || T == 1) && !(G && !s_.per_example)) {
    // Hogwild: each thread shuffles a copy of its share (split_shares), then trains it in blocks
    // (mini-batches, or 4,096 examples per example) taken from a counter per share; a thread done
    // with its own share takes the blocks left in the others' (so a core slowed by another
    // process hands its tail over instead of holding the epoch up; the user rows of such a block
    // then have two lock-free writers, as item rows always do). One thread training per example
    // takes its share as one block. In a process group (local SGD) the shares are trained in
    // rounds of about dist.sync_every examples per rank, the touched rows merged after each.
    if (share_size_ != pos.size()) split_shares();
    int64_t block = !s_.per_example ? B : T == 1 ? std::max<int64_t>(1, N) : 4096;
    int64_t rounds = 1;
    if (G) {
      const int64_t most = *std::max_element(shard_sizes_.begin(), shard_sizes_.end());
      // dist.sync_every 0 (auto): 10 merges per epoch, rounds of at least 10,000 examples.
      rounds = s_.sync_every > 0 ? std::max<int64_t>(1, (most + s_.sync_every - 1) / s_.sync_every)
                                 : std::clamp<int64_t>(most / 10000, 1, 10);
    }
    // Replicas of the hot rows: each round is cut into sub-rounds of about merge_every examples
    // per thread, the replicas merged after each (and so before any merge across ranks).
    const bool replicas = !hot_ids_.empty();
    int64_t subs = 1;
    if (replicas) {
      load_replicas();
      int64_t most = 0;
      for (const auto& g : grads_) most = std::max<int64_t>(most, static_cast<int64_t>(g->share.size()));
      subs = std::max<int64_t>(1, (most / rounds + merge_every_ - 1) / merge_every_);
      // Per example, blocks of 1/16 of a sub-round: the threads reach each merge within a short
      // block of one another (a thread waits for the last block at every merge).
      if (s_.per_example && T > 1) block = std::clamp<int64_t>(merge_every_ / 16, 256, 4096);
    }
    // One counter per share, each on a cache line of its own (they take a fetch_add per block).
    struct alignas(64) Next {
      std::atomic<int64_t> v;
    };
    std::unique_ptr<Next[]> next(new Next[T]);
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
        constexpr int64_t kRing = 16;
        int64_t ring[kRing];
        auto pick = [&](int64_t q) {
          return static_cast<int64_t>((static_cast<unsigned __int128>(g.next()) * static_cast<uint64_t>(q)) >> 64);
        };
        for (int64_t q = n; q > 1 && q > n - kRing; --q)
          ring[q % kRing] = pick(q), __builtin_prefetch(&ep[ring[q % kRing]], 1);
        for (int64_t q = n; q > 1; --q) {
          int64_t j = ring[q % kRing];
          if (q - kRing > 1)
            ring[(q - kRing) % kRing] = pick(q - kRing), __builtin_prefetch(&ep[ring[(q - kRing) % kRing]], 1);
          std::swap(ep[q - 1], ep[j]);
        }
      }
      g.rng = mix64(s_.seed ^
                    mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(t) * 0x632be5abULL +
                          (G ? static_cast<uint64_t>(R) * 0x9e3779b97f4a7c15ULL : 0)));
    }
    for (int64_t q = 0; q < rounds * subs; ++q) {
      for (int t = 0; t < T; ++t) next[t].v = 0;
#pragma omp parallel num_threads(T)
      {
        int t = omp_get_thread_num();
        Grad& g = *grads_[t];
        for (int v = 0; v < T; ++v) {
          const std::vector<Positive>& share = grads_[(t + v) % T]->batch;
          const int64_t ns = static_cast<int64_t>(share.size()), lo = ns * q / (rounds * subs),
                        hi = ns * (q + 1) / (rounds * subs);
          for (int64_t b0; (b0 = lo + next[(t + v) % T].v.fetch_add(1) * block) < hi;) {
            const int64_t len = std::min(hi - b0, block);
            if (s_.per_example) {
              loss(t) += run_per_example(g, share.data() + b0, len);
            } else {
              loss(t) += run_examples(g, share.data() + b0, len, 1.0f / static_cast<float>(len)) * len;
              apply(g);
            }
          }
        }
      }
      if (replicas) merge_replicas();
      if (G && (q + 1) % subs == 0) merge_rows(*G);
    }
  } else {
    // Deterministic: a global shuffle; each global mini-batch is split across threads; ordered
    // reduction; one update. In a process group the global mini-batch is batch x ranks: split
    // across ranks, then threads; the ranks' gradient rows are summed in rank order.
    std::vector<int64_t> order(N);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(mix64(s_.seed ^ mix64(static_cast<uint64_t>(epoch_index))));
    for (int64_t k = N; k > 1; --k) std::swap(order[k - 1], order[rng() % k]);
    std::vector<Positive> ep(N);
    for (int64_t r = 0; r < N; ++r) ep[r] = pos[order[r]];
    const int64_t GB = B * W;
    for (int64_t gb0 = 0; gb0 < N; gb0 += GB) {
      const int64_t gn = std::min(N, gb0 + GB) - gb0;
      const int64_t b0 = gb0 + gn * R / W, b1 = gb0 + gn * (R + 1) / W;
      float scale = 1.0f / static_cast<float>(gn);
      // No race by design (each thread its own slice and gradient buffers): a region TSan checks.
      parallel_region(T, [&](int t) {
        Grad& g = *grads_[t];
        int64_t n = b1 - b0, lo = b0 + n * t / T, hi = b0 + n * (t + 1) / T;
        g.rng = mix64(s_.seed ^
                      mix64(static_cast<uint64_t>(epoch_index) * 1000003ULL + static_cast<uint64_t>(b0) * 131 + t));
        loss(t) += run_examples(g, ep.data() + lo, hi - lo, scale) * gn;
      });
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
      if (G) exchange_rows(*G, g0);
      apply(g0);
    }
  }
  double total = 0;
  for (const Sum& l : loss_sum) total += l.v;
  int64_t count = N;
  if (G) {  // the epoch's loss over every rank's examples
    double v[2] = {total, static_cast<double>(N)};
    G->sum(v, 2, "the epoch's loss");
    total = v[0];
    // Per example each rank trained its shard; mini-batches: every rank its slices of all N.
    count = s_.per_example ? static_cast<int64_t>(v[1]) : N;
  }
  seen_ += count;
  return total / std::max<int64_t>(1, count);
}

std::string FusedEngine::save_state() const {
  std::string out;
  auto put = [&](const AlignedFloats& v) {
    uint64_t n = v.size();
    out.append(reinterpret_cast<const char*>(&n), 8);
    if (n) out.append(reinterpret_cast<const char*>(v.data()), n * sizeof(float));
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
    if (n) std::memcpy(v.data(), b.data() + pos, n * sizeof(float));  // an empty state has no storage
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
