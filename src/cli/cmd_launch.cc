// siamrec launch: start N local ranks of a command (as `torchrun --standalone --nproc-per-node N`),
// and the process-group helper the commands that train or evaluate share.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "cli/commands.h"
#include <siamrec/distributed.h>
#include <siamrec/error.h>

#include <fmt/format.h>

namespace siamrec::cli {

api::ProcessGroup join_group(const api::ConfigSource& cs, const GlobalOptions& g) {
  api::ProcessGroup pg = api::join_process_group(cs);
  if (pg.size > 1) {
    if (!pg.root() && !g.verbose) spdlog::set_level(spdlog::level::err);  // rank 0 speaks for the group
    spdlog::info("rank {} of {} ({}): {} thread(s)", pg.rank, pg.size, pg.launcher, g.threads);
  }
  return pg;
}

// A free TCP port on the loopback interface (the kernel's choice).
static int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(fmt::format("launch: cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error(fmt::format("launch: cannot find a free port: {}", std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

static volatile sig_atomic_t g_signal = 0;
static void on_signal(int s) { g_signal = s; }

Command add_launch(CLI::App& root, GlobalOptions& g) {
  auto* app = root.add_subcommand(
      "launch",
      "Run a command as N ranks of one process group on this machine (data-parallel training and sharded "
      "evaluation; docs/distributed.md): siamrec launch --nproc 2 -- train -c cfg.yaml -o m.model");
  struct Opts {
    int nproc = 2, port = 0;
    double grace = 30;
    std::vector<std::string> args;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("-n,--nproc", o->nproc, "ranks (processes) to start")->check(CLI::Range(1, 256));
  app->add_option("--master-port", o->port, "the port rank 0's store listens on (default: a free port)")
      ->check(CLI::Range(1, 65535));
  app->add_option("--grace", o->grace,
                  "seconds the other ranks get to exit by themselves after one fails, before they are stopped")
      ->check(CLI::Range(0.0, 86400.0));
  app->add_option("args", o->args, "the siamrec command and its options, after --")->required();
  return {app, [o, &g]() {
            const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
            // Each rank gets its share of the cores unless --threads was given.
            const int threads = g.threads_given ? g.threads : std::max(1, cores / o->nproc);
            const int port = o->port ? o->port : free_port();
            std::vector<std::string> argv0 = {"siamrec"};
            if (!g.data_dir.empty()) argv0.insert(argv0.end(), {"--data-dir", g.data_dir});
            if (g.skip_bad_lines) argv0.push_back("--skip-bad-lines");
            if (g.verbose) argv0.push_back("-v");
            if (g.quiet) argv0.push_back("-q");
            argv0.insert(argv0.end(), {"--threads", std::to_string(threads)});
            argv0.insert(argv0.end(), o->args.begin(), o->args.end());
            // Only the commands that join the group: any other would run N independent copies
            // writing the same files.
            std::string cmd;
            for (size_t k = 0; k < o->args.size() && cmd.empty(); ++k) {
              const std::string& x = o->args[k];
              if (x == "--data-dir" || x == "--threads")
                ++k;  // the global options that take a value
              else if (x.empty() || x[0] != '-')
                cmd = x;
            }
            if (cmd != "train" && cmd != "evaluate")
              throw Error(fmt::format("launch runs train or evaluate as ranks of one process group; '{}' does not join "
                                      "a group (docs/distributed.md)",
                                      cmd),
                          kExitUsage);
            spdlog::info("launching {} ranks on 127.0.0.1:{} with {} thread(s) each: siamrec {}", o->nproc, port,
                         threads, fmt::join(o->args, " "));
            struct sigaction sa {};
            sa.sa_handler = on_signal;
            sigaction(SIGINT, &sa, nullptr);
            sigaction(SIGTERM, &sa, nullptr);
            std::vector<pid_t> pids;
            for (int r = 0; r < o->nproc; ++r) {
              pid_t pid = fork();
              if (pid < 0) throw Error(fmt::format("launch: fork failed: {}", std::strerror(errno)));
              if (pid == 0) {
                setenv("RANK", std::to_string(r).c_str(), 1);
                setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
                setenv("WORLD_SIZE", std::to_string(o->nproc).c_str(), 1);
                setenv("LOCAL_WORLD_SIZE", std::to_string(o->nproc).c_str(), 1);
                setenv("MASTER_ADDR", "127.0.0.1", 1);
                setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
                std::vector<char*> av;
                for (auto& s : argv0) av.push_back(const_cast<char*>(s.c_str()));
                av.push_back(nullptr);
                execv("/proc/self/exe", av.data());
                std::fprintf(stderr, "launch: cannot run siamrec: %s\n", std::strerror(errno));
                _exit(kExitError);
              }
              pids.push_back(pid);
            }
            // Wait for every rank; after the first failure the others get --grace seconds to
            // notice (they name the lost rank), then are stopped.
            int rc = 0, alive = o->nproc;
            std::vector<bool> done(o->nproc, false);
            auto first_fail = std::chrono::steady_clock::time_point::max();
            bool signalled = false, killed = false;
            while (alive > 0) {
              int status = 0;
              pid_t p = waitpid(-1, &status, WNOHANG);
              if (p > 0) {
                for (int r = 0; r < o->nproc; ++r)
                  if (pids[r] == p && !done[r]) {
                    done[r] = true;
                    --alive;
                    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                    if (code != 0) {
                      if (WIFSIGNALED(status))
                        spdlog::error("launch: rank {} was killed by signal {} ({})", r, WTERMSIG(status),
                                      strsignal(WTERMSIG(status)));
                      else
                        spdlog::error("launch: rank {} exited with status {}", r, code);
                      if (rc == 0) rc = code, first_fail = std::chrono::steady_clock::now();
                    }
                  }
                continue;
              }
              if (g_signal && !signalled) {  // pass Ctrl-C / SIGTERM on to every rank
                signalled = true;
                for (int r = 0; r < o->nproc; ++r)
                  if (!done[r]) kill(pids[r], g_signal);
              }
              if (!killed && rc != 0 &&
                  std::chrono::steady_clock::now() - first_fail > std::chrono::duration<double>(o->grace)) {
                killed = true;
                for (int r = 0; r < o->nproc; ++r)
                  if (!done[r]) {
                    spdlog::error("launch: rank {} still running {} s after the first failure: stopping it", r,
                                  o->grace);
                    kill(pids[r], SIGKILL);
                  }
              }
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            return rc;
          }};
}

}  // namespace siamrec::cli
