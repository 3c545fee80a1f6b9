#include "models/model.h"

#include <map>

#include <fmt/format.h>

#include "util/error.h"

namespace siamrec {

namespace {
struct Entry {
  std::string help;
  ModelFactory make;
};
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}
}  // namespace

bool register_model(const std::string& name, const std::string& help, ModelFactory f) {
  registry()[name] = {help, std::move(f)};
  return true;
}

std::vector<std::string> model_names() {
  std::vector<std::string> v;
  for (auto& [k, _] : registry()) v.push_back(k);
  return v;
}

std::string model_help(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? "" : it->second.help;
}

std::unique_ptr<Model> create_model(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end())
    throw ConfigError(fmt::format("unknown model type '{}'; registered: {}", name, fmt::join(model_names(), ", ")));
  return it->second.make();
}

}  // namespace siamrec
