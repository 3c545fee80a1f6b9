#include "tune/space.h"

#include <cmath>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "config/params.h"
#include "util/error.h"

namespace siamrec::tune {

std::string Param::describe() const {
  switch (kind) {
    case Kind::Choice: {
      std::string s = "choice [";
      for (size_t k = 0; k < choices.size(); ++k) s += (k ? ", " : "") + choices[k];
      return s + "]";
    }
    case Kind::Uniform:
      return fmt::format("uniform [{:g}, {:g}]", lo, hi);
    case Kind::LogUniform:
      return fmt::format("loguniform [{:g}, {:g}]", lo, hi);
    case Kind::Int:
      return fmt::format("int [{:g}, {:g}]{}", lo, hi, log ? " log" : "");
  }
  return "";
}

std::string value_text(const Param& p, double v) {
  if (p.kind == Param::Kind::Int) return std::to_string(static_cast<int64_t>(std::llround(v)));
  return fmt::format("{:.6g}", v);
}

namespace {

// Would `key=value` be accepted by the config (type, range, allowed values)?
std::string check_value(const Config& base, const std::string& key, const std::string& value) {
  try {
    Config c = base;
    c.set_override(key + "=" + value);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The config's own text of a value (`yes` -> `true`, `0.010` -> `0.01`), so values compare as the
// config holds them.
std::string canonical(const Config& base, const std::string& key, const std::string& value) {
  Config c = base;
  c.set_override(key + "=" + value);
  return c.str(key);
}

}  // namespace

SearchSpace SearchSpace::from_yaml(const std::string& text, const std::string& source, const Config& base) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("search space '{}' is not valid YAML: {}", source, e.what()));
  }
  if (!root.IsMap() || root.size() == 0)
    throw ConfigError(fmt::format("search space '{}': expected a map of config keys to distributions", source));
  SearchSpace s;
  for (const auto& kv : root) {
    Param p;
    p.key = kv.first.as<std::string>();
    auto where = [&](const std::string& what) {
      return ConfigError(fmt::format("search space '{}', key '{}': {}", source, p.key, what));
    };
    const ParamDef* def = find_param(p.key);
    if (!def) throw where("not a config key (`siamrec params` lists them)");
    if (p.key.rfind("tune.", 0) == 0 || p.key.rfind("data.", 0) == 0 || p.key.rfind("split.", 0) == 0 ||
        p.key.rfind("eval.", 0) == 0)
      throw where("data, split, eval and tune keys define what is measured and cannot be tuned");
    for (auto& q : s.params)
      if (q.key == p.key) throw where("given twice");
    const YAML::Node d = kv.second;
    if (!d.IsMap()) throw where("expected a distribution such as {uniform: [lo, hi]} or {choice: [a, b]}");
    int kinds = 0;
    for (const auto& field : d) {
      const std::string name = field.first.as<std::string>();
      const YAML::Node v = field.second;
      if (name == "when") {
        if (!v.IsMap() || v.size() == 0) throw where("'when' expects a map of key: value");
        for (const auto& w : v) {
          const std::string wk = w.first.as<std::string>();
          if (!find_param(wk)) throw where(fmt::format("'when' names '{}', which is not a config key", wk));
          p.when[wk] = w.second.as<std::string>();
        }
        continue;
      }
      if (name == "log") {
        p.log = v.as<bool>(false);
        continue;
      }
      ++kinds;
      if (name == "choice") {
        if (!v.IsSequence() || v.size() == 0) throw where("'choice' expects a non-empty list");
        for (const auto& c : v) {
          if (!c.IsScalar()) throw where("'choice' values must be scalars");
          p.choices.push_back(c.as<std::string>());
        }
        p.kind = Param::Kind::Choice;
      } else if (name == "uniform" || name == "loguniform" || name == "int") {
        if (!v.IsSequence() || v.size() != 2) throw where(fmt::format("'{}' expects [low, high]", name));
        try {
          p.lo = v[0].as<double>();
          p.hi = v[1].as<double>();
        } catch (const YAML::Exception&) {
          throw where(fmt::format("'{}' bounds must be numbers", name));
        }
        if (!(p.lo < p.hi)) throw where(fmt::format("empty range [{:g}, {:g}]: low must be below high", p.lo, p.hi));
        p.kind = name == "uniform"      ? Param::Kind::Uniform
                 : name == "loguniform" ? Param::Kind::LogUniform
                                        : Param::Kind::Int;
        if ((p.kind == Param::Kind::LogUniform || (p.kind == Param::Kind::Int && p.log)) && p.lo <= 0)
          throw where("a log scale needs a positive low bound");
        if (p.kind == Param::Kind::Int && (p.lo != std::floor(p.lo) || p.hi != std::floor(p.hi)))
          throw where("'int' bounds must be whole numbers");
      } else {
        throw where(fmt::format("unknown distribution '{}' (choice, uniform, loguniform, int)", name));
      }
    }
    if (kinds != 1) throw where("give exactly one of choice, uniform, loguniform, int");
    // Every value the distribution can give must be valid for the key.
    std::vector<std::string> probes = p.choices;
    if (p.kind != Param::Kind::Choice) probes = {value_text(p, p.lo), value_text(p, p.hi)};
    for (auto& v : probes)
      if (auto why = check_value(base, p.key, v); !why.empty()) throw where(fmt::format("value '{}': {}", v, why));
    for (auto& v : p.choices) v = canonical(base, p.key, v);
    if (def->type == ParamType::Int && (p.kind == Param::Kind::Uniform || p.kind == Param::Kind::LogUniform))
      throw where("an integer key takes {int: [low, high]} or {choice: [...]}");
    s.params.push_back(std::move(p));
  }
  for (size_t k = 0; k < s.params.size(); ++k)
    for (auto& [wk, wv] : s.params[k].when) {
      const std::string& pk = s.params[k].key;
      for (size_t q = k; q < s.params.size(); ++q)
        if (s.params[q].key == wk)
          throw ConfigError(
              fmt::format("search space '{}', key '{}': 'when' names '{}', which comes later in the file; "
                          "put '{}' first",
                          source, pk, wk, wk));
      if (auto why = check_value(base, wk, wv); !why.empty())
        throw ConfigError(
            fmt::format("search space '{}', key '{}': 'when' value '{}' of '{}': {}", source, pk, wv, wk, why));
      wv = canonical(base, wk, wv);
    }
  return s;
}

bool SearchSpace::active(const Param& p, const Assignment& a, const Config& base) {
  for (auto& [k, v] : p.when) {
    auto it = a.find(k);
    const std::string have = it != a.end() ? it->second : base.str(k);
    if (have != v) return false;
  }
  return true;
}

}  // namespace siamrec::tune
