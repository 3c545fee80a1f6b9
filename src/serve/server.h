// siamrec's HTTP recommendation server (cpp-httplib): exact retrieval over a model file, fold-in of
// unseen users from a history, similar items, pair scores, health, Prometheus metrics, OpenAPI,
// hot reload that swaps models atomically (requests in flight finish on the old one; a failed
// load keeps the old model), optional bearer token, graceful shutdown.
#pragma once
#include <atomic>
#include <memory>
#include <string>

namespace siamrec {

struct ServeOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 8080;              // 0: any free port (tests)
  int threads = 8;              // HTTP worker threads
  int max_k = 1000;             // k is capped here (400 above)
  size_t max_body = 1 << 20;    // bytes; larger bodies get 413
  int timeout_s = 5;            // read/write timeout for slow clients
  std::string token;            // bearer token ("" = none)
  std::string index = "exact";  // exact | hnsw (GET /v1/recommend and /v1/similar)
  int hnsw_m = 16, hnsw_ef_construction = 200, hnsw_ef = 100;
};

class Server {
 public:
  explicit Server(ServeOptions o);
  ~Server();
  // Loads the model (throws on failure) and binds; returns the bound port.
  int bind();
  // Serves until stop(); blocking.
  void run();
  void stop();
  // Loads the model file again and swaps it in; on failure the old model keeps serving and the
  // reason is returned in *error.
  bool reload(std::string* error);
  std::string model_version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace siamrec
