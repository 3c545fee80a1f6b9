// siamrec's HTTP recommendation server: an event-driven HTTP/1.1 server (Boost.Asio/Beast) over the
// endpoints of serve/handlers.h. Exact retrieval over a model file, fold-in of unseen users from a
// history, similar items, pair scores, health, Prometheus metrics, OpenAPI, hot reload that swaps
// models atomically (requests in flight finish on the old one; a failed load keeps the old model),
// optional bearer token, graceful shutdown.
//
// Under abuse: the port is bound with SO_REUSEADDR only (a port in use is a start-up error, never a
// silent second server); every request has a whole-request deadline (headers and body, however
// slowly they trickle in); connections beyond --max-connections get an immediate 503; the listen
// backlog is sized for load; malformed requests get a 400 and the connection is closed.
#pragma once
#include <memory>
#include <string>

namespace siamrec {

struct ServeOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port (tests)
  int threads = 0;              // event-loop threads (0: one per core); handlers run on them
  int max_k = 1000;             // k is capped here (400 above)
  size_t max_body = 1 << 20;    // bytes; larger bodies get 413
  int timeout_s = 5;            // a whole request (headers and body) must arrive within this; also
                                // the response write and the keep-alive idle limit
  int max_connections = 512;    // open connections; beyond it a connection gets 503 and is closed
  int backlog = 1024;           // listen(2) backlog (the kernel caps it at net.core.somaxconn)
  std::string token;            // bearer token ("" = none)
  std::string index = "exact";  // exact | hnsw | ivf (GET /v1/recommend and /v1/similar)
  int hnsw_m = 16, hnsw_ef_construction = 200, hnsw_ef = 100;
  int ivf_nlist = 0, ivf_nprobe = 16;  // ivf: k-means lists (0: sqrt(items)), lists scanned per query
  bool index_cache = true;  // hnsw/ivf: load/save the index as MODEL.hnsw or MODEL.ivf (+ .json) beside the model
  std::string exclude = "train+valid";  // what exclude_seen drops: train+valid | train | none
};

class Server {
 public:
  explicit Server(ServeOptions o);
  ~Server();
  // Loads the model (throws on failure) and binds; returns the bound port. A port another process
  // holds is an Error naming host, port and the reason.
  int bind();
  // Serves until stop(); blocking. Returns after every connection is closed and every thread joined.
  void run();
  // Stops accepting, lets requests in flight finish (at most timeout_s more), closes idle
  // connections. Safe from any thread, also before run().
  void stop();
  // Loads the model file again and swaps it in; on failure the old model keeps serving and the
  // reason is returned in *error.
  bool reload(std::string* error);
  // The same in the background (SIGHUP); the outcome is logged.
  void reload_async();
  std::string model_version() const;
  int open_connections() const;

  struct Impl;  // opaque (serve/server.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace siamrec
