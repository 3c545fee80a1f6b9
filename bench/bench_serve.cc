// HTTP serving benchmark: `siamrec serve` in its own process on loopback, loaded by an external
// generator (wrk, Debian's; `scripts/install-deps.sh bench` installs it): requests/s and p50/p99
// latency of GET /v1/recommend?user=U&k=10 (random known users) at several connection counts, for
// each index (exact, hnsw) with and without a bearer token. Then, with --soak S, a fixed-rate soak of
// S seconds from paced keep-alive clients with the server's RSS sampled every 10 s.
//
//   bench_serve MODEL [--cli PATH] [--duration 10] [--connections 1,4,16,64] [--index exact,hnsw]
//                     [--token none,token] [--soak 600 --rate 2000] [--http-threads N]
//
// The server and the load generator share this machine's cores: the numbers are a lower bound of
// what the server does on its own.
#include <httplib.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <thread>
#include <vector>

#include "models/model_file.h"
#include "serve/handlers.h"
#include "serve/server.h"
#include "util/error.h"
#include "util/strings.h"

using namespace siamrec;
using Clock = std::chrono::steady_clock;

namespace {

struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  ServerProcess(const std::string& cli, const std::vector<std::string>& args, int port_) : port(port_) {
    std::vector<std::string> argv = {cli, "-q", "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--port");
    argv.push_back(std::to_string(port));
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    pid = fork();
    if (pid == 0) {
      execv(a[0], a.data());
      _exit(127);
    }
    for (int i = 0; i < 1200; ++i) {  // 120 s: an HNSW build at load takes a while
      httplib::Client c("127.0.0.1", port);
      if (auto r = c.Get("/healthz"); r && r->status == 200) return;
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) throw Error("the server exited at start-up");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw Error("the server did not come up in 120 s");
  }
  ~ServerProcess() {
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
  }
  long rss_kb() const {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
  }
};

