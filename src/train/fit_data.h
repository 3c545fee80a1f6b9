// What a model fits on, and how it is validated. Lives in train/ (below models/ and eval/): the
// caller (tasks/, the public API) injects the validation metric as a callback, so neither train/
// nor models/ include the evaluator.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "scoring/topk.h"

namespace siamrec {

class Config;
struct Csr;
struct Dataset;
struct Interactions;

// One validation of a model's scores on held-out interactions.
struct ValidationRequest {
  const BlockScorer* scorer = nullptr;                    // scores every item for a block of users
  const Interactions* valid = nullptr;                    // the held-out interactions
  const Csr* exclude = nullptr;                           // user -> items never ranked (the training items)
  const std::vector<int32_t>* candidate_items = nullptr;  // rank only within these (cold items); null: all
  std::string metric;                                     // e.g. "ndcg@10"
  std::string candidates = "full";                        // full | uniform:N | popularity:N (seeded per user)
  int64_t max_users = 0;                                  // > 0: a seeded sample of this many validation users
  uint64_t seed = 42;
  int32_t n_users = 0, n_items = 0;
  int threads = 1;
  // Retrieval validation (item-anchored label builders) instead: each item of retrieval_set
  // queries the others by item_vectors (n_items x dim, compared by `similarity`); relevant = the
  // same label (labels: parallel to retrieval_set). The metric is the retrieval Recall@K.
  const std::vector<int32_t>* retrieval_set = nullptr;
  const std::vector<int32_t>* labels = nullptr;
  const float* item_vectors = nullptr;
  int dim = 0;
  Similarity similarity = Similarity::Dot;
};
// Returns the validation metric (higher is better). eval/ provides the standard one
// (ranking_validator() in eval/validation.h).
using Validator = std::function<double(const ValidationRequest&)>;

// Per-epoch report to a caller's callback (the public API's progress and stop).
struct EpochInfo {
  int epoch = 0, epochs = 0;     // 1-based epoch, configured epoch count
  double loss = 0, seconds = 0;  // mean training loss, seconds of this epoch
  double valid = 0;              // validation metric (when has_valid)
  bool has_valid = false;
  std::string valid_metric;
  bool refit = false;  // the refit pass after early stopping
};
// Called after every epoch; return false to stop training (the best weights so far are kept).
using EpochCallback = std::function<bool(const EpochInfo&)>;

// The files a fit with checkpoint `path` may write: the checkpoint, and the refit pass's
// (path + ".refit") after early stopping. A finished run may delete them.
inline std::vector<std::string> checkpoint_files(const std::string& path) {
  if (path.empty()) return {};
  return {path, path + ".refit"};
}

// Everything a model may fit on. Valid interactions may be empty.
struct FitData {
  const Dataset* ds = nullptr;  // ids and side data
  const Interactions* train = nullptr;
  const Interactions* valid = nullptr;
  const Csr* train_by_user = nullptr;                   // user -> train items
  const std::vector<int32_t>* heldout_items = nullptr;  // items never trained on nor drawn as negatives
  const std::vector<int32_t>* valid_items = nullptr;    // cold validation items (same; validation ranks within them)
  const Config* cfg = nullptr;
  int threads = 1;
  std::string protocol;                     // of the split, for logs
  std::string checkpoint;                   // per-epoch checkpoint file ("" = none)
  bool resume = false;                      // continue from `checkpoint` when it exists
  std::string log_path;                     // JSON-lines training log ("" = none)
  int stop_after_epoch = 0;                 // tests: stop as if interrupted after this epoch (0 = never)
  Validator validator;                      // early stopping metric; empty: no early stopping
  std::string valid_candidates = "full";    // the validation's candidates (resolved train.valid_candidates)
  EpochCallback on_epoch;                   // progress / stop; empty: none
  const std::atomic<bool>* stop = nullptr;  // set from another thread to stop after the current epoch
  bool refit_pass = false;                  // set by models for the refit after early stopping (EpochInfo::refit)
  // The validation part is what the fitted model will be evaluated on (tune): sequence models must
  // not read it as history (they otherwise append it to the test-time histories).
  bool valid_is_evaluated = false;
};

}  // namespace siamrec
