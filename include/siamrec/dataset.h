// Datasets: interactions over one id space. Original ids (as in the files or arrays) are kept both
// ways; models and results speak them. Copies share the data (cheap, immutable).
//
//   siamrec::api::Dataset ds = siamrec::api::Dataset::load("ml-100k");   // from $SIAMREC_DATA_DIR
//   siamrec::api::Split s = ds.split(siamrec::api::ConfigSource::from_pairs({{"split.type", "fixed"}, {"split.name",
//   "ua"}}));
//   // s.train / s.valid / s.test share ds's ids; s.protocol says how they were made.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <siamrec/config.h>

namespace siamrec::api {

struct DatasetOptions {
  std::string data_dir;         // "" = $SIAMREC_DATA_DIR, else ~/.cache/siamrec/datasets
  bool skip_bad_lines = false;  // skip and count malformed lines instead of stopping
  bool use_cache = true;        // binary cache of parsed datasets ($SIAMREC_CACHE_DIR)
};

struct Split;

class Dataset {
 public:
  // A registered dataset by name (Dataset::registered() lists them).
  static Dataset load(const std::string& name, const DatasetOptions& o = {});
  // The data section of a config: a registered dataset (data.dataset) or own files (data.path,
  // data.format delimited | recbole | sessions, column mapping).
  static Dataset from_config(const ConfigSource& config, const DatasetOptions& o = {});
  // Interactions from parallel arrays of original ids; ratings and timestamps may be empty (else
  // one per interaction). Dense indices follow the sorted original ids (numerically when every id
  // is an integer), as for files. Throws DataError naming the first bad row (empty id, NaN or
  // infinite rating) or the mismatched lengths.
  static Dataset from_arrays(const std::vector<std::string>& users, const std::vector<std::string>& items,
                             const std::vector<float>& ratings = {}, const std::vector<int64_t>& timestamps = {},
                             const std::string& name = "arrays");
  static std::vector<std::string> registered();

  Dataset();
  std::string name() const;
  // How this part was made: "dataset | filters | split | part" (the protocol line results repeat).
  std::string protocol() const;
  int64_t n_users() const;  // the id space (shared by every part of a split)
  int64_t n_items() const;
  int64_t size() const;                      // interactions in this part
  std::string user_id(int64_t index) const;  // original id of a dense index
  std::string item_id(int64_t index) const;
  int64_t user_index(const std::string& id) const;  // -1 when unknown
  int64_t item_index(const std::string& id) const;
  std::string item_title(int64_t index) const;  // "" when the dataset has no titles
  bool numeric_user_ids() const;                // every original id is an integer
  bool numeric_item_ids() const;

  // This part's interactions as columns of dense indices (no copy): valid while this Dataset or a
  // copy of it lives. rating / time are null when the data has none.
  struct Columns {
    int64_t size = 0;
    const int32_t* user = nullptr;
    const int32_t* item = nullptr;
    const float* rating = nullptr;
    const int64_t* time = nullptr;
  };
  Columns columns() const;

  // Filters and splits it by a config's filter / split sections (seeded, as `siamrec train`).
  Split split(const ConfigSource& config) const;

  struct Impl;
  const Impl& impl() const;  // for the library's own clients (CLI, Python); not a stable API
  explicit Dataset(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

struct Split {
  Dataset train, valid, test;  // valid may be empty (size() == 0)
  std::string protocol;
};

// A synthetic interaction log (siamrec synth; docs/scaling.md): Zipf item popularity and user
// activity, planted clusters (a user draws in_cluster of her items from her cluster's), seeded.
struct SynthOptions {
  int64_t users = 10000, items = 5000, interactions = 200000;
  int clusters = 20;
  double item_alpha = 0.8, user_alpha = 0.6, in_cluster = 0.8;
  uint64_t seed = 42;
};
struct SynthSummary {
  int64_t interactions = 0, users = 0, items_used = 0, max_user_degree = 0, max_item_degree = 0, bytes = 0;
  double in_cluster_share = 0, seconds = 0;
};
// Writes "user<TAB>item<TAB>timestamp" lines atomically to `path` (read it with data.path and
// data.time_col 2); with clusters_path, also each item's and user's planted cluster.
SynthSummary write_synthetic(const SynthOptions& o, const std::string& path, const std::string& clusters_path = "");

}  // namespace siamrec::api
