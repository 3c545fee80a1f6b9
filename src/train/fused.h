// The fused engine: a hand-written multithreaded training kernel for Siamese models whose towers
// are embedding tables (`id`) or bags of them (`bag`), with a dot / cosine / euclidean /
// squared-euclidean comparator and a triplet / bpr / contrastive / bce / warp / infonce / mse loss.
// Sampling, forward, gradient and the optimizer update run per example without autograd, on the
// very tensors the LibTorch engine trains (same parameters, same model file).
//
// Semantics match the LibTorch engine: the gradient of a mini-batch is the gradient of the mean
// loss over its examples, and one optimizer step follows each mini-batch (sgd and adagrad leave
// rows without gradient untouched; lazy_adam steps every row the batch looked up, gradient or
// not, as the LibTorch engine's LazyAdam does with its sparse gradients).
//  - Hogwild mode (default): each thread trains its own share of the positives (split by anchor:
//    with user anchors a user row has one writer until a thread done with its share takes blocks
//    left in another's) in mini-batches, or example by example (train.update example), and
//    updates the shared tables without locks.
//  - Deterministic mode (train.deterministic): each global mini-batch is split statically across
//    threads, per-thread gradients are reduced in thread order, one update is applied; identical
//    results run to run for a seed and thread count.
// This header does not include torch.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "comparators/fused_form.h"
#include "losses/fused_form.h"
#include "sampling/builder.h"
#include "towers/features.h"

namespace siamrec {

class Config;
namespace dist {
class Group;
}

struct FusedSpace {
  float* w = nullptr;  // rows x dim table (the tower's parameter storage)
  int64_t rows = 0;
  bool bag = false;  // false: entity e is row e; true: mean/sum of its bag's rows
  bool sum = false;  // bag pooling
  const EntityFeatures* feats = nullptr;
};

struct FusedSpec {
  FusedSpace items;         // item (or joint) table
  FusedSpace users;         // separate user table (two-tower); rows = 0 when absent
  bool user_anchor = true;  // anchors are users (user_item) or items
  bool joint = true;        // users are entities n_items + u of the item table
  int64_t n_items = 0, dim = 0;
  std::string comparator, loss, optimizer;
  double margin = 1, temperature = 0.1, neg_weight = 1, pos_margin = 0, lr = 0.01, l2 = 0, max_norm = 0,
         weight_decay = 0;
  int k = 1;
  int64_t batch = 1024;
  int threads = 1;
  bool deterministic = false;
  bool per_example = false;  // Hogwild updates after every example (StarSpace/LightFM), no mini-batch
  uint64_t seed = 42;
  float label_offset = 0;
  // Hogwild with more than one thread: each thread keeps a replica of this many of the most-updated
  // item rows (-1: auto, 0: none) and the replicas are merged every merge_every examples per thread
  // (0: auto); train.hot_rows, train.merge_every.
  int64_t hot_rows = -1, merge_every = 0;
  int64_t sync_every = 0;  // dist.sync_every (a process group, per-example updates; 0: 10 merges per epoch)
};

// Why a config cannot run on the fused engine ("" when it can), from what the parts declare: a
// fused form of the loss and the comparator, and the "fused:*" capabilities that towers, builders,
// samplers and optimizers register (util/names.h).
std::string fused_unsupported(const Config& c);

class SiameseNet;
// The fused engine's spec for training `net` under config c (its tables, comparator, loss,
// optimizer, sampler and train keys) with `threads` threads; label_offset as the trainer's.
FusedSpec fused_spec(const Config& c, SiameseNet& net, int threads, float label_offset);

// What the training loop (train/trainer.h) needs from an engine other than LibTorch autograd.
class EpochRunner {
 public:
  virtual ~EpochRunner() = default;
  virtual double run_epoch(int epoch_index) = 0;  // returns the mean loss
  virtual void set_lr(double lr) = 0;
  virtual std::string save_state() const = 0;  // optimizer state for checkpoints
  virtual void load_state(const std::string& bytes) = 0;
  // What the last epoch did (for the training log); examples < 0: every positive once.
  struct EpochStats {
    int64_t examples = -1;
    double prep_seconds = 0, prep_wait_seconds = 0;  // batch preparation, and the loop's wait for it
  };
  virtual EpochStats last_stats() const { return {}; }
};

// 64-byte aligned storage: optimizer-state rows of 16k floats then start on cache lines, so two
// Hogwild threads updating neighbouring rows never write the same line.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  bool operator==(const CacheLineAllocator&) const { return true; }
  bool operator!=(const CacheLineAllocator&) const { return false; }
};
using AlignedFloats = std::vector<float, CacheLineAllocator<float>>;

