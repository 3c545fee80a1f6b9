// siamrec serve: the HTTP recommendation API over a model file.
#include <signal.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "serve/server.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec::cli {

static int g_signal_pipe[2] = {-1, -1};
static void on_signal(int s) {
  unsigned char b = static_cast<unsigned char>(s);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &b, 1);
}

Command add_serve(CLI::App& root, GlobalOptions& g) {
  auto* app =
      root.add_subcommand("serve",
                          "Serve a model over HTTP/JSON: GET /v1/recommend?user=ID&k=10, POST /v1/recommend "
                          "{history, k} (fold-in), GET /v1/similar?item=ID, POST /v1/score, /healthz, "
                          "/metrics, /openapi.json, POST /admin/reload (also SIGHUP); SIGTERM stops gracefully");
  auto o = std::make_shared<ServeOptions>();
  auto token_file = std::make_shared<std::string>();
  (void)g;
  app->add_option("-m,--model", o->model_path, "model file")->required();
  app->add_option("--host", o->host, "address to bind (default 127.0.0.1: loopback only)");
  app->add_option("--port", o->port, "TCP port")->check(CLI::Range(0, 65535));
  app->add_option("--http-threads", o->threads,
                  "threads, each running its own event loop that reads requests and runs the handlers; new connections "
                  "are dealt to the loops in turn (default: one per core)")
      ->check(CLI::Range(1, 256));
  app->add_option("--max-k", o->max_k, "largest k a request may ask for")->check(CLI::Range(1, 1000000));
  app->add_option("--max-body", o->max_body, "largest request body in bytes (413 above)");
  app->add_option("--timeout", o->timeout_s,
                  "seconds a client has to send a whole request (headers and body), to read the response, and "
                  "to send the next one on a kept-alive connection; slower clients are disconnected")
      ->check(CLI::Range(1, 3600));
  app->add_option("--max-connections", o->max_connections,
                  "open connections at most; beyond it a new connection gets 503 and is closed")
      ->check(CLI::Range(1, 1000000));
  app->add_option("--backlog", o->backlog, "listen backlog (connections waiting to be accepted)")
      ->check(CLI::Range(1, 65535));
  app->add_option("--token-file", *token_file, "file holding a bearer token required on every route but /healthz");
  app->add_option("--index", o->index,
                  "retrieval for GET /v1/recommend and /v1/similar: exact (BLAS, all items), hnsw (approximate: "
                  "an HNSW graph) or ivf (approximate: faiss inverted lists, for very large catalogues); the index is "
                  "cached as MODEL.hnsw or MODEL.ivf beside the model, memory-mapped at load, rebuilt when stale")
      ->check(CLI::IsMember({"exact", "hnsw", "ivf"}));
  app->add_option("--ivf-nlist", o->ivf_nlist, "ivf: k-means lists (0: the square root of the item count)")
      ->check(CLI::Range(0, 10000000));
  app->add_option("--ivf-nprobe", o->ivf_nprobe, "ivf: lists scanned per query (recall vs speed)")
      ->check(CLI::Range(1, 10000000));
  app->add_option("--hnsw-m", o->hnsw_m, "HNSW graph degree")->check(CLI::Range(2, 512));
  app->add_flag(
      "--no-index-cache", [o](int64_t) { o->index_cache = false; },
      "hnsw/ivf: build the index at every load instead of loading/saving MODEL.hnsw or MODEL.ivf beside the model");
  app->add_option("--hnsw-ef", o->hnsw_ef, "HNSW search breadth (recall vs speed)")->check(CLI::Range(1, 100000));
  app->add_option("--exclude", o->exclude,
                  "what exclude_seen leaves out: train+valid (train items and the validation items the model saw "
                  "without training on them: what the evaluation excludes), train, or none")
      ->check(CLI::IsMember({"train+valid", "train", "none"}));
  return {app, [o, token_file]() {
            if (!token_file->empty()) {
              o->token = std::string(trim(read_file(*token_file)));
              if (o->token.empty()) throw ConfigError(fmt::format("token file '{}' is empty", *token_file));
            }
            // Signals may land on any thread (OpenBLAS starts its own before main), so the handler
            // only writes the signal number to a pipe; a watcher thread acts on it: SIGHUP reloads in
            // the background, SIGTERM/SIGINT stop accepting and finish the requests in flight.
            if (pipe(g_signal_pipe) != 0) throw Error("cannot create the signal pipe");
            struct sigaction sa {};
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaction(s, &sa, nullptr);
            Server server(*o);
            int port = server.bind();
            spdlog::info("serving {} (model {}) on http://{}:{}", o->model_path, server.model_version(), o->host, port);
            std::thread watcher([&]() {
              unsigned char s = 0;
              while (read(g_signal_pipe[0], &s, 1) == 1) {
                if (s == SIGHUP) {
                  server.reload_async();
                  continue;
                }
                if (s == 0) return;  // the server stopped by itself
                spdlog::info("signal {}: finishing requests in flight and stopping", static_cast<int>(s));
                server.stop();
                return;
              }
            });
            server.run();
            unsigned char zero = 0;
            if (write(g_signal_pipe[1], &zero, 1) != 1) spdlog::warn("signal pipe write failed");
            watcher.join();
            spdlog::info("stopped");
            return 0;
          }};
}

}  // namespace siamrec::cli
