// The command line is a thin layer over the library: one file per subcommand, each registering
// itself here with its options and a run function.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace siamrec::cli {

struct GlobalOptions {
  std::string data_dir;         // --data-dir
  bool skip_bad_lines = false;  // --skip-bad-lines
  int threads = 0;              // --threads (0: all cores)
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

}  // namespace siamrec::cli
