#include "serve/server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "serve/handlers.h"
#include "util/error.h"
#include "util/strings.h"

namespace siamrec {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Prometheus metrics: requests by route and status, a latency histogram, connection counters.
struct Metrics {
  std::mutex mu;
  std::map<std::pair<std::string, int>, uint64_t> requests;
  const std::vector<double> bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
  std::vector<uint64_t> buckets = std::vector<uint64_t>(11, 0);
  double sum = 0;
  uint64_t count = 0;
  std::atomic<uint64_t> rejected{0}, timed_out{0}, bad_requests{0};
  void observe(const std::string& route, int status, double secs) {
    std::lock_guard<std::mutex> g(mu);
    requests[{route, status}]++;
    size_t b = std::lower_bound(bounds.begin(), bounds.end(), secs) - bounds.begin();
    buckets[b]++;
    sum += secs;
    count++;
  }
  std::string text(const std::string& version, int open) {
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
    o += "# HELP siamrec_open_connections open client connections\n# TYPE siamrec_open_connections gauge\n";
    o += fmt::format("siamrec_open_connections {}\n", open);
    o += "# HELP siamrec_connections_rejected_total connections answered 503 at the connection cap\n"
         "# TYPE siamrec_connections_rejected_total counter\n";
    o += fmt::format("siamrec_connections_rejected_total {}\n", rejected.load());
    o += "# HELP siamrec_requests_timed_out_total connections closed because a request missed its deadline\n"
         "# TYPE siamrec_requests_timed_out_total counter\n";
    o += fmt::format("siamrec_requests_timed_out_total {}\n", timed_out.load());
    o += "# HELP siamrec_bad_requests_total requests that were not valid HTTP (answered 400/413/431)\n"
         "# TYPE siamrec_bad_requests_total counter\n";
    o += fmt::format("siamrec_bad_requests_total {}\n", bad_requests.load());
    o += "# HELP siamrec_model_info the model being served\n# TYPE siamrec_model_info gauge\n";
    o += fmt::format("siamrec_model_info{{version=\"{}\"}} 1\n", version);
    return o;
  }
};

// A response before it is written: status, body, content type, and whether it ends the connection.
struct Reply {
  int status = 200;
  std::string body;
  std::string type = "application/json";
  std::string allow;  // the Allow header of a 405
  bool close = false;
};

Reply json_reply(const ApiResponse& a) { return {a.status, a.render()}; }
Reply error_reply(int status, const std::string& msg, bool close = false) {
  Reply r = json_reply({status, {{"error", msg}}});
  r.close = close;
  return r;
}

// Constant-time comparison of the Authorization header with the expected one.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

class Session;

}  // namespace

struct Server::Impl {
  using Handler = std::function<ApiResponse(const Served&, const ApiRequest&)>;

  // Destroyed last to first: the event loop (whose pending handlers own sessions) goes before the
  // state sessions touch when they close.
  ServeOptions o;
  std::shared_ptr<const Served> model;  // read and swapped with std::atomic_load/store
  std::mutex reload_mu;
  Metrics metrics;
  std::map<std::string, std::map<http::verb, Handler>> routes;  // path -> method -> handler
  int port = 0;
  int max_connections = 512;
  std::atomic<bool> stopping{false};
  std::atomic<int> open{0};
  std::mutex sessions_mu;
  std::map<const void*, std::weak_ptr<Session>> sessions;
  std::mutex run_mu;
  std::condition_variable run_cv;
  int threads_done = 0;
  // One event loop per thread, each run by exactly one thread (concurrency hint 1): a connection's
  // handlers all run on its loop's thread, so no strand, no lock and no cross-thread wake-up per
  // request. The acceptor lives on the first loop and deals new connections to the loops in turn.
  net::io_context ioc{1};
  std::vector<std::unique_ptr<net::io_context>> more_loops;                           // loops 2..n (created by bind)
  std::vector<net::executor_work_guard<net::io_context::executor_type>> idle_guards;  // keep them running
  size_t next_loop = 0;  // touched by the acceptor's handler only (loop 0)
  size_t loops() const { return 1 + more_loops.size(); }
  net::io_context& loop(size_t t) { return t == 0 ? ioc : *more_loops[t - 1]; }
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_retry{acceptor.get_executor()};
  net::thread_pool reload_pool{1};  // reloads run here, off the event loop

