// The fault and abuse suite: `siamrec serve` as a child process (PID tracked, always killed and
// reaped) on a loopback port, attacked the way a hostile test pass did: a second server on the same
// port, slow clients that trickle headers or bodies, more connections than the cap, malformed and
// random bytes, a reload without a body, SIGHUP and SIGTERM. Bounded: each case takes seconds.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "testutil.h"
#include "util/io.h"

using namespace siamrec;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// A server child on a free port, ready (GET /healthz answered) when constructed.
struct ServeChild {
  test::TempDir dir;
  int port = 0;
  std::unique_ptr<test::Child> child;
  ServeChild(const std::string& model, std::vector<std::string> extra) {
    port = test::free_port();
    std::vector<std::string> args = {"serve", "-m", model, "--port", std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    child = std::make_unique<test::Child>(test::cli_argv(args), dir.path());
    auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until && child->running()) {
      httplib::Client c("127.0.0.1", port);
      c.set_connection_timeout(1, 0);
      if (auto r = c.Get("/healthz"); r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "server did not come up on port " << port << ": " << child->err();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(3, 0);
    c.set_read_timeout(5, 0);
    return c;
  }
};

bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Sends raw bytes, half-closes, returns what the server answers before it closes (3 s at most).
std::string roundtrip(int port, const std::string& bytes) {
  int fd = test::tcp_connect(port);
  if (fd < 0) return "(connect failed)";
  send_all(fd, bytes);
  shutdown(fd, SHUT_WR);
  std::string got = test::read_until_close(fd, 3);
  close(fd);
  return got;
}

struct FixtureModel {
  test::TempDir dir;
  std::string path;
  explicit FixtureModel(const std::string& type) { path = test::planted_model_file(dir.path() + "/m.bin", type); }
};

}  // namespace

// Before: cpp-httplib bound with SO_REUSEPORT, so a second server on the port started silently and
// the kernel split connections between the two (bypassing the first one's token).
TEST(ServeFaults, SecondServerOnTheSamePortFailsAtStart) {
  FixtureModel m("pop");
  test::TempDir t;
  std::string token = t.file("token", "s3cret\n");
  ServeChild a(m.path, {"--token-file", token});
  test::TempDir d2;
  test::Child b(test::cli_argv({"serve", "-m", m.path, "--port", std::to_string(a.port)}), d2.path());
  ASSERT_NE(b.wait(30), -1) << "a second server on a port in use kept running";
  EXPECT_NE(b.wait(0), 0);
  EXPECT_NE(b.err().find("in use"), std::string::npos) << b.err();
  EXPECT_NE(b.err().find(std::to_string(a.port)), std::string::npos) << b.err();
  int unauthorized = 0;
  for (int i = 0; i < 20; ++i) {
    auto c = a.client();  // a new connection each time
    auto r = c.Get("/v1/recommend?user=100");
    unauthorized += r && r->status == 401;
  }
  EXPECT_EQ(unauthorized, 20);
}

// Before: the timeout was per read, so a client sending a header line a second was never cut off
// and 8 of them made the server unresponsive.
TEST(ServeFaults, SlowClientsAreCutOffAtTheDeadlineAndDoNotStarveIt) {
  FixtureModel m("pop");
  ServeChild s(m.path, {"--timeout", "2", "--http-threads", "1"});
  constexpr int kSlow = 16;
  std::vector<int> fds;
  for (int i = 0; i < kSlow; ++i) fds.push_back(test::tcp_connect(s.port));
  std::vector<double> cut_at(kSlow, -1);
  std::atomic<bool> stop{false};
  const auto t0 = Clock::now();
  // Half trickle header lines, half send headers and then trickle a body, one byte each 200 ms.
  std::thread trickler([&] {
    for (int i = 0; i < kSlow; ++i)
      send_all(fds[i], i % 2 ? "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                             : "GET /healthz HTTP/1.1\r\n");
    for (int step = 0; step < 50 && !stop; ++step) {
      for (int i = 0; i < kSlow; ++i) {
        if (cut_at[i] >= 0) continue;
        char b;
        if (recv(fds[i], &b, 1, MSG_DONTWAIT) == 0 || !send_all(fds[i], i % 2 ? "x" : "X-Slow: 1\r\n"))
          cut_at[i] = std::chrono::duration<double>(Clock::now() - t0).count();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  // Meanwhile the server answers everyone else (one event-loop thread only).
  int ok = 0;
  for (int i = 0; i < 10; ++i) {
    auto c = s.client();
    auto r = c.Get("/healthz");
    ok += r && r->status == 200;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  trickler.join();
  stop = true;
  EXPECT_EQ(ok, 10);
  for (int i = 0; i < kSlow; ++i) {
    EXPECT_GE(cut_at[i], 1.5) << "connection " << i << " closed before its deadline";
    EXPECT_LT(cut_at[i], 6.0) << "connection " << i << " still open long after the 2 s deadline";
    close(fds[i]);
  }
  std::string metrics = s.client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("siamrec_requests_timed_out_total " + std::to_string(kSlow)), std::string::npos) << metrics;
}

TEST(ServeFaults, ConnectionsBeyondTheCapGetAnImmediate503) {
  FixtureModel m("pop");
  ServeChild s(m.path, {"--max-connections", "4"});
  // The readiness probe's connection counts until the server has seen it close: let it go first.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(test::tcp_connect(s.port));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // accepted by now
  int extra = test::tcp_connect(s.port);
  ASSERT_GE(extra, 0);
  auto t0 = Clock::now();
  std::string got = test::read_until_close(extra, 3);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 2.0);
  EXPECT_EQ(got.rfind("HTTP/1.1 503", 0), 0u) << got;
  EXPECT_NE(got.find("Retry-After"), std::string::npos);
  close(extra);
  close(held[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = s.client().Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("siamrec_connections_rejected_total 1"), std::string::npos) << r->body;
  for (size_t i = 1; i < held.size(); ++i) close(held[i]);
}

TEST(ServeFaults, MalformedRequestsGet400AndTheConnectionCloses) {
  FixtureModel m("pop");
  ServeChild s(m.path, {"--timeout", "2"});
  for (const std::string& bad :
       {std::string("BLAH\r\n\r\n"), std::string("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        std::string("GET /healthz HTTP/9\r\n\r\n"),
        std::string("GET /v1/recommend?user=%zz HTTP/1.1\r\nHost: x\r\n\r\n")}) {
    int fd = test::tcp_connect(s.port);
    send_all(fd, bad);  // no half-close: the server itself must close after a 400
    auto t0 = Clock::now();
    std::string got = test::read_until_close(fd, 4);
    close(fd);
    EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << bad << " -> " << got;
    EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 1.5) << "connection left open: " << bad;
  }
  // Headers too large: 431; wrong method on a route: 405 with Allow; pipelined requests both answered.
  EXPECT_EQ(
      roundtrip(s.port, "GET /healthz HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n").rfind("HTTP/1.1 431", 0),
      0u);
  std::string r405 = roundtrip(s.port, "GET /v1/score HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r405.rfind("HTTP/1.1 405", 0), 0u) << r405;
  EXPECT_NE(r405.find("Allow: POST"), std::string::npos) << r405;
  std::string two =
      roundtrip(s.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  size_t first = two.find("HTTP/1.1 200"), second = two.find("HTTP/1.1 200", first + 1);
  EXPECT_NE(second, std::string::npos) << two;
  // An empty `user=` and a bad exclude_seen are 400, not a lookup.
  EXPECT_EQ(roundtrip(s.port, "GET /v1/recommend?user= HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(
      roundtrip(s.port, "GET /v1/recommend?user=100&exclude_seen=maybe HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
}

TEST(ServeFaults, ReloadWithoutABodySighupAndSigterm) {
  FixtureModel a("pop"), b("itemknn");
  test::TempDir t;
  std::string live = t.path() + "/live.bin";
  atomic_write(live, read_file(a.path));
  ServeChild s(live, std::vector<std::string>{});
  std::string v0 = json::parse(s.client().Get("/healthz")->body)["model_version"];
  // POST without Content-Length or body.
  std::string r = roundtrip(s.port, "POST /admin/reload HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  // SIGHUP reloads in the background.
  atomic_write(live, read_file(b.path));
  s.child->signal(SIGHUP);
  std::string v1 = v0;
  for (int i = 0; i < 200 && v1 == v0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    v1 = json::parse(s.client().Get("/healthz")->body)["model_version"].get<std::string>();
  }
  EXPECT_NE(v1, v0) << "SIGHUP did not reload";
  EXPECT_EQ(json::parse(s.client().Get("/healthz")->body)["model_type"], "itemknn");
  // SIGTERM with an idle kept-alive connection open: exits 0 promptly, not after the idle timeout.
  int idle = test::tcp_connect(s.port);
  send_all(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto t0 = Clock::now();
  s.child->signal(SIGTERM);
  EXPECT_EQ(s.child->wait(20), 0) << s.child->err();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 4.0);
  close(idle);
}

// Thousands of random requests of raw bytes: methods, targets, headers, bodies and truncations.
// No 5xx, no crash, and the server still answers afterwards.
TEST(ServeFaults, RandomBytesNeverCrashItOrGet5xx) {
  FixtureModel m("itemknn");
  ServeChild s(m.path, {"--timeout", "1", "--max-body", "2048"});
  std::mt19937 rng(11);
  auto pick = [&](std::initializer_list<const char*> xs) { return std::string(xs.begin()[rng() % xs.size()]); };
  auto junk = [&](int n) {
    std::string v;
    for (int i = 0; i < n; ++i) v.push_back(static_cast<char>(rng() % 256));
    return v;
  };
  int answered = 0, server_errors = 0;
  const int kRequests = 4000;
  for (int i = 0; i < kRequests; ++i) {
    std::string method = pick({"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "G\x01T", ""});
    std::string target = pick({"/v1/recommend", "/v1/similar", "/v1/score", "/healthz", "/metrics", "/admin/reload",
                               "/openapi.json", "/", "*", "/v1/recommend/../x", "//"});
    if (rng() % 2)
      target += "?user=" + std::to_string(95 + rng() % 30) + "&k=" + pick({"1", "-1", "5", "1e9", "x", ""});
    if (rng() % 4 == 0)
      target += "&item=" + std::to_string(95 + rng() % 30) + pick({"", "%", "%4", "%41", "+", "&&=="});
    std::string body = rng() % 2 ? pick({R"({"history": ["101", 104], "k": 3})", R"({"pairs": [["100", "101"]]})",
                                         R"({"history": [])", "[[[[", "null", "{}"})
                                 : junk(rng() % 64);
    std::string req = method + " " + target + " " + pick({"HTTP/1.1", "HTTP/1.0", "HTTP/2", "FOO"}) + "\r\n";
    if (rng() % 3) req += "Host: x\r\n";
    switch (rng() % 6) {
      case 0:
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        break;
      case 1:
        req += "Content-Length: " + std::to_string(rng() % 5000) + "\r\n";
        break;
      case 2:
        req += "Transfer-Encoding: chunked\r\n";
        body = "5\r\nhello\r\n0\r\n\r\n";
        break;
      case 3:
        req += "Content-Length: -1\r\n";
        break;
      case 4:
        req += junk(rng() % 20) + ": " + junk(rng() % 20) + "\r\n";
        break;
      default:
        break;
    }
    if (rng() % 5 == 0) req += "Expect: 100-continue\r\n";
    req += "\r\n" + body;
    if (rng() % 7 == 0) req.resize(rng() % (req.size() + 1));  // truncated anywhere
    std::string got = roundtrip(s.port, req);
    if (got.rfind("HTTP/1.", 0) == 0) {
      ++answered;
      // The last status line (after a possible "100 Continue").
      size_t at = got.rfind("HTTP/1.1 ");
      if (at != std::string::npos && at + 9 < got.size() && got[at + 9] == '5') {
        ++server_errors;
        ADD_FAILURE() << "5xx for " << req.substr(0, 200) << "\n-> " << got.substr(0, 300);
      }
    }
  }
  EXPECT_EQ(server_errors, 0);
  EXPECT_GT(answered, kRequests / 2);
  EXPECT_TRUE(s.child->running()) << s.child->err();
  auto r = s.client().Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}
