#include "data/registry.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <algorithm>
#include <map>
#include <set>

#include "data/cache.h"
#include "util/error.h"
#include "util/io.h"
#include "util/names.h"
#include "util/registry.h"
#include "util/paths.h"
#include "util/strings.h"

namespace siamrec {

bool register_dataset(DatasetSpec spec) {
  if (!spec.parse) throw std::logic_error("dataset '" + spec.name + "' registered without a parser");
  if (!spec.fixed_splits.empty() && !spec.fixed_split)
    throw std::logic_error("dataset '" + spec.name + "' names fixed splits but has no fixed_split function");
  const std::string name = spec.name, help = spec.description;
  const int order = spec.order;
  return Registry<DatasetSpec>::get().add(name, help, std::move(spec), order) && register_name("dataset", name, help);
}

std::vector<const DatasetSpec*> dataset_registry() { return Registry<DatasetSpec>::get().values(); }

const DatasetSpec& dataset_spec(const std::string& name) {
  if (auto* s = Registry<DatasetSpec>::get().get(name)) return *s;
  throw ConfigError(fmt::format("unknown dataset '{}'; registered datasets: {}", name,
                                fmt::join(Registry<DatasetSpec>::get().names(), ", ")));
}

void require_dataset(const DatasetSpec& spec, const std::string& dir, const std::string& origin) {
  for (auto& f : spec.files) {
    std::string p = dir + "/" + f;
    if (!file_exists(p)) {
      std::string fix = spec.how_to_get;
      auto pos = fix.find("DATA_DIR");
      while (pos != std::string::npos) {
        fix.replace(pos, 8, dir);
        pos = fix.find("DATA_DIR");
      }
      throw MissingDataError(
          fmt::format("dataset '{}' is missing: '{}' not found (data directory '{}' from {}). To fix: {}; or point "
                      "SIAMREC_DATA_DIR (or --data-dir) at a folder that holds {}",
                      spec.name, p, dir, origin, fix, f));
    }
  }
}

std::string optional_path(const std::string& dir, const std::string& rel) {
  std::string p = dir + "/" + rel;
  return file_exists(p) ? p : std::string();
}

Dataset parse_dataset(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o) {
  Dataset ds = spec.parse(spec, dir, o);
  ds.name = spec.name;
  ds.description = spec.description;
  ds.root = dir;
  return ds;
}

Dataset load_dataset(const std::string& name, const LoadOptions& opt) {
  const DatasetSpec& spec = dataset_spec(name);
  std::string dir = resolve_data_dir(opt.data_dir_flag);
  require_dataset(spec, dir, data_dir_origin(opt.data_dir_flag));
  if (!opt.use_cache || opt.read.skip_bad_lines || spec.files.empty()) return parse_dataset(spec, dir, opt.read);
  std::vector<std::string> files;
  for (auto& f : spec.files) files.push_back(dir + "/" + f);
  for (auto& f : spec.optional_files)
    if (file_exists(dir + "/" + f)) files.push_back(dir + "/" + f);
  std::string key = cache_key(spec.name, files);
  std::string path = resolve_cache_dir() + "/datasets/" + spec.name + "-" + key.substr(0, 24) + ".bin";
  if (file_exists(path)) {
    try {
      Dataset ds = load_dataset_cache(path);
      ds.root = dir;
      return ds;
    } catch (const Error& e) {
      spdlog::warn("ignoring dataset cache: {}", e.what());
    }
  }
  Dataset ds = parse_dataset(spec, dir, opt.read);
  try {
    save_dataset_cache(ds, path);
  } catch (const Error& e) {
    spdlog::warn("could not write dataset cache (continuing without it): {}", e.what());
  }
  return ds;
}

}  // namespace siamrec