int free_port() {
  static int next = 18000 + static_cast<int>(getpid() % 1000) * 20;
  return next++;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw Error("cannot run: " + cmd);
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

// wrk's "50%    1.23ms" -> milliseconds.
double wrk_ms(const std::string& out, const std::string& label) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(label + R"(\s+([0-9.]+)(us|ms|s)\b)"))) return -1;
  double v = std::stod(m[1]);
  return m[2] == "us" ? v / 1000 : m[2] == "s" ? v * 1000 : v;
}
long wrk_count(const std::string& out, const std::string& re) {
  std::smatch m;
  return std::regex_search(out, m, std::regex(re)) ? std::atol(m[1].str().c_str()) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: bench_serve MODEL [--cli PATH] [--duration 10] [--connections 1,4,16,64] "
                 "[--index exact,hnsw] [--token none,token] [--soak SECONDS --rate REQ_PER_S] [--http-threads N]\n");
    return 2;
  }
  std::string model = argv[1], cli = SIAMREC_CLI, threads;
  int duration = 10, soak = 0, rate = 2000;
  std::vector<std::string> levels = {"1", "4", "16", "64"}, indexes = {"exact", "hnsw"}, tokens = {"none", "token"};
  for (int a = 2; a + 1 < argc; a += 2) {
    std::string k = argv[a], v = argv[a + 1];
    if (k == "--cli")
      cli = v;
    else if (k == "--duration")
      duration = std::stoi(v);
    else if (k == "--connections")
      levels = split_list(v);
    else if (k == "--index")
      indexes = split_list(v);
    else if (k == "--token")
      tokens = split_list(v);
    else if (k == "--soak")
      soak = std::stoi(v);
    else if (k == "--rate")
      rate = std::stoi(v);
    else if (k == "--http-threads")
      threads = v;
    else {
      std::fprintf(stderr, "bench_serve: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (run("command -v wrk").empty()) {
    std::fprintf(stderr, "bench_serve: wrk not found (bash scripts/install-deps.sh bench)\n");
    return 2;
  }
  try {
    TrainedModel m = load_model_file(model);
    const std::vector<std::string>& users = m.users.ids();
    char dir_tmpl[] = "/tmp/bench-serve-XXXXXX";
    std::string dir = mkdtemp(dir_tmpl);
    const std::string token = "bench-token-0123456789";
    { std::ofstream(dir + "/token") << token << "\n"; }
    auto script = [&](bool with_token) {
      std::string p = dir + (with_token ? "/token.lua" : "/plain.lua");
      std::ofstream f(p);
      f << "local users = {";
      for (size_t i = 0; i < users.size(); ++i) f << (i ? "," : "") << '"' << users[i] << '"';
      f << "}\nlocal headers = {}\n";
      if (with_token) f << "headers[\"Authorization\"] = \"Bearer " << token << "\"\n";
      f << "local n = 0\nrequest = function()\n  n = n + 1\n"
           "  local u = users[(n * 7919) % #users + 1]\n"
           "  return wrk.format(\"GET\", \"/v1/recommend?user=\" .. u .. \"&k=10\", headers)\nend\n";
      return p;
    };
    std::printf(
        "serving benchmark: GET /v1/recommend?user=U&k=10 (users cycled through the model's %zu users), model %s "
        "(%s, %d users x %d items); siamrec serve in its own process, wrk on loopback, %d s per row; server and "
        "load generator share the machine's %u cores\n",
        users.size(), model.c_str(), m.model->type().c_str(), m.users.size(), m.items.size(), duration,
        std::thread::hardware_concurrency());
    {
      // The handler alone, in this process (no HTTP, no sockets): the floor of a request's cost.
      ServeOptions so;
      so.model_path = model;
      auto served = load_served(so);
      const ServeLimits lim{1000};
      const int n = 20000;
      size_t bytes = 0;
      auto t0 = Clock::now();
      for (int r = 0; r < n; ++r) {
        ApiRequest q;
        q.query = {{"user", users[(static_cast<size_t>(r) * 7919) % users.size()]}, {"k", "10"}};
        bytes += recommend_user(*served, q, lim).render().size();
      }
      const double us = 1e6 * std::chrono::duration<double>(Clock::now() - t0).count() / n;
      std::printf("handler alone (recommend_user + JSON text, no HTTP, 1 thread): %.1f us/request, %.0f bytes\n", us,
                  static_cast<double>(bytes) / n);
    }
    std::printf("%-6s %-6s %6s %11s %9s %9s %9s %8s\n", "index", "token", "conns", "requests/s", "p50 ms", "p99 ms",
                "max ms", "errors");
    std::fflush(stdout);
    for (auto& index : indexes)
      for (auto& tok : tokens) {
        std::vector<std::string> args = {"-m", model, "--index", index, "--max-connections", "1024"};
        if (tok == "token") args.insert(args.end(), {"--token-file", dir + "/token"});
        if (!threads.empty()) args.insert(args.end(), {"--http-threads", threads});
        ServerProcess server(cli, args, free_port());
        const std::string lua = script(tok == "token");
        for (auto& c : levels) {
          const int conns = std::stoi(c), wt = std::min(conns, 2);
          std::string out = run(fmt::format("wrk -t{} -c{} -d{}s --latency -s {} http://127.0.0.1:{}/ 2>&1", wt, conns,
                                            duration, lua, server.port));
          std::smatch rs;
          double rps = std::regex_search(out, rs, std::regex(R"(Requests/sec:\s+([0-9.]+))")) ? std::stod(rs[1]) : -1;
          long errors = wrk_count(out, R"(Non-2xx or 3xx responses:\s+(\d+))") +
                        wrk_count(out, R"(Socket errors: connect (\d+))") +
                        wrk_count(out, R"(Socket errors: connect \d+, read (\d+))") +
                        wrk_count(out, R"(Socket errors: connect \d+, read \d+, write (\d+))") +
                        wrk_count(out, R"(timeout (\d+))");
          std::printf("%-6s %-6s %6d %11.0f %9.3f %9.3f %9.3f %8ld\n", index.c_str(), tok.c_str(), conns, rps,
                      wrk_ms(out, "50%"), wrk_ms(out, "99%"), wrk_ms(out, "Latency\\s+[0-9.]+\\w+\\s+[0-9.]+\\w+"),
                      errors);
          if (rps < 0) std::fprintf(stderr, "wrk output:\n%s\n", out.c_str());
          std::fflush(stdout);
        }
      }
    if (soak > 0) {
      // Fixed rate from 4 paced keep-alive clients; RSS of the server every 10 s.
      ServerProcess server(cli, {"-m", model}, free_port());
      const int clients = 4;
      std::atomic<bool> go{true};
      std::atomic<long> errors{0}, sent{0};
      std::vector<std::vector<double>> lat(clients);
      std::vector<std::thread> th;
      const auto t0 = Clock::now();
      for (int t = 0; t < clients; ++t)
        th.emplace_back([&, t] {
          httplib::Client c("127.0.0.1", server.port);
          c.set_keep_alive(true);
          std::mt19937 rng(t + 1);
          const auto period = std::chrono::duration<double>(static_cast<double>(clients) / rate);
          auto next = Clock::now();
          while (go) {
            next += std::chrono::duration_cast<Clock::duration>(period);
            std::this_thread::sleep_until(next);
            auto s = Clock::now();
            auto r = c.Get("/v1/recommend?user=" + users[rng() % users.size()] + "&k=10");
            lat[t].push_back(std::chrono::duration<double>(Clock::now() - s).count());
            if (!r || r->status != 200) ++errors;
            ++sent;
          }
        });
      std::printf("\nsoak: %d requests/s for %d s (4 paced keep-alive clients), exact index; server RSS:\n", rate,
                  soak);
      std::printf("%8s %10s %12s\n", "t s", "RSS MB", "requests");
      long rss_warm = -1, rss_max_after = 0;
      for (int s = 10; s <= soak; s += 10) {
        std::this_thread::sleep_until(t0 + std::chrono::seconds(s));
        long kb = server.rss_kb();
        if (s == std::min(60, soak)) rss_warm = kb;
        if (s > 60) rss_max_after = std::max(rss_max_after, kb);
        std::printf("%8d %10.1f %12ld\n", s, kb / 1024.0, sent.load());
        std::fflush(stdout);
      }
      go = false;
      for (auto& x : th) x.join();
      std::vector<double> all;
      for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
      std::sort(all.begin(), all.end());
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      std::printf(
          "soak: %ld requests in %.0f s (%.0f/s), %ld errors, p50 %.3f ms, p99 %.3f ms; RSS after warm-up "
          "(60 s) %.1f MB, largest later %.1f MB (growth %+.1f MB)\n",
          sent.load(), secs, sent.load() / secs, errors.load(), 1e3 * all[all.size() / 2],
          1e3 * all[static_cast<size_t>(all.size() * 0.99)], rss_warm / 1024.0, rss_max_after / 1024.0,
          rss_max_after > 0 ? (rss_max_after - rss_warm) / 1024.0 : 0.0);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_serve: %s\n", e.what());
    return 1;
  }
  return 0;
}
