#include "data/split.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "data/readers.h"
#include "data/registry.h"
#include "util/error.h"
#include "util/io.h"
#include "util/rng.h"
#include "util/strings.h"

namespace siamrec {

std::string FilterSpec::describe() const {
  std::vector<std::string> parts;
  if (min_rating > 0) parts.push_back(fmt::format("rating>={:g}", min_rating));
  if (dedup) parts.push_back("dedup");
  if (user_core > 0 || item_core > 0)
    parts.push_back(fmt::format("{}-core users, {}-core items", user_core, item_core));
  if (parts.empty()) return "filters: none (every interaction positive)";
  return "filters: " + fmt::format("{}", fmt::join(parts, ", "));
}

static std::string base_name(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string SplitSpec::describe() const {
  if (type == "fixed") return fmt::format("split: fixed '{}'", name);
  if (type == "files")
    return fmt::format("split: files train '{}'{} / test '{}'", base_name(train_file),
                       valid_file.empty() ? "" : fmt::format(" / valid '{}'", base_name(valid_file)),
                       base_name(test_file));
  if (type == "cold_items")
    return fmt::format(
        "split: cold items (items held out entirely: {:g} train / {:g} validation / {:g} test of the items), seed {}",
        ratios[0], ratios[1], ratios[2], seed);
  if (type == "loo")
    return fmt::format("split: leave-one-out ({}{}), seed {}", order == "time" ? "latest by time" : "random item",
                       valid ? ", validation = next latest" : "", seed);
  if (type == "temporal")
    return fmt::format("split: global temporal cut {:g}/{:g}/{:g}", ratios[0], ratios[1], ratios[2]);
  return fmt::format("split: per-user ratio {:g}/{:g}/{:g} ({}), seed {}", ratios[0], ratios[1], ratios[2],
                     order == "time" ? "by time" : "random", seed);
}

Interactions apply_filters(const Interactions& log, int32_t n_users, int32_t n_items, const FilterSpec& f) {
  std::vector<char> keep(log.size(), 1);
  if (f.min_rating > 0) {
    if (!log.has_rating()) throw ConfigError("filter min_rating needs ratings, but this dataset has none");
    for (size_t r = 0; r < log.size(); ++r) keep[r] = log.rating[r] >= f.min_rating;
  }
  if (f.dedup) {
    std::vector<int64_t> idx;
    for (size_t r = 0; r < log.size(); ++r)
      if (keep[r]) idx.push_back(static_cast<int64_t>(r));
    // Sort by (user, item, time desc, row) and keep the first of each pair.
    std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      if (log.user[a] != log.user[b]) return log.user[a] < log.user[b];
      if (log.item[a] != log.item[b]) return log.item[a] < log.item[b];
      if (log.has_time() && log.time[a] != log.time[b]) return log.time[a] > log.time[b];
      return a < b;
    });
    for (size_t k = 1; k < idx.size(); ++k)
      if (log.user[idx[k]] == log.user[idx[k - 1]] && log.item[idx[k]] == log.item[idx[k - 1]]) keep[idx[k]] = 0;
  }
  if (f.user_core > 0 || f.item_core > 0) {
    bool changed = true;
    while (changed) {
      changed = false;
      std::vector<int64_t> du(n_users, 0), di(n_items, 0);
      for (size_t r = 0; r < log.size(); ++r)
        if (keep[r]) ++du[log.user[r]], ++di[log.item[r]];
      for (size_t r = 0; r < log.size(); ++r)
        if (keep[r] && (du[log.user[r]] < f.user_core || di[log.item[r]] < f.item_core)) {
          keep[r] = 0;
          changed = true;
        }
    }
  }
  return log.select(keep);
}

