// `siamrec tune`: a study of trials on validation data. Each trial draws a config from the search
// space (tune.sampler), trains it (pruned by ASHA when tune.pruner asha) and evaluates it on the
// validation data with the evaluator; the test part is never read. Trials are appended to the study
// file as they end (JSON lines), so a killed study loses at most its running trial and --resume
// continues it, drawing the same trials.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tune/space.h"

namespace siamrec::tune {

struct StudyOptions {
  std::string config;             // the config to tune (YAML file)
  std::vector<std::string> sets;  // --set overrides of it
  std::string space;              // search space file
  int trials = 20;
  double budget_minutes = 0;  // 0 = none: no trial starts after this many minutes
  std::string study;          // the study file (JSON lines)
  std::string out;            // best config ("" = none)
  bool resume = false;
  int threads = 1;
  std::string data_dir;
  bool skip_bad_lines = false;
};

struct TrialRecord {
  int trial = 0;
  uint64_t seed = 0;
  Assignment params;
  std::map<std::string, double> metrics;  // validation metrics
  std::vector<double> objectives;         // as maximised (minimised metrics negated)
  std::string status;                     // complete | pruned | failed
  std::string error;                      // failed: why
  int epochs = 0;
  double seconds = 0;
  std::map<int, double> rungs;  // ASHA: validation value at each rung epoch reached
};

struct StudyResult {
  std::vector<TrialRecord> trials;
  std::vector<std::string> objectives;  // as given ("ndcg@10", "-pop_lift@10")
  int best = -1;                        // index of the best complete trial (first objective)
  std::vector<int> pareto;              // indices of the non-dominated complete trials
  std::string validation;               // what the trials were evaluated on
  std::string table;                    // the leaderboard
  std::string best_yaml;                // the best config with its validation numbers as comments
};

StudyResult run_study(const StudyOptions& o);

}  // namespace siamrec::tune