class FusedEngine : public EpochRunner {
 public:
  FusedEngine(const FusedSpec& s, const TupleBuilder& builder, const NegativeSampler& sampler);
  ~FusedEngine() override;
  // One epoch over the builder's positives; returns the mean loss.
  double epoch(int epoch_index);
  double run_epoch(int epoch_index) override { return epoch(epoch_index); }
  void set_lr(double lr) override { s_.lr = lr; }
  std::string save_state() const override;
  void load_state(const std::string& bytes) override;
  // Tests: gradient of the mean loss over one mini-batch (negs: B x k) w.r.t. the item and user
  // tables (dense, rows x dim), without updating anything.
  double batch_gradient(const std::vector<int64_t>& a, const std::vector<int64_t>& p, const std::vector<int64_t>& negs,
                        const std::vector<float>& y, std::vector<float>& g_items, std::vector<float>& g_users);
  // Tests: one optimizer step with the gradient of this mini-batch.
  double batch_step(const std::vector<int64_t>& a, const std::vector<int64_t>& p, const std::vector<int64_t>& negs,
                    const std::vector<float>& y);
  // Tests: one per-example update (train.update example) with this example; lazy Adam counts it
  // as one optimizer step.
  double example_step(int64_t a, int64_t p, const std::vector<int64_t>& negs, float y);
  int64_t examples_seen() const { return seen_; }
  // Optimizer steps so far: one per mini-batch; per example, lazy Adam's count (256 at a time).
  int64_t optimizer_steps() const { return adam_step_.load(); }
  // Training of the CML family (user anchors, 1 to 32 uniform negatives, triplet hinge without
  // L2, dot or squared euclidean, id tables of d = 32, 64 or 128, the builder's known-positive
  // bitmap), per example or in mini-batches, runs a loop of its own (run_cml), the same to the
  // bit as the general one; tests can turn it off to compare.
  bool cml_loop() const { return cml_ok_; }
  // Item rows each Hogwild thread keeps a replica of (train.hot_rows; 0: none), and examples per
  // thread between two merges of the replicas.
  int64_t replicated_rows() const { return static_cast<int64_t>(hot_ids_.size()); }
  int64_t merge_interval() const { return merge_every_; }
  void disable_cml_loop() { cml_ok_ = false; }
  struct Grad;  // per-thread sparse gradient accumulator

