// A siamrec configuration: a YAML file and/or YAML text plus `key=value` overrides (later wins),
// validated against the parameter table (`siamrec params` lists every key). The same text the
// command line reads with --config and --set.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace siamrec::api {

struct ConfigSource {
  std::string file;              // YAML file ("" = none)
  std::string yaml;              // YAML text, applied after the file ("" = none)
  std::vector<std::string> set;  // "key=value" overrides, applied last in order

  static ConfigSource from_file(const std::string& path, std::vector<std::string> overrides = {});
  static ConfigSource from_yaml(const std::string& text, std::vector<std::string> overrides = {});
  static ConfigSource from_pairs(const std::map<std::string, std::string>& pairs);

  // The fully resolved config (every key with its value) as YAML; throws ConfigError naming the
  // key, the source and the allowed values when a key or value is bad.
  std::string resolved_yaml() const;
};

}  // namespace siamrec::api