  std::shared_ptr<const Served> current() const { return std::atomic_load(&model); }

  // A request's model: the worker thread's own copy of the pointer, refreshed only when a reload
  // (or another server in this process) published a newer one. std::atomic_load on a shared_ptr
  // takes a lock from a global pool and bumps a reference count whose cache line the worker
  // threads would otherwise pass back and forth on every request (6% of the server's time under
  // wrk, docs/serving.md). The copy keeps the request's model alive until its thread's next
  // request after a reload.
  std::atomic<uint64_t> generation{0};
  static std::atomic<uint64_t>& generations() {
    static std::atomic<uint64_t> g{0};
    return g;
  }
  void publish(std::shared_ptr<const Served> next) {
    std::atomic_store(&model, std::move(next));
    generation.store(++generations(), std::memory_order_release);
  }
  const Served& request_model() const {
    struct Cache {
      const void* owner = nullptr;
      uint64_t gen = 0;
      std::shared_ptr<const Served> p;
    };
    static thread_local Cache c;
    const uint64_t g = generation.load(std::memory_order_acquire);
    if (c.owner != this || c.gen != g) c.p = current(), c.gen = g, c.owner = this;
    return *c.p;
  }

  void setup_routes() {
    const ServeLimits lim{o.max_k};
    auto add = [this](const char* path, http::verb m, Handler fn) { routes[path][m] = std::move(fn); };
    add("/healthz", http::verb::get, [](const Served& s, const ApiRequest&) { return health(s); });
    add("/metrics", http::verb::get, [](const Served&, const ApiRequest&) { return ApiResponse{}; });
    add("/openapi.json", http::verb::get, [](const Served&, const ApiRequest&) { return ApiResponse{200, openapi()}; });
    add("/v1/recommend", http::verb::get,
        [lim](const Served& s, const ApiRequest& r) { return recommend_user(s, r, lim); });
    add("/v1/recommend", http::verb::post,
        [lim](const Served& s, const ApiRequest& r) { return recommend_history(s, r, lim); });
    add("/v1/similar", http::verb::get,
        [lim](const Served& s, const ApiRequest& r) { return similar_items(s, r, lim); });
    add("/v1/score", http::verb::post, [](const Served& s, const ApiRequest& r) { return score_pairs(s, r); });
    add("/admin/reload", http::verb::post, nullptr);  // answered off the event loop (reload_async)
  }

