#include "serve/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "scoring/topk.h"
#include "retrieval/ann.h"
#include "models/model_file.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

using json = nlohmann::json;

namespace {

struct Served {
  TrainedModel m;
  std::string version;  // first 12 hex digits of the file's SHA-256
  std::string path;
  std::unique_ptr<AnnIndex> ann;  // when serving with --index hnsw
  const float* user_emb = nullptr;
  const float* item_emb = nullptr;
  int dim = 0;
};

std::shared_ptr<const Served> load_served(const ServeOptions& o) {
  auto s = std::make_shared<Served>();
  s->m = load_model_file(o.model_path);
  s->version = sha256_file(o.model_path).substr(0, 12);
  s->path = o.model_path;
  if (o.index == "hnsw") {
    Similarity kind;
    int du = 0;
    s->item_emb = s->m.model->item_embeddings(&s->dim);
    s->user_emb = s->m.model->user_embeddings(&du);
    if (!s->item_emb || !s->user_emb || !s->m.model->retrieval_kind(&kind))
      throw Error(fmt::format("--index hnsw needs a model with user and item embeddings compared by dot, cosine or "
                              "euclidean distance; '{}' is a '{}' model",
                              o.model_path, s->m.model->type()),
                  kExitUsage);
    AnnOptions ao;
    ao.m = o.hnsw_m, ao.ef_construction = o.hnsw_ef_construction, ao.ef_search = o.hnsw_ef;
    auto t0 = std::chrono::steady_clock::now();
    s->ann = std::make_unique<AnnIndex>(s->item_emb, s->m.items.size(), s->dim, kind, ao);
    spdlog::info("built HNSW index over {} items in {:.2f} s", s->m.items.size(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } else if (o.index != "exact") {
    throw Error(fmt::format("--index '{}' is not allowed; allowed: exact, hnsw", o.index), kExitUsage);
  }
  return s;
}

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

struct HttpError {
  int status;
  std::string message;
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

  static void reply(httplib::Response& res, int status, const json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  int parse_k(const httplib::Request& req, const json* body) {
    int64_t k = 10;
    if (body && body->contains("k")) {
      if (!(*body)["k"].is_number_integer()) throw HttpError{400, "'k' must be an integer"};
      k = (*body)["k"].get<int64_t>();
    } else if (req.has_param("k")) {
      auto v = parse_int(req.get_param_value("k"));
      if (!v) throw HttpError{400, fmt::format("k '{}' is not an integer", req.get_param_value("k"))};
      k = *v;
    }
    if (k < 1 || k > o.max_k) throw HttpError{400, fmt::format("k must be in [1, {}]", o.max_k)};
    return static_cast<int>(k);
  }

  static std::string id_of(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    throw HttpError{400, "ids must be strings or integers"};
  }

  json items_json(const Served& s, const std::vector<int32_t>& items, const std::vector<float>& scores) {
    json arr = json::array();
    for (size_t j = 0; j < items.size(); ++j) {
      json e = {{"item", s.m.items.original(items[j])}, {"score", scores[j]}};
      if (items[j] < static_cast<int32_t>(s.m.item_titles.size()) && !s.m.item_titles[items[j]].empty())
        e["title"] = s.m.item_titles[items[j]];
      arr.push_back(e);
    }
    return arr;
  }

  // Top-k of a score row with the given items masked.
  static void topk(std::vector<float>& row, const std::vector<int32_t>& masked, int k, std::vector<int32_t>& items,
                   std::vector<float>& scores) {
    for (auto i : masked) row[i] = -std::numeric_limits<float>::infinity();
    items.assign(k, 0);
    int n = topk_row(row.data(), static_cast<int32_t>(row.size()), k, items.data());
    items.resize(n);
    scores.clear();
    for (auto i : items) scores.push_back(row[i]);
  }

  void route(const std::string& name, const httplib::Request& req, httplib::Response& res,
             const std::function<void(const Served&)>& fn) {
    auto t0 = std::chrono::steady_clock::now();
    try {
      if (!o.token.empty() && name != "/healthz") {
        if (req.get_header_value("Authorization") != "Bearer " + o.token)
          throw HttpError{401, "missing or wrong bearer token"};
      }
      auto s = current();
      fn(*s);
    } catch (const HttpError& e) {
      reply(res, e.status, {{"error", e.message}});
    } catch (const json::exception& e) {
      reply(res, 400, {{"error", std::string("malformed JSON: ") + e.what()}});
    } catch (const std::exception& e) {
      reply(res, 500, {{"error", e.what()}});
    }
    metrics.observe(name, res.status, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  void setup() {
    http.set_payload_max_length(o.max_body);
    http.set_tcp_nodelay(true);  // small JSON responses: no Nagle delay
    http.set_read_timeout(o.timeout_s, 0);
    http.set_write_timeout(o.timeout_s, 0);
    http.new_task_queue = [n = o.threads] { return new httplib::ThreadPool(static_cast<size_t>(std::max(1, n))); };

    http.Get("/healthz", [this](const httplib::Request& req, httplib::Response& res) {
      route("/healthz", req, res, [&](const Served& s) {
        reply(res, 200,
              {{"status", "ok"},
               {"model_version", s.version},
               {"model_type", s.m.model->type()},
               {"users", s.m.users.size()},
               {"items", s.m.items.size()}});
      });
    });
    http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      route("/metrics", req, res, [&](const Served& s) {
        res.status = 200;
        res.set_content(metrics.text(s.version), "text/plain; version=0.0.4");
      });
    });
    http.Get("/openapi.json", [this](const httplib::Request& req, httplib::Response& res) {
      route("/openapi.json", req, res, [&](const Served&) { reply(res, 200, openapi()); });
    });
    http.Get("/v1/recommend", [this](const httplib::Request& req, httplib::Response& res) {
      route("/v1/recommend", req, res, [&](const Served& s) {
        if (!req.has_param("user")) throw HttpError{400, "query parameter 'user' is required"};
        std::string uid = req.get_param_value("user");
        int k = parse_k(req, nullptr);
        bool exclude = !req.has_param("exclude_seen") || req.get_param_value("exclude_seen") != "false";
        int32_t u = s.m.users.find(uid);
        if (u < 0) throw HttpError{404, fmt::format("unknown user '{}'", uid)};
        std::vector<int32_t> seen;
        if (exclude)
          seen.assign(s.m.train.indices.begin() + s.m.train.begin(u), s.m.train.indices.begin() + s.m.train.end(u));
        std::vector<int32_t> items;
        std::vector<float> scores;
        if (s.ann) {  // approximate: k + |seen| neighbours, seen ones dropped
          for (auto& [i, v] :
               s.ann->search(s.user_emb + static_cast<size_t>(u) * s.dim, k + static_cast<int>(seen.size()))) {
            if (static_cast<int>(items.size()) == k) break;
            if (std::binary_search(seen.begin(), seen.end(), i)) continue;
            items.push_back(i), scores.push_back(v);
          }
        } else {
          std::vector<float> row(s.m.items.size());
          s.m.model->score(&u, 1, row.data());
          topk(row, seen, k, items, scores);
        }
        reply(res, 200,
              {{"user", uid}, {"k", k}, {"model_version", s.version}, {"items", items_json(s, items, scores)}});
      });
    });
    http.Post("/v1/recommend", [this](const httplib::Request& req, httplib::Response& res) {
      route("/v1/recommend", req, res, [&](const Served& s) {
        json body = json::parse(req.body);
        if (!body.is_object() || !body.contains("history") || !body["history"].is_array())
          throw HttpError{400, "body must be {\"history\": [item ids], \"k\": K}"};
        int k = parse_k(req, &body);
        std::vector<int32_t> hist, unknown_ok;
        std::vector<std::string> unknown;
        for (auto& v : body["history"]) {
          int32_t i = s.m.items.find(id_of(v));
          if (i < 0)
            unknown.push_back(id_of(v));
          else
            hist.push_back(i);
        }
        if (!unknown.empty() && hist.empty() && !body["history"].empty())
          throw HttpError{404, fmt::format("no known item in the history (unknown: {})", fmt::join(unknown, ", "))};
        std::vector<float> row(s.m.items.size());
        s.m.model->score_history(hist, row.data());
        std::vector<int32_t> items;
        std::vector<float> scores;
        topk(row, hist, k, items, scores);
        json out = {{"k", k}, {"model_version", s.version}, {"items", items_json(s, items, scores)}};
        if (!unknown.empty()) out["ignored_unknown_items"] = unknown;
        reply(res, 200, out);
      });
    });
    http.Get("/v1/similar", [this](const httplib::Request& req, httplib::Response& res) {
      route("/v1/similar", req, res, [&](const Served& s) {
        if (!req.has_param("item")) throw HttpError{400, "query parameter 'item' is required"};
        std::string iid = req.get_param_value("item");
        int k = parse_k(req, nullptr);
        int32_t i = s.m.items.find(iid);
        if (i < 0) throw HttpError{404, fmt::format("unknown item '{}'", iid)};
        std::vector<std::pair<int32_t, float>> sim;
        if (s.ann) {
          for (auto& [j, v] : s.ann->search(s.item_emb + static_cast<size_t>(i) * s.dim, k + 1))
            if (j != i && static_cast<int>(sim.size()) < k) sim.emplace_back(j, v);
        } else if (!s.m.model->similar_items(i, k, sim))
          throw HttpError{400, fmt::format("model type '{}' has no item similarity", s.m.model->type())};
        std::vector<int32_t> items;
        std::vector<float> scores;
        for (auto& [j, v] : sim) items.push_back(j), scores.push_back(v);
        reply(res, 200,
              {{"item", iid}, {"k", k}, {"model_version", s.version}, {"items", items_json(s, items, scores)}});
      });
    });
    http.Post("/v1/score", [this](const httplib::Request& req, httplib::Response& res) {
      route("/v1/score", req, res, [&](const Served& s) {
        json body = json::parse(req.body);
        if (!body.is_object() || !body.contains("pairs") || !body["pairs"].is_array())
          throw HttpError{400, "body must be {\"pairs\": [[user, item], ...]}"};
        std::vector<int32_t> us, is;
        for (auto& p : body["pairs"]) {
          if (!p.is_array() || p.size() != 2) throw HttpError{400, "each pair must be [user, item]"};
          int32_t u = s.m.users.find(id_of(p[0])), i = s.m.items.find(id_of(p[1]));
          if (u < 0) throw HttpError{404, fmt::format("unknown user '{}'", id_of(p[0]))};
          if (i < 0) throw HttpError{404, fmt::format("unknown item '{}'", id_of(p[1]))};
          us.push_back(u), is.push_back(i);
        }
        if (us.size() > 100000) throw HttpError{400, "at most 100000 pairs per request"};
        std::vector<float> sc(us.size());
        s.m.model->score_pairs(us.data(), is.data(), static_cast<int64_t>(us.size()), sc.data());
        float off = s.m.model->rating_offset();
        for (auto& x : sc) x += off;
        reply(res, 200, {{"model_version", s.version}, {"scores", sc}});
      });
    });
    http.Post("/admin/reload", [this](const httplib::Request& req, httplib::Response& res) {
      route("/admin/reload", req, res, [&](const Served&) {
        std::string err;
        if (!reload(&err)) throw HttpError{500, "reload failed, the previous model keeps serving: " + err};
        reply(res, 200, {{"reloaded", true}, {"model_version", current()->version}});
      });
    });
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) reply(res, res.status, {{"error", fmt::format("HTTP {}", res.status)}});
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

  json openapi() const {
    auto param = [](const char* name, const char* in, bool req, const char* type) {
      return json{{"name", name}, {"in", in}, {"required", req}, {"schema", {{"type", type}}}};
    };
    json err = {{"description", "error"},
                {"content",
                 {{"application/json",
                   {{"schema", {{"type", "object"}, {"properties", {{"error", {{"type", "string"}}}}}}}}}}}};
    json ok = {{"description", "ok"}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}};
    return {
        {"openapi", "3.0.3"},
        {"info", {{"title", "siamrec"}, {"version", SIAMREC_VERSION}}},
        {"paths",
         {{"/v1/recommend",
           {{"get",
             {{"summary", "top-k items for a known user"},
              {"parameters",
               {param("user", "query", true, "string"), param("k", "query", false, "integer"),
                param("exclude_seen", "query", false, "boolean")}},
              {"responses", {{"200", ok}, {"400", err}, {"404", err}}}}},
            {"post",
             {{"summary", "top-k items for an unseen user given a history (fold-in)"},
              {"requestBody",
               {{"content",
                 {{"application/json",
                   {{"schema",
                     {{"type", "object"},
                      {"properties",
                       {{"history", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                        {"k", {{"type", "integer"}}}}}}}}}}}}},
              {"responses", {{"200", ok}, {"400", err}, {"404", err}, {"413", err}}}}}}},
          {"/v1/similar",
           {{"get",
             {{"summary", "items most similar to an item"},
              {"parameters", {param("item", "query", true, "string"), param("k", "query", false, "integer")}},
              {"responses", {{"200", ok}, {"400", err}, {"404", err}}}}}}},
          {"/v1/score",
           {{"post",
             {{"summary", "scores of (user, item) pairs"}, {"responses", {{"200", ok}, {"400", err}, {"404", err}}}}}}},
          {"/healthz", {{"get", {{"summary", "liveness and the model version"}, {"responses", {{"200", ok}}}}}}},
          {"/metrics",
           {{"get", {{"summary", "Prometheus metrics"}, {"responses", {{"200", {{"description", "text"}}}}}}}}},
          {"/admin/reload",
           {{"post",
             {{"summary", "reload the model file; the old model keeps serving on failure"},
              {"responses", {{"200", ok}, {"500", err}}}}}}}}}};
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
