#include "serve/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "serve/handlers.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

using json = nlohmann::json;

namespace {

// Prometheus metrics: requests by route and status, a latency histogram.
struct Metrics {
  std::mutex mu;
  std::map<std::pair<std::string, int>, uint64_t> requests;
  const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
  std::vector<uint64_t> buckets = std::vector<uint64_t>(11, 0);
  double sum = 0;
  uint64_t count = 0;
  void observe(const std::string& route, int status, double secs) {
    std::lock_guard<std::mutex> g(mu);
    requests[{route, status}]++;
    size_t b = std::lower_bound(bounds.begin(), bounds.end(), secs) - bounds.begin();
    buckets[b]++;
    sum += secs;
    count++;
  }
  std::string text(const std::string& version) {
    std::lock_guard<std::mutex> g(mu);
    std::string o =
        "# HELP siamrec_requests_total HTTP requests by route and status\n# TYPE siamrec_requests_total counter\n";
    for (auto& [k, v] : requests)
      o += fmt::format("siamrec_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", k.first, k.second, v);
    o += "# HELP siamrec_request_duration_seconds request latency\n# TYPE siamrec_request_duration_seconds histogram\n";
    uint64_t cum = 0;
    for (size_t b = 0; b < bounds.size(); ++b) {
      cum += buckets[b];
      o += fmt::format("siamrec_request_duration_seconds_bucket{{le=\"{}\"}} {}\n", bounds[b], cum);
    }
    cum += buckets.back();
    o += fmt::format("siamrec_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cum);
    o +=
        fmt::format("siamrec_request_duration_seconds_sum {}\nsiamrec_request_duration_seconds_count {}\n", sum, count);
    o += "# HELP siamrec_model_info the model being served\n# TYPE siamrec_model_info gauge\n";
    o += fmt::format("siamrec_model_info{{version=\"{}\"}} 1\n", version);
    return o;
  }
};

}  // namespace

struct Server::Impl {
  ServeOptions o;
  httplib::Server http;
  std::shared_ptr<const Served> model;  // read and swapped with std::atomic_load/store
  std::mutex reload_mu;
  Metrics metrics;
  int port = 0;

  std::shared_ptr<const Served> current() const { return std::atomic_load(&model); }

  static ApiRequest request_of(const httplib::Request& req) {
    ApiRequest r;
    for (auto& [k, v] : req.params) r.query.emplace(k, v);  // the first value of a repeated parameter
    r.body = req.body;
    return r;
  }

  static void reply(httplib::Response& res, const ApiResponse& a) {
    res.status = a.status;
    res.set_content(a.body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  // Authentication, the handler, metrics.
  void route(const std::string& name, const httplib::Request& req, httplib::Response& res,
             const std::function<ApiResponse(const Served&, const ApiRequest&)>& fn) {
    auto t0 = std::chrono::steady_clock::now();
    ApiResponse a = handle([&]() -> ApiResponse {
      if (!o.token.empty() && name != "/healthz" && req.get_header_value("Authorization") != "Bearer " + o.token)
        throw HttpError{401, "missing or wrong bearer token"};
      auto s = current();
      return fn(*s, request_of(req));
    });
    reply(res, a);
    metrics.observe(name, res.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  void setup() {
    http.set_payload_max_length(o.max_body);
    http.set_tcp_nodelay(true);  // small JSON responses: no Nagle delay
    http.set_read_timeout(o.timeout_s, 0);
    http.set_write_timeout(o.timeout_s, 0);
    http.new_task_queue = [n = o.threads] { return new httplib::ThreadPool(static_cast<size_t>(std::max(1, n))); };
    const ServeLimits lim{o.max_k};
    auto get = [this](const char* path, std::function<ApiResponse(const Served&, const ApiRequest&)> fn) {
      http.Get(path,
               [this, path, fn](const httplib::Request& req, httplib::Response& res) { route(path, req, res, fn); });
    };
    auto post = [this](const char* path, std::function<ApiResponse(const Served&, const ApiRequest&)> fn) {
      http.Post(path,
                [this, path, fn](const httplib::Request& req, httplib::Response& res) { route(path, req, res, fn); });
    };
    get("/healthz", [](const Served& s, const ApiRequest&) { return health(s); });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      route("/metrics", req, res, [](const Served&, const ApiRequest&) { return ApiResponse{}; });
      if (res.status == 200) res.set_content(metrics.text(current()->version), "text/plain; version=0.0.4");
    });
    get("/openapi.json", [](const Served&, const ApiRequest&) { return ApiResponse{200, openapi()}; });
    get("/v1/recommend", [lim](const Served& s, const ApiRequest& r) { return recommend_user(s, r, lim); });
    post("/v1/recommend", [lim](const Served& s, const ApiRequest& r) { return recommend_history(s, r, lim); });
    get("/v1/similar", [lim](const Served& s, const ApiRequest& r) { return similar_items(s, r, lim); });
    post("/v1/score", [](const Served& s, const ApiRequest& r) { return score_pairs(s, r); });
    post("/admin/reload", [this](const Served&, const ApiRequest&) {
      std::string err;
      if (!reload(&err)) throw HttpError{500, "reload failed, the previous model keeps serving: " + err};
      return ApiResponse{200, {{"reloaded", true}, {"model_version", current()->version}}};
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) reply(res, {res.status, {{"error", fmt::format("HTTP {}", res.status)}}});
    });
  }

  bool reload(std::string* err) {
    std::lock_guard<std::mutex> g(reload_mu);
    try {
      auto next = load_served(o);
      std::atomic_store(&model, next);
      spdlog::info("serving model {} ({})", next->version, o.model_path);
      return true;
    } catch (const std::exception& e) {
      if (err) *err = e.what();
      spdlog::error("reload of '{}' failed; still serving {}: {}", o.model_path, current()->version, e.what());
      return false;
    }
  }
};

Server::Server(ServeOptions o) : impl_(std::make_unique<Impl>()) { impl_->o = std::move(o); }
Server::~Server() { stop(); }

int Server::bind() {
  std::atomic_store(&impl_->model, load_served(impl_->o));
  impl_->setup();
  if (impl_->o.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(impl_->o.host);
  } else {
    if (!impl_->http.bind_to_port(impl_->o.host, impl_->o.port))
      throw Error(fmt::format("cannot listen on {}:{} (in use or not permitted)", impl_->o.host, impl_->o.port));
    impl_->port = impl_->o.port;
  }
  if (impl_->port <= 0) throw Error(fmt::format("cannot listen on {}", impl_->o.host));
  return impl_->port;
}

void Server::run() { impl_->http.listen_after_bind(); }
void Server::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}
bool Server::reload(std::string* error) { return impl_->reload(error); }
std::string Server::model_version() const { return impl_->current()->version; }

}  // namespace siamrec
