#include "serve/handlers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
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

namespace {
void write_item_pieces(Served& s);
}

std::shared_ptr<const Served> load_served(const ServeOptions& o) {
  auto s = std::make_shared<Served>(api::Model::load(o.model_path));
  s->model.set_exclude(o.exclude);
  const std::string sha = sha256_file(o.model_path);
  s->version = sha.substr(0, 12);
  s->path = o.model_path;
  if (o.index == "hnsw" || o.index == "ivf") {
    const std::string space = s->model.retrieval_space();
    s->item_emb = s->model.item_embeddings();
    s->user_emb = s->model.user_embeddings();
    if (s->item_emb.rows == 0 || s->user_emb.rows == 0 || space.empty())
      throw Error(fmt::format("--index {} needs a model with user and item embeddings compared by dot, cosine or "
                              "euclidean distance; '{}' is a '{}' model",
                              o.index, o.model_path, s->model.type()),
                  kExitUsage);
    const Similarity kind = space == "dot"         ? Similarity::Dot
                            : space == "cosine"    ? Similarity::Cosine
                            : space == "euclidean" ? Similarity::NegEuclidean
                                                   : Similarity::NegSqEuclidean;
    AnnOptions ao;
    ao.type = o.index;
    ao.m = o.hnsw_m, ao.ef_construction = o.hnsw_ef_construction, ao.ef_search = o.hnsw_ef;
    ao.nlist = o.ivf_nlist, ao.nprobe = o.ivf_nprobe;
    auto t0 = std::chrono::steady_clock::now();
    std::string how;
    s->ann = load_or_build_ann(o.model_path + "." + o.index, sha, s->item_emb.data.data(),
                               static_cast<int64_t>(s->item_emb.rows), static_cast<int>(s->item_emb.cols), kind, ao,
                               o.index_cache, &how);
    spdlog::info("{} index over {} items {} in {:.2f} s", o.index == "ivf" ? "IVF" : "HNSW", s->item_emb.rows, how,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } else if (o.index != "exact") {
    throw Error(fmt::format("--index '{}' is not allowed; allowed: exact, hnsw, ivf", o.index), kExitUsage);
  }
  write_item_pieces(*s);
  return s;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      const int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1, lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        throw HttpError{400, fmt::format("malformed percent-escape at byte {} of the request target", i)};
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

// "a, b, c and 12 more": error messages name a few ids, never the whole request.
std::string few(const std::vector<std::string>& ids) {
  constexpr size_t kShown = 5;
  std::string o;
  for (size_t i = 0; i < ids.size() && i < kShown; ++i) o += (i ? ", " : "") + printable(ids[i], 64);
  if (ids.size() > kShown) o += fmt::format(" and {} more", ids.size() - kShown);
  return o;
}

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

// A JSON string: plain printable ASCII directly (ids and titles, nearly always), anything else
// (quotes, controls, UTF-8, invalid bytes) through nlohmann's escaping with invalid UTF-8 replaced.
void put_json_string(std::string& out, std::string_view v) {
  bool plain = true;
  for (unsigned char ch : v) plain &= ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
  if (!plain) {
    out += json(std::string(v)).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out += '"';
  out.append(v.data(), v.size());
  out += '"';
}

// Item i's head `{"item":"ID","score":` and tail `,"title":"..."}` into Served::item_json (once, at
// load): a recommendation answer then only appends them around its scores.
void write_item_pieces(Served& s) {
  const int64_t n = s.model.n_items();
  s.item_json.clear();
  s.item_json_at.assign(static_cast<size_t>(2 * n + 1), 0);
  for (int64_t i = 0; i < n; ++i) {
    const std::string id = s.model.item_id(i);
    s.item_json_at[2 * i] = s.item_json.size();
    s.item_json += "{\"item\":";
    put_json_string(s.item_json, id);
    s.item_json += ",\"score\":";
    s.item_json_at[2 * i + 1] = s.item_json.size();
    if (std::string t = s.model.item_title(id); !t.empty()) {
      s.item_json += ",\"title\":";
      put_json_string(s.item_json, t);
    }
    s.item_json += '}';
  }
  s.item_json_at[2 * n] = s.item_json.size();
}

// {"items":[{"item":..,"score":..,"title":..}],"k":..,"model_version":..,<key>:<value>} as text,
// keys in nlohmann's (sorted) order, so the bytes match what json::dump wrote before.
std::string items_text(const Served& s, const std::vector<std::pair<int64_t, float>>& items, int k, const char* key,
                       std::string_view value) {
  std::string out;
  out.reserve(96 + items.size() * 64);
  out += "{\"items\":[";
  const size_t* at = s.item_json_at.data();
  for (size_t q = 0; q < items.size(); ++q) {
    if (q) out += ',';
    const size_t i = static_cast<size_t>(items[q].first);
    out.append(s.item_json, at[2 * i], at[2 * i + 1] - at[2 * i]);
    const double v = items[q].second;  // as nlohmann stores a float: a double, shortest round trip
    if (std::isfinite(v)) {
      const size_t from = out.size();
      fmt::format_to(std::back_inserter(out), "{}", v);
      if (out.find_first_of(".e", from) == std::string::npos) out += ".0";  // nlohmann writes 1.0, not 1
    } else {
      out += "null";
    }
    out.append(s.item_json, at[2 * i + 1], at[2 * i + 2] - at[2 * i + 1]);
  }
  fmt::format_to(std::back_inserter(out), "],\"k\":{},\"model_version\":", k);
  put_json_string(out, s.version);
  out += ",\"";
  out += key;
  out += "\":";
  put_json_string(out, value);
  out += '}';
  return out;
}

json items_json(const Served& s, const std::vector<api::Scored>& items) {
  json arr = json::array();
  for (auto& r : items) {
    json e = {{"item", r.item}, {"score", r.score}};
    if (std::string t = s.model.item_title(r.item); !t.empty()) e["title"] = t;
    arr.push_back(e);
  }
  return arr;
}

}  // namespace

std::string ApiResponse::render() const {
  return text.empty() ? body.dump(-1, ' ', false, json::error_handler_t::replace) : text;
}

std::string parse_target(std::string_view target, ApiRequest& r) {
  const size_t q = target.find('?');
  std::string path = percent_decode(target.substr(0, q), false);
  if (path.empty() || path[0] != '/') throw HttpError{400, "the request target must be a path starting with '/'"};
  if (q == std::string_view::npos) return path;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string key = percent_decode(part.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1), true);
    if (!key.empty()) r.query.emplace(std::move(key), std::move(value));
  }
  return path;
}

