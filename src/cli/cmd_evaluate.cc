// siamrec evaluate: a saved model (--model) or a baseline fitted on the fly, under a protocol.
#include <iostream>

#include "cli/commands.h"
#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/io.h"

namespace siamrec::cli {

Command add_evaluate(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand("evaluate",
                                  "Evaluate a saved model or a baseline under a named protocol; prints "
                                  "a table and writes JSON with the protocol, metrics and per-user vectors");
  struct Opts {
    std::string config, model, json;
    std::vector<std::string> sets;
    bool allow_overlap = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-c,--config", o->config, "YAML config: data, split and eval keys (and model keys for a baseline)");
  app->add_option("-m,--model", o->model,
                  "a model file from `siamrec train`; its stored config gives data and split, "
                  "keys set by --config/--set override it");
  app->add_option("--set", o->sets, "override a config key: --set key=value (repeatable)");
  app->add_option("--json", o->json, "write the result as JSON");
  app->add_flag("--allow-overlap", o->allow_overlap,
                "evaluate a model even when the test set holds its training interactions (another split than "
                "the model's); the protocol line then says how many");
  return {app, [o, &g]() {
            RunOptions ro{g.data_dir, g.skip_bad_lines, g.threads};
            TrainedModel m;
            Config c;
            if (!o->model.empty()) {
              m = load_model_file(o->model);
              c = Config::from_yaml_text(m.config_yaml, o->model);
              if (!o->config.empty()) c.merge(Config::from_yaml_file(o->config), o->config);
            } else {
              if (o->config.empty() && o->sets.empty())
                throw ConfigError(
                    "evaluate needs --model FILE, or --config/--set describing the data and a baseline model");
              c = o->config.empty() ? Config() : Config::from_yaml_file(o->config);
            }
            for (auto& s : o->sets) c.set_override(s);
            Prepared p = prepare(c, ro);
            if (o->model.empty()) m = fit_model(p, c, ro);
            // A model evaluated under another split than its own may be tested on its training data.
            int64_t overlap = 0;
            if (!o->model.empty() && m.protocol != p.split.protocol) overlap = training_overlap(m, p);
            if (overlap > 0 && !o->allow_overlap)
              throw ConfigError(fmt::format(
                  "{} of the {} test interactions of '{}' are training data of model '{}' (trained under '{}'): "
                  "its metrics would be inflated. Evaluate under the model's own split, or pass --allow-overlap "
                  "to report them anyway",
                  overlap, p.split.test.size(), p.split.protocol, o->model, m.protocol));
            EvalResult r = evaluate_model(m, p, c, ro);
            if (overlap > 0)
              r.protocol += fmt::format(
                  " | OVERLAP: {} of {} test interactions are training data of the model "
                  "(trained under '{}'; --allow-overlap)",
                  overlap, p.split.test.size(), m.protocol);
            std::cout << r.table();
            if (!o->json.empty()) {
              auto j = r.to_json(r.kind == "retrieval" ? p.ds.items : p.ds.users);  // retrieval: per query item
              j["model"] = m.model->type();
              j["config"] = c.to_yaml();
              atomic_write(o->json, j.dump(1) + "\n");
            }
            return 0;
          }};
}

}  // namespace siamrec::cli