  // The answer to a complete request; `deferred` is set for a reload, answered later by `done`.
  Reply dispatch(const http::request<http::string_body>& req, std::string& route_name, bool& deferred) {
    deferred = false;
    ApiRequest ar;
    std::string path;
    try {
      path = parse_target(std::string_view(req.target().data(), req.target().size()), ar);
    } catch (const HttpError& e) {
      route_name = "(unmatched)";
      return error_reply(e.status, e.message, /*close=*/true);  // not a target we can read: close
    }
    auto it = routes.find(path);
    if (it == routes.end()) {
      route_name = "(unmatched)";
      return error_reply(404, fmt::format("no route '{}'; see GET /openapi.json", printable(path, 200)));
    }
    route_name = path;
    auto route = it->second.find(req.method());
    if (route == it->second.end()) {
      std::string allow;
      for (auto& [m, fn] : it->second) allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(m));
      Reply r = error_reply(
          405, fmt::format("{} is not allowed on {}; use {}", std::string(req.method_string()), path, allow));
      r.allow = allow;
      return r;
    }
    if (!o.token.empty() && path != "/healthz") {
      auto h = req[http::field::authorization];
      if (!same_secret(std::string_view(h.data(), h.size()), "Bearer " + o.token))
        return error_reply(401, "missing or wrong bearer token");
    }
    if (path == "/admin/reload") {
      deferred = true;
      return {};
    }
    ar.body = req.body();
    const Served& s = request_model();
    if (path == "/metrics") return {200, metrics.text(s.version, open.load()), "text/plain; version=0.0.4"};
    return json_reply(handle([&] { return route->second(s, ar); }));
  }

  Reply reload_reply() {
    std::string err;
    if (!reload(&err)) return error_reply(500, "reload failed, the previous model keeps serving: " + err);
    return json_reply({200, {{"reloaded", true}, {"model_version", current()->version}}});
  }

  bool reload(std::string* err) {
    std::lock_guard<std::mutex> g(reload_mu);
    try {
      auto next = load_served(o);
      publish(next);
      spdlog::info("serving model {} ({})", next->version, o.model_path);
      return true;
    } catch (const std::exception& e) {
      if (err) *err = e.what();
      spdlog::error("reload of '{}' failed; still serving {}: {}", o.model_path, current()->version, e.what());
      return false;
    }
  }

  void do_accept();
  void reject(tcp::socket sock);
  void on_stop();
};

namespace {

using Impl = Server::Impl;

// One client connection: reads a request under a whole-request deadline, answers it on the event
// loop (or, for a reload, off it), and keeps the connection alive while the client asks to.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& s, Impl& srv) : stream_(std::move(s)), srv_(srv) { srv_.open++; }
  ~Session() {
    srv_.open--;
    std::lock_guard<std::mutex> g(srv_.sessions_mu);
    srv_.sessions.erase(this);
  }

  void start() {
    {
      std::lock_guard<std::mutex> g(srv_.sessions_mu);
      srv_.sessions[this] = weak_from_this();
    }
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
  }