ApiResponse recommend_user(const Served& s, const ApiRequest& req, const ServeLimits& l) {
  const std::string* user = param(req, "user");
  if (!user || user->empty()) throw HttpError{400, "query parameter 'user' is required (a user id)"};
  const std::string& uid = *user;
  int k = parse_k(req, nullptr, l);
  bool exclude = true;
  if (const std::string* ex = param(req, "exclude_seen")) {
    if (*ex == "true" || *ex == "1") {
      exclude = true;
    } else if (*ex == "false" || *ex == "0") {
      exclude = false;
    } else {
      throw HttpError{400, fmt::format("exclude_seen '{}' must be true, false, 1 or 0", printable(*ex, 64))};
    }
  }
  const int64_t u = s.model.user_index(uid);
  if (u < 0) throw HttpError{404, fmt::format("unknown user '{}'", printable(uid, 64))};
  std::vector<std::pair<int64_t, float>> items;  // (item index, score)
  items.reserve(static_cast<size_t>(k));
  if (s.ann) {  // approximate: k + |seen| neighbours, seen ones dropped
    std::vector<int64_t> seen;
    if (exclude) seen = s.model.excluded_items(u);
    const float* q = s.user_emb.data.data() + u * s.user_emb.cols;
    for (auto& [i, v] : s.ann->search(q, k + static_cast<int>(seen.size()))) {
      if (static_cast<int>(items.size()) == k) break;
      if (std::binary_search(seen.begin(), seen.end(), static_cast<int64_t>(i))) continue;
      items.emplace_back(i, v);
    }
  } else {  // exact, by index: no id strings until the answer's text
    std::vector<int64_t> top(static_cast<size_t>(k));
    std::vector<float> score(static_cast<size_t>(k));
    s.model.recommend_indices(&u, 1, k, exclude, /*threads=*/1, top.data(), score.data());
    for (int j = 0; j < k && top[j] >= 0; ++j) items.emplace_back(top[j], score[j]);
  }
  ApiResponse r;
  r.text = items_text(s, items, k, "user", uid);
  return r;
}

