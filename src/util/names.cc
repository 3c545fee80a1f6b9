#include "util/names.h"

#include <map>

namespace siamrec {

static std::map<std::string, std::map<std::string, std::string>>& table() {
  static std::map<std::string, std::map<std::string, std::string>> t;
  return t;
}

bool register_name(const std::string& kind, const std::string& name, const std::string& help) {
  table()[kind][name] = help;
  return true;
}

std::vector<std::string> registered_names(const std::string& kind) {
  std::vector<std::string> v;
  for (auto& [n, _] : table()[kind]) v.push_back(n);
  return v;
}

std::string registered_help(const std::string& kind, const std::string& name) {
  auto& k = table()[kind];
  auto it = k.find(name);
  return it == k.end() ? "" : it->second;
}

}  // namespace siamrec
