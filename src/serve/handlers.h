// The server's endpoints as plain functions of a request (query parameters and body) and the
// model being served: no HTTP, so tests call them directly. serve/server.cc wires them to routes
// (cpp-httplib), adds authentication, metrics and reload.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <siamrec/model.h>

#include "retrieval/ann.h"

namespace siamrec {

struct ServeOptions;

// A loaded model file, as served (swapped whole on reload): the public API's model, and an HNSW
// index over its item embeddings when serving with --index hnsw.
struct Served {
  api::Model model;
  std::string version;  // first 12 hex digits of the file's SHA-256
  std::string path;
  std::unique_ptr<AnnIndex> ann;   // when serving with --index hnsw
  api::Matrix user_emb, item_emb;  // the index's vectors (hnsw only)
  // Each item's part of a recommendation answer, written once at load (the hot handler only
  // appends): item i's head `{"item":"ID","score":` is item_json[at[2i], at[2i+1]), its tail
  // `,"title":"..."}` (or `}` when untitled) item_json[at[2i+1], at[2i+2]).
  std::string item_json;
  std::vector<size_t> item_json_at;
  explicit Served(api::Model m) : model(std::move(m)) {}
};

// Loads the model file of `o` (and builds its HNSW index when asked); throws Error naming the file.
std::shared_ptr<const Served> load_served(const ServeOptions& o);

struct ApiRequest {
  std::map<std::string, std::string> query;  // query parameters
  std::string body;                          // JSON body of POST requests
};
struct ApiResponse {
  int status = 200;
  nlohmann::json body;  // {"error": "..."} when status >= 400
  std::string text;     // the body already written as JSON text (the hot handlers); then `body` is unused
  // The body as JSON text, and as a JSON value (tests).
  std::string render() const;
  nlohmann::json value() const { return text.empty() ? body : nlohmann::json::parse(text); }
};

// A 4xx/5xx answer: handlers throw it, handle() turns it into the response.
struct HttpError {
  int status;
  std::string message;
};

struct ServeLimits {
  int max_k = 1000;
};

ApiResponse recommend_user(const Served& s, const ApiRequest& r, const ServeLimits& l);     // GET /v1/recommend
ApiResponse recommend_history(const Served& s, const ApiRequest& r, const ServeLimits& l);  // POST /v1/recommend
ApiResponse similar_items(const Served& s, const ApiRequest& r, const ServeLimits& l);      // GET /v1/similar
ApiResponse score_pairs(const Served& s, const ApiRequest& r);                              // POST /v1/score
ApiResponse health(const Served& s);                                                        // GET /healthz
nlohmann::json openapi();                                                                   // GET /openapi.json

// Splits a request target ("/v1/recommend?user=1&k=5") into its path (returned) and query parameters
// (percent- and '+'-decoded; the first of a repeated parameter wins). 400 on a malformed escape or a
// target that is not a path.
std::string parse_target(std::string_view target, ApiRequest& r);

// Runs a handler: HttpError -> its status, malformed JSON -> 400, any other exception -> 500.
ApiResponse handle(const std::function<ApiResponse()>& fn);

}  // namespace siamrec