  // On stop: a connection waiting for its next request closes now; one mid-request finishes it.
  void stop_async() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->stop_if_idle(); });
  }

 private:
  void stop_if_idle() {
    if (waiting_ && !(parser_ && parser_->got_some())) {
      beast::error_code ec;
      stream_.socket().cancel(ec);
    }
  }

  void read_header() {
    if (srv_.stopping) return close_now();
    parser_.emplace();
    parser_->body_limit(srv_.o.max_body);
    parser_->header_limit(16 * 1024);
    waiting_ = true;
    // One deadline for the whole request: headers and body, however slowly they arrive.
    stream_.expires_after(std::chrono::seconds(srv_.o.timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    t0_ = Clock::now();
    auto& req = parser_->get();
    if (parser_->is_done()) return on_request();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue, sizeof kContinue - 1),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->close_now();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(beast::error_code ec) {
    waiting_ = false;
    if (ec == beast::error::timeout) {
      srv_.metrics.timed_out++;
      return close_now();  // the stream is closed already
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::error::broken_pipe || ec == net::error::not_connected)
      return close_now();
    srv_.metrics.bad_requests++;
    // Not HTTP we can parse: answer and close, so the client never waits on a half-read stream.
    Reply r = ec == http::error::body_limit
                  ? error_reply(413, fmt::format("request body larger than {} bytes", srv_.o.max_body), true)
              : ec == http::error::header_limit ? error_reply(431, "request headers larger than 16384 bytes", true)
                                                : error_reply(400, "malformed HTTP request: " + ec.message(), true);
    route_ = "(unparsed)";
    t0_ = Clock::now();
    write(std::move(r), 11);
  }

  void on_request() {
    waiting_ = false;
    auto& req = parser_->get();
    bool deferred = false;
    Reply r = srv_.dispatch(req, route_, deferred);
    const unsigned version = req.version();
    if (!deferred) return write(std::move(r), version);
    // A reload: loading a model takes long; the event loop keeps serving meanwhile.
    net::post(srv_.reload_pool, [self = shared_from_this(), version] {
      Reply rr = self->srv_.reload_reply();
      net::post(self->stream_.get_executor(),
                [self, version, rr = std::move(rr)]() mutable { self->write(std::move(rr), version); });
    });
  }

  void write(Reply r, unsigned version) {
    const bool keep = !r.close && !srv_.stopping && parser_ && parser_->is_done() && parser_->get().keep_alive();
    res_ = {};
    res_.version(version);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::server, "siamrec");
    res_.set(http::field::content_type, r.type);
    if (!r.allow.empty()) res_.set(http::field::allow, r.allow);
    res_.keep_alive(keep);
    res_.body() = std::move(r.body);
    res_.prepare_payload();
    srv_.metrics.observe(route_, r.status, std::chrono::duration<double>(Clock::now() - t0_).count());
    stream_.expires_after(std::chrono::seconds(srv_.o.timeout_s));
    http::async_write(stream_, res_, [self = shared_from_this(), keep](beast::error_code ec, size_t) {
      if (ec) return self->close_now();
      if (keep) return self->read_header();
      self->close_gracefully();
    });
  }

  // After a response that ends the connection: stop sending, read what the client still sends (at
  // most 1 s, 1 MB) so that closing does not reset the connection before it reads the response.
  void close_gracefully() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close_now();
    stream_.expires_after(std::chrono::seconds(1));
    drain();
  }
  void drain() {
    stream_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > (1u << 20)) return self->close_now();
      self->drain();
    });
  }

  void close_now() {
    beast::error_code ec;
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  Impl& srv_;
  bool waiting_ = false;
  Clock::time_point t0_ = Clock::now();
  std::string route_;
  std::array<char, 4096> drain_buf_{};
  size_t drained_ = 0;
};

// A connection beyond the cap: an immediate 503 and close.
struct Rejected : std::enable_shared_from_this<Rejected> {
  beast::tcp_stream stream;
  explicit Rejected(tcp::socket&& s) : stream(std::move(s)) {}
  void start() {
    static const std::string kBody = R"({"error":"server at its connection limit; retry later"})";
    static const std::string kReply = fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nServer: siamrec\r\nContent-Type: application/json\r\n"
        "Retry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
        kBody.size(), kBody);
    stream.expires_after(std::chrono::seconds(1));
    net::async_write(stream, net::buffer(kReply), [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ec;
      self->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream.socket().close(ec);
    });
  }
};

}  // namespace

void Server::Impl::do_accept() {
  net::io_context& to = loop(next_loop);
  next_loop = (next_loop + 1) % loops();
  acceptor.async_accept(to.get_executor(), [this](beast::error_code ec, tcp::socket sock) {
    if (stopping) return;
    if (ec) {
      if (ec == net::error::operation_aborted) return;
      // Out of descriptors (EMFILE/ENFILE) and the like: log, wait a little, accept again.
      spdlog::warn("accept failed: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](beast::error_code e) {
        if (!e && !stopping) do_accept();
      });
      return;
    }
    beast::error_code opt;
    sock.set_option(tcp::no_delay(true), opt);  // small JSON responses: no Nagle delay
    if (open.load() >= max_connections) {
      metrics.rejected++;
      std::make_shared<Rejected>(std::move(sock))->start();
    } else {
      std::make_shared<Session>(std::move(sock), *this)->start();
    }
    do_accept();
  });
}

void Server::Impl::on_stop() {
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
    accept_retry.cancel();
  });
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard<std::mutex> g(sessions_mu);
    for (auto& [k, w] : sessions)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->stop_async();
}

Server::Server(ServeOptions o) : impl_(std::make_unique<Impl>()) { impl_->o = std::move(o); }
Server::~Server() {
  stop();
  impl_->reload_pool.join();
}

