// The top-N task end to end, shared by the train / evaluate / recommend commands:
// config -> dataset -> filters and split -> model fit -> model file -> evaluation.
#pragma once
#include <string>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "data/split.h"
#include "eval/evaluator.h"
#include "models/model_file.h"

namespace siamrec {

struct RunOptions {
  std::string data_dir_flag;
  bool skip_bad_lines = false;
  int threads = 1;
  std::string checkpoint;  // per-epoch checkpoint of trainable models ("" = none)
  bool resume = false;
  std::string log_path;                     // JSON-lines training log
  EpochCallback on_epoch;                   // after every epoch; returning false stops training (best weights kept)
  const std::atomic<bool>* stop = nullptr;  // set from another thread to stop after the current epoch
  bool keep_tops = false;                   // evaluate_model: keep each user's ranked top-K (EvalResult::tops)
  bool valid_is_evaluated = false;          // fit_model: the validation part is evaluated later (tune)
};

struct Prepared {
  Dataset ds;
  SplitData split;
  Csr train_by_user;
};

// Builds a Config from an optional YAML file and --set overrides (later wins).
Config load_config(const std::string& path, const std::vector<std::string>& overrides);
Dataset load_data(const Config& c, const RunOptions& o);
// One interaction file read with the config's data.format and column mapping (data.order file
// applied); MissingDataError when it does not exist.
Dataset read_data_file(const Config& c, const std::string& path, const RunOptions& o);
Prepared prepare(const Config& c, const RunOptions& o);
// "uniform:N" / "popularity:N" with N a positive integer: sampled candidates (eval.candidates,
// train.valid_candidates).
bool sampled_candidates(const std::string& spec);
// train.valid_candidates resolved for `p`: an explicit value as it is; auto: the test protocol's
// sampled form (eval.candidates uniform:N / popularity:N as they are, fixed lists and candidate
// files as uniform:N with their length), full ranking otherwise and for cold validation items.
std::string resolved_valid_candidates(const Prepared& p, const Config& c);
// Filters and splits an already loaded dataset by the config's filter and split sections.
Prepared prepare_from(Dataset ds, const Config& c);
// Fits the configured model on the split's training data.
TrainedModel fit_model(const Prepared& p, const Config& c, const RunOptions& o);
// Evaluates a model under the config's test protocol; the model's ids must match the dataset's.
EvalResult evaluate_model(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o);
// Test interactions of `p` that are training data of `m` (ids must match, as for evaluate_model):
// metrics over them are inflated. 0 when the model was trained under the same split.
int64_t training_overlap(const TrainedModel& m, const Prepared& p);
// model.task retrieval: each held-out item (all items when none is held out) queries the others;
// optionally returns the top `keep_top` items of the first `keep_queries` queries.
EvalResult evaluate_item_retrieval(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o,
                                   std::vector<std::vector<int32_t>>* tops, int keep_queries = 0, int keep_top = 0);
// PNG grid of retrieval results on image items: `queries` spread over the held-out items, each row
// the query then its top 5 (green frame = same category, red = different). Written atomically.
void write_retrieval_grid(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o,
                          const std::string& path, int queries = 8);

// Top-k for every listed user, streamed in user order to `emit`. exclude_seen drops her train items
// and (exclude_valid) the validation items the model saw but did not train on: the set the
// evaluation excludes, so a printed list is the evaluated one.
void recommend_users(const TrainedModel& m, const std::vector<int32_t>& users, int k, int threads,
                     const std::function<void(int32_t user, const int32_t* items, const float* scores, int n)>& emit,
                     bool exclude_seen = true, bool exclude_valid = true);
// Filters and splits a dataset by the config's filter and split sections (the split prepare()
// makes), logging its sizes.
SplitData split_by_config(const Dataset& ds, const Config& c);

}  // namespace siamrec
