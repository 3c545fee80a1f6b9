// siamrec report: one self-contained HTML file (inline SVG and CSS, no script, no URL) from
// evaluation runs (evaluate/train --json), training logs (train --log) and a model file.
// Sections: 1 protocol, 2 metric table with bootstrap CIs and paired tests, 3 headline metric
// charts per K, 4 per-user distributions, 5 training curves, 6 beyond accuracy, 7 embedding map,
// 8 tuning studies (siamrec tune's study files: leaderboard, objective by trial, parameter vs
// objective, Pareto front).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace siamrec::report {

struct Options {
  std::vector<std::string> runs;    // evaluation JSON files
  std::vector<std::string> labels;  // one per run ("" or missing: the file name without .json)
  std::vector<std::string> logs;    // JSON-lines training logs
  std::vector<std::string> log_labels;
  std::vector<std::string> studies;  // study files of siamrec tune (JSON lines)
  std::string model;                 // model file for the embedding map ("" = none)
  std::string data_dir;              // where the model's dataset is looked for (genres); "" = the default
  std::string title = "siamrec report";
  int bootstrap = 1000;  // resamples for the confidence intervals
  double level = 0.95;
  uint64_t seed = 2024;
  int max_points = 1500;     // per-user scatter and embedding map: at most this many points
  std::string map = "both";  // pca | tsne | both
  int threads = 1;
};

struct Run {
  std::string path, label;
  nlohmann::json j;
};
// Reads and checks an evaluation JSON file (DataError naming the file and what is missing).
Run load_run(const std::string& path, const std::string& label);
// The protocol without its user count: two runs are comparable when these agree.
std::string protocol_key(const std::string& protocol);

struct LogEpoch {
  int epoch = 0;
  std::string phase = "fit";
  double loss = 0, tuples_per_s = 0, seconds = 0, emb_mean_norm = 0, emb_var = 0;
  double valid = 0;
  bool has_valid = false, collapse = false;
};
struct TrainingLog {
  std::string path, label, valid_metric;
  std::vector<LogEpoch> epochs;
  int chosen_epoch = 0;  // from the log's end line (fit phase), else the best validated epoch
  bool refit = false;    // the log holds a refit pass
};
// Reads a JSON-lines training log; a malformed line is a DataError naming file:line.
TrainingLog load_training_log(const std::string& path, const std::string& label);

struct StudyTrial {
  int trial = 0;
  std::string status;                                       // complete | pruned | failed
  std::vector<std::pair<std::string, std::string>> params;  // key, value as the config holds it
  std::vector<double> objectives;                           // as maximised (minimised metrics negated)
  int epochs = 0;
  double seconds = 0;
  std::string error;
};
struct Study {
  std::string path, config, space, sampler, pruner, validation;
  std::vector<std::string> objectives;  // as given: "ndcg@10", "-pop_lift@10"
  std::vector<StudyTrial> trials;
  bool cut_last_line = false;  // the last line had no newline (a study being written): skipped
};
// Reads a study file of siamrec tune: a header line, then one JSON line per trial. A file without
// the header or with a malformed line is a DataError naming file:line; a last line without its
// newline (the trial a running or killed study was writing) is skipped and noted.
Study load_study(const std::string& path);

// The report as HTML text.
std::string render_html(const Options& o);

}  // namespace siamrec::report
