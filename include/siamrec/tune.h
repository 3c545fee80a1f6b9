// Hyper-parameter search on validation data (`siamrec tune`): random or TPE sampling over a search
// space file, ASHA pruning, several objectives (Pareto front), a crash-safe study file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace siamrec::api {

struct TuneOptions {
  std::string config;            // the config to tune (YAML file; its tune.* keys set the sampler, pruner, objectives)
  std::vector<std::string> set;  // "key=value" overrides of it
  std::string space;             // the search space (YAML: key: {choice|uniform|loguniform|int: ..., when: ...})
  int trials = 20;
  double budget_minutes = 0;  // 0 = none
  std::string study;          // the study file (JSON lines; required)
  std::string out;            // where to write the best config ("" = none)
  bool resume = false;        // continue the study file
  int threads = 0;            // 0 = all cores
  std::string data_dir;
};

struct TuneTrial {
  int trial = 0;
  std::map<std::string, std::string> params;
  std::map<std::string, double> metrics;  // validation metrics
  std::vector<double> objectives;         // maximised (a minimised metric is negated)
  std::string status;                     // complete | pruned | failed
  int epochs = 0;
  double seconds = 0;
};

struct TuneResult {
  std::vector<TuneTrial> trials;
  std::vector<std::string> objectives;
  int best = -1;            // index into trials
  std::vector<int> pareto;  // indices into trials
  std::string validation;   // what the trials were evaluated on
  std::string table;        // the leaderboard text
  std::string best_yaml;    // the best config with its validation numbers as comments
};

// Runs (or resumes) a study. Throws ConfigError for a bad space, objective or a config without
// validation data (tune never evaluates on the test part).
TuneResult tune(const TuneOptions& o);

}  // namespace siamrec::api
