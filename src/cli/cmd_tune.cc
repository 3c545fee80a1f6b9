// siamrec tune: hyper-parameter search on validation data.
#include <siamrec/report.h>
#include <siamrec/tune.h>

#include <iostream>

#include <spdlog/spdlog.h>

#include "cli/commands.h"

namespace siamrec::cli {

Command add_tune(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand(
      "tune",
      "Search hyper-parameters on validation data (never the test part): random or TPE sampling (tune.sampler) "
      "over a search space, ASHA pruning (tune.pruner), one or more objectives (tune.objectives: a Pareto front), "
      "a study file appended per trial (--resume continues it); prints the leaderboard, writes the best config "
      "and, with --report, the study's HTML report");
  struct Opts {
    api::TuneOptions t;
    std::string report;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-c,--config", o->t.config, "the config to tune (YAML)")->required();
  app->add_option("--set", o->t.set, "override a config key: --set key=value (e.g. tune.sampler=random)");
  app->add_option("--space", o->t.space,
                  "search space YAML: KEY: {choice: [..]} | {uniform: [lo, hi]} | {loguniform: [lo, hi]} | "
                  "{int: [lo, hi], log: true}, optional when: {KEY: VALUE}")
      ->required();
  app->add_option("--trials", o->t.trials, "number of trials (a resumed study counts its earlier ones)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app->add_option("--budget-minutes", o->t.budget_minutes, "start no trial after this many minutes (0: no budget)")
      ->check(CLI::Range(0.0, 1e6));
  app->add_option("--study", o->t.study, "the study file: one JSON line per ended trial")->required();
  app->add_option("-o,--out", o->t.out, "write the best config (with its validation numbers as comments) here");
  app->add_flag("--resume", o->t.resume, "continue the study file (same config and space)");
  app->add_option("--report", o->report,
                  "also write the study's HTML report here (as `siamrec report --study`: leaderboard, objective by "
                  "trial, parameter vs objective, Pareto front)");
  return {app, [o, &g]() {
            o->t.threads = g.threads;
            o->t.data_dir = g.data_dir;
            api::TuneResult r = api::tune(o->t);
            std::cout << r.table;
            if (r.best >= 0 && !o->t.out.empty()) spdlog::info("best config written to {}", o->t.out);
            if (!o->report.empty()) {
              api::ReportOptions ro;
              ro.studies = {o->t.study};
              ro.title = "siamrec tune: " + o->t.study;
              ro.threads = g.threads;
              api::write_report(ro, o->report);
              spdlog::info("study report written to {}", o->report);
            }
            return r.best >= 0 ? 0 : 1;
          }};
}

}  // namespace siamrec::cli
