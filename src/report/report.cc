#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "eval/stats.h"
#include "models/model_file.h"
#include "plot/chart.h"
#include "plot/svg.h"
#include "report/projection.h"
#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/io.h"
#include "util/rng.h"

namespace siamrec::report {

using plot::Figure;
using plot::Series;
using plot::xml_escape;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string stem(const std::string& path) {
  std::string s = std::filesystem::path(path).filename().string();
  for (const char* ext : {".jsonl", ".json"})
    if (s.size() > std::strlen(ext) && s.compare(s.size() - std::strlen(ext), std::strlen(ext), ext) == 0)
      return s.substr(0, s.size() - std::strlen(ext));
  return s;
}

std::string base_of(const std::string& m) { return m.substr(0, m.find('@')); }
int k_of(const std::string& m) {
  auto at = m.find('@');
  if (at == std::string::npos) return -1;
  try {
    return std::stoi(m.substr(at + 1));
  } catch (...) {
    return -1;
  }
}
const std::vector<std::string> kAccuracyOrder = {"precision", "recall", "ndcg", "hr", "mrr", "map", "f1"};
const std::set<std::string> kBeyondBases = {"coverage",  "gini",     "entropy",   "novelty", "arp",
                                            "long_tail", "pop_lift", "ild_genre", "ild_emb"};
bool is_beyond(const std::string& m) { return kBeyondBases.count(base_of(m)) > 0; }
// Lower is better for errors and for the popularity-bias metrics.
bool lower_is_better(const std::string& m) {
  static const std::set<std::string> lower = {"rmse", "mae", "gini", "pop_lift", "arp", "mse"};
  return lower.count(base_of(m)) > 0;
}
std::string short_name(const std::string& m) {
  static const std::map<std::string, std::string> s = {{"precision", "P"}, {"recall", "R"}, {"ndcg", "NDCG"},
                                                       {"hr", "HR"},       {"mrr", "MRR"},  {"map", "MAP"}};
  auto it = s.find(base_of(m));
  return it == s.end() ? base_of(m) : it->second;
}

// Table order: accuracy metrics by K, then metrics without K, then beyond accuracy by K.
std::vector<std::string> order_metrics(const std::set<std::string>& names) {
  auto rank = [](const std::string& m) {
    const int k = k_of(m);
    const std::string b = base_of(m);
    const auto it = std::find(kAccuracyOrder.begin(), kAccuracyOrder.end(), b);
    const int bi = it == kAccuracyOrder.end() ? 99 : static_cast<int>(it - kAccuracyOrder.begin());
    const int section = is_beyond(m) ? 2 : k < 0 ? 1 : 0;
    return std::make_tuple(section, section == 2 ? 0 : k, section == 2 ? b : std::string(), bi, k, m);
  };
  std::vector<std::string> v(names.begin(), names.end());
  std::sort(v.begin(), v.end(), [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  return v;
}

std::string f4(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("–"); }
std::string fp(double p) { return std::isfinite(p) ? fmt::format("{:.2g}", p) : std::string("–"); }
std::string pct(double v) { return fmt::format("{:.1f}%", 100 * v); }

double json_num(const nlohmann::json& v) { return v.is_number() ? v.get<double>() : kNaN; }
// A string field, or `dflt` when absent or not a string.
std::string str_or(const nlohmann::json& j, const char* key, const std::string& dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}
// FNV-1a: a seed per metric name that is the same with every standard library.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
  return h;
}
// "10" -> 10; anything but plain digits (1..9 digits, no sign, no leading zero) -> -1.
int parse_k(const std::string& s) {
  if (s.empty() || s.size() > 9 || s[0] == '0') return -1;
  for (char ch : s)
    if (ch < '0' || ch > '9') return -1;
  return std::stoi(s);
}

struct Quantiles {
  double p5 = kNaN, q1 = kNaN, med = kNaN, q3 = kNaN, p95 = kNaN, mean = kNaN;
  size_t n = 0;
};
Quantiles quantiles(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  Quantiles q;
  q.n = v.size();
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) { return stats::quantile_sorted(v, p); };
  q.p5 = at(0.05), q.q1 = at(0.25), q.med = at(0.5), q.q3 = at(0.75), q.p95 = at(0.95);
  q.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  return q;
}

// At most `n` indices of [0, size), evenly spaced, first and last included.
std::vector<size_t> thin(size_t size, size_t n) {
  std::vector<size_t> idx;
  if (size == 0) return idx;
  if (size <= n) {
    idx.resize(size);
    std::iota(idx.begin(), idx.end(), 0);
    return idx;
  }
  for (size_t k = 0; k < n; ++k) idx.push_back(static_cast<size_t>(std::llround(k * (size - 1.0) / (n - 1.0))));
  return idx;
}

// A run's per-user vectors, by metric.
struct PerUser {
  std::vector<std::string> users;
  std::map<std::string, std::vector<double>> v;
};
PerUser per_user(const Run& r) {
  PerUser p;
  if (!r.j.contains("per_user")) return p;
  const auto& pu = r.j["per_user"];
  if (pu.contains("user"))
    for (auto& u : pu["user"]) p.users.push_back(u.is_string() ? u.get<std::string>() : u.dump());
  for (auto& [k, arr] : pu.items()) {
    if (k == "user" || !arr.is_array()) continue;
    auto& out = p.v[k];
    for (auto& x : arr) out.push_back(json_num(x));
  }
  return p;
}

// Values of metric m for the users both runs evaluated (a, b aligned).
void paired(const PerUser& A, const PerUser& B, const std::string& m, std::vector<double>& a, std::vector<double>& b) {
  a.clear(), b.clear();
  auto ia = A.v.find(m), ib = B.v.find(m);
  if (ia == A.v.end() || ib == B.v.end()) return;
  std::map<std::string, size_t> pos;
  for (size_t k = 0; k < B.users.size(); ++k) pos[B.users[k]] = k;
  for (size_t k = 0; k < A.users.size() && k < ia->second.size(); ++k) {
    auto it = pos.find(A.users[k]);
    if (it == pos.end() || it->second >= ib->second.size()) continue;
    const double x = ia->second[k], y = ib->second[it->second];
    if (std::isnan(x) || std::isnan(y)) continue;
    a.push_back(x), b.push_back(y);
  }
}

std::string figure(const std::string& svg, const std::string& caption) {
  return fmt::format("<figure>{}<figcaption>{}</figcaption></figure>\n", svg, caption);
}

const char* kCss = R"(
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;line-height:1.45;max-width:1260px;margin:20px auto;padding:0 18px;background:#fff}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:2px solid #0072B2;padding-bottom:3px;margin-top:34px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px}th,td{border:1px solid #c8c8c8;padding:3px 7px;vertical-align:top}
th{background:#f0f3f7;text-align:center}td{text-align:right}td.name,td.text{text-align:left}
td.best .v{font-weight:bold}.star{color:#D55E00}
.ci,.p{color:#555;font-size:11px;white-space:nowrap}
.figs{display:flex;flex-wrap:wrap;gap:14px 22px;align-items:flex-start}figure{margin:0}
figcaption{font-size:12px;color:#444;max-width:600px;margin-top:2px}
.note{color:#444;font-size:13px;max-width:1000px}.warn{background:#fff4d6;border:1px solid #d39e00;padding:6px 10px;max-width:1000px}
code,pre{background:#f4f4f4;font-size:12px}pre{padding:6px;white-space:pre-wrap;max-width:1100px}
nav a{margin-right:12px;color:#0050a0}svg{max-width:100%;height:auto}
@media print{body{max-width:none}figure,table{break-inside:avoid}h2{break-after:avoid}nav{display:none}}
)";

}  // namespace

// ---- inputs -----------------------------------------------------------------------------------

std::string protocol_key(const std::string& protocol) { return protocol.substr(0, protocol.find(" | users:")); }

Run load_run(const std::string& path, const std::string& label) {
  if (!file_exists(path)) throw Error(fmt::format("run file '{}' does not exist", path), kExitUsage);
  Run r;
  r.path = path;
  r.label = label.empty() ? stem(path) : label;
  try {
    r.j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
  if (!r.j.is_object() || !r.j.contains("protocol") || !r.j["protocol"].is_string() || !r.j.contains("metrics") ||
      !r.j["metrics"].is_object())
    throw DataError(fmt::format(
        "'{}' is not an evaluation run: it needs \"protocol\" and \"metrics\" (write it with `siamrec evaluate "
        "--json` or `siamrec train --json`)",
        path));
  if (r.j.contains("per_user")) {
    const auto& pu = r.j["per_user"];
    if (!pu.is_object() || !pu.contains("user") || !pu["user"].is_array())
      throw DataError(fmt::format("'{}': \"per_user\" has no \"user\" array", path));
    for (auto& [k, arr] : pu.items())
      if (!arr.is_array() || arr.size() != pu["user"].size())
        throw DataError(fmt::format("'{}': per-user vector \"{}\" has {} values for {} users", path, k,
                                    arr.is_array() ? arr.size() : 0, pu["user"].size()));
  }
  if (r.j.contains("items")) {  // item-level data: numeric arrays of one length, exposure keyed by K
    const auto& it = r.j["items"];
    auto numeric = [](const nlohmann::json& a) {
      if (!a.is_array()) return false;
      for (auto& x : a)
        if (!x.is_number()) return false;
      return true;
    };
    if (!it.is_object() || !it.contains("popularity") || !numeric(it["popularity"]) || !it.contains("exposure") ||
        !it["exposure"].is_object())
      throw DataError(
          fmt::format("'{}': \"items\" needs a numeric \"popularity\" array and an \"exposure\" object", path));
    for (auto& [k, a] : it["exposure"].items())
      if (parse_k(k) < 1 || !numeric(a) || a.size() != it["popularity"].size())
        throw DataError(
            fmt::format("'{}': items.exposure[\"{}\"] must be keyed by a cut-off K and hold one number "
                        "per item ({})",
                        path, k, it["popularity"].size()));
  }
  return r;
}

Study load_study(const std::string& path) {
  if (!file_exists(path)) throw Error(fmt::format("study file '{}' does not exist", path), kExitUsage);
  Study st;
  st.path = path;
  std::string text = read_file(path);
  if (!text.empty() && text.back() != '\n') {  // the trial a running or killed study was writing
    text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    st.cut_last_line = true;
  }
  size_t pos = 0;
  int n = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++n;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw DataError(fmt::format("{}:{}: not a JSON line (a study file of siamrec tune has one per trial)", path, n));
    }
    try {
      if (n == 1) {
        if (!j.is_object() || !j.contains("study") || !j.contains("objectives"))
          throw DataError(
              fmt::format("{}:1: not a study file of siamrec tune (its first line is a header with \"study\" and "
                          "\"objectives\")",
                          path));
        st.config = str_or(j, "config", "");
        st.space = str_or(j, "space", "");
        st.sampler = str_or(j, "sampler", "");
        st.pruner = str_or(j, "pruner", "");
        st.validation = str_or(j, "validation", "");
        st.objectives = j.at("objectives").get<std::vector<std::string>>();
        if (st.objectives.empty()) throw DataError(fmt::format("{}:1: the header names no objective", path));
        continue;
      }
      StudyTrial t;
      t.trial = j.at("trial").get<int>();
      t.status = j.at("status").get<std::string>();
      for (auto& [k, v] : j.at("params").items()) t.params.emplace_back(k, v.get<std::string>());
      t.objectives = j.at("objectives").get<std::vector<double>>();
      t.epochs = j.at("epochs").get<int>();
      t.seconds = j.at("seconds").get<double>();
      t.error = str_or(j, "error", "");
      if (t.status != "complete" && t.status != "pruned" && t.status != "failed")
        throw DataError(fmt::format("{}:{}: trial status '{}' is not complete, pruned or failed", path, n, t.status));
      if (t.status != "failed" && t.objectives.size() != st.objectives.size())
        throw DataError(fmt::format("{}:{}: trial {} has {} objective values for the header's {}", path, n, t.trial,
                                    t.objectives.size(), st.objectives.size()));
      st.trials.push_back(std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}:{}: not a trial of siamrec tune ({})", path, n, e.what()));
    }
  }
  if (n == 0) throw DataError(fmt::format("study file '{}' is empty", path));
  return st;
}

TrainingLog load_training_log(const std::string& path, const std::string& label) {
  if (!file_exists(path)) throw Error(fmt::format("training log '{}' does not exist", path), kExitUsage);
  TrainingLog t;
  t.path = path;
  t.label = label.empty() ? stem(path) : label;
  std::string text = read_file(path);
  size_t pos = 0;
  int line = 0, end_chosen = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string s = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line;
    if (s.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(s);
    } catch (const nlohmann::json::exception&) {
      throw DataError(
          fmt::format("{}:{}: not a JSON object (a training log has one per line, from `siamrec train "
                      "--log`)",
                      path, line));
    }
    if (!j.is_object()) throw DataError(fmt::format("{}:{}: not a JSON object", path, line));
    auto text_field = [&](const char* key, const std::string& dflt) {
      auto f = j.find(key);
      if (f == j.end()) return dflt;
      if (!f->is_string()) throw DataError(fmt::format("{}:{}: field '{}' must be a string", path, line, key));
      return f->get<std::string>();
    };
    if (j.contains("event")) {
      if (text_field("event", "") == "end" && text_field("phase", "fit") == "fit" && j.contains("chosen_epoch") &&
          j["chosen_epoch"].is_number_integer() && j["chosen_epoch"].get<int64_t>() >= 0 &&
          j["chosen_epoch"].get<int64_t>() < 100000000)
        end_chosen = static_cast<int>(j["chosen_epoch"].get<int64_t>());
      continue;
    }
    auto need = [&](const char* key) -> double {
      if (!j.contains(key) || !j[key].is_number())
        throw DataError(fmt::format("{}:{}: field '{}' is missing or not a number", path, line, key));
      return j[key].get<double>();
    };
    LogEpoch e;
    const double ep = need("epoch");
    if (!(ep >= 0 && ep < 1e8) || ep != std::floor(ep))
      throw DataError(fmt::format("{}:{}: field 'epoch' must be a whole number of epochs", path, line));
    e.epoch = static_cast<int>(ep);
    e.loss = need("loss");
    e.phase = text_field("phase", "fit");
    if (e.phase != "fit" && e.phase != "refit")
      throw DataError(fmt::format("{}:{}: field 'phase' must be fit or refit, not '{}'", path, line, e.phase));
    e.seconds = j.contains("seconds") ? json_num(j["seconds"]) : kNaN;
    e.tuples_per_s = j.contains("tuples_per_s") ? json_num(j["tuples_per_s"]) : kNaN;
    e.emb_mean_norm = j.contains("emb_mean_norm") ? json_num(j["emb_mean_norm"]) : kNaN;
    e.emb_var = j.contains("emb_var") ? json_num(j["emb_var"]) : kNaN;
    e.collapse = j.contains("collapse") && j["collapse"].is_boolean() && j["collapse"].get<bool>();
    if (j.contains("valid") && j["valid"].is_object() && !j["valid"].empty()) {
      auto it = j["valid"].begin();
      t.valid_metric = it.key();
      e.valid = json_num(it.value());
      e.has_valid = std::isfinite(e.valid);
    }
    t.refit = t.refit || e.phase == "refit";
    // A resumed run may log an epoch again: the later line wins.
    auto same = std::find_if(t.epochs.begin(), t.epochs.end(),
                             [&](const LogEpoch& x) { return x.phase == e.phase && x.epoch == e.epoch; });
    if (same != t.epochs.end())
      *same = e;
    else
      t.epochs.push_back(e);
  }
  std::stable_sort(t.epochs.begin(), t.epochs.end(), [](const LogEpoch& a, const LogEpoch& b) {
    return std::make_pair(a.phase != "fit", a.epoch) < std::make_pair(b.phase != "fit", b.epoch);
  });
  if (t.epochs.empty()) throw DataError(fmt::format("'{}' holds no epoch lines", path));
  t.chosen_epoch = end_chosen;
  if (!t.chosen_epoch) {  // older logs: the best validated epoch
    double best = -std::numeric_limits<double>::infinity();
    for (auto& e : t.epochs)
      if (e.phase == "fit" && e.has_valid && e.valid > best) best = e.valid, t.chosen_epoch = e.epoch;
  }
  return t;
}

// ---- sections ---------------------------------------------------------------------------------

namespace {

struct Group {
  std::string key;
  std::vector<size_t> runs;
};

struct Ctx {
  const Options& o;
  std::vector<Run> runs;
  std::vector<PerUser> pu;
  std::vector<Group> groups;
  std::map<std::pair<size_t, std::string>, stats::Interval> intervals;  // (run, metric): computed once
};

// The bootstrap interval of run r's metric m (seeded by the metric's name).
stats::Interval interval(Ctx& c, size_t r, const std::string& m, const std::vector<double>& values) {
  auto key = std::make_pair(r, m);
  auto it = c.intervals.find(key);
  if (it != c.intervals.end()) return it->second;
  auto ci = stats::bootstrap_mean_ci(values, c.o.bootstrap, c.o.level, mix64(c.o.seed ^ name_hash(m)));
  c.intervals.emplace(key, ci);
  return ci;
}

std::string group_heading(const Ctx& c, size_t g) {
  if (c.groups.size() < 2) return "";
  return fmt::format("<h3>Group {}: {}</h3>\n", g + 1, xml_escape(c.groups[g].key));
}

std::string section_protocol(const Ctx& c) {
  std::string h = "<section id=\"protocol\">\n<h2>1. Protocol</h2>\n";
  if (c.groups.size() > 1)
    h += fmt::format(
        "<p class=\"warn\">These {} runs use {} different protocols (data, split, candidates, exclusions or K). "
        "They are shown in separate groups and never compared across groups.</p>\n",
        c.runs.size(), c.groups.size());
  else
    h += "<p class=\"note\">Every run uses the same protocol: the tables and tests below compare them paired over "
         "users.</p>\n";
  h += "<table class=\"protocols\"><tr><th>group</th><th>run</th><th>file</th><th>model</th><th>users</th><th>"
       "protocol</th></tr>\n";
  for (size_t g = 0; g < c.groups.size(); ++g)
    for (size_t r : c.groups[g].runs) {
      const auto& j = c.runs[r].j;
      h += fmt::format(
          "<tr><td>{}</td><td class=\"name\">{}</td><td class=\"text\"><code>{}</code></td><td class=\"text\">{}</td>"
          "<td>{}</td><td class=\"text protocol\">{}</td></tr>\n",
          g + 1, xml_escape(c.runs[r].label), xml_escape(c.runs[r].path), xml_escape(str_or(j, "model", "?")),
          j.contains("n_users") && j["n_users"].is_number_integer() ? j["n_users"].dump() : "?",
          xml_escape(j["protocol"].get<std::string>()));
    }
  h += "</table>\n";
  for (size_t r = 0; r < c.runs.size(); ++r)
    if (c.runs[r].j.contains("config") && c.runs[r].j["config"].is_string())
      h += fmt::format("<details><summary>config of {}</summary><pre>{}</pre></details>\n", xml_escape(c.runs[r].label),
                       xml_escape(c.runs[r].j["config"].get<std::string>()));
  return h + "</section>\n";
}

std::string section_metrics(Ctx& c) {
  const Options& o = c.o;
  std::string h = "<section id=\"metrics\">\n<h2>2. Metrics</h2>\n";
  h += fmt::format(
      "<p class=\"note\">Mean over the evaluated users; below it the {:g}% confidence interval (percentile "
      "bootstrap over users, {} resamples, seed {}). For every run after the first: the difference to the first "
      "run, paired over the users both evaluated, with two-sided p-values of the paired t-test (p<sub>t</sub>) and "
      "the Wilcoxon signed-rank test (p<sub>W</sub>). <span class=\"star\">★</span> marks the best run per row "
      "(↑ higher is better, ↓ lower is better). Aggregate-only metrics (coverage, gini, entropy, gauc) have no "
      "per-user values, hence no interval or test.</p>\n",
      100 * o.level, o.bootstrap, o.seed);
  for (size_t g = 0; g < c.groups.size(); ++g) {
    const auto& runs = c.groups[g].runs;
    h += group_heading(c, g);
    std::set<std::string> names;
    for (size_t r : runs)
      for (auto& [k, v] : c.runs[r].j["metrics"].items()) names.insert(k);
    h += "<table class=\"metrics\"><tr><th>metric</th>";
    for (size_t r : runs) h += fmt::format("<th>{}</th>", xml_escape(c.runs[r].label));
    h += "</tr>\n";
    for (auto& m : order_metrics(names)) {
      std::vector<double> vals;
      for (size_t r : runs)
        vals.push_back(c.runs[r].j["metrics"].contains(m) ? json_num(c.runs[r].j["metrics"][m]) : kNaN);
      int best = -1;
      for (size_t k = 0; k < vals.size(); ++k)
        if (std::isfinite(vals[k]) && (best < 0 || (lower_is_better(m) ? vals[k] < vals[best] : vals[k] > vals[best])))
          best = static_cast<int>(k);
      if (runs.size() < 2) best = -1;
      h += fmt::format("<tr><td class=\"name\">{} {}</td>", xml_escape(m), lower_is_better(m) ? "↓" : "↑");
      for (size_t k = 0; k < runs.size(); ++k) {
        const size_t r = runs[k];
        const bool is_best = static_cast<int>(k) == best && std::count(vals.begin(), vals.end(), vals[k]) == 1;
        h += fmt::format("<td data-metric=\"{}\" data-run=\"{}\"{}><span class=\"v\" data-value=\"{}\">{}</span>{}",
                         xml_escape(m), xml_escape(c.runs[r].label), is_best ? " class=\"best\"" : "",
                         std::isfinite(vals[k]) ? fmt::format("{:.17g}", vals[k]) : "", f4(vals[k]),
                         is_best ? "<span class=\"star\"> ★</span>" : "");
        auto it = c.pu[r].v.find(m);
        if (it != c.pu[r].v.end()) {
          auto ci = interval(c, r, m, it->second);
          h += fmt::format("<br><span class=\"ci\">[{}, {}]</span>", f4(ci.lo), f4(ci.hi));
        }
        if (k > 0) {
          std::vector<double> a, b;
          paired(c.pu[runs[0]], c.pu[r], m, a, b);
          if (a.size() >= 2) {
            auto t = stats::paired_t_test(b, a);
            auto w = stats::wilcoxon_signed_rank(b, a);
            double d = 0;
            for (size_t q = 0; q < a.size(); ++q) d += b[q] - a[q];
            d /= a.size();
            h += fmt::format(
                "<br><span class=\"p\" data-n=\"{}\">Δ {:+.4f} · p<sub>t</sub> {} · p<sub>W</sub> {}</span>", a.size(),
                d, fp(t.p_value), fp(w.p_value));
          }
        }
        h += "</td>";
      }
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  return h + "</section>\n";
}

std::set<int> ks_of(const Ctx& c, const Group& g) {
  std::set<int> ks;
  for (size_t r : g.runs)
    for (auto& [k, v] : c.runs[r].j["metrics"].items())
      if (!is_beyond(k) && k_of(k) > 0) ks.insert(k_of(k));
  return ks;
}

std::string section_charts(Ctx& c) {
  std::string h = "<section id=\"charts\">\n<h2>3. Headline metrics</h2>\n";
  h += fmt::format("<p class=\"note\">One chart per K; whiskers: {:g}% bootstrap intervals over users.</p>\n",
                   100 * c.o.level);
  for (size_t g = 0; g < c.groups.size(); ++g) {
    h += group_heading(c, g) + "<div class=\"figs\">\n";
    const auto& runs = c.groups[g].runs;
    const std::set<int> ks = ks_of(c, c.groups[g]);
    if (ks.empty()) h += "<p class=\"note\">No ranking metric at a cut-off K in these runs.</p>\n";
    for (int K : ks) {
      Figure f;
      f.title = fmt::format("Accuracy at K = {}", K);
      f.xlabel = "metric";
      f.ylabel = "mean over users";
      std::vector<std::string> cats;
      for (auto& b : kAccuracyOrder) {
        const std::string m = fmt::format("{}@{}", b, K);
        for (size_t r : runs)
          if (c.runs[r].j["metrics"].contains(m)) {
            cats.push_back(m);
            break;
          }
      }
      for (auto& m : cats) f.categories.push_back(short_name(m) + "@" + std::to_string(K));
      for (size_t r : runs) {
        Series s;
        s.name = c.runs[r].label;
        s.kind = Series::Kind::Bars;
        for (auto& m : cats) {
          const double v = c.runs[r].j["metrics"].contains(m) ? json_num(c.runs[r].j["metrics"][m]) : kNaN;
          s.y.push_back(v);
          auto it = c.pu[r].v.find(m);
          if (it != c.pu[r].v.end()) {
            auto ci = interval(c, r, m, it->second);
            s.lo.push_back(ci.lo), s.hi.push_back(ci.hi);
            s.tips.push_back(fmt::format("{} · {}: {:.4f} [{:.4f}, {:.4f}]", s.name, m, v, ci.lo, ci.hi));
          } else {
            s.lo.push_back(kNaN), s.hi.push_back(kNaN);
            s.tips.push_back(fmt::format("{} · {}: {:.4f}", s.name, m, v));
          }
        }
        f.series.push_back(std::move(s));
      }
      h += figure(plot::render(f),
                  fmt::format("Accuracy metrics at K = {} per run, with {:g}% intervals.", K, 100 * c.o.level));
    }
    h += "</div>\n";
  }
  return h + "</section>\n";
}

// The metric the per-user section shows: NDCG@10 when present, else the first NDCG, else any.
std::string headline_metric(const Ctx& c, const Group& g) {
  std::set<std::string> have;
  for (size_t r : g.runs)
    for (auto& [k, v] : c.pu[r].v) have.insert(k);
  if (have.count("ndcg@10")) return "ndcg@10";
  for (auto& m : order_metrics(have))
    if (base_of(m) == "ndcg") return m;
  for (auto& m : order_metrics(have))
    if (!is_beyond(m)) return m;
  return "";
}

std::string section_per_user(const Ctx& c) {
  std::string h = "<section id=\"per-user\">\n<h2>4. Per-user distributions</h2>\n";
  for (size_t g = 0; g < c.groups.size(); ++g) {
    h += group_heading(c, g);
    const auto& runs = c.groups[g].runs;
    const std::string m = headline_metric(c, c.groups[g]);
    if (m.empty()) {
      h += "<p class=\"note\">These runs hold no per-user vectors (older JSON files): nothing to show.</p>\n";
      continue;
    }
    h += "<div class=\"figs\">\n";
    Figure box;
    box.title = fmt::format("{} per user", m);
    box.xlabel = "run";
    box.ylabel = m;
    box.legend = false;
    Series s;
    s.name = m;
    s.kind = Series::Kind::Box;
    for (size_t r : runs) {
      box.categories.push_back(c.runs[r].label);
      auto it = c.pu[r].v.find(m);
      Quantiles q = it == c.pu[r].v.end() ? Quantiles{} : quantiles(it->second);
      s.box.push_back({q.p5, q.q1, q.med, q.q3, q.p95});
      s.y.push_back(q.mean);
      s.tips.push_back(
          fmt::format("{}: mean {:.4f}, median {:.4f}, quartiles {:.4f}-{:.4f}, 5-95%: {:.4f}-{:.4f} ({} users)",
                      c.runs[r].label, q.mean, q.med, q.q1, q.q3, q.p5, q.p95, q.n));
    }
    box.series.push_back(std::move(s));
    h += figure(plot::render(box),
                fmt::format("Box: quartiles and median of {} over users; whiskers: 5th and 95th percentiles; "
                            "white dot: mean.",
                            xml_escape(m)));
    for (size_t k = 1; k < runs.size(); ++k) {
      std::vector<double> a, b;
      paired(c.pu[runs[0]], c.pu[runs[k]], m, a, b);
      size_t better = 0, worse = 0;
      for (size_t q = 0; q < a.size(); ++q) better += b[q] > a[q], worse += b[q] < a[q];
      const size_t n = a.size();
      Figure sc;
      const std::string A = c.runs[runs[0]].label, B = c.runs[runs[k]].label;
      sc.title = fmt::format("{} per user: {} vs {}", m, B, A);
      sc.xlabel = fmt::format("{} of {}", m, A);
      sc.ylabel = fmt::format("{} of {}", m, B);
      sc.diagonal = true;
      sc.legend = false;
      sc.width = 460, sc.height = 420;
      Series p;
      p.name = B;
      p.kind = Series::Kind::Points;
      p.color = static_cast<int>(k);
      p.radius = 2.6, p.opacity = 0.35;
      // A seeded sample when there are more users than points allowed (the shares use every user).
      std::vector<size_t> idx(n);
      std::iota(idx.begin(), idx.end(), 0);
      if (n > static_cast<size_t>(c.o.max_points)) {
        uint64_t st = mix64(c.o.seed);
        for (size_t q = n - 1; q > 0; --q) {
          st = mix64(st);
          std::swap(idx[q], idx[st % (q + 1)]);
        }
        idx.resize(static_cast<size_t>(c.o.max_points));
        std::sort(idx.begin(), idx.end());
      }
      for (size_t q : idx) p.x.push_back(a[q]), p.y.push_back(b[q]);
      sc.series.push_back(std::move(p));
      double lo = 0, hi = 0;
      for (size_t q = 0; q < n; ++q) lo = std::min({lo, a[q], b[q]}), hi = std::max({hi, a[q], b[q]});
      sc.xmin = sc.ymin = lo, sc.xmax = sc.ymax = hi > lo ? hi : lo + 1;
      if (n > static_cast<size_t>(c.o.max_points))
        sc.note = fmt::format("{} of {} users drawn (seeded sample)", c.o.max_points, n);
      h += figure(
          plot::render(sc),
          fmt::format("Each point is a user. Above the diagonal: {} better. {} better for {} of {} users "
                      "({}), worse for {} ({}), tied for {} ({}).",
                      xml_escape(B), xml_escape(B), better, n, pct(n ? double(better) / n : 0), worse,
                      pct(n ? double(worse) / n : 0), n - better - worse, pct(n ? double(n - better - worse) / n : 0)));
    }
    h += "</div>\n";
  }
  return h + "</section>\n";
}

std::string section_training(const Ctx& c, const std::vector<TrainingLog>& logs) {
  std::string h = "<section id=\"training\">\n<h2>5. Training</h2>\n";
  if (logs.empty())
    return h +
           "<p class=\"note\">No training log given: write one with <code>siamrec train --log train.jsonl</code> "
           "and pass it with <code>--log</code>.</p>\n</section>\n";
  for (auto& t : logs) {
    std::vector<int> collapsed;
    for (auto& e : t.epochs)
      if (e.collapse) collapsed.push_back(e.epoch);
    if (!collapsed.empty()) {
      std::string ep;
      for (size_t k = 0; k < collapsed.size() && k < 12; ++k) ep += (k ? ", " : "") + std::to_string(collapsed[k]);
      if (collapsed.size() > 12) ep += ", …";
      h += fmt::format(
          "<p class=\"warn collapse\">⚠ {}: the item embeddings looked collapsed (mean norm or per-dimension "
          "variance near zero) at {} epoch(s): {}. Every item then scores alike; lower the learning rate or check "
          "the loss and comparator.</p>\n",
          xml_escape(t.label), collapsed.size(), ep);
    }
  }
  h += "<p class=\"note\">Solid lines: the training pass that chose the epoch count on validation data; dashed: the "
       "refit on all training data for the chosen epochs (when the config refits). Dashed vertical lines mark the "
       "chosen epoch.</p>\n<div class=\"figs\">\n";
  auto curve = [&](const std::string& title, const std::string& ylabel, auto get, bool fit_only) {
    Figure f;
    f.title = title, f.xlabel = "epoch", f.ylabel = ylabel;
    for (size_t li = 0; li < logs.size(); ++li) {
      const auto& t = logs[li];
      for (const char* phase : {"fit", "refit"}) {
        if (fit_only && std::string(phase) == "refit") continue;
        Series s;
        s.name = t.label + (std::string(phase) == "refit" ? " (refit)" : "");
        s.kind = Series::Kind::Line;
        s.color = static_cast<int>(li);
        s.dashed = std::string(phase) == "refit";
        for (auto& e : t.epochs)
          if (e.phase == phase && std::isfinite(get(e))) s.x.push_back(e.epoch), s.y.push_back(get(e));
        if (!s.x.empty()) f.series.push_back(std::move(s));
      }
      if (t.chosen_epoch > 0) f.vlines.emplace_back(t.chosen_epoch, fmt::format("chosen: {}", t.chosen_epoch));
    }
    return f;
  };
  Figure loss = curve(
      "Training loss", "mean loss per tuple", [](const LogEpoch& e) { return e.loss; }, false);
  h += figure(plot::render(loss), "Mean training loss per epoch.");
  bool any_valid = false;
  std::string vm;
  for (auto& t : logs)
    for (auto& e : t.epochs) any_valid = any_valid || e.has_valid, vm = t.valid_metric.empty() ? vm : t.valid_metric;
  if (any_valid) {
    Figure v = curve(
        "Validation", vm, [](const LogEpoch& e) { return e.has_valid ? e.valid : kNaN; }, true);
    h += figure(plot::render(v),
                fmt::format("Validation {} per evaluated epoch (early stopping keeps the best).", xml_escape(vm)));
  } else {
    h += "<p class=\"note\">These logs hold no validation metric (train.valid_share 0 and no validation part).</p>\n";
  }
  Figure sp = curve(
      "Throughput", "tuples per second", [](const LogEpoch& e) { return e.tuples_per_s; }, false);
  h += figure(plot::render(sp), "Training tuples per second per epoch (wall clock of the epoch).");
  Figure nm = curve(
      "Embedding norm", "mean item embedding norm", [](const LogEpoch& e) { return e.emb_mean_norm; }, false);
  h += figure(plot::render(nm), "Mean L2 norm of (up to 4,096) item embeddings after each epoch.");
  Figure va = curve(
      "Embedding variance", "mean per-dimension variance", [](const LogEpoch& e) { return e.emb_var; }, false);
  h += figure(plot::render(va),
              "Per-dimension variance of the item embeddings, averaged over dimensions: near "
              "zero means collapse.");
  return h + "</div>\n</section>\n";
}

std::string section_beyond(const Ctx& c) {
  std::string h = "<section id=\"beyond\">\n<h2>6. Beyond accuracy</h2>\n";
  h += "<p class=\"note\">Over every evaluated user's top-K from the full catalogue (train items excluded). "
       "Popularity = train interactions per item.</p>\n";
  for (size_t g = 0; g < c.groups.size(); ++g) {
    h += group_heading(c, g);
    const auto& runs = c.groups[g].runs;
    std::vector<size_t> with;
    for (size_t r : runs)
      if (c.runs[r].j.contains("items") && c.runs[r].j["items"].contains("popularity")) with.push_back(r);
    // The curves compare runs over one catalogue: runs whose item popularity differs are left out.
    std::vector<std::string> odd;
    for (size_t k = 1; k < with.size();)
      if (c.runs[with[k]].j["items"]["popularity"] != c.runs[with[0]].j["items"]["popularity"]) {
        odd.push_back(c.runs[with[k]].label);
        with.erase(with.begin() + static_cast<std::ptrdiff_t>(k));
      } else {
        ++k;
      }
    if (!odd.empty()) {
      std::string names;
      for (auto& o : odd) names += (names.empty() ? "" : ", ") + o;
      h += fmt::format(
          "<p class=\"warn\">Left out of the long-tail and Lorenz curves: {} (item popularity differs from {}'s: "
          "another catalogue or training set).</p>\n",
          xml_escape(names), xml_escape(c.runs[with[0]].label));
    }
    h += "<div class=\"figs\">\n";
    if (!with.empty()) {
      // The cut-off: 10 when every run has it, else the smallest K they all have.
      std::set<int> common;
      bool first = true;
      for (size_t r : with) {
        std::set<int> ks;
        for (auto& [k, v] : c.runs[r].j["items"]["exposure"].items()) ks.insert(parse_k(k));
        if (first)
          common = ks, first = false;
        else {
          std::set<int> both;
          std::set_intersection(common.begin(), common.end(), ks.begin(), ks.end(), std::inserter(both, both.end()));
          common = both;
        }
      }
      if (common.empty())
        h += "<p class=\"note\">These runs share no cut-off K in their item-level data: no long-tail or Lorenz "
             "curve.</p>\n";
      if (!common.empty()) {
        const int K = common.count(10) ? 10 : *common.begin();
        const auto pop = c.runs[with[0]].j["items"]["popularity"].get<std::vector<double>>();
        const size_t n = pop.size();
        std::vector<size_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pop[a] > pop[b]; });
        const auto pts = thin(n + 1, 301);
        Figure lt;
        lt.title = fmt::format("Long tail: where the top-{} lists go", K);
        lt.xlabel = "items by train popularity, most popular first (% of catalogue)";
        lt.ylabel = "cumulative share (%)";
        lt.xmin = 0, lt.xmax = 100, lt.ymin = 0, lt.ymax = 100;
        auto cum_curve = [&](const std::vector<double>& w, Series& s) {
          std::vector<double> cum(n + 1, 0.0);
          for (size_t q = 0; q < n; ++q) cum[q + 1] = cum[q] + w[order[q]];
          const double tot = cum[n] > 0 ? cum[n] : 1;
          for (size_t q : pts) s.x.push_back(100.0 * q / n), s.y.push_back(100.0 * cum[q] / tot);
          return cum;
        };
        Series cat;
        cat.name = "catalogue (train)";
        cat.kind = Series::Kind::Line;
        cat.color = 7;
        cat.dashed = true;
        auto cumcat = cum_curve(pop, cat);
        lt.series.push_back(std::move(cat));
        const size_t head = static_cast<size_t>(std::ceil(0.2 * n));
        std::string heads = fmt::format("The 20% most popular items hold {} of train interactions",
                                        pct(cumcat[n] > 0 ? cumcat[head] / cumcat[n] : 0));
        Figure lz;
        lz.title = fmt::format("Lorenz curve of exposure in the top-{}", K);
        lz.xlabel = "items, least recommended first (% of catalogue)";
        lz.ylabel = "cumulative share of recommendations (%)";
        lz.xmin = 0, lz.xmax = 100, lz.ymin = 0, lz.ymax = 100;
        lz.diagonal = true;
        for (size_t k = 0; k < with.size(); ++k) {
          const size_t r = with[k];
          const size_t ci = static_cast<size_t>(std::find(runs.begin(), runs.end(), r) - runs.begin());
          const auto ex = c.runs[r].j["items"]["exposure"][std::to_string(K)].get<std::vector<double>>();
          if (ex.size() != n) continue;
          Series s;
          s.name = c.runs[r].label;
          s.kind = Series::Kind::Line;
          s.color = static_cast<int>(ci);
          auto cum = cum_curve(ex, s);
          heads +=
              fmt::format(", {}'s top-{} {}", xml_escape(c.runs[r].label), K, pct(cum[n] > 0 ? cum[head] / cum[n] : 0));
          lt.series.push_back(std::move(s));
          std::vector<double> sorted = ex;
          std::sort(sorted.begin(), sorted.end());
          std::vector<double> lc(n + 1, 0.0);
          for (size_t q = 0; q < n; ++q) lc[q + 1] = lc[q] + sorted[q];
          double gini = 0;
          for (size_t q = 0; q < n; ++q) gini += (2.0 * (q + 1) - n - 1) * sorted[q];
          gini = lc[n] > 0 ? gini / (static_cast<double>(n) * lc[n]) : 0;
          Series l;
          l.name = fmt::format("{} (Gini {:.3f})", c.runs[r].label, gini);
          l.kind = Series::Kind::Line;
          l.color = static_cast<int>(ci);
          for (size_t q : pts) l.x.push_back(100.0 * q / n), l.y.push_back(lc[n] > 0 ? 100.0 * lc[q] / lc[n] : 0);
          lz.series.push_back(std::move(l));
        }
        h += figure(plot::render(lt), heads + ". A curve above the catalogue's concentrates on the head.");
        h += figure(plot::render(lz),
                    "Equal exposure of every item lies on the diagonal; the Gini coefficient is "
                    "twice the area between the diagonal and the curve.");
      }
    } else {
      h += "<p class=\"note\">These runs hold no item-level data (JSON files from before the report, or not a "
           "ranking task): no long-tail or Lorenz curve.</p>\n";
    }
    // Beyond-accuracy metrics by K.
    std::set<int> ks;
    for (size_t r : runs)
      for (auto& [k, v] : c.runs[r].j["metrics"].items())
        if (is_beyond(k) && k_of(k) > 0) ks.insert(k_of(k));
    for (auto [base, label, cap] :
         {std::tuple<const char*, const char*, const char*>{"coverage", "share of catalogue items recommended",
                                                            "Catalogue coverage: the share of items in at least one "
                                                            "top-K list."},
          {"novelty", "mean self-information (bits)",
           "Novelty: mean -log2 of the share of train users who know each recommended item."},
          {"pop_lift", "relative to the users' own profiles",
           "Popularity lift: mean popularity of the recommended items over that of the user's train items, minus "
           "1 (0 = as popular as what the user rates; above 0 = biased towards popular items)."}}) {
      Figure f;
      f.title = fmt::format("{} by K", base);
      f.xlabel = "K (list length)";
      f.ylabel = label;
      bool any = false;
      for (size_t k = 0; k < runs.size(); ++k) {
        Series s;
        s.name = c.runs[runs[k]].label;
        s.kind = Series::Kind::Line;
        s.color = static_cast<int>(k);
        for (int K : ks) {
          const std::string m = fmt::format("{}@{}", base, K);
          if (!c.runs[runs[k]].j["metrics"].contains(m)) continue;
          const double v = json_num(c.runs[runs[k]].j["metrics"][m]);
          if (std::isfinite(v)) s.x.push_back(K), s.y.push_back(v), any = true;
        }
        f.series.push_back(std::move(s));
      }
      if (any) h += figure(plot::render(f), cap);
    }
    h += "</div>\n";
  }
  return h + "</section>\n";
}

// ---- 8. tuning studies --------------------------------------------------------------------------

// A metric's value as the study shows it: objectives are stored maximised, "-metric" negated.
double shown(const std::string& objective, double v) { return !objective.empty() && objective[0] == '-' ? -v : v; }
std::string metric_of(const std::string& objective) {
  return !objective.empty() && objective[0] == '-' ? objective.substr(1) : objective;
}
std::string goal_of(const std::string& objective) {
  return metric_of(objective) + (!objective.empty() && objective[0] == '-' ? " (lower is better)" : "");
}
std::string params_text(const StudyTrial& t) {
  std::string s;
  for (auto& [k, v] : t.params) s += (s.empty() ? "" : ", ") + k + " " + v;
  return s;
}
bool as_number(const std::string& v, double& out) {
  char* end = nullptr;
  out = std::strtod(v.c_str(), &end);
  return !v.empty() && end == v.c_str() + v.size() && std::isfinite(out);
}

std::string section_study(const std::vector<Study>& studies) {
  std::string h = "<section id=\"tuning\">\n<h2>8. Tuning studies</h2>\n";
  for (size_t si = 0; si < studies.size(); ++si) {
    const Study& st = studies[si];
    const std::string ob0 = st.objectives[0];
    std::vector<size_t> complete, pruned, failed;
    double seconds = 0;
    for (size_t k = 0; k < st.trials.size(); ++k) {
      const auto& t = st.trials[k];
      seconds += t.seconds;
      (t.status == "complete" ? complete : t.status == "pruned" ? pruned : failed).push_back(k);
    }
    std::vector<std::vector<double>> pts;
    for (size_t k : complete) pts.push_back(st.trials[k].objectives);
    std::set<size_t> front;
    for (int f : stats::pareto_front(pts)) front.insert(complete[f]);
    long best = -1;
    for (size_t k : complete)
      if (best < 0 || st.trials[k].objectives[0] > st.trials[best].objectives[0]) best = static_cast<long>(k);

    h += fmt::format("<h3>Study {}: {}</h3>\n", si + 1, xml_escape(st.path));
    h += "<table class=\"proto\"><tbody>\n";
    auto row = [&](const std::string& k, const std::string& v) {
      h += fmt::format("<tr><th>{}</th><td class=\"text\">{}</td></tr>\n", k, xml_escape(v));
    };
    row("config", st.config);
    row("search space", st.space);
    row("sampler / pruner", st.sampler + " / " + st.pruner);
    std::string obs;
    for (auto& ob : st.objectives) obs += (obs.empty() ? "" : ", ") + goal_of(ob);
    row("objectives", obs);
    row("validation (never the test part)", st.validation);
    row("trials", fmt::format("{} complete, {} pruned, {} failed; {:.1f} s of training and validation", complete.size(),
                              pruned.size(), failed.size(), seconds));
    h += "</tbody></table>\n";
    if (st.cut_last_line)
      h += "<p class=\"note\">The file's last line was cut (a trial being written when it was read): left out.</p>\n";
    if (!failed.empty())
      h += fmt::format("<p class=\"warn\">{} trial(s) failed; the first, trial {}: {}</p>\n", failed.size(),
                       st.trials[failed[0]].trial, xml_escape(st.trials[failed[0]].error));
    if (complete.empty() && pruned.empty()) {
      h += "<p class=\"note\">No trial has ended with a validation value yet.</p>\n";
      continue;
    }

    // Leaderboard: complete trials best first, then pruned (at most 20 rows).
    std::vector<size_t> order = complete;
    auto by_first = [&](size_t a, size_t b) { return st.trials[a].objectives[0] > st.trials[b].objectives[0]; };
    std::stable_sort(order.begin(), order.end(), by_first);
    std::vector<size_t> pr = pruned;
    std::stable_sort(pr.begin(), pr.end(), by_first);
    order.insert(order.end(), pr.begin(), pr.end());
    h += "<table><thead><tr><th>trial</th><th>status</th>";
    for (auto& ob : st.objectives) h += fmt::format("<th>{}</th>", xml_escape(metric_of(ob)));
    h += "<th>epochs</th><th>s</th><th>params</th></tr></thead><tbody>\n";
    const size_t rows = std::min<size_t>(order.size(), 20);
    for (size_t q = 0; q < rows; ++q) {
      const auto& t = st.trials[order[q]];
      std::string status = t.status;
      if (static_cast<long>(order[q]) == best) status += ", best";
      if (st.objectives.size() > 1 && front.count(order[q])) status += ", front";
      h += fmt::format("<tr{}><td>{}</td><td class=\"text\">{}</td>",
                       static_cast<long>(order[q]) == best ? " class=\"best\"" : "", t.trial, status);
      for (size_t b = 0; b < st.objectives.size(); ++b)
        h += fmt::format("<td><span class=\"v\">{}</span></td>", f4(shown(st.objectives[b], t.objectives[b])));
      h += fmt::format("<td>{}</td><td>{:.1f}</td><td class=\"text\">{}</td></tr>\n", t.epochs, t.seconds,
                       xml_escape(params_text(t)));
    }
    h += "</tbody></table>\n";
    if (order.size() > rows)
      h += fmt::format("<p class=\"note\">{} more trial(s) not listed; every one is in the charts.</p>\n",
                       order.size() - rows);

    h += "<div class=\"figs\">\n";
    const std::string m0 = metric_of(ob0);
    auto tip = [&](const StudyTrial& t) {
      return fmt::format("trial {} ({}): {} {:.4f}; {}", t.trial, t.status, m0, shown(ob0, t.objectives[0]),
                         params_text(t));
    };
    // The first objective by trial, with the best so far.
    {
      Figure f;
      f.title = fmt::format("{} by trial", m0);
      f.xlabel = "trial";
      f.ylabel = m0;
      Series c, p, run;
      c.name = "complete", c.kind = Series::Kind::Points, c.color = 0, c.radius = 3.4;
      p.name = "pruned", p.kind = Series::Kind::Points, p.color = 1, p.radius = 3.4, p.opacity = 0.6;
      run.name = "best so far", run.kind = Series::Kind::Line, run.color = 2;
      std::vector<size_t> by_trial(st.trials.size());
      std::iota(by_trial.begin(), by_trial.end(), 0);
      std::stable_sort(by_trial.begin(), by_trial.end(),
                       [&](size_t a, size_t b) { return st.trials[a].trial < st.trials[b].trial; });
      double best_so_far = -std::numeric_limits<double>::infinity();
      for (size_t k : by_trial) {
        const auto& t = st.trials[k];
        if (t.status == "failed") continue;
        Series& s = t.status == "complete" ? c : p;
        s.x.push_back(t.trial), s.y.push_back(shown(ob0, t.objectives[0])), s.tips.push_back(tip(t));
        if (t.status == "complete") {
          best_so_far = std::max(best_so_far, t.objectives[0]);
          run.x.push_back(t.trial), run.y.push_back(shown(ob0, best_so_far));
        }
      }
      f.series = {c, p, run};
      h += figure(plot::render(f), fmt::format("Validation {} of each trial; the line is the best complete trial so "
                                               "far. Pruned trials show the value where ASHA stopped them.",
                                               xml_escape(goal_of(ob0))));
    }
    // Each parameter against the first objective.
    std::vector<std::string> keys;
    for (auto& t : st.trials)
      for (auto& [k, v] : t.params)
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    for (auto& key : keys) {
      std::vector<std::pair<size_t, std::string>> vals;  // (trial index, value)
      bool numeric = true;
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (size_t k = 0; k < st.trials.size(); ++k) {
        const auto& t = st.trials[k];
        if (t.status == "failed") continue;
        for (auto& [pk, v] : t.params)
          if (pk == key) {
            vals.emplace_back(k, v);
            double x;
            if (as_number(v, x))
              lo = std::min(lo, x), hi = std::max(hi, x);
            else
              numeric = false;
          }
      }
      if (vals.empty()) continue;
      Figure f;
      f.ylabel = m0;
      f.width = 420, f.height = 300;
      if (numeric) {
        const bool logx = lo > 0 && hi / lo >= 10;
        f.title = fmt::format("{} vs {}", m0, key);
        f.xlabel = logx ? fmt::format("log10 {}", key) : key;
        Series c, p;
        c.name = "complete", c.kind = Series::Kind::Points, c.color = 0, c.radius = 3.4;
        p.name = "pruned", p.kind = Series::Kind::Points, p.color = 1, p.radius = 3.4, p.opacity = 0.6;
        for (auto& [k, v] : vals) {
          const auto& t = st.trials[k];
          double x = 0;
          as_number(v, x);
          Series& s = t.status == "complete" ? c : p;
          s.x.push_back(logx ? std::log10(x) : x), s.y.push_back(shown(ob0, t.objectives[0])), s.tips.push_back(tip(t));
        }
        f.series = {c, p};
        h += figure(plot::render(f), fmt::format("Each point is a trial{}.", logx ? " (x on a log scale)" : ""));
      } else {  // choices: the mean over complete trials per value, whiskers from the worst to the best
        f.title = fmt::format("{} by {}", m0, key);
        f.xlabel = key;
        f.legend = false;
        std::vector<std::string> cats;
        for (auto& [k, v] : vals)
          if (std::find(cats.begin(), cats.end(), v) == cats.end()) cats.push_back(v);
        Series b;
        b.name = m0, b.kind = Series::Kind::Bars, b.color = 0;
        for (auto& cat : cats) {
          double sum = 0, mn = std::numeric_limits<double>::infinity(), mx = -mn;
          int n = 0;
          for (auto& [k, v] : vals)
            if (v == cat && st.trials[k].status == "complete") {
              const double y = shown(ob0, st.trials[k].objectives[0]);
              sum += y, mn = std::min(mn, y), mx = std::max(mx, y), ++n;
            }
          f.categories.push_back(fmt::format("{} ({})", cat, n));
          b.y.push_back(n ? sum / n : kNaN), b.lo.push_back(n ? mn : kNaN), b.hi.push_back(n ? mx : kNaN);
          b.tips.push_back(n ? fmt::format("{} = {}: mean {:.4f}, worst to best {:.4f}-{:.4f} over {} complete trials",
                                           key, cat, sum / n, mn, mx, n)
                             : fmt::format("{} = {}: no complete trial", key, cat));
        }
        f.series = {b};
        h += figure(plot::render(f),
                    "Bars: the mean over complete trials with that value (count in brackets); "
                    "whiskers: their worst and best.");
      }
    }
    // Pareto front of the first two objectives.
    if (st.objectives.size() > 1 && !complete.empty()) {
      const std::string m1 = metric_of(st.objectives[1]);
      Figure f;
      f.title = fmt::format("Pareto front: {} vs {}", m0, m1);
      f.xlabel = goal_of(st.objectives[1]);
      f.ylabel = goal_of(ob0);
      f.width = 480, f.height = 400;
      Series all, fr, line;
      all.name = "complete", all.kind = Series::Kind::Points, all.color = 0, all.radius = 3.4, all.opacity = 0.6;
      fr.name = "on the front", fr.kind = Series::Kind::Points, fr.color = 2, fr.radius = 5;
      line.name = "front", line.kind = Series::Kind::Line, line.color = 2, line.dashed = true, line.width = 1.5;
      std::vector<std::pair<double, double>> fp;
      for (size_t k : complete) {
        const auto& t = st.trials[k];
        const double x = shown(st.objectives[1], t.objectives[1]), y = shown(ob0, t.objectives[0]);
        const std::string tp = fmt::format("trial {}: {} {:.4f}, {} {:.4f}; {}", t.trial, m0, y, m1, x, params_text(t));
        Series& s = front.count(k) ? fr : all;
        s.x.push_back(x), s.y.push_back(y), s.tips.push_back(tp);
        if (front.count(k)) fp.emplace_back(x, y);
      }
      std::sort(fp.begin(), fp.end());
      for (auto& [x, y] : fp) line.x.push_back(x), line.y.push_back(y);
      f.series = {all, line, fr};
      std::string extra = st.objectives.size() > 2 ? fmt::format(
                                                         " The front is over all {} objectives; this chart "
                                                         "shows the first two.",
                                                         st.objectives.size())
                                                   : "";
      h += figure(plot::render(f),
                  fmt::format("Each point is a complete trial; highlighted: the {} trial(s) no other trial beats on "
                              "every objective.{}",
                              front.size(), extra));
    }
    h += "</div>\n";
  }
  return h + "</section>\n";
}

std::string section_embeddings(const Options& o) {
  std::string h = "<section id=\"embeddings\">\n<h2>7. Item embeddings</h2>\n";
  if (o.model.empty())
    return h +
           "<p class=\"note\">No model given: pass <code>--model M</code> for a 2-D map of its item "
           "embeddings.</p>\n</section>\n";
  TrainedModel tm = load_model_file(o.model);
  int dim = 0;
  const float* emb = tm.model->item_embeddings(&dim);
  if (!emb || dim <= 0)
    return h + fmt::format("<p class=\"note\">Model type '{}' has no item embeddings to map.</p>\n</section>\n",
                           xml_escape(tm.model->type()));
  const int32_t n_items = tm.items.size();
  std::vector<int64_t> pop(n_items, 0);
  for (int32_t u = 0; u < tm.train.rows(); ++u)
    for (int64_t p = tm.train.begin(u); p < tm.train.end(u); ++p) ++pop[tm.train.indices[p]];
  std::vector<int32_t> items(n_items);
  std::iota(items.begin(), items.end(), 0);
  std::stable_sort(items.begin(), items.end(), [&](int32_t a, int32_t b) { return pop[a] > pop[b]; });
  if (items.size() > static_cast<size_t>(o.max_points)) items.resize(static_cast<size_t>(o.max_points));
  const int64_t n = static_cast<int64_t>(items.size());
  std::vector<float> x(static_cast<size_t>(n) * dim);
  for (int64_t k = 0; k < n; ++k)
    std::copy(emb + static_cast<size_t>(items[k]) * dim, emb + static_cast<size_t>(items[k] + 1) * dim,
              x.begin() + k * dim);
  // Genres (or labels) from the model's dataset, when it can be read here.
  std::vector<std::string> first_genre(n), genre_text(n);
  std::string colour_note;
  try {
    Config cfg = Config::from_yaml_text(tm.config_yaml, o.model);
    RunOptions ro;
    ro.data_dir_flag = o.data_dir;
    Dataset ds = load_data(cfg, ro);
    const auto& side = ds.item_side;
    for (int64_t k = 0; k < n; ++k) {
      const int32_t di = ds.items.find(tm.items.original(items[k]));
      if (di < 0 || static_cast<size_t>(di) >= side.genres.size()) continue;
      for (auto gi : side.genres[di]) {
        if (gi < 0 || static_cast<size_t>(gi) >= side.genre_vocab.size()) continue;
        if (first_genre[k].empty()) first_genre[k] = side.genre_vocab[gi];
        genre_text[k] += (genre_text[k].empty() ? "" : "|") + side.genre_vocab[gi];
      }
    }
  } catch (const std::exception& e) {
    colour_note =
        fmt::format(" The model's dataset could not be read here ({}), so items are not coloured by genre.", e.what());
  }
  std::map<std::string, int> counts;
  for (auto& gname : first_genre)
    if (!gname.empty()) ++counts[gname];
  std::vector<std::pair<int, std::string>> top;
  for (auto& [gname, cnt] : counts) top.emplace_back(-cnt, gname);
  std::sort(top.begin(), top.end());
  if (top.size() > 7) top.resize(7);
  std::map<std::string, int> colour;
  for (size_t k = 0; k < top.size(); ++k) colour[top[k].second] = static_cast<int>(k);
  if (counts.empty() && colour_note.empty())
    colour_note = " The model's dataset has no genres or labels, so items are not coloured.";
  std::vector<int> pc(n, -1);
  for (int64_t k = 0; k < n; ++k)
    if (auto it = colour.find(first_genre[k]); it != colour.end()) pc[k] = it->second;
  std::vector<std::string> tips(n);
  for (int64_t k = 0; k < n; ++k) {
    const int32_t i = items[k];
    std::string title = static_cast<size_t>(i) < tm.item_titles.size() && !tm.item_titles[i].empty()
                            ? tm.item_titles[i]
                            : "item " + tm.items.original(i);
    tips[k] =
        fmt::format("{}{}{} · {} train interactions", title, genre_text[k].empty() ? "" : " — ", genre_text[k], pop[i]);
  }
  h += fmt::format(
      "<p class=\"note\">The {} most popular of {} items (by train interactions) of <code>{}</code> ({}, {} "
      "dimensions), coloured by their first genre (the {} commonest; grey: other or none). Hover a point for its "
      "title.{}</p>\n<div class=\"figs\">\n",
      n, n_items, xml_escape(o.model), xml_escape(tm.model->type()), dim, top.size(), xml_escape(colour_note));
  auto map_figure = [&](const std::vector<double>& y, const std::string& title, const std::string& xl,
                        const std::string& yl) {
    Figure f;
    f.title = title, f.xlabel = xl, f.ylabel = yl;
    f.width = 600, f.height = 520;
    Series s;
    s.name = "items";
    s.kind = Series::Kind::Points;
    s.radius = 3, s.opacity = 0.8;
    for (int64_t k = 0; k < n; ++k) s.x.push_back(y[k * 2]), s.y.push_back(y[k * 2 + 1]);
    s.point_colors = pc;
    s.tips = tips;
    f.series.push_back(std::move(s));
    f.legend = !top.empty();
    if (f.legend) f.series[0].name = "";
    for (auto& [cnt, gname] : top) f.legend_extra.emplace_back(gname, colour[gname]);
    if (!top.empty()) f.legend_extra.emplace_back("other", -1);
    return plot::render(f);
  };
  if (o.map == "pca" || o.map == "both")
    h += figure(map_figure(pca_2d(x.data(), n, dim), "PCA of item embeddings", "first principal component",
                           "second principal component"),
                "Linear projection on the two directions of largest variance.");
  if ((o.map == "tsne" || o.map == "both") && n > kTsneMaxPoints) {
    h += fmt::format(
        "<p class=\"warn\">t-SNE is exact (memory and time grow with the square of the points): it maps at most "
        "{} points; lower --max-points (now {}) for a t-SNE map.</p>\n",
        kTsneMaxPoints, n);
  } else if (o.map == "tsne" || o.map == "both") {
    TsneOptions to;
    to.threads = std::max(1, o.threads);
    h += figure(map_figure(tsne_2d(x.data(), n, dim, to), "t-SNE of item embeddings", "t-SNE 1", "t-SNE 2"),
                "Exact t-SNE (perplexity 30, 750 iterations, PCA start): neighbourhoods are meaningful, distances "
                "between clusters are not.");
  }
  return h + "</div>\n</section>\n";
}

}  // namespace

std::string render_html(const Options& o) {
  if (o.runs.empty() && o.studies.empty())
    throw Error("siamrec report needs at least one run JSON file or a study file (--study)", kExitUsage);
  if (o.map != "pca" && o.map != "tsne" && o.map != "both")
    throw Error(fmt::format("--map '{}': expected pca, tsne or both", o.map), kExitUsage);
  if (o.bootstrap < 0 || !(o.level > 0 && o.level < 1) || o.max_points < 1)
    throw Error("report: bootstrap >= 0, 0 < level < 1 and max_points >= 1 are required", kExitUsage);
  Ctx c{o, {}, {}, {}, {}};
  for (size_t k = 0; k < o.runs.size(); ++k) {
    c.runs.push_back(load_run(o.runs[k], k < o.labels.size() ? o.labels[k] : ""));
    // Two runs with one label would be indistinguishable in the charts.
    for (size_t q = 0; q + 1 < c.runs.size(); ++q)
      if (c.runs[q].label == c.runs.back().label) c.runs.back().label += fmt::format(" ({})", k + 1);
  }
  for (auto& r : c.runs) c.pu.push_back(per_user(r));
  for (size_t r = 0; r < c.runs.size(); ++r) {
    const std::string key = protocol_key(c.runs[r].j["protocol"].get<std::string>());
    auto it = std::find_if(c.groups.begin(), c.groups.end(), [&](const Group& g) { return g.key == key; });
    if (it == c.groups.end())
      c.groups.push_back({key, {r}});
    else
      it->runs.push_back(r);
  }
  std::vector<TrainingLog> logs;
  for (size_t k = 0; k < o.logs.size(); ++k)
    logs.push_back(load_training_log(o.logs[k], k < o.log_labels.size() ? o.log_labels[k] : ""));
  std::vector<Study> studies;
  for (auto& p : o.studies) studies.push_back(load_study(p));

  // Without runs (a study alone) the run sections have nothing to show and are left out.
  std::string body, nav;
  if (!c.runs.empty()) {
    body += section_protocol(c);
    body += section_metrics(c);
    body += section_charts(c);
    body += section_per_user(c);
    nav +=
        "<a href=\"#protocol\">1 Protocol</a><a href=\"#metrics\">2 Metrics</a><a href=\"#charts\">3 "
        "Headline</a><a href=\"#per-user\">4 Per user</a>";
  }
  if (!c.runs.empty() || !logs.empty()) {
    body += section_training(c, logs);
    nav += "<a href=\"#training\">5 Training</a>";
  }
  if (!c.runs.empty()) {
    body += section_beyond(c);
    nav += "<a href=\"#beyond\">6 Beyond accuracy</a>";
  }
  if (!c.runs.empty() || !o.model.empty()) {
    body += section_embeddings(o);
    nav += "<a href=\"#embeddings\">7 Embeddings</a>";
  }
  if (!studies.empty()) {
    body += section_study(studies);
    nav += "<a href=\"#tuning\">8 Tuning</a>";
  }

  std::string runs_list;
  for (size_t r = 0; r < c.runs.size(); ++r) runs_list += (r ? ", " : "") + xml_escape(c.runs[r].label);
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" "
      "content=\"width=device-width, initial-scale=1\">\n<title>{0}</title>\n<style>{1}</style>\n</head>\n<body>\n"
      "<header><h1>{0}</h1>\n<p class=\"note\">{2} run(s){3}; {4} training log(s){5}{6}. Written by siamrec "
      "report: one file, no scripts, nothing fetched.</p>\n<nav>{7}</nav></header>\n<main>\n{8}</main>\n</body>\n"
      "</html>\n",
      xml_escape(o.title), kCss, c.runs.size(), runs_list.empty() ? "" : ": " + runs_list, logs.size(),
      o.model.empty() ? "" : "; model " + xml_escape(o.model),
      studies.empty() ? "" : fmt::format("; {} tuning stud{}", studies.size(), studies.size() == 1 ? "y" : "ies"), nav,
      body);
}

}  // namespace siamrec::report
