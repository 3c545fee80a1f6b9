#include "data/formats.h"

#include <map>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"
#include "util/names.h"

namespace siamrec {

namespace {
std::map<std::string, FormatSpec>& formats() {
  static std::map<std::string, FormatSpec> r;
  return r;
}
}  // namespace

bool register_format(FormatSpec f) {
  if (f.name.empty() || !f.read) throw std::logic_error("a data format needs a name and a reader");
  std::string name = f.name, help = f.help;
  if (!formats().emplace(name, std::move(f)).second)
    throw std::logic_error("data format '" + name + "' registered twice");
  return register_name("format", name, help);
}

const FormatSpec& data_format(const std::string& name) {
  auto it = formats().find(name);
  if (it != formats().end()) return it->second;
  std::vector<std::string> names;
  for (auto& [n, _] : formats()) names.push_back(n);
  throw ConfigError(
      fmt::format("config key 'data.format': unknown format '{}'; registered: {}", name, fmt::join(names, ", ")));
}

}  // namespace siamrec
