// siamrec command line: parses, dispatches to one subcommand, maps errors to exit codes.
#include <malloc.h>
#include <omp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cblas.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "util/error.h"
#include "util/strings.h"

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
  app.add_option("--data-dir", g.data_dir,
                 "dataset directory (default: $SIAMREC_DATA_DIR, else ~/.cache/siamrec/datasets)")
      ->configurable();
  app.add_flag("--skip-bad-lines", g.skip_bad_lines,
               "skip malformed input lines (counted in one warning) instead of stopping");
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  auto* threads_opt =
      app.add_option("--threads", g.threads,
                     fmt::format("worker threads, at most 4 x cores = {} (default: all cores)", 4 * cores))
          ->check(CLI::Range(0, 4 * cores));
  app.add_flag("-v,--verbose", g.verbose, "debug logging (in a process group: every rank logs)");
  app.add_flag("-q,--quiet", g.quiet, "warnings and errors only");
  app.fallthrough();

  std::vector<cli::Command> cmds = {cli::add_info(app, g),      cli::add_fetch(app, g),   cli::add_train(app, g),
                                    cli::add_update(app, g),    cli::add_tune(app, g),    cli::add_evaluate(app, g),
                                    cli::add_recommend(app, g), cli::add_compare(app, g), cli::add_report(app, g),
                                    cli::add_similar(app, g),   cli::add_score(app, g),   cli::add_embed(app, g),
                                    cli::add_cluster(app, g),   cli::add_serve(app, g),   cli::add_params(app, g),
                                    cli::add_launch(app, g),    cli::add_synth(app, g)};
  // An unknown command is named (CLI11 would only say that a subcommand is required).
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg == "--data-dir" || arg == "--threads") {
      ++a;  // the global options that take a value
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    bool known = false;
    for (auto& c : cmds) known = known || c.app->get_name() == arg;
    if (!known) {
      std::string names;
      for (auto& c : cmds) names += (names.empty() ? "" : ", ") + c.app->get_name();
      std::cerr << fmt::format("unknown command '{}'; the commands are: {} (siamrec --help)\n", printable(arg, 64),
                               names);
      return kExitUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (g.verbose) spdlog::set_level(spdlog::level::debug);
  if (g.quiet) spdlog::set_level(spdlog::level::warn);
  g.threads_given = threads_opt->count() > 0;
  int threads = g.threads > 0 ? g.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (!g.threads_given)  // ranks of a process group on one machine share its cores (torchrun sets this)
    if (const char* lws = std::getenv("LOCAL_WORLD_SIZE"); lws && std::atoi(lws) > 1)
      threads = std::max(1, threads / std::atoi(lws));
  omp_set_num_threads(threads);
  openblas_set_num_threads(1);  // siamrec parallelizes over blocks itself; nested BLAS threads would fight
  g.threads = threads;
  try {
    for (auto& c : cmds)
      if (c.app->parsed()) {
        int rc = c.run();
        api::leave_process_group();  // a final barrier when a process group was joined
        // A full disk or a closed pipe must not pass for success: results would be lost silently.
        errno = 0;
        std::cout.flush();
        if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
          spdlog::error("could not write the output to standard output: {}",
                        errno ? std::strerror(errno) : "write error");
          return kExitError;
        }
        return rc;
      }
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    api::report_process_failure(e.what());  // the other ranks of a group name this rank and why
    api::leave_process_group(true);
    return e.exit_code();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    api::report_process_failure(e.what());
    api::leave_process_group(true);
    return kExitError;
  }
  return kExitUsage;
}
