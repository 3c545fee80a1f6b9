// Registered datasets by name (the names configs and tests use), where their files live in the
// data directory, how to fetch them, and the fixed splits they ship with.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/readers.h"

namespace siamrec {

struct SplitData;

struct DatasetSpec {
  std::string name;
  std::string description;
  std::vector<std::string> files;           // required, relative to the data directory
  std::vector<std::string> optional_files;  // used when present (metadata)
  std::vector<std::string> fixed_splits;    // names accepted by `split: {type: fixed, name: ...}`
  // Official archive (empty url when the dataset cannot be fetched by siamrec).
  std::string url, sha256, archive_folder;
  int64_t archive_size = 0;
  std::string how_to_get;  // advice printed when the files are missing
  // Parses the dataset from its files in the data directory `dir`.
  std::function<Dataset(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o)> parse;
  // Fills the train / test parts (and fixed candidates or held-out items) of the fixed split
  // `name` (one of fixed_splits) of a parsed dataset (ds.root is its data directory).
  std::function<void(const Dataset& ds, const std::string& name, SplitData& out)> fixed_split;
  int order = 100;  // position in listings (smaller first, then by name)
};

// Registers a dataset (one file per dataset family, one SIAMREC_REGISTER_DATASET line each); returns
// true so it can initialize a static. A second registration of a name is a programming error.
bool register_dataset(DatasetSpec spec);
#define SIAMREC_REGISTER_DATASET(ID, SPEC) static const bool siamrec_dataset_##ID = ::siamrec::register_dataset(SPEC)

// Every registered dataset, in listing order.
std::vector<const DatasetSpec*> dataset_registry();
// Throws ConfigError listing the registered names when `name` is unknown.
const DatasetSpec& dataset_spec(const std::string& name);
// Throws MissingDataError naming the dataset, the missing file, where it looked and how to fix it.
void require_dataset(const DatasetSpec& spec, const std::string& data_dir, const std::string& origin);

// Path of `rel` under `dir` when that file exists, else "" (optional metadata files).
std::string optional_path(const std::string& dir, const std::string& rel);

struct LoadOptions {
  std::string data_dir_flag;  // --data-dir (empty: $SIAMREC_DATA_DIR or the default)
  ReadOptions read;
  bool use_cache = true;  // binary cache in $SIAMREC_CACHE_DIR, keyed by the files' content
};
Dataset load_dataset(const std::string& name, const LoadOptions& opt = {});

// Parses a registered dataset from its files (no cache).
Dataset parse_dataset(const DatasetSpec& spec, const std::string& data_dir, const ReadOptions& o);

}  // namespace siamrec
