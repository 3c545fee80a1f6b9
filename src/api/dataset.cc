// The public Dataset (include/siamrec/dataset.h) over the data layer and the task pipeline.
#include <cmath>
#include <malloc.h>

#include <cblas.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <thread>

#include "api/impl.h"
#include "data/synth.h"
#include "data/registry.h"
#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/names.h"

namespace siamrec {

void init_runtime() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    openblas_set_num_threads(1);
    // Library users (C++, Python) log to stderr like the command line, not to spdlog's stdout default.
    if (spdlog::default_logger()->name().empty()) {
      auto logger = spdlog::stderr_color_mt("siamrec");
      logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
      logger->set_level(spdlog::default_logger()->level());
      spdlog::set_default_logger(logger);
    }
  });
}

int resolve_threads(int n) {
  // Read once: hardware_concurrency() opens /sys/devices/system/cpu/online on every call, and this
  // runs per server request.
  static const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (n < 0) throw ConfigError(fmt::format("threads must be >= 0 (0 = all {} cores), got {}", cores, n));
  if (n == 0) return cores;
  if (n > 4 * cores)
    throw ConfigError(fmt::format("threads {} is more than 4 x the {} cores of this machine", n, cores));
  return n;
}

Config resolve_config(const api::ConfigSource& s) {
  Config c = s.file.empty() ? Config() : Config::from_yaml_file(s.file);
  if (!s.yaml.empty()) c.merge(Config::from_yaml_text(s.yaml, "YAML text"), "YAML text");
  for (auto& o : s.set) c.set_override(o);
  return c;
}

}  // namespace siamrec