ApiResponse recommend_history(const Served& s, const ApiRequest& req, const ServeLimits& l) {
  json body = json::parse(req.body);
  if (!body.is_object() || !body.contains("history") || !body["history"].is_array())
    throw HttpError{400, "body must be {\"history\": [item ids], \"k\": K}"};
  int k = parse_k(req, &body, l);
  std::vector<std::string> hist, unknown;
  for (auto& v : body["history"]) {
    std::string id = id_of(v);
    (s.model.item_index(id) < 0 ? unknown : hist).push_back(id);
  }
  if (hist.empty() && unknown.empty()) throw HttpError{400, "'history' is empty: name at least one item"};
  if (hist.empty()) throw HttpError{404, fmt::format("no known item in the history (unknown: {})", few(unknown))};
  json out = {{"k", k}, {"model_version", s.version}, {"items", items_json(s, s.model.recommend_history(hist, k))}};
  if (!unknown.empty()) out["ignored_unknown_items"] = unknown;
  return {200, out};
}

ApiResponse similar_items(const Served& s, const ApiRequest& req, const ServeLimits& l) {
  const std::string* item = param(req, "item");
  if (!item || item->empty()) throw HttpError{400, "query parameter 'item' is required (an item id)"};
  const std::string& iid = *item;
  int k = parse_k(req, nullptr, l);
  const int64_t i = s.model.item_index(iid);
  if (i < 0) throw HttpError{404, fmt::format("unknown item '{}'", printable(iid, 64))};
  std::vector<api::Scored> items;
  if (s.ann) {
    for (auto& [j, v] : s.ann->search(s.item_emb.data.data() + i * s.item_emb.cols, k + 1))
      if (j != i && static_cast<int>(items.size()) < k) items.push_back({s.model.item_id(j), v});
  } else {
    try {
      items = s.model.similar(iid, k);
    } catch (const ConfigError&) {  // the item is known (above): the model type has no item similarity
      throw HttpError{400, fmt::format("model type '{}' has no item similarity", s.model.type())};
    }
  }
  return {200, {{"item", iid}, {"k", k}, {"model_version", s.version}, {"items", items_json(s, items)}}};
}

ApiResponse score_pairs(const Served& s, const ApiRequest& req) {
  json body = json::parse(req.body);
  if (!body.is_object() || !body.contains("pairs") || !body["pairs"].is_array())
    throw HttpError{400, "body must be {\"pairs\": [[user, item], ...]}"};
  if (body["pairs"].size() > 100000) throw HttpError{400, "at most 100000 pairs per request"};
  std::vector<std::string> us, is, unknown_users, unknown_items;
  for (auto& p : body["pairs"]) {
    if (!p.is_array() || p.size() != 2) throw HttpError{400, "each pair must be [user, item]"};
    std::string u = id_of(p[0]), i = id_of(p[1]);
    if (s.model.user_index(u) < 0) unknown_users.push_back(u);
    if (s.model.item_index(i) < 0) unknown_items.push_back(i);
    us.push_back(std::move(u)), is.push_back(std::move(i));
  }
  if (!unknown_users.empty() || !unknown_items.empty()) {
    std::string msg;
    if (!unknown_users.empty()) msg = fmt::format("unknown users: {}", few(unknown_users));
    if (!unknown_items.empty()) msg += fmt::format("{}unknown items: {}", msg.empty() ? "" : "; ", few(unknown_items));
    throw HttpError{404, msg};
  }
  return {200, {{"model_version", s.version}, {"scores", s.model.score(us, is)}}};
}

ApiResponse health(const Served& s) {
  return {200,
          {{"status", "ok"},
           {"model_version", s.version},
           {"model_type", s.model.type()},
           {"users", s.model.n_users()},
           {"items", s.model.n_items()}}};
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
