// The LibTorch training loop for Siamese networks: tuples from the builder, negatives from the
// sampler (with hard / semi-hard / in-batch mining), the loss and regularizers, an optimizer with a
// step schedule, early stopping on a validation metric with the best weights kept, a checkpoint
// every epoch (--resume continues from it), a progress bar or log lines, and a JSON-lines log with
// embedding health.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "losses/loss.h"
#include "sampling/builder.h"
#include "train/fit_data.h"
#include "train/fused.h"
#include "train/net.h"
#include "train/optimizer.h"

namespace siamrec {

struct TrainReport {
  int epochs_run = 0, best_epoch = 0;
  double best_valid = 0, seconds = 0, last_loss = 0;
  std::string valid_metric;
  bool interrupted = false;  // stopped by FitData::on_epoch or FitData::stop
};

class Trainer {
 public:
  // `validate` returns the validation metric (higher is better); empty = no early stopping.
  Trainer(SiameseNet& net, const Config& c, TupleBuilder& builder, NegativeSampler& sampler, Loss& loss,
          std::function<double()> validate);
  TrainReport run(const FitData& d, float label_offset);
  // Train with another engine's epochs (the fused engine) instead of the LibTorch batch loop;
  // early stopping, schedules, checkpoints and logs stay the same.
  void set_runner(EpochRunner* r) { runner_ = r; }

 private:
  // Negatives for rows (a[r], p[r]), r < n: never a known positive of the anchor.
  void make_negatives(const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n, uint64_t batch_seed,
                      std::vector<int64_t>& negs);
  // in_batch: mask[i*n+j] = 1 when row j's positive is a valid negative for row i (not the same
  // row, not the same item, not a known positive of i's anchor).
  void in_batch_negatives(const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n,
                          std::vector<uint8_t>& mask) const;
  // sampler.type proxies: each row's label (the one its positive shares with its anchor) and
  // mask[r*L+l] = 1 when label l's proxy is a negative for row r (not one of the anchor's labels).
  void proxy_targets(const std::vector<int64_t>& a, const std::vector<int64_t>& p, int64_t n,
                     std::vector<int64_t>& label, std::vector<uint8_t>& mask) const;
  // sampler.type proxies: one learned vector per label of the builder (checks the set-up).
  void init_proxies();
  // in_batch with sampler.batch_mining hard / semi_hard: a one-negative-per-anchor mask.
  torch::Tensor mine_in_batch(const torch::Tensor& pos, const torch::Tensor& neg, const torch::Tensor& mask, bool dist);
  // Hard / semi-hard selection among candidates, given the anchors' embeddings.
  torch::Tensor mine(const torch::Tensor& ea, const torch::Tensor& p, const torch::Tensor& cand);
  // Sequence builders: the windows order[lo..hi) as right-padded inputs; fills the rows (user,
  // next item) of every valid position and returns the anchors' states [rows, d].
  // Cloze towers (BERT4Rec): the windows' masked positions are the rows (user, masked item); the
  // masks are drawn from batch_seed.
  torch::Tensor sequence_rows(const std::vector<int64_t>& order, size_t lo, size_t hi, uint64_t batch_seed,
                              std::vector<int64_t>& a, std::vector<int64_t>& p);
  // train.session_parallel: chunk c's rows (each lane's states carried in `lanes`, one [lanes, H]
  // per layer, created on first use); fills (user, next item) per position, returns their states.
  torch::Tensor session_rows(const struct SessionChunk& c, int64_t n_lanes, std::vector<torch::Tensor>& lanes,
                             std::vector<int64_t>& a, std::vector<int64_t>& p);
  void save_checkpoint(const std::string& path, int epoch, double best, int best_epoch, int bad,
                       const std::vector<torch::Tensor>& best_state, const EpochRunner& runner);
  uint64_t data_hash() const;
  bool load_checkpoint(const std::string& path, int& epoch, double& best, int& best_epoch, int& bad,
                       std::vector<torch::Tensor>& best_state);

  SiameseNet& net_;
  const Config& cfg_;
  TupleBuilder& builder_;
  NegativeSampler& sampler_;
  Loss& loss_;
  std::function<double()> validate_;
  std::unique_ptr<Optimizer> opt_;
  EpochRunner* runner_ = nullptr;
  // sampler.type proxies: [labels, d], trained with the network, kept in checkpoints; not part of
  // the model (retrieval and recommendation read the towers only).
  torch::Tensor proxies_;
  class TorchEpochs;           // the LibTorch engine's EpochRunner (trainer.cc)
  std::string pending_state_;  // optimizer state read from a checkpoint, for the engine's runner
  int k_ = 1, candidates_ = 20;
  int64_t max_len_ = 50;                // sequence builders: inputs per window
  int64_t length_buckets_ = 1;          // sequence builders: batches per group sorted by window length
  bool score_in_place_ = true;          // negatives scored against the item table in place (when it is one)
  bool pack_windows_ = true;            // sequence builders: short windows share rows (when the tower can)
  bool session_parallel_ = false;       // sequence builders: GRU4Rec's session-parallel mini-batches
  int64_t bptt_ = 1;                    // train.session_parallel: inputs per lane and mini-batch
  double mask_prob_ = 0.2;              // Cloze towers: share of a window's items masked
  Mining batch_mining_ = Mining::None;  // in_batch: None (all valid negatives) | Hard | SemiHard
  bool prefetch_ = false;               // prepare the next batch on a helper thread
  Mining mining_ = Mining::None;        // the sampler's (sampling/builder.h)
  int32_t n_items_ = 0;
  uint64_t seed_ = 42;
};

}  // namespace siamrec
