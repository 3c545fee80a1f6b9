// siamrec compare: paired significance tests between two evaluation JSON files.
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "eval/stats.h"
#include "util/error.h"
#include "util/io.h"

namespace siamrec::cli {

static nlohmann::json load_run(const std::string& path) {
  if (!file_exists(path)) throw Error(fmt::format("run file '{}' does not exist", path), kExitUsage);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const std::exception& e) {
    throw DataError(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
  if (!j.contains("per_user") || !j["per_user"].contains("user") || !j.contains("protocol"))
    throw DataError(
        fmt::format("'{}' has no per-user vectors (write it with `siamrec evaluate --json` or `train --json`)", path));
  return j;
}

Command add_compare(CLI::App& root, GlobalOptions&) {
  auto* app = root.add_subcommand("compare",
                                  "Paired t-test and Wilcoxon signed-rank p-values per metric between two "
                                  "runs (JSON from evaluate/train --json), matched by user");
  struct Opts {
    std::string a, b;
    std::vector<std::string> metrics;
    std::string json;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("run_a", o->a, "first run JSON")->required();
  app->add_option("run_b", o->b, "second run JSON")->required();
  app->add_option("--metrics", o->metrics, "metrics to compare (default: every per-user metric both runs have)")
      ->delimiter(',');
  app->add_option("--json", o->json, "also write the comparison as JSON");
  return {app, [o]() {
            auto ja = load_run(o->a), jb = load_run(o->b);
            std::string pa = ja["protocol"], pb = jb["protocol"];
            // Protocols must agree up to the user count (same data, split, candidates, K).
            auto strip = [](const std::string& p) { return p.substr(0, p.find(" | users:")); };
            if (strip(pa) != strip(pb))
              throw Error(fmt::format("the runs use different protocols:\n  A: {}\n  B: {}", pa, pb), kExitUsage);
            std::map<std::string, size_t> ub;
            auto& usb = jb["per_user"]["user"];
            for (size_t k = 0; k < usb.size(); ++k) ub[usb[k].get<std::string>()] = k;
            auto& usa = ja["per_user"]["user"];
            std::vector<std::pair<size_t, size_t>> pairs;
            for (size_t k = 0; k < usa.size(); ++k)
              if (auto it = ub.find(usa[k].get<std::string>()); it != ub.end()) pairs.emplace_back(k, it->second);
            std::vector<std::string> names = o->metrics;
            if (names.empty())
              for (auto& [k, v] : ja["per_user"].items())
                if (k != "user" && jb["per_user"].contains(k)) names.push_back(k);
            for (auto& name : names)
              if (!ja["per_user"].contains(name) || !jb["per_user"].contains(name))
                throw Error(
                    fmt::format("metric '{}' has no per-user vector in both runs (aggregate-only metrics such as "
                                "coverage and gini cannot be paired)",
                                name),
                    kExitUsage);
            std::cout << "protocol: " << pa << "\n";
            std::cout << fmt::format("paired over {} users present in both runs; A = {}, B = {}\n", pairs.size(), o->a,
                                     o->b);
            std::cout << fmt::format("{:<16} {:>9} {:>9} {:>9} {:>11} {:>11}\n", "metric", "A", "B", "B-A", "p(t-test)",
                                     "p(wilcoxon)");
            nlohmann::json out = nlohmann::json::object();
            for (auto& name : names) {
              std::vector<double> a, b;
              for (auto& [ia, ib] : pairs) {
                auto& va = ja["per_user"][name][ia];
                auto& vb = jb["per_user"][name][ib];
                if (va.is_null() || vb.is_null()) continue;
                a.push_back(va.get<double>());
                b.push_back(vb.get<double>());
              }
              double ma = 0, mb = 0;
              for (size_t k = 0; k < a.size(); ++k) ma += a[k], mb += b[k];
              if (!a.empty()) ma /= a.size(), mb /= b.size();
              auto t = stats::paired_t_test(b, a);
              auto w = stats::wilcoxon_signed_rank(b, a);
              std::cout << fmt::format("{:<16} {:>9.4f} {:>9.4f} {:>+9.4f} {:>11.3g} {:>11.3g}\n", name, ma, mb,
                                       mb - ma, t.p_value, w.p_value);
              out[name] = {{"a", ma},
                           {"b", mb},
                           {"n", a.size()},
                           {"t", t.statistic},
                           {"p_t", t.p_value},
                           {"w_plus", w.statistic},
                           {"p_wilcoxon", w.p_value}};
            }
            if (!o->json.empty())
              atomic_write(o->json, nlohmann::json{{"protocol", pa}, {"metrics", out}}.dump(1) + "\n");
            return 0;
          }};
}

}  // namespace siamrec::cli
