// The command line is a thin layer over the library: one file per subcommand, each registering
// itself here with its options and a run function.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <siamrec/distributed.h>

namespace siamrec::cli {

struct GlobalOptions {
  std::string data_dir;         // --data-dir
  bool skip_bad_lines = false;  // --skip-bad-lines
  int threads = 0;              // --threads (0: all cores)
  bool threads_given = false;   // --threads was on the command line
  bool verbose = false, quiet = false;
};

struct Command {
  CLI::App* app;
  std::function<int()> run;
};

Command add_info(CLI::App& root, GlobalOptions& g);
Command add_fetch(CLI::App& root, GlobalOptions& g);
Command add_evaluate(CLI::App& root, GlobalOptions& g);
Command add_train(CLI::App& root, GlobalOptions& g);
Command add_recommend(CLI::App& root, GlobalOptions& g);
Command add_compare(CLI::App& root, GlobalOptions& g);
Command add_params(CLI::App& root, GlobalOptions& g);
Command add_similar(CLI::App& root, GlobalOptions& g);
Command add_score(CLI::App& root, GlobalOptions& g);
Command add_embed(CLI::App& root, GlobalOptions& g);
Command add_cluster(CLI::App& root, GlobalOptions& g);
Command add_serve(CLI::App& root, GlobalOptions& g);
Command add_report(CLI::App& root, GlobalOptions& g);
Command add_update(CLI::App& root, GlobalOptions& g);
Command add_tune(CLI::App& root, GlobalOptions& g);
Command add_launch(CLI::App& root, GlobalOptions& g);
Command add_synth(CLI::App& root, GlobalOptions& g);

// Joins the process group the environment describes (siamrec launch, torchrun, mpirun) with the
// config's dist.* keys; ranks other than 0 then log errors only (unless -v). Size 1 when none.
api::ProcessGroup join_group(const api::ConfigSource& cs, const GlobalOptions& g);

}  // namespace siamrec::cli
