// One parameter table is the single source of truth (the LightGBM habit): it drives the YAML/--set
// parser and its validation, `siamrec params` (--help for configs) and docs/parameters.md.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace siamrec {

enum class ParamType { String, Int, Float, Bool, IntList, FloatList, StringList };

struct ParamDef {
  std::string key;  // dotted path, e.g. "split.type"
  ParamType type;
  std::string default_value;  // canonical text ("" = unset); lists are comma-separated
  std::string help;
  std::vector<std::string> allowed;                    // fixed allowed values (strings)
  std::function<std::vector<std::string>()> registry;  // allowed values from a registry
  double min = -1e300, max = 1e300;                    // numeric bounds (inclusive)
  // Extra validation of a string value; returns "" when valid, else the problem.
  std::function<std::string(const std::string&)> check;
  std::vector<std::string> allowed_values() const { return registry ? registry() : allowed; }
};

const std::vector<ParamDef>& param_table();
const ParamDef* find_param(const std::string& key);
std::string param_type_name(ParamType t);
// Markdown reference of every parameter (docs/parameters.md is this text).
std::string params_markdown();

}  // namespace siamrec
