// siamrec train: fit the configured model, save it, evaluate the config's test protocol.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "tasks/pipeline.h"
#include "util/io.h"

namespace siamrec::cli {

Command add_train(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("train",
                                  "Fit a model from a YAML config, save the model file, and print the "
                                  "evaluation of the config's test protocol");
  struct Opts {
    std::string config, out, json;
    std::vector<std::string> sets;
    std::string log, grid;
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
  return {app, [o, &g]() {
            RunOptions ro{g.data_dir, g.skip_bad_lines, g.threads};
            ro.checkpoint = o->out + ".ckpt";
            ro.resume = o->resume;
            ro.log_path = o->log;
            Config c = load_config(o->config, o->sets);
            std::cerr << "# resolved config\n" << c.to_yaml();
            Prepared p = prepare(c, ro);
            TrainedModel m = fit_model(p, c, ro);
            save_model_file(m, o->out);
            std::remove(ro.checkpoint.c_str());  // the run finished: its checkpoints are obsolete
            std::remove((ro.checkpoint + ".refit").c_str());
            std::cerr << "model written to " << o->out << "\n";
            if (!o->no_eval) {
              EvalResult r = evaluate_model(m, p, c, ro);
              if (!o->grid.empty()) write_retrieval_grid(m, p, c, ro, o->grid);
              std::cout << r.table();
              if (!o->json.empty()) {
                auto j = r.to_json(r.kind == "retrieval" ? p.ds.items : p.ds.users);  // retrieval: per query item
                j["model"] = c.str("model.type");
                j["config"] = c.to_yaml();
                atomic_write(o->json, j.dump(1) + "\n");
              }
            }
            return 0;
          }};
}

}  // namespace siamrec::cli