namespace {

// Rows of each user, ordered by time (ties by item, then row) or shuffled with a per-user seed.
std::vector<std::vector<int64_t>> rows_by_user(const Interactions& log, int32_t n_users, const SplitSpec& s) {
  std::vector<std::vector<int64_t>> by(n_users);
  for (size_t r = 0; r < log.size(); ++r) by[log.user[r]].push_back(static_cast<int64_t>(r));
  bool by_time = s.order == "time";
  if (by_time && !log.has_time())
    throw ConfigError(fmt::format("split order 'time' needs timestamps, but this dataset has none; use order: random"));
  for (int32_t u = 0; u < n_users; ++u) {
    auto& v = by[u];
    if (by_time) {
      std::stable_sort(v.begin(), v.end(), [&](int64_t a, int64_t b) {
        if (log.time[a] != log.time[b]) return log.time[a] < log.time[b];
        return log.item[a] < log.item[b];
      });
    } else {
      std::mt19937_64 rng(mix64(s.seed ^ mix64(static_cast<uint64_t>(u) + 1)));
      for (size_t k = v.size(); k > 1; --k) std::swap(v[k - 1], v[rng() % k]);
    }
  }
  return by;
}

void check_ratios(const SplitSpec& s) {
  if (s.ratios.size() != 3)
    throw ConfigError(fmt::format("split.ratios needs three shares (train, valid, test), got {}", s.ratios.size()));
  double sum = 0;
  for (double r : s.ratios) {
    if (!(r >= 0)) throw ConfigError("split.ratios must be non-negative");
    sum += r;
  }
  if (std::abs(sum - 1.0) > 1e-6) throw ConfigError(fmt::format("split.ratios must sum to 1 (got {:g})", sum));
  if (s.ratios[0] <= 0 || s.ratios[2] <= 0) throw ConfigError("split.ratios: train and test shares must be > 0");
}

SplitData fixed_split(const Dataset& ds, const SplitSpec& s) {
  const DatasetSpec* registered = nullptr;
  for (const DatasetSpec* d : dataset_registry())
    if (d->name == ds.name) registered = d;
  if (!registered)
    throw ConfigError(
        fmt::format("split.name '{}': dataset '{}' ships no fixed splits (split.type fixed is for registered datasets; "
                    "use ratio, loo, temporal or cold_items)",
                    s.name, ds.name));
  const DatasetSpec& spec = *registered;
  if (std::find(spec.fixed_splits.begin(), spec.fixed_splits.end(), s.name) == spec.fixed_splits.end()) {
    std::string names = spec.fixed_splits.empty() ? "none" : fmt::format("{}", fmt::join(spec.fixed_splits, ", "));
    throw ConfigError(
        fmt::format("split.name '{}' is not a fixed split of dataset '{}'; allowed: {}", s.name, ds.name, names));
  }
  SplitData out;
  spec.fixed_split(ds, s.name, out);
  return out;
}

}  // namespace

// split.type files: the dataset's log is the train, valid and test files in order (ds.file_parts).
// Filters act as for shipped splits (all on train; min_rating and dedup on valid and test). Valid and
// test rows of users without training data are dropped and counted (nothing to recommend from).
static SplitData files_split(const Dataset& ds, const FilterSpec& f, std::string* note) {
  if (ds.file_parts.size() != 3)
    throw ConfigError(
        "split.type files needs the data read from split.train_file / split.valid_file / split.test_file "
        "(leave data.dataset and data.path empty)");
  SplitData out;
  const int64_t a = ds.file_parts[0], b = a + ds.file_parts[1], n = b + ds.file_parts[2];
  auto range = [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> idx(static_cast<size_t>(hi - lo));
    std::iota(idx.begin(), idx.end(), lo);
    return ds.log.rows(idx);
  };
  FilterSpec tf = f;
  tf.user_core = tf.item_core = 0;  // k-core is a property of the training data
  out.train = apply_filters(range(0, a), ds.n_users(), ds.n_items(), f);
  Interactions valid = apply_filters(range(a, b), ds.n_users(), ds.n_items(), tf);
  Interactions test = apply_filters(range(b, n), ds.n_users(), ds.n_items(), tf);
  std::vector<char> trained_user(ds.n_users(), 0), trained_item(ds.n_items(), 0);
  for (size_t r = 0; r < out.train.size(); ++r) trained_user[out.train.user[r]] = trained_item[out.train.item[r]] = 1;
  auto keep_known = [&](const Interactions& part, int64_t* dropped, int64_t* users, int64_t* cold) {
    std::vector<char> keep(part.size(), 1), counted(ds.n_users(), 0);
    for (size_t r = 0; r < part.size(); ++r) {
      if (!trained_user[part.user[r]]) {
        keep[r] = 0, ++*dropped;
        if (!counted[part.user[r]]) counted[part.user[r]] = 1, ++*users;
      } else if (!trained_item[part.item[r]]) {
        ++*cold;
      }
    }
    return part.select(keep);
  };
  int64_t dv = 0, uv = 0, cv = 0, dt = 0, ut = 0, ct = 0;
  out.valid = keep_known(valid, &dv, &uv, &cv);
  out.test = keep_known(test, &dt, &ut, &ct);
  std::vector<std::string> notes;
  for (auto [n, users, part] : {std::tuple{dt, ut, "test"}, std::tuple{dv, uv, "valid"}})
    if (n) notes.push_back(fmt::format("{} {} interactions of {} users without training data skipped", n, part, users));
  for (auto [n, part] : {std::pair{ct, "test"}, std::pair{cv, "valid"}})
    if (n)
      notes.push_back(fmt::format("{} {} interactions with items absent from training (ranked untrained)", n, part));
  for (auto& x : notes) {
    spdlog::warn("split files: {}", x);
    *note += " | " + x;
  }
  return out;
}

