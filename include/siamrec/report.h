// HTML reports of runs: one self-contained file (inline SVG and CSS, no script, no URL) with the
// protocol, metric table (bootstrap intervals, paired tests), headline charts, per-user
// distributions, training curves, beyond-accuracy curves, an item embedding map, and tuning
// studies (leaderboard, objective by trial, parameter vs objective, Pareto front).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace siamrec::api {

struct ReportOptions {
  std::vector<std::string> runs;        // evaluation JSON files (`evaluate --json`, `train --json`)
  std::vector<std::string> labels;      // a label per run (default: the file name without .json)
  std::vector<std::string> logs;        // JSON-lines training logs (`train --log`)
  std::vector<std::string> log_labels;  // a label per log (default: the file name)
  std::vector<std::string> studies;     // study files of `siamrec tune` (runs may then be empty)
  std::string model;                    // a model file: map of its item embeddings ("" = none)
  std::string data_dir;                 // where the model's dataset is read for genres ("" = default)
  std::string title = "siamrec report";
  int bootstrap = 1000;      // bootstrap resamples of the confidence intervals
  double level = 0.95;       // confidence level
  uint64_t seed = 2024;      // bootstrap and sampling seed
  int max_points = 1500;     // at most this many points per scatter plot and embedding map
  std::string map = "both";  // embedding map: pca | tsne | both
  int threads = 0;           // 0 = all cores
};

// The report as HTML text. Throws siamrec::Error (bad options, missing files), DataError
// (malformed run or log, naming file and line) or the model file's load errors.
std::string report_html(const ReportOptions& options);
// Writes report_html(options) to path atomically.
void write_report(const ReportOptions& options, const std::string& path);

}  // namespace siamrec::api
