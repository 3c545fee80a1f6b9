// siamrec evaluate: a saved model (--model) or a baseline fitted on the fly, under a protocol.
#include <iostream>

#include "cli/commands.h"
#include <siamrec/model.h>
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
    std::string on = "test";
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-c,--config", o->config, "YAML config: data, split and eval keys (and model keys for a baseline)");
  app->add_option("-m,--model", o->model,
                  "a model file from `siamrec train`; its stored config gives data and split, "
                  "keys set by --config/--set override it");
  app->add_option("--set", o->sets, "override a config key: --set key=value (repeatable)");
  app->add_option("--json", o->json, "write the result as JSON");
  app->add_option("--on", o->on,
                  "the part evaluated: test, or valid (the split's validation part, train items excluded: tuning "
                  "through the same evaluator; a candidate file lists one part's candidates, so set eval.candidates "
                  "for the validation part, e.g. --set eval.candidates=uniform:99)")
      ->check(CLI::IsMember({"test", "valid"}));
  app->add_flag("--allow-overlap", o->allow_overlap,
                "evaluate a model even when the test set holds its training interactions (another split than "
                "the model's); the protocol line then says how many");
  return {app, [o, &g]() {
            api::DatasetOptions dopt;
            dopt.data_dir = g.data_dir;
            dopt.skip_bad_lines = g.skip_bad_lines;
            // The protocol: a model's stored config with --config and --set merged over it, or (a
            // baseline fitted here) the config alone.
            api::ConfigSource user;
            user.file = o->config;
            user.set = o->sets;
            api::EvaluateOptions eo;
            eo.threads = g.threads;
            eo.allow_overlap = o->allow_overlap;
            api::Evaluation e;
            auto part = [&](const api::Split& split) -> const api::Dataset& {
              if (o->on == "test") return split.test;
              if (split.valid.size() == 0)
                throw ConfigError(
                    fmt::format("--on valid: the split has no validation part ({}); give split.ratios "
                                "a validation share, split.valid true (loo) or split.valid_file",
                                split.protocol));
              return split.valid;
            };
            api::ProcessGroup pg;
            if (!o->model.empty()) {
              api::Model m = api::Model::load(o->model);
              api::ConfigSource cs = api::ConfigSource::from_yaml(m.merged_config_yaml(user));
              pg = join_group(cs, g);  // a process group shares the users out (docs/distributed.md)
              api::Split split = api::Dataset::from_config(cs, dopt).split(cs);
              eo.config = user;
              e = m.evaluate(part(split), eo);
            } else {
              if (o->config.empty() && o->sets.empty())
                throw ConfigError(
                    "evaluate needs --model FILE, or --config/--set describing the data and a baseline model");
              pg = join_group(user, g);
              api::Split split = api::Dataset::from_config(user, dopt).split(user);
              api::Model m = api::Model::create(user);
              api::FitOptions fo;
              fo.threads = g.threads;
              // Evaluating on the validation part: it must not steer the fit (no early stopping on it).
              m.fit(split.train, o->on == "valid" ? api::Dataset() : split.valid, fo);
              e = m.evaluate(part(split), eo);
            }
            if (!pg.root()) return 0;
            std::cout << e.table;
            if (!o->json.empty()) atomic_write(o->json, e.json + "\n");
            return 0;
          }};
}

}  // namespace siamrec::cli