SplitData make_split(const Dataset& ds, const FilterSpec& f, const SplitSpec& s) {
  SplitData out;
  std::string note;
  if (s.type == "files") {
    out = files_split(ds, f, &note);
  } else if (s.type == "fixed") {
    out = fixed_split(ds, s);
    out.train = apply_filters(out.train, ds.n_users(), ds.n_items(), f);
    if (f.min_rating > 0 || f.dedup) {
      FilterSpec tf = f;
      tf.user_core = tf.item_core = 0;  // k-core is a property of the training data
      out.test = apply_filters(out.test, ds.n_users(), ds.n_items(), tf);
    }
  } else {
    Interactions log = apply_filters(ds.log, ds.n_users(), ds.n_items(), f);
    if (s.type == "ratio") {
      check_ratios(s);
      auto by = rows_by_user(log, ds.n_users(), s);
      std::vector<int64_t> tr, va, te;
      for (auto& v : by) {
        size_t n = v.size();
        if (n == 0) continue;
        size_t n_test = static_cast<size_t>(std::llround(n * s.ratios[2]));
        size_t n_valid = static_cast<size_t>(std::llround(n * s.ratios[1]));
        if (n_test + n_valid >= n) {  // keep at least one training interaction
          n_test = std::min(n_test, n - 1);
          n_valid = std::min(n_valid, n - 1 - n_test);
        }
        size_t n_train = n - n_test - n_valid;
        tr.insert(tr.end(), v.begin(), v.begin() + n_train);
        va.insert(va.end(), v.begin() + n_train, v.begin() + n_train + n_valid);
        te.insert(te.end(), v.begin() + n_train + n_valid, v.end());
      }
      std::sort(tr.begin(), tr.end()), std::sort(va.begin(), va.end()), std::sort(te.begin(), te.end());
      out.train = log.rows(tr), out.valid = log.rows(va), out.test = log.rows(te);
    } else if (s.type == "loo") {
      if (s.order != "time" && s.order != "random")
        throw ConfigError(fmt::format("split.order '{}' is not allowed; allowed: time, random", s.order));
      auto by = rows_by_user(log, ds.n_users(), s);
      std::vector<int64_t> tr, va, te;
      size_t hold = s.valid ? 2 : 1;
      for (auto& v : by) {
        if (v.size() <= hold) {  // too short to hold out: everything trains
          tr.insert(tr.end(), v.begin(), v.end());
          continue;
        }
        te.push_back(v.back());
        if (s.valid) va.push_back(v[v.size() - 2]);
        tr.insert(tr.end(), v.begin(), v.end() - hold);
      }
      std::sort(tr.begin(), tr.end()), std::sort(va.begin(), va.end()), std::sort(te.begin(), te.end());
      out.train = log.rows(tr), out.valid = log.rows(va), out.test = log.rows(te);
    } else if (s.type == "temporal") {
      check_ratios(s);
      if (!log.has_time()) throw ConfigError("split type 'temporal' needs timestamps, but this dataset has none");
      std::vector<int64_t> idx(log.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return log.time[a] < log.time[b]; });
      size_t n = idx.size();
      size_t n_train = static_cast<size_t>(std::llround(n * s.ratios[0]));
      size_t n_valid = static_cast<size_t>(std::llround(n * s.ratios[1]));
      n_train = std::min(n_train, n);
      n_valid = std::min(n_valid, n - n_train);
      std::vector<int64_t> tr(idx.begin(), idx.begin() + n_train),
          va(idx.begin() + n_train, idx.begin() + n_train + n_valid), te(idx.begin() + n_train + n_valid, idx.end());
      std::sort(tr.begin(), tr.end()), std::sort(va.begin(), va.end()), std::sort(te.begin(), te.end());
      out.train = log.rows(tr), out.valid = log.rows(va), out.test = log.rows(te);
    } else if (s.type == "cold_items") {
      // Items with interactions are shuffled (seeded) and cut by the ratios; every interaction of
      // a validation / test item goes to validation / test, so those items are never trained on.
      check_ratios(s);
      std::vector<int32_t> items;
      std::vector<char> seen(ds.n_items(), 0);
      for (auto i : log.item) seen[i] = 1;
      if (log.size() == 0) std::fill(seen.begin(), seen.end(), 1);  // item-only data (content tables)
      for (int32_t i = 0; i < ds.n_items(); ++i)
        if (seen[i]) items.push_back(i);
      std::mt19937_64 rng(mix64(s.seed ^ 0xc01d));
      for (size_t k = items.size(); k > 1; --k) std::swap(items[k - 1], items[rng() % k]);
      size_t n = items.size();
      size_t n_train = std::min(n, static_cast<size_t>(std::llround(n * s.ratios[0])));
      size_t n_valid = std::min(n - n_train, static_cast<size_t>(std::llround(n * s.ratios[1])));
      std::vector<char> part(ds.n_items(), 0);  // 0 train, 1 valid, 2 test
      for (size_t k = n_train; k < n; ++k) part[items[k]] = k < n_train + n_valid ? 1 : 2;
      std::vector<int64_t> tr, va, te;
      for (size_t r = 0; r < log.size(); ++r)
        (part[log.item[r]] == 0 ? tr : part[log.item[r]] == 1 ? va : te).push_back(r);
      out.train = log.rows(tr), out.valid = log.rows(va), out.test = log.rows(te);
      for (int32_t i = 0; i < ds.n_items(); ++i) {
        if (part[i] == 2) out.heldout_items.push_back(i);
        if (part[i] == 1) out.valid_items.push_back(i);
      }
    } else {
      throw ConfigError(fmt::format(
          "split.type '{}' is not allowed; allowed: ratio, loo, temporal, fixed, cold_items, files", s.type));
    }
  }
  out.protocol = fmt::format("{} | {} | {}{}", ds.name, f.describe(), s.describe(), note);
  return out;
}

// Per-user random hold-out of `share` of each user's training interactions (users keep >= 1).
void carve_per_user(const Interactions& train, int32_t n_users, double share, uint64_t seed, Interactions& fit,
                    Interactions& valid) {
  std::vector<std::vector<int64_t>> by(n_users);
  for (size_t r = 0; r < train.size(); ++r) by[train.user[r]].push_back(static_cast<int64_t>(r));
  std::vector<char> is_valid(train.size(), 0);
  for (int32_t u = 0; u < n_users; ++u) {
    auto& v = by[u];
    if (v.size() < 3) continue;
    std::mt19937_64 rng(mix64(seed ^ mix64(static_cast<uint64_t>(u) + 99)));
    for (size_t k = v.size(); k > 1; --k) std::swap(v[k - 1], v[rng() % k]);
    size_t nv = std::min(v.size() - 1, static_cast<size_t>(std::llround(v.size() * share)));
    for (size_t k = 0; k < nv; ++k) is_valid[v[k]] = 1;
  }
  std::vector<char> keep(train.size());
  for (size_t r = 0; r < train.size(); ++r) keep[r] = !is_valid[r];
  fit = train.select(keep);
  valid = train.select(is_valid);
}

}  // namespace siamrec
