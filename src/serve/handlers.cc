#include "serve/handlers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "scoring/topk.h"
#include "serve/server.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

using json = nlohmann::json;

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

namespace {

int parse_k(const ApiRequest& req, const json* body, const ServeLimits& l) {
  int64_t k = 10;
  if (body && body->contains("k")) {
    if (!(*body)["k"].is_number_integer()) throw HttpError{400, "'k' must be an integer"};
    k = (*body)["k"].get<int64_t>();
  } else if (auto it = req.query.find("k"); it != req.query.end()) {
    auto v = parse_int(it->second);
    if (!v) throw HttpError{400, fmt::format("k '{}' is not an integer", it->second)};
    k = *v;
  }
  if (k < 1 || k > l.max_k) throw HttpError{400, fmt::format("k must be in [1, {}]", l.max_k)};
  return static_cast<int>(k);
}

const std::string* param(const ApiRequest& r, const char* name) {
  auto it = r.query.find(name);
  return it == r.query.end() ? nullptr : &it->second;
}

std::string id_of(const json& v) {
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
void topk(std::vector<float>& row, const std::vector<int32_t>& masked, int k, std::vector<int32_t>& items,
          std::vector<float>& scores) {
  for (auto i : masked) row[i] = -std::numeric_limits<float>::infinity();
  items.assign(k, 0);
  int n = topk_row(row.data(), static_cast<int32_t>(row.size()), k, items.data());
  items.resize(n);
  scores.clear();
  for (auto i : items) scores.push_back(row[i]);
}

}  // namespace

ApiResponse recommend_user(const Served& s, const ApiRequest& req, const ServeLimits& l) {
  const std::string* user = param(req, "user");
  if (!user) throw HttpError{400, "query parameter 'user' is required"};
  std::string uid = *user;
  int k = parse_k(req, nullptr, l);
  const std::string* ex = param(req, "exclude_seen");
  bool exclude = !ex || *ex != "false";
  int32_t u = s.m.users.find(uid);
  if (u < 0) throw HttpError{404, fmt::format("unknown user '{}'", uid)};
  std::vector<int32_t> seen;
  if (exclude)
    seen.assign(s.m.train.indices.begin() + s.m.train.begin(u), s.m.train.indices.begin() + s.m.train.end(u));
  std::vector<int32_t> items;
  std::vector<float> scores;
  if (s.ann) {  // approximate: k + |seen| neighbours, seen ones dropped
    for (auto& [i, v] : s.ann->search(s.user_emb + static_cast<size_t>(u) * s.dim, k + static_cast<int>(seen.size()))) {
      if (static_cast<int>(items.size()) == k) break;
      if (std::binary_search(seen.begin(), seen.end(), i)) continue;
      items.push_back(i), scores.push_back(v);
    }
  } else {
    std::vector<float> row(s.m.items.size());
    s.m.model->score(&u, 1, row.data());
    topk(row, seen, k, items, scores);
  }
  return {200, {{"user", uid}, {"k", k}, {"model_version", s.version}, {"items", items_json(s, items, scores)}}};
}

ApiResponse recommend_history(const Served& s, const ApiRequest& req, const ServeLimits& l) {
  json body = json::parse(req.body);
  if (!body.is_object() || !body.contains("history") || !body["history"].is_array())
    throw HttpError{400, "body must be {\"history\": [item ids], \"k\": K}"};
  int k = parse_k(req, &body, l);
  std::vector<int32_t> hist;
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
  return {200, out};
}

ApiResponse similar_items(const Served& s, const ApiRequest& req, const ServeLimits& l) {
  const std::string* item = param(req, "item");
  if (!item) throw HttpError{400, "query parameter 'item' is required"};
  std::string iid = *item;
  int k = parse_k(req, nullptr, l);
  int32_t i = s.m.items.find(iid);
  if (i < 0) throw HttpError{404, fmt::format("unknown item '{}'", iid)};
  std::vector<std::pair<int32_t, float>> sim;
  if (s.ann) {
    for (auto& [j, v] : s.ann->search(s.item_emb + static_cast<size_t>(i) * s.dim, k + 1))
      if (j != i && static_cast<int>(sim.size()) < k) sim.emplace_back(j, v);
  } else if (!s.m.model->similar_items(i, k, sim)) {
    throw HttpError{400, fmt::format("model type '{}' has no item similarity", s.m.model->type())};
  }
  std::vector<int32_t> items;
  std::vector<float> scores;
  for (auto& [j, v] : sim) items.push_back(j), scores.push_back(v);
  return {200, {{"item", iid}, {"k", k}, {"model_version", s.version}, {"items", items_json(s, items, scores)}}};
}

ApiResponse score_pairs(const Served& s, const ApiRequest& req) {
  json body = json::parse(req.body);
  if (!body.is_object() || !body.contains("pairs") || !body["pairs"].is_array())
    throw HttpError{400, "body must be {\"pairs\": [[user, item], ...]}"};
  if (body["pairs"].size() > 100000) throw HttpError{400, "at most 100000 pairs per request"};
  std::vector<int32_t> us, is;
  for (auto& p : body["pairs"]) {
    if (!p.is_array() || p.size() != 2) throw HttpError{400, "each pair must be [user, item]"};
    int32_t u = s.m.users.find(id_of(p[0])), i = s.m.items.find(id_of(p[1]));
    if (u < 0) throw HttpError{404, fmt::format("unknown user '{}'", id_of(p[0]))};
    if (i < 0) throw HttpError{404, fmt::format("unknown item '{}'", id_of(p[1]))};
    us.push_back(u), is.push_back(i);
  }
  std::vector<float> sc(us.size());
  s.m.model->score_pairs(us.data(), is.data(), static_cast<int64_t>(us.size()), sc.data());
  float off = s.m.model->rating_offset();
  for (auto& x : sc) x += off;
  return {200, {{"model_version", s.version}, {"scores", sc}}};
}

ApiResponse health(const Served& s) {
  return {200,
          {{"status", "ok"},
           {"model_version", s.version},
           {"model_type", s.m.model->type()},
           {"users", s.m.users.size()},
           {"items", s.m.items.size()}}};
}

ApiResponse handle(const std::function<ApiResponse()>& fn) {
  try {
    return fn();
  } catch (const HttpError& e) {
    return {e.status, {{"error", e.message}}};
  } catch (const json::exception& e) {
    return {400, {{"error", std::string("malformed JSON: ") + e.what()}}};
  } catch (const std::exception& e) {
    return {500, {{"error", e.what()}}};
  }
}

json openapi() {
  auto param = [](const char* name, const char* in, bool req, const char* type) {
    return json{{"name", name}, {"in", in}, {"required", req}, {"schema", {{"type", type}}}};
  };
  json err = {
      {"description", "error"},
      {"content",
       {{"application/json", {{"schema", {{"type", "object"}, {"properties", {{"error", {{"type", "string"}}}}}}}}}}}};
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

}  // namespace siamrec
