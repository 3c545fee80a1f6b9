// siamrec command line: parses, dispatches to one subcommand, maps errors to exit codes.
#include <malloc.h>
#include <omp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cblas.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "util/error.h"

using namespace siamrec;

int main(int argc, char** argv) {
  // Large allocations stay in the heap: small training/eval steps otherwise page-fault constantly.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  auto logger = spdlog::stderr_color_mt("siamrec");
  logger->set_pattern("[%H:%M:%S] %^%l%$ %v");
  spdlog::set_default_logger(logger);

  CLI::App app{
      "siamrec: Siamese neural network recommenders — build, train, evaluate, serve.\n"
      "Exit codes: 0 ok, 1 runtime error, 2 bad usage/config, 3 malformed data, 4 dataset missing."};
  app.set_version_flag("--version", std::string("siamrec ") + SIAMREC_VERSION);
  app.require_subcommand(1);
  cli::GlobalOptions g;
  bool verbose = false, quiet = false;
  app.add_option("--data-dir", g.data_dir,
                 "dataset directory (default: $SIAMREC_DATA_DIR, else ~/.cache/siamrec/datasets)")
      ->configurable();
  app.add_flag("--skip-bad-lines", g.skip_bad_lines,
               "skip malformed input lines (counted in one warning) instead of stopping");
  app.add_option("--threads", g.threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("-v,--verbose", verbose, "debug logging");
  app.add_flag("-q,--quiet", quiet, "warnings and errors only");
  app.fallthrough();

  std::vector<cli::Command> cmds = {cli::add_info(app, g),     cli::add_fetch(app, g),     cli::add_train(app, g),
                                    cli::add_evaluate(app, g), cli::add_recommend(app, g), cli::add_compare(app, g),
                                    cli::add_similar(app, g),  cli::add_score(app, g),     cli::add_embed(app, g),
                                    cli::add_cluster(app, g),  cli::add_serve(app, g),     cli::add_params(app, g)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (verbose) spdlog::set_level(spdlog::level::debug);
  if (quiet) spdlog::set_level(spdlog::level::warn);
  int threads = g.threads > 0 ? g.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  omp_set_num_threads(threads);
  openblas_set_num_threads(1);  // siamrec parallelizes over blocks itself; nested BLAS threads would fight
  g.threads = threads;
  try {
    for (auto& c : cmds)
      if (c.app->parsed()) return c.run();
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitError;
  }
  return kExitUsage;
}
