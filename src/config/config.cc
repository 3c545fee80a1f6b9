#include "config/config.h"

#include <map>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>

#include "config/params.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> d(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = d[0];
    d[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1])});
      prev = cur;
    }
  }
  return d[b.size()];
}

static std::string suggest(const std::string& key) {
  std::string best;
  size_t bd = 4;
  for (auto& p : param_table()) {
    size_t d = edit_distance(key, p.key);
    if (d < bd) bd = d, best = p.key;
  }
  return best.empty() ? "" : fmt::format("; did you mean '{}'?", best);
}

Config::Config() {
  for (auto& p : param_table()) values_[p.key] = p.default_value;
}

// Canonicalizes and validates a value for a parameter; throws ConfigError naming key and source.
static std::string canonical(const ParamDef& p, const std::string& raw_in, const std::string& source) {
  std::string raw(trim(raw_in));
  auto bad = [&](const std::string& what) -> ConfigError {
    return ConfigError(fmt::format("config key '{}' ({}): {}", p.key, source, what));
  };
  auto check_num = [&](double v) {
    if (v < p.min || v > p.max) {
      if (p.max >= 1e300) throw bad(fmt::format("{:g} is below the minimum {:g}", v, p.min));
      throw bad(fmt::format("{:g} is outside [{:g}, {:g}]", v, p.min, p.max));
    }
  };
  switch (p.type) {
    case ParamType::String: {
      auto allowed = p.allowed_values();
      if (!allowed.empty() && !raw.empty() && std::find(allowed.begin(), allowed.end(), raw) == allowed.end())
        throw bad(fmt::format("'{}' is not allowed; allowed values: {}", raw, fmt::join(allowed, ", ")));
      if (p.check && !raw.empty())
        if (auto m = p.check(raw); !m.empty()) throw bad(m);
      return raw;
    }
    case ParamType::Int: {
      auto v = parse_int(raw);
      if (!v) throw bad(fmt::format("expected an integer, got '{}'", raw));
      check_num(static_cast<double>(*v));
      return std::to_string(*v);
    }
    case ParamType::Float: {
      auto v = parse_double(raw);
      if (!v || !std::isfinite(*v)) throw bad(fmt::format("expected a number, got '{}'", raw));
      check_num(*v);
      return fmt::format("{:g}", *v);
    }
    case ParamType::Bool: {
      std::string l = lower(raw);
      if (l == "true" || l == "1" || l == "yes" || l == "on") return "true";
      if (l == "false" || l == "0" || l == "no" || l == "off") return "false";
      throw bad(fmt::format("expected true or false, got '{}'", raw));
    }
    default: {
      std::string body = raw;
      if (body.size() >= 2 && body.front() == '[' && body.back() == ']') body = body.substr(1, body.size() - 2);
      std::vector<std::string> items = split_list(body, ',');
      std::vector<std::string> out;
      for (auto& it : items) {
        if (p.type == ParamType::IntList) {
          auto v = parse_int(it);
          if (!v) throw bad(fmt::format("expected a list of integers, got '{}'", raw));
          check_num(static_cast<double>(*v));
          out.push_back(std::to_string(*v));
        } else if (p.type == ParamType::FloatList) {
          auto v = parse_double(it);
          if (!v || !std::isfinite(*v)) throw bad(fmt::format("expected a list of numbers, got '{}'", raw));
          check_num(*v);
          out.push_back(fmt::format("{:g}", *v));
        } else {
          auto allowed = p.allowed_values();
          if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), it) == allowed.end())
            throw bad(fmt::format("'{}' is not allowed; allowed values: {}", it, fmt::join(allowed, ", ")));
          out.push_back(it);
        }
      }
      return fmt::format("{}", fmt::join(out, ","));
    }
  }
}

void Config::set(const std::string& key, const std::string& value, const std::string& source) {
  const ParamDef* p = find_param(key);
  if (!p)
    throw ConfigError(
        fmt::format("unknown config key '{}' ({}){}; `siamrec params` lists every key", key, source, suggest(key)));
  values_[key] = canonical(*p, value, source);
  explicit_.insert(key);
}

void Config::set_override(const std::string& a) {
  auto eq = a.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError(fmt::format("--set expects key=value, got '{}'", a));
  set(std::string(trim(a.substr(0, eq))), a.substr(eq + 1), "--set");
}

