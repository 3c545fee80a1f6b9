// Registered datasets by name (the names configs and tests use), where their files live in the
// data directory, how to fetch them, and the fixed splits they ship with.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/readers.h"

namespace siamrec {

struct DatasetSpec {
  std::string name;
  std::string description;
  std::vector<std::string> files;           // required, relative to the data directory
  std::vector<std::string> optional_files;  // used when present (metadata)
  std::vector<std::string> fixed_splits;    // names accepted by `split: {type: fixed, name: ...}`
  // Official archive (empty url when the dataset cannot be fetched by siamrec).
  std::string url, sha256, archive_folder;
  int64_t archive_size = 0;
  std::string how_to_get;                   // advice printed when the files are missing
};

const std::vector<DatasetSpec>& dataset_registry();
// Throws ConfigError listing the registered names when `name` is unknown.
const DatasetSpec& dataset_spec(const std::string& name);
// Throws MissingDataError naming the dataset, the missing file, where it looked and how to fix it.
void require_dataset(const DatasetSpec& spec, const std::string& data_dir, const std::string& origin);

struct LoadOptions {
  std::string data_dir_flag;  // --data-dir (empty: $SIAMREC_DATA_DIR or the default)
  ReadOptions read;
  bool use_cache = true;      // binary cache in $SIAMREC_CACHE_DIR, keyed by the files' content
};
Dataset load_dataset(const std::string& name, const LoadOptions& opt = {});

// Parses a registered dataset from its files (no cache).
Dataset parse_dataset(const DatasetSpec& spec, const std::string& data_dir, const ReadOptions& o);

}  // namespace siamrec
