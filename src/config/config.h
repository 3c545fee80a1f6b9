// A resolved configuration: YAML file + `--set key=value` overrides, validated against the
// parameter table, with defaults filled in. Saved with every run and inside every model file.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace siamrec {

class Config {
 public:
  Config();  // every key at its default
  static Config from_yaml_text(const std::string& text, const std::string& source);
  static Config from_yaml_file(const std::string& path);
  // Applies "key=value" (value in YAML syntax: lists as [a, b] or a,b).
  void set_override(const std::string& assignment);
  void set(const std::string& key, const std::string& value, const std::string& source);

  const std::string& str(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;
  bool flag(const std::string& key) const;
  std::vector<int64_t> ints(const std::string& key) const;
  std::vector<double> reals(const std::string& key) const;
  std::vector<std::string> strs(const std::string& key) const;
  bool is_set(const std::string& key) const { return explicit_.count(key) > 0; }
  const std::set<std::string>& explicit_keys() const { return explicit_; }
  // Applies every key `other` set explicitly on top of this config.
  void merge(const Config& other, const std::string& source);

  // Fully resolved YAML (every key, nested by section).
  std::string to_yaml() const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> explicit_;
};

}  // namespace siamrec
