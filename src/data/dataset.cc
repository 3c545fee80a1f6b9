#include "data/dataset.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"
#include "util/strings.h"

namespace siamrec {

IdMap IdMap::from_ids(std::vector<std::string> ids) {
  IdMap m;
  m.numeric_ = true;
  for (auto& s : ids)
    if (!is_integer_string(s)) {
      m.numeric_ = false;
      break;
    }
  if (m.numeric_) {
    std::vector<std::pair<int64_t, std::string*>> keyed;
    keyed.reserve(ids.size());
    for (auto& s : ids) keyed.emplace_back(*parse_int(s), &s);
    std::stable_sort(keyed.begin(), keyed.end(), [](auto& a, auto& b) { return a.first < b.first; });
    keyed.erase(std::unique(keyed.begin(), keyed.end(), [](auto& a, auto& b) { return a.first == b.first; }),
                keyed.end());
    m.ids_.reserve(keyed.size());
    for (auto& [k, s] : keyed) m.ids_.push_back(std::move(*s));
  } else {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    m.ids_ = std::move(ids);
  }
  m.index();
  return m;
}

void IdMap::index() {
  pos_.clear();
  pos_.reserve(ids_.size() * 2);
  for (int32_t i = 0; i < static_cast<int32_t>(ids_.size()); ++i) pos_.emplace(ids_[i], i);
}

int32_t IdMap::find(std::string_view original) const {
  auto it = pos_.find(original);
  if (it != pos_.end()) return it->second;
  // Numeric ids compare by value: "007" finds "7".
  if (numeric_)
    if (auto v = parse_int(original)) {
      auto it2 = pos_.find(std::to_string(*v));
      if (it2 != pos_.end()) return it2->second;
    }
  return -1;
}

Interactions Interactions::select(const std::vector<char>& keep) const {
  Interactions out;
  for (size_t r = 0; r < size(); ++r)
    if (keep[r]) out.append_row(*this, r);
  return out;
}

Interactions Interactions::rows(const std::vector<int64_t>& idx) const {
  Interactions out;
  out.user.reserve(idx.size());
  out.item.reserve(idx.size());
  for (auto r : idx) out.append_row(*this, static_cast<size_t>(r));
  return out;
}

void Interactions::append_row(const Interactions& src, size_t r) {
  user.push_back(src.user[r]);
  item.push_back(src.item[r]);
  if (src.has_rating()) rating.push_back(src.rating[r]);
  if (src.has_time()) time.push_back(src.time[r]);
}

bool Csr::contains(int32_t r, int32_t c) const {
  auto b = indices.begin() + indptr[r], e = indices.begin() + indptr[r + 1];
  return std::binary_search(b, e, c);
}

Csr sequences_by_user(const Interactions& log, int32_t n_users) {
  Csr m;
  m.indptr.assign(static_cast<size_t>(n_users) + 1, 0);
  for (auto u : log.user) m.indptr[u + 1]++;
  for (int32_t u = 0; u < n_users; ++u) m.indptr[u + 1] += m.indptr[u];
  std::vector<int64_t> order(log.size());
  std::vector<int64_t> fill(m.indptr.begin(), m.indptr.end() - 1);
  for (size_t k = 0; k < log.size(); ++k) order[fill[log.user[k]]++] = static_cast<int64_t>(k);
  if (log.has_time())
    for (int32_t u = 0; u < n_users; ++u)
      std::stable_sort(order.begin() + m.indptr[u], order.begin() + m.indptr[u + 1],
                       [&](int64_t a, int64_t b) { return log.time[a] < log.time[b]; });
  m.indices.resize(log.size());
  if (log.has_time()) m.times.resize(log.size());
  for (size_t k = 0; k < order.size(); ++k) {
    m.indices[k] = log.item[order[k]];
    if (log.has_time()) m.times[k] = log.time[order[k]];
  }
  return m;
}

Csr Csr::from_interactions(const Interactions& log, int32_t n_rows, bool by_item) {
  const auto& rows = by_item ? log.item : log.user;
  const auto& cols = by_item ? log.user : log.item;
  Csr m;
  m.indptr.assign(static_cast<size_t>(n_rows) + 1, 0);
  for (auto r : rows) m.indptr[r + 1]++;
  for (int32_t r = 0; r < n_rows; ++r) m.indptr[r + 1] += m.indptr[r];
  std::vector<int64_t> order(log.size());
  {
    std::vector<int64_t> fill(m.indptr.begin(), m.indptr.end() - 1);
    for (size_t k = 0; k < log.size(); ++k) order[fill[rows[k]]++] = static_cast<int64_t>(k);
  }
  // Sort each row's entries by column (stable, so duplicates keep log order).
  for (int32_t r = 0; r < n_rows; ++r)
    std::stable_sort(order.begin() + m.indptr[r], order.begin() + m.indptr[r + 1],
                     [&](int64_t a, int64_t b) { return cols[a] < cols[b]; });
  m.indices.resize(log.size());
  if (log.has_rating()) m.values.resize(log.size());
  if (log.has_time()) m.times.resize(log.size());
  for (size_t k = 0; k < order.size(); ++k) {
    m.indices[k] = cols[order[k]];
    if (log.has_rating()) m.values[k] = log.rating[order[k]];
    if (log.has_time()) m.times[k] = log.time[order[k]];
  }
  return m;
}

const std::string& Dataset::item_title(int32_t i) const {
  static const std::string empty;
  if (i < 0 || static_cast<size_t>(i) >= item_side.title.size()) return empty;
  return item_side.title[i];
}

size_t Dataset::memory_bytes() const {
  size_t b = log.user.capacity() * 4 + log.item.capacity() * 4 + log.rating.capacity() * 4 + log.time.capacity() * 8;
  for (auto* m : {&users, &items})
    for (auto& s : m->ids()) b += s.capacity() + 32 + 48;  // string + hash entry
  for (auto& t : item_side.title) b += t.capacity() + 32;
  for (auto& g : item_side.genres) b += g.capacity() * 4 + 24;
  for (auto& t : item_side.tags)
    for (auto& s : t) b += s.capacity() + 32;
  for (auto& f : user_side.features)
    for (auto& s : f) b += s.capacity() + 32;
  return b;
}

Dataset dataset_from_raw(RawLog raw, const std::string& name) {
  Dataset ds;
  ds.name = name;
  ds.users = IdMap::from_ids(raw.users);
  ds.items = IdMap::from_ids(raw.items);
  ds.log = map_onto(ds, raw, name);
  return ds;
}

Interactions map_onto(const Dataset& ds, const RawLog& raw, const std::string& where) {
  Interactions log;
  size_t n = raw.size();
  log.user.resize(n);
  log.item.resize(n);
  // Interning through a local cache keeps this fast when ids repeat (they do: users are runs).
  std::unordered_map<std::string_view, int32_t> ucache, icache;
  for (size_t r = 0; r < n; ++r) {
    auto lookup = [&](std::unordered_map<std::string_view, int32_t>& cache, const IdMap& m, const std::string& id,
                      const char* kind) {
      auto it = cache.find(id);
      if (it != cache.end()) return it->second;
      int32_t d = m.find(id);
      if (d < 0) throw DataError(fmt::format("{}: unknown {} id '{}' (row {})", where, kind, id, r + 1));
      cache.emplace(id, d);
      return d;
    };
    log.user[r] = lookup(ucache, ds.users, raw.users[r], "user");
    log.item[r] = lookup(icache, ds.items, raw.items[r], "item");
  }
  log.rating = raw.rating;
  log.time = raw.time;
  return log;
}

}  // namespace siamrec
