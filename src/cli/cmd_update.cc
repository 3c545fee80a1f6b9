// siamrec update: continue a trained model on new interactions (new users and items included).
#include <siamrec/model.h>

#include <iostream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/commands.h"

namespace siamrec::cli {

Command add_update(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand(
      "update",
      "Continue a trained model on new interactions (read with the model's data mapping): unseen users and items "
      "get rows, earlier interactions are replayed (update.replay_share), the model file keeps its update history");
  struct Opts {
    std::string model, data, out, log;
    std::vector<std::string> sets;
    int epochs = 0;
    bool resume = false;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-m,--model", o->model, "the trained model file")->required();
  app->add_option("-d,--data", o->data,
                  "new interactions: a file in the model's data.format and columns (override with --set data.*)")
      ->required();
  app->add_option("-o,--out", o->out, "where to write the updated model (atomically; may be --model itself)")
      ->required();
  app->add_option("--epochs", o->epochs, "epochs of the update (default: update.epochs of the model's config)")
      ->check(CLI::Range(1, 1000000));
  app->add_option("--set", o->sets, "override a config key: --set key=value (update.*, data.* columns, train.lr)");
  app->add_option("--log", o->log, "JSON-lines log of the update's epochs");
  app->add_flag("--resume", o->resume, "continue from the checkpoint OUT.ckpt left by an interrupted update");
  return {app, [o, &g]() {
            api::Model m = api::Model::load(o->model);
            api::ConfigSource overrides;
            overrides.set = o->sets;
            if (o->epochs > 0) overrides.set.push_back(fmt::format("update.epochs={}", o->epochs));
            api::DatasetOptions dopt;
            dopt.data_dir = g.data_dir;
            dopt.skip_bad_lines = g.skip_bad_lines;
            api::Dataset fresh = m.read_new_data(o->data, overrides, dopt);
            api::FitOptions fo;
            fo.threads = g.threads;
            fo.checkpoint = o->out + ".ckpt";
            fo.resume = o->resume;
            fo.log = o->log;
            const int64_t users = m.n_users(), items = m.n_items();
            api::UpdateResult r = m.update(fresh, fo, overrides);
            m.save(o->out);
            api::Model::remove_checkpoints(fo.checkpoint);
            std::cout << fmt::format(
                "updated {} -> {}: {} new interactions ({} new users, {} new items), {} earlier ones replayed, {} "
                "epochs, {:.1f} s; now {} users x {} items, {} known interactions (excluded when recommending)\n",
                o->model, o->out, r.new_interactions, r.new_users, r.new_items, r.replayed, r.epochs, r.seconds,
                users + r.new_users, items + r.new_items, r.known_interactions);
            return 0;
          }};
}

}  // namespace siamrec::cli