 private:
  struct Opt {
    AlignedFloats s1, s2;  // adagrad: s1 = accumulator; lazy_adam: m, v
  };
  enum class Opz { Sgd, Adagrad, LazyAdam } opt_;
  // direct: apply the example's update to the rows at once (per-example mode) instead of
  // accumulating it into the thread's mini-batch gradient.
  double example(int64_t a, int64_t p, const int64_t* negs, float y, float scale, Grad& g, bool direct = false,
                 double adam_step = 0) const;
  double coefs(double vpv, const double* vnv, float y, double& up_p, double* upn, int k) const;
  // Users have a table of their own unless they share the items' (the joint space, after the items).
  bool user_space() const { return s_.user_anchor && !s_.joint; }
  int64_t anchor_entity(int64_t a) const { return s_.user_anchor && s_.joint ? s_.n_items + a : a; }
  double adam_step_size(double t) const;  // lazy Adam's bias-corrected step size at step t
  struct Fwd {
    double L = 0;         // the example's loss
    float* wa = nullptr;  // the anchor's row
    int64_t ae = 0;       // and its entity in that table
    bool any = false;     // some row gets a gradient
  };
  template <int C, bool kSq, int K>
  Fwd fast_forward(int64_t a, int64_t p, const int64_t* negs, float y, Grad& g) const;
  template <int C, bool kSq, int K>
  double fast_gradient(int64_t a, int64_t p, const int64_t* negs, float y, float scale, Grad& g);
  template <int C, bool kSq, Opz kOpt, int K>
  double fast_example(int64_t a, int64_t p, const int64_t* negs, float y, Grad& g, float adam_step);
  double direct_example(const Positive& e, const int64_t* negs, Grad& g, double adam_step);
  double batch_example(const Positive& e, const int64_t* negs, float scale, Grad& g);
  double accumulate(const std::vector<int64_t>& a, const std::vector<int64_t>& p, const std::vector<int64_t>& negs,
                    const std::vector<float>& y);
  bool fast_aliased(const Positive& e, const int64_t* negs) const;
  bool fast_ok_ = false;               // the fast kernels apply (id tables, dot/sq_euclidean, AVX-512 rows)
  bool cml_ok_ = false;                // run_cml applies
  static constexpr int kCmlMaxK = 32;  // negatives per example run_cml takes
  // kGrad false: per-example updates; true: the example's gradients times `scale` into the
  // thread's gradient rows (one mini-batch, as run_examples()).
  template <int C, bool kSq, Opz kOpt, int K, bool kGrad>
  double run_cml(Grad& g, const Positive* ex, int64_t n, float scale);
  template <bool kGrad>
  double cml(Grad& g, const Positive* ex, int64_t n, float scale);
  double run_per_example(Grad& g, const Positive* ex, int64_t n);
  template <class Body>
  double pipeline(Grad& g, const Positive* ex, int64_t n, bool state, Body&& body) const;
  void prefetch_example(const Positive& f, const int64_t* negs, bool state) const;
  double run_examples(Grad& g, const Positive* ex, int64_t n, float scale);
  void apply(Grad& g);
  void update_row(FusedSpace& sp, Opt& o, int64_t row, const float* g, double adam_step);
  void update_ref(float* w, float* s1, float* s2, const float* g, double adam_step);
  // Replicas of the hot item rows (train.hot_rows): chosen once (the most popular items, whose rows
  // take the most updates), copied from the shared table into every thread's replica at the start
  // of an epoch, and merged (the shared row plus the sum of every replica's change since the last
  // merge; lazy Adam's moments: their mean) back into the shared table and every replica.
  std::vector<int32_t> hot_slot_;  // item-table row -> replica slot, -1: shared
  std::vector<int64_t> hot_ids_;   // slot -> item-table row
  int64_t merge_every_ = 0;
  void choose_hot_rows();
  void load_replicas();
  void merge_replicas();
  double run_batch(const std::vector<std::vector<int64_t>>& per_thread_rows, uint64_t batch_seed, bool update,
                   std::vector<Grad*>& grads);

  // The loss and comparator as their own files declare them for this engine (losses/fused_form.h,
  // comparators/fused_form.h): one source of the math for both engines.
  const FusedLossForm* loss_form_ = nullptr;
  const FusedComparatorForm* cmp_form_ = nullptr;
  FusedLossArgs loss_args_;
  bool sq_ = false;       // the fast kernels' comparator: squared euclidean (else dot)
  bool triplet_ = false;  // the loss is the triplet hinge (inlined by the fast kernels and the CML loop)
  bool want_dist_ = false;
  double inv_k_ = 0;  // 1 / k
  FusedSpec s_;
  const TupleBuilder& builder_;
  const NegativeSampler& sampler_;
  Opt opt_items_, opt_users_;
  int64_t seen_ = 0;
  std::atomic<int64_t> adam_step_{0};
  size_t share_size_ = 0;  // Hogwild: positives split between threads (in each Grad::batch)
  void split_shares();
  // A process group (docs/distributed.md). Mini-batches: each global mini-batch (batch x ranks)
  // is split across ranks, then threads; the rows every rank touched are exchanged and summed in
  // rank order; one update, the same on every rank. Per example (local SGD): each rank trains
  // its shard (split by anchor) and every dist.sync_every examples the rows touched since the
  // last merge take every rank's change (snapshot + the sum of the ranks' deltas).
  const std::vector<Positive>& trained_positives() const;  // this process's: all, or its shard
  void exchange_rows(dist::Group& G, Grad& g);
  void merge_rows(dist::Group& G);
  std::vector<Positive> rank_pos_;         // local SGD: this rank's shard
  std::vector<int64_t> shard_sizes_;       // local SGD: every rank's shard size
  AlignedFloats snap_items_, snap_users_;  // local SGD: the tables at the last merge
  std::vector<std::unique_ptr<Grad>> grads_;
};

}  // namespace siamrec
