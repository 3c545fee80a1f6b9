// HTTP serving benchmark on loopback: an in-process siamrec server and a built-in load generator
// (keep-alive clients, a fixed number of GET /v1/recommend?user=U&k=10 requests each), at several
// concurrency levels; prints requests/s and p50/p99 latency. Bounded: loopback only, fixed counts.
//
//   bench_serve MODEL [--requests 20000] [--concurrency 1,2,4]
#include <httplib.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "models/model_file.h"
#include "serve/server.h"
#include "util/error.h"
#include "util/strings.h"

using namespace siamrec;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_serve MODEL [--requests N] [--concurrency 1,2,4]\n");
    return 2;
  }
  int total = 20000;
  std::vector<int> levels = {1, 2, 4};
  for (int a = 2; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--requests")) total = std::atoi(argv[a + 1]);
    if (!std::strcmp(argv[a], "--concurrency")) {
      levels.clear();
      for (auto& x : split_list(argv[a + 1])) levels.push_back(std::stoi(x));
    }
  }
  try {
    TrainedModel m = load_model_file(argv[1]);
    std::vector<std::string> users = m.users.ids();
    ServeOptions o;
    o.model_path = argv[1];
    o.port = 0;
    o.threads = 4;
    Server server(o);
    int port = server.bind();
    std::thread th([&] { server.run(); });
    std::printf(
        "serving benchmark: GET /v1/recommend?user=U&k=10 on 127.0.0.1:%d, model %s (%s, %d users x %d items, "
        "exact search), server and load generator on the same 2 cores, %d requests per level\n",
        port, argv[1], m.model->type().c_str(), m.users.size(), m.items.size(), total);
    std::printf("%12s %12s %10s %10s %8s\n", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors");
    std::fflush(stdout);
    for (int c : levels) {
      std::vector<std::vector<double>> lat(c);
      std::vector<int> errors(c, 0);
      auto t0 = Clock::now();
      std::vector<std::thread> clients;
      for (int t = 0; t < c; ++t)
        clients.emplace_back([&, t] {
          httplib::Client cl("127.0.0.1", port);
          cl.set_keep_alive(true);
          cl.set_tcp_nodelay(true);
          std::mt19937 rng(t + 1);
          for (int r = 0; r < total / c; ++r) {
            std::string path = "/v1/recommend?user=" + users[rng() % users.size()] + "&k=10";
            auto s = Clock::now();
            auto res = cl.Get(path);
            lat[t].push_back(std::chrono::duration<double>(Clock::now() - s).count());
            if (!res || res->status != 200) ++errors[t];
          }
        });
      for (auto& x : clients) x.join();
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      std::vector<double> all;
      int err = 0;
      for (int t = 0; t < c; ++t) all.insert(all.end(), lat[t].begin(), lat[t].end()), err += errors[t];
      std::sort(all.begin(), all.end());
      std::printf("%12d %12.0f %10.3f %10.3f %8d\n", c, all.size() / secs, 1e3 * all[all.size() / 2],
                  1e3 * all[static_cast<size_t>(all.size() * 0.99)], err);
    }
    server.stop();
    th.join();
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_serve: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
