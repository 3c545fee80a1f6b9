// Registries by name (the XGBoost habit): every tower, comparator, loss, builder, sampler and model
// registers itself with one line; configs name them; unknown names list the allowed ones.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"

namespace siamrec {

template <typename Factory>
class Registry {
 public:
  static Registry& get() {
    static Registry r;
    return r;
  }
  bool add(const std::string& name, const std::string& help, Factory f) {
    entries_[name] = {help, std::move(f)};
    return true;
  }
  // Throws ConfigError naming the config key and the registered names when unknown.
  const Factory& find(const std::string& name, const std::string& key) const {
    auto it = entries_.find(name);
    if (it == entries_.end())
      throw ConfigError(
          fmt::format("config key '{}': unknown name '{}'; registered: {}", key, name, fmt::join(names(), ", ")));
    return it->second.factory;
  }
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> names() const {
    std::vector<std::string> v;
    for (auto& [k, _] : entries_) v.push_back(k);
    return v;
  }
  std::string help(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? "" : it->second.help;
  }

 private:
  struct Entry {
    std::string help;
    Factory factory;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace siamrec
