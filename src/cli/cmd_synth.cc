// siamrec synth: write a synthetic interaction log (power-law popularity and activity, planted
// clusters) for scale tests without downloads.
#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include <siamrec/dataset.h>

namespace siamrec::cli {

Command add_synth(CLI::App& root, GlobalOptions&) {
  auto* app = root.add_subcommand(
      "synth",
      "Write a synthetic interaction log: Zipf item popularity and user activity, planted clusters, seeded "
      "(docs/scaling.md). Read it with --set data.path=FILE --set data.time_col=2");
  struct Opts {
    api::SynthOptions s;
    std::string out, clusters;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-o,--out", o->out, "the log to write (user<TAB>item<TAB>timestamp lines, atomically)")->required();
  app->add_option("--users", o->s.users, "users (each has at least one interaction)")->capture_default_str();
  app->add_option("--items", o->s.items, "items")->capture_default_str();
  app->add_option("--interactions", o->s.interactions, "interactions (distinct items per user)")->capture_default_str();
  app->add_option("--clusters", o->s.clusters, "planted clusters of users and items")->capture_default_str();
  app->add_option("--item-alpha", o->s.item_alpha, "Zipf exponent of item popularity")->capture_default_str();
  app->add_option("--user-alpha", o->s.user_alpha, "Zipf exponent of user activity")->capture_default_str();
  app->add_option("--in-cluster", o->s.in_cluster, "share of a user's draws from her cluster's items")
      ->capture_default_str();
  app->add_option("--seed", o->s.seed, "seed (the same flags give the same file)")->capture_default_str();
  app->add_option("--clusters-out", o->clusters, "also write each item's (i<id>) and user's (u<id>) cluster");
  return {app, [o]() {
            api::SynthSummary r = api::write_synthetic(o->s, o->out, o->clusters);
            spdlog::info(
                "wrote {}: {} interactions of {} users on {} of {} items ({:.1f} MB, {:.1f} s); max degree user {} / "
                "item {}; in-cluster share {:.3f}",
                o->out, r.interactions, r.users, r.items_used, o->s.items, r.bytes / 1e6, r.seconds, r.max_user_degree,
                r.max_item_degree, r.in_cluster_share);
            return 0;
          }};
}

}  // namespace siamrec::cli
