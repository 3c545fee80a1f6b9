// siamrec report: one self-contained HTML file from runs, training logs and a model.
#include <siamrec/report.h>

#include <spdlog/spdlog.h>

#include "cli/commands.h"

namespace siamrec::cli {

Command add_report(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand(
      "report",
      "Write an HTML report (one file: inline SVG and CSS, no script, no URL) of evaluation runs: protocol, metric "
      "table with bootstrap intervals and paired tests, headline charts, per-user distributions, training curves "
      "(--log), beyond-accuracy curves, an item embedding map (--model) and tuning studies (--study: leaderboard, "
      "objective by trial, parameter vs objective, Pareto front)");
  struct Opts {
    api::ReportOptions r;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("runs", o->r.runs,
                  "evaluation JSON files (`evaluate --json`, `train --json`); the first is the "
                  "baseline of the paired tests (none needed with --study)");
  app->add_option("-o,--out", o->out, "the HTML file to write (atomically)")->required();
  app->add_option("--log", o->r.logs, "JSON-lines training log from `train --log` (repeatable)");
  app->add_option("--study", o->r.studies, "study file of `siamrec tune` (repeatable)");
  app->add_option("--model", o->r.model, "model file: a 2-D map of its item embeddings");
  app->add_option("--labels", o->r.labels, "names of the runs, in order (default: file names)")->delimiter(',');
  app->add_option("--log-labels", o->r.log_labels, "names of the logs, in order (default: file names)")->delimiter(',');
  app->add_option("--title", o->r.title, "the report's title")->capture_default_str();
  app->add_option("--bootstrap", o->r.bootstrap, "bootstrap resamples of the confidence intervals")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app->add_option("--level", o->r.level, "confidence level of the intervals")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 0.999));
  app->add_option("--seed", o->r.seed, "seed of the bootstrap and of point sampling")->capture_default_str();
  app->add_option("--max-points", o->r.max_points, "at most this many points per scatter plot and embedding map")
      ->capture_default_str()
      ->check(CLI::Range(10, 20000));
  app->add_option("--map", o->r.map, "embedding map: pca, tsne (exact, O(n^2)) or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"pca", "tsne", "both"}));
  return {app, [o, &g]() {
            o->r.data_dir = g.data_dir;
            o->r.threads = g.threads;
            api::write_report(o->r, o->out);
            spdlog::info("report written to {}", o->out);
            return 0;
          }};
}

}  // namespace siamrec::cli
