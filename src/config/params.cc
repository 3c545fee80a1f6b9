#include "config/params.h"

#include <fmt/format.h>

#include "data/registry.h"
#include "models/model.h"
#include "util/strings.h"

namespace siamrec {

static std::vector<std::string> dataset_names() {
  std::vector<std::string> v;
  for (auto& s : dataset_registry()) v.push_back(s.name);
  return v;
}

static std::string check_candidates(const std::string& v) {
  if (v == "full" || v == "fixed") return "";
  auto c = v.find(':');
  if (c != std::string::npos) {
    std::string kind = v.substr(0, c);
    auto n = parse_int(v.substr(c + 1));
    if ((kind == "uniform" || kind == "popularity") && n && *n > 0) return "";
  }
  return fmt::format("'{}' is not a candidate protocol; allowed: full, uniform:N, popularity:N, fixed", v);
}

static const double kInf = 1e300;

const std::vector<ParamDef>& param_table() {
  using T = ParamType;
  static const std::vector<ParamDef> table = {
      // ---- data ----
      {"data.dataset", T::String, "", "registered dataset name (or leave empty and set data.path)", {}, dataset_names},
      {"data.path", T::String, "", "interaction file (format delimited) or file prefix (format recbole: PREFIX.inter)"},
      {"data.format", T::String, "delimited", "format of data.path", {"delimited", "recbole"}},
      {"data.delimiter", T::String, "tab", "field delimiter of a delimited file: tab, comma, ws (spaces/tabs), or any string"},
      {"data.header", T::Bool, "false", "the delimited file's first line names the columns"},
      {"data.comment", T::String, "#", "lines starting with this are skipped (empty: none)"},
      {"data.user_col", T::String, "0", "user column: header name or 0-based index"},
      {"data.item_col", T::String, "1", "item column: header name or 0-based index"},
      {"data.rating_col", T::String, "", "rating column (empty: none, every row is a positive)"},
      {"data.time_col", T::String, "", "timestamp column (empty: none)"},
      {"data.numeric_ids", T::Bool, "false", "require integer user and item ids"},
      // ---- filters ----
      {"filter.min_rating", T::Float, "0", "keep interactions with rating >= this (0: keep all)", {}, nullptr, 0, kInf},
      {"filter.dedup", T::Bool, "false", "keep one interaction per (user, item): the latest"},
      {"filter.user_core", T::Int, "0", "iterative k-core: minimum interactions per user", {}, nullptr, 0, 1e9},
      {"filter.item_core", T::Int, "0", "iterative k-core: minimum interactions per item", {}, nullptr, 0, 1e9},
      // ---- split ----
      {"split.type", T::String, "ratio", "how test (and validation) data is held out", {"ratio", "loo", "temporal", "fixed"}},
      {"split.order", T::String, "random", "ratio/loo: hold out random interactions or the latest by time", {"random", "time"}},
      {"split.ratios", T::FloatList, "0.8,0.1,0.1", "ratio/temporal: train, validation, test shares", {}, nullptr, 0, 1},
      {"split.valid", T::Bool, "false", "loo: also hold out a validation item (the second latest)"},
      {"split.name", T::String, "", "fixed: a split the dataset ships (ml-100k: u1..u5, ua, ub; ml-1m-lightgcn: lightgcn; ml-1m-ncf: ncf)"},
      {"split.seed", T::Int, "42", "seed of random splits", {}, nullptr, 0, 9.2e18},
      // ---- evaluation ----
      {"eval.candidates", T::String, "full",
       "full (every item minus the user's train items), uniform:N / popularity:N sampled negatives, fixed (the split's candidate lists, e.g. NCF)",
       {}, nullptr, -kInf, kInf, check_candidates},
      {"eval.k", T::IntList, "5,10,20", "cut-offs K of the ranking metrics", {}, nullptr, 1, 100000},
      {"eval.exclude_train", T::Bool, "true", "full ranking: remove each user's train items from the candidates"},
      {"eval.seed", T::Int, "2024", "seed of sampled negatives", {}, nullptr, 0, 9.2e18},
      {"eval.head_share", T::Float, "0.2", "share of items (most popular first) forming the short head for long-tail metrics", {}, nullptr, 0.0001, 0.9999},
      // ---- model ----
      {"model.type", T::String, "pop", "model to fit: a baseline or a Siamese model", {}, model_names},
      {"model.neighbors", T::Int, "100", "itemknn/userknn: neighbours kept per item/user", {}, nullptr, 1, 1e9},
      {"model.shrink", T::Float, "10", "itemknn/userknn: shrinkage added to the cosine denominator", {}, nullptr, 0, kInf},
      {"model.seed", T::Int, "42", "seed of the model (random baseline scores, initialization)", {}, nullptr, 0, 9.2e18},
  };
  return table;
}

const ParamDef* find_param(const std::string& key) {
  for (auto& p : param_table())
    if (p.key == key) return &p;
  return nullptr;
}

std::string param_type_name(ParamType t) {
  switch (t) {
    case ParamType::String: return "string";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::IntList: return "list of int";
    case ParamType::FloatList: return "list of float";
    case ParamType::StringList: return "list of string";
  }
  return "?";
}

std::string params_markdown() {
  std::string o = "# Configuration parameters\n\n"
                  "Generated by `siamrec params --markdown` from the parameter table in `src/config/params.cc`;\n"
                  "a test keeps this file identical to the table. Set keys in a YAML file (nested by section) or\n"
                  "with `--set section.key=value`.\n";
  std::string section;
  for (auto& p : param_table()) {
    std::string sec = p.key.substr(0, p.key.find('.'));
    if (sec != section) {
      section = sec;
      o += fmt::format("\n## {}\n\n| key | type | default | allowed | description |\n|---|---|---|---|---|\n", sec);
    }
    std::string allowed = fmt::format("{}", fmt::join(p.allowed_values(), ", "));
    if (allowed.empty() && (p.min > -1e299 || p.max < 1e299)) {
      allowed = p.max < 1e299 ? fmt::format("[{:g}, {:g}]", p.min, p.max) : fmt::format(">= {:g}", p.min);
    }
    o += fmt::format("| `{}` | {} | {} | {} | {} |\n", p.key, param_type_name(p.type),
                     p.default_value.empty() ? "(none)" : "`" + p.default_value + "`", allowed, p.help);
  }
  return o;
}

}  // namespace siamrec
