// Registries by name (the XGBoost habit): every dataset, format, metric, model, tower, comparator,
// loss, builder and sampler registers itself with one line in its own file; configs name them;
// unknown names list the allowed ones. One template serves them all: Registry<T> holds the Ts of
// one kind (factories, specs or forms) by name. util/names.h is the torch-free index of the names
// of every kind (for the parameter table and --help).
#pragma once
#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"

namespace siamrec {

template <typename T>
class Registry {
 public:
  static Registry& get() {
    static Registry r;
    return r;
  }
  // Adds `value` under `name`; `order` places it in names() (smaller first, then by name).
  // Registering a name twice is a programming error (std::logic_error at start-up).
  bool add(const std::string& name, const std::string& help, T value, int order = 100) {
    if (!entries_.emplace(name, Entry{help, std::move(value), order}).second)
      throw std::logic_error("'" + name + "' is registered twice");
    return true;
  }
  // Throws ConfigError naming the config key and the registered names when unknown.
  const T& find(const std::string& name, const std::string& key) const {
    auto it = entries_.find(name);
    if (it == entries_.end())
      throw ConfigError(
          fmt::format("config key '{}': unknown name '{}'; registered: {}", key, name, fmt::join(names(), ", ")));
    return it->second.value;
  }
  // nullptr when `name` is not registered.
  const T* get(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second.value;
  }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> names() const {
    std::vector<std::pair<int, std::string>> v;
    for (auto& [k, e] : entries_) v.emplace_back(e.order, k);
    std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& [_, k] : v) out.push_back(k);
    return out;
  }
  // The registered values in names() order.
  std::vector<const T*> values() const {
    std::vector<const T*> out;
    for (auto& n : names()) out.push_back(&entries_.at(n).value);
    return out;
  }
  std::string help(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? "" : it->second.help;
  }

 private:
  struct Entry {
    std::string help;
    T value;
    int order;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace siamrec
