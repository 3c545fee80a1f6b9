// The public API's private state (pimpl): what include/siamrec/*.h hide. Only src/api and the
// library's own clients (the command line, the Python module) include this.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include <siamrec/dataset.h>
#include <siamrec/model.h>

#include "config/config.h"
#include "data/dataset.h"
#include "data/split.h"
#include "models/model_file.h"

namespace siamrec {

// Converts a public config source into the validated internal config.
Config resolve_config(const api::ConfigSource& s);
// Process-wide set-up the command line does in main(): allocator thresholds (small training steps
// otherwise page-fault), OpenBLAS single-threaded under siamrec's own threads. Idempotent.
void init_runtime();
// 0 -> all cores; otherwise n, bounded to [1, 4 x cores].
int resolve_threads(int n);

struct api::Dataset::Impl {
  std::shared_ptr<const ::siamrec::Dataset> ds;  // ids and side data, shared by the parts
  std::shared_ptr<const SplitData> split;        // when this is a part of a split (test negatives, held-out items)
  enum Part { kAll, kTrain, kValid, kTest } part = kAll;
  std::string protocol;
  const Interactions& log() const {
    switch (part) {
      case kTrain:
        return split->train;
      case kValid:
        return split->valid;
      case kTest:
        return split->test;
      default:
        return ds->log;
    }
  }
};

struct api::Model::Impl {
  Config cfg;
  TrainedModel tm;  // tm.model is null until fitted or loaded
  // The dataset it was fitted on (kept for evaluation of parts of the same data).
  std::shared_ptr<const ::siamrec::Dataset> ds;
  std::string exclude = "train+valid";    // what exclude_seen drops (Model::set_exclude)
  const ::siamrec::Model& model() const;  // throws when not fitted
};

}  // namespace siamrec
