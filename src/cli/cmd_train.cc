// siamrec train: fit the configured model, save it, evaluate the config's test protocol.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include <siamrec/model.h>
#include <siamrec/report.h>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/io.h"

namespace siamrec::cli {

Command add_train(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("train",
                                  "Fit a model from a YAML config, save the model file, and print the "
                                  "evaluation of the config's test protocol");
  struct Opts {
    std::string config, out, json;
    std::vector<std::string> sets;
    std::string log, grid, report;
    bool no_eval = false, resume = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-c,--config", o->config, "YAML config (see `siamrec params` and examples/configs/)");
  app->add_option("--set", o->sets, "override a config key: --set key=value (repeatable)");
  app->add_option("-o,--out", o->out, "where to write the model file (atomically)")->required();
  app->add_option("--json", o->json, "also write the evaluation as JSON (protocol, metrics, per-user vectors)");
  app->add_flag("--no-eval", o->no_eval, "skip the test evaluation");
  app->add_flag("--resume", o->resume, "continue from the checkpoint OUT.ckpt left by an interrupted run");
  app->add_option("--grid", o->grid,
                  "model.task retrieval on image items: write a PNG grid of 8 test queries (left) and "
                  "their top-5 (green frame = same category, red = not)");
  app->add_option("--log", o->log,
                  "JSON-lines training log (per epoch: loss, validation metric, time, embedding health)");
  app->add_option("--report", o->report,
                  "also write the HTML report of this run (metrics, training curves, embedding map; see `siamrec "
                  "report`)");
  return {app, [o, &g]() {
            if (!o->report.empty() && o->no_eval)
              throw Error("--report needs the evaluation: drop --no-eval", kExitUsage);
            api::ConfigSource cs;
            cs.file = o->config;
            cs.set = o->sets;
            const std::string resolved = cs.resolved_yaml();
            spdlog::debug("resolved config:\n{}", resolved);  // -v; it is also stored in the model file
            // A process group (siamrec launch / torchrun / mpirun): every rank trains its share and
            // evaluates its users; rank 0 alone writes the model, checkpoints, logs, JSON and report.
            const api::ProcessGroup pg = join_group(cs, g);
            api::DatasetOptions dopt;
            dopt.data_dir = g.data_dir;
            dopt.skip_bad_lines = g.skip_bad_lines;
            api::Dataset data = api::Dataset::from_config(cs, dopt);
            api::Split split = data.split(cs);
            api::Model m = api::Model::create(cs);
            api::FitOptions fo;
            fo.threads = g.threads;
            fo.checkpoint = o->out + ".ckpt";
            fo.resume = o->resume;
            fo.log = o->log;
            // The report reads the run and the log from files: beside the model file unless --json/--log
            // name them (so a --resume continues the same log), removed once the report is written.
            const std::string tmp = o->out + ".report";
            std::vector<std::string> scratch;
            if (!o->report.empty() && fo.log.empty()) scratch.push_back(fo.log = tmp + ".log.jsonl");
            m.fit(split.train, split.valid, fo);
            if (pg.root()) {
              m.save(o->out);
              api::Model::remove_checkpoints(fo.checkpoint);  // the run finished: its checkpoints are obsolete
              spdlog::info("model written to {}", o->out);
            }
            if (!o->no_eval) {
              api::Evaluation e = m.evaluate(split.test, {}, g.threads);
              if (!pg.root()) return 0;
              api::RankLocal alone;  // what follows is rank 0's alone
              if (!o->grid.empty()) m.write_retrieval_grid(split.test, o->grid, 8, g.threads);
              std::cout << e.table;
              // Protocol, metrics, per-user vectors (retrieval: per query item), model type, config.
              if (!o->json.empty()) atomic_write(o->json, e.json + "\n");
              if (!o->report.empty()) {
                api::ReportOptions ro;
                std::string run = o->json;
                if (run.empty()) {
                  scratch.push_back(run = tmp + ".run.json");
                  atomic_write(run, e.json + "\n");
                }
                const std::string name = o->config.empty() ? "run" : std::filesystem::path(o->config).stem().string();
                ro.runs = {run};
                ro.labels = {name};
                if (std::filesystem::exists(fo.log)) ro.logs = {fo.log}, ro.log_labels = {name};
                ro.model = o->out;
                ro.data_dir = g.data_dir;
                ro.threads = g.threads;
                ro.title = "siamrec report: " + name;
                api::write_report(ro, o->report);
                spdlog::info("report written to {}", o->report);
                for (auto& f : scratch) std::filesystem::remove(f);
              }
            }
            return 0;
          }};
}

}  // namespace siamrec::cli