namespace siamrec::api {

ConfigSource ConfigSource::from_file(const std::string& path, std::vector<std::string> overrides) {
  ConfigSource s;
  s.file = path;
  s.set = std::move(overrides);
  return s;
}

ConfigSource ConfigSource::from_yaml(const std::string& text, std::vector<std::string> overrides) {
  ConfigSource s;
  s.yaml = text;
  s.set = std::move(overrides);
  return s;
}

ConfigSource ConfigSource::from_pairs(const std::map<std::string, std::string>& pairs) {
  ConfigSource s;
  for (auto& [k, v] : pairs) s.set.push_back(k + "=" + v);
  return s;
}

std::string ConfigSource::resolved_yaml() const { return siamrec::resolve_config(*this).to_yaml(); }

Dataset::Dataset() {
  auto impl = std::make_shared<Impl>();
  impl->ds = std::make_shared<const siamrec::Dataset>();
  impl_ = impl;
}

Dataset::Dataset(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

const Dataset::Impl& Dataset::impl() const { return *impl_; }

static Dataset wrap(siamrec::Dataset ds) {
  auto impl = std::make_shared<Dataset::Impl>();
  impl->protocol =
      fmt::format("{} ({} users, {} items, {} interactions)", ds.name, ds.n_users(), ds.n_items(), ds.log.size());
  impl->ds = std::make_shared<const siamrec::Dataset>(std::move(ds));
  return Dataset(impl);
}

Dataset Dataset::load(const std::string& name, const DatasetOptions& o) {
  init_runtime();
  LoadOptions lo;
  lo.data_dir_flag = o.data_dir;
  lo.read.skip_bad_lines = o.skip_bad_lines;
  lo.use_cache = o.use_cache;
  return wrap(load_dataset(name, lo));
}

Dataset Dataset::from_config(const ConfigSource& config, const DatasetOptions& o) {
  init_runtime();
  RunOptions ro;
  ro.data_dir_flag = o.data_dir;
  ro.skip_bad_lines = o.skip_bad_lines;
  return wrap(load_data(siamrec::resolve_config(config), ro));
}

Dataset Dataset::from_arrays(const std::vector<std::string>& users, const std::vector<std::string>& items,
                             const std::vector<float>& ratings, const std::vector<int64_t>& timestamps,
                             const std::string& name) {
  init_runtime();
  if (users.size() != items.size())
    throw DataError(
        fmt::format("{}: {} user ids but {} item ids (one of each per interaction)", name, users.size(), items.size()));
  if (!ratings.empty() && ratings.size() != users.size())
    throw DataError(fmt::format("{}: {} ratings for {} interactions (give one per interaction, or none)", name,
                                ratings.size(), users.size()));
  if (!timestamps.empty() && timestamps.size() != users.size())
    throw DataError(fmt::format("{}: {} timestamps for {} interactions (give one per interaction, or none)", name,
                                timestamps.size(), users.size()));
  for (size_t r = 0; r < users.size(); ++r) {
    if (users[r].empty()) throw DataError(fmt::format("{}: row {}: empty user id", name, r));
    if (items[r].empty()) throw DataError(fmt::format("{}: row {}: empty item id", name, r));
    if (!ratings.empty() && !std::isfinite(ratings[r]))
      throw DataError(fmt::format("{}: row {}: rating is {} (not a finite number)", name, r, ratings[r]));
  }
  RawLog raw;
  raw.users = users;
  raw.items = items;
  raw.rating = ratings;
  raw.time = timestamps;
  siamrec::Dataset ds = dataset_from_raw(std::move(raw), name);
  ds.description = fmt::format("{} interactions from arrays", users.size());
  return wrap(std::move(ds));
}

std::vector<std::string> Dataset::registered() { return registered_names("dataset"); }

std::string Dataset::name() const { return impl_->ds->name; }
std::string Dataset::protocol() const { return impl_->protocol; }
int64_t Dataset::n_users() const { return impl_->ds->n_users(); }
int64_t Dataset::n_items() const { return impl_->ds->n_items(); }
int64_t Dataset::size() const { return static_cast<int64_t>(impl_->log().size()); }

static void check_index(int64_t i, int64_t n, const char* what) {
  if (i < 0 || i >= n) throw ConfigError(fmt::format("{} index {} is out of range (0..{})", what, i, n - 1));
}

std::string Dataset::user_id(int64_t i) const {
  check_index(i, n_users(), "user");
  return impl_->ds->users.original(static_cast<int32_t>(i));
}
std::string Dataset::item_id(int64_t i) const {
  check_index(i, n_items(), "item");
  return impl_->ds->items.original(static_cast<int32_t>(i));
}
int64_t Dataset::user_index(const std::string& id) const { return impl_->ds->users.find(id); }
int64_t Dataset::item_index(const std::string& id) const { return impl_->ds->items.find(id); }
std::string Dataset::item_title(int64_t i) const {
  check_index(i, n_items(), "item");
  const auto& t = impl_->ds->item_side.title;
  return i < static_cast<int64_t>(t.size()) ? t[i] : std::string();
}

bool Dataset::numeric_user_ids() const { return impl_->ds->users.numeric(); }
bool Dataset::numeric_item_ids() const { return impl_->ds->items.numeric(); }

Dataset::Columns Dataset::columns() const {
  const Interactions& l = impl_->log();
  Columns c;
  c.size = static_cast<int64_t>(l.size());
  c.user = l.user.data();
  c.item = l.item.data();
  c.rating = l.has_rating() ? l.rating.data() : nullptr;
  c.time = l.has_time() ? l.time.data() : nullptr;
  return c;
}

Split Dataset::split(const ConfigSource& config) const {
  if (impl_->part != Impl::kAll) throw ConfigError("split: this dataset is already a part of a split");
  Config c = siamrec::resolve_config(config);
  auto sd = std::make_shared<const SplitData>(split_by_config(*impl_->ds, c));
  Split out;
  out.protocol = sd->protocol;
  auto part = [&](Impl::Part which, const char* name) {
    auto impl = std::make_shared<Impl>();
    impl->ds = impl_->ds;
    impl->split = sd;
    impl->part = which;
    impl->protocol = sd->protocol + " | " + name;
    return Dataset(impl);
  };
  out.train = part(Impl::kTrain, "train");
  out.valid = part(Impl::kValid, "valid");
  out.test = part(Impl::kTest, "test");
  return out;
}

SynthSummary write_synthetic(const SynthOptions& o, const std::string& path, const std::string& clusters_path) {
  siamrec::SynthSpec s;
  s.users = o.users, s.items = o.items, s.interactions = o.interactions, s.clusters = o.clusters;
  s.item_alpha = o.item_alpha, s.user_alpha = o.user_alpha, s.in_cluster = o.in_cluster, s.seed = o.seed;
  siamrec::SynthSummary r = siamrec::write_synthetic(s, path, clusters_path);
  SynthSummary out;
  out.interactions = r.interactions, out.users = r.users, out.items_used = r.items_used;
  out.max_user_degree = r.max_user_degree, out.max_item_degree = r.max_item_degree, out.bytes = r.bytes;
  out.in_cluster_share = r.in_cluster_share, out.seconds = r.seconds;
  return out;
}

}  // namespace siamrec::api