int Server::bind() {
  auto& I = *impl_;
  I.publish(load_served(I.o));
  I.setup_routes();
  // Connections are bounded by the descriptors this process may open (some kept for files).
  I.max_connections = std::max(1, I.o.max_connections);
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      static_cast<rlim_t>(I.max_connections) + 64 > rl.rlim_cur) {
    const int fit = std::max(1, static_cast<int>(rl.rlim_cur) - 64);
    spdlog::warn("--max-connections {} exceeds what the descriptor limit ({}) allows; using {}", I.max_connections,
                 rl.rlim_cur, fit);
    I.max_connections = fit;
  }
  const std::string where = fmt::format("{}:{}", I.o.host, I.o.port);
  beast::error_code ec;
  tcp::resolver resolver(I.ioc);
  auto found = resolver.resolve(I.o.host, std::to_string(I.o.port), tcp::resolver::passive, ec);
  if (ec || found.empty())
    throw Error(fmt::format("cannot listen on {}: cannot resolve host '{}': {}", where, I.o.host, ec.message()),
                kExitUsage);
  const tcp::endpoint ep = found.begin()->endpoint();
  I.acceptor.open(ep.protocol(), ec);
  // SO_REUSEADDR only (restart while old connections are in TIME_WAIT). Never SO_REUSEPORT: a second
  // server on the same port must fail here, not share connections with this one.
  if (!ec) I.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) I.acceptor.bind(ep, ec);
  if (!ec) I.acceptor.listen(std::max(1, I.o.backlog), ec);
  if (ec) {
    const bool in_use = ec == net::error::address_in_use;
    throw Error(fmt::format("cannot listen on {}: {}{}", where, ec.message(),
                            in_use ? " (another process serves on this port; pick another --port or stop it)" : ""));
  }
  I.port = I.acceptor.local_endpoint().port();
  const int n = I.o.threads > 0 ? I.o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int t = 1; t < n; ++t) {
    I.more_loops.push_back(std::make_unique<net::io_context>(1));
    I.idle_guards.push_back(net::make_work_guard(*I.more_loops.back()));
  }
  I.do_accept();
  return I.port;
}

void Server::run() {
  auto& I = *impl_;
  const int n = static_cast<int>(I.loops());
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t)
    pool.emplace_back([&I, t] {
      I.loop(static_cast<size_t>(t)).run();
      std::lock_guard<std::mutex> g(I.run_mu);
      I.threads_done++;
      I.run_cv.notify_all();
    });
  {
    // Once stop() is called, requests in flight get at most timeout_s + 1 s more.
    std::unique_lock<std::mutex> g(I.run_mu);
    I.run_cv.wait(g, [&] { return I.stopping.load() || I.threads_done == n; });
    if (!I.run_cv.wait_for(g, std::chrono::seconds(I.o.timeout_s + 1), [&] { return I.threads_done == n; })) {
      spdlog::warn("requests still in flight {} s after stop; closing them", I.o.timeout_s + 1);
      for (size_t t = 0; t < I.loops(); ++t) I.loop(t).stop();
    }
  }
  for (auto& t : pool) t.join();
}

void Server::stop() {
  auto& I = *impl_;
  if (I.stopping.exchange(true)) return;
  {
    std::lock_guard<std::mutex> g(I.run_mu);
    I.run_cv.notify_all();
  }
  I.on_stop();
  // The other loops return once their connections have closed (their pending work, not a guard).
  for (auto& g : I.idle_guards) g.reset();
}

bool Server::reload(std::string* error) { return impl_->reload(error); }
void Server::reload_async() {
  net::post(impl_->reload_pool, [this] { impl_->reload(nullptr); });
}
std::string Server::model_version() const { return impl_->current()->version; }
int Server::open_connections() const { return impl_->open.load(); }

}  // namespace siamrec