static void flatten(const YAML::Node& n, const std::string& prefix, Config& c, const std::string& source) {
  if (n.IsMap()) {
    std::map<std::string, int> seen;  // key -> 1-based line
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.as<std::string>();
      const int line = it->first.Mark().line + 1;
      if (auto [at, fresh] = seen.emplace(k, line); !fresh)
        throw ConfigError(fmt::format("{}: key '{}' appears twice, at lines {} and {}; keep one", source,
                                      prefix.empty() ? k : prefix + "." + k, at->second, line));
      flatten(it->second, prefix.empty() ? k : prefix + "." + k, c, source);
    }
  } else if (n.IsSequence()) {
    std::vector<std::string> items;
    for (auto& x : n) {
      if (!x.IsScalar())
        throw ConfigError(fmt::format("config key '{}' ({}): lists may hold only plain values", prefix, source));
      items.push_back(x.as<std::string>());
    }
    c.set(prefix, fmt::format("{}", fmt::join(items, ",")), source);
  } else if (n.IsScalar()) {
    c.set(prefix, n.as<std::string>(), source);
  } else if (n.IsNull()) {
    if (!prefix.empty()) c.set(prefix, "", source);
  }
}

void Config::merge(const Config& other, const std::string& source) {
  for (auto& k : other.explicit_keys()) set(k, other.str(k), source);
}

Config Config::from_yaml_text(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(
        fmt::format("{}: invalid YAML at line {}, column {}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap() && !root.IsNull())
    throw ConfigError(fmt::format("{}: a config must be a YAML mapping of keys to values", source));
  Config c;
  flatten(root, "", c, source);
  return c;
}

Config Config::from_yaml_file(const std::string& path) {
  if (!file_exists(path)) throw ConfigError(fmt::format("config file '{}' does not exist", path));
  return from_yaml_text(read_file(path), path);
}

const std::string& Config::str(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw Error(fmt::format("internal: config key '{}' is not in the parameter table", key));
  return it->second;
}
int64_t Config::integer(const std::string& key) const { return *parse_int(str(key)); }
double Config::real(const std::string& key) const { return *parse_double(str(key)); }
bool Config::flag(const std::string& key) const { return str(key) == "true"; }
std::vector<int64_t> Config::ints(const std::string& key) const {
  std::vector<int64_t> out;
  for (auto& s : split_list(str(key), ',')) out.push_back(*parse_int(s));
  return out;
}
std::vector<double> Config::reals(const std::string& key) const {
  std::vector<double> out;
  for (auto& s : split_list(str(key), ',')) out.push_back(*parse_double(s));
  return out;
}
std::vector<std::string> Config::strs(const std::string& key) const { return split_list(str(key), ','); }

std::string Config::to_yaml() const {
  YAML::Emitter e;
  e << YAML::BeginMap;
  std::string section;
  bool open = false;
  // The table's keys grouped by section (sections in order of first appearance), so a section
  // is one YAML map even when its keys are not adjacent in the table.
  std::vector<std::string> order;
  for (auto& p : param_table()) {
    const std::string sec = p.key.substr(0, p.key.find('.'));
    if (std::find(order.begin(), order.end(), sec) == order.end()) order.push_back(sec);
  }
  std::vector<const ParamDef*> grouped;
  for (auto& sec : order)
    for (auto& p : param_table())
      if (p.key.substr(0, p.key.find('.')) == sec) grouped.push_back(&p);
  for (const ParamDef* pp : grouped) {
    const ParamDef& p = *pp;
    auto dot = p.key.find('.');
    std::string sec = dot == std::string::npos ? "" : p.key.substr(0, dot);
    std::string leaf = dot == std::string::npos ? p.key : p.key.substr(dot + 1);
    if (sec != section) {
      if (open) e << YAML::EndMap;
      open = false;
      section = sec;
      if (!sec.empty()) {
        e << YAML::Key << sec << YAML::Value << YAML::BeginMap;
        open = true;
      }
    }
    const std::string& v = values_.at(p.key);
    e << YAML::Key << leaf << YAML::Value;
    if (p.type == ParamType::IntList || p.type == ParamType::FloatList || p.type == ParamType::StringList) {
      e << YAML::Flow << YAML::BeginSeq;
      for (auto& x : split_list(v, ',')) e << x;
      e << YAML::EndSeq;
    } else if (v.empty()) {
      e << YAML::Null;
    } else {
      e << v;
    }
  }
  if (open) e << YAML::EndMap;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace siamrec
