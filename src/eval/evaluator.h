// The evaluator: named, reproducible protocols over a model's scores. Every result carries its
// protocol line (dataset, filters, split, candidates, exclusions, ties, K).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "scoring/topk.h"

namespace siamrec {

class Config;
class Model;

struct EvalSpec {
  std::string candidates = "full";  // full | uniform:N | popularity:N | fixed
  std::vector<int> ks = {5, 10, 20};
  bool exclude_train = true;
  uint64_t seed = 2024;
  double head_share = 0.2;
  bool keep_tops = false;  // return each evaluated user's ranked top max(K) (EvalResult::tops)
  static EvalSpec from_config(const Config& c);
  int max_k() const;
};

struct EvalContext {
  int32_t n_users = 0, n_items = 0;
  const Csr* train = nullptr;  // user -> train items (exclusions, popularity)
  const Interactions* test = nullptr;
  const Interactions* valid = nullptr;  // excluded from candidates when testing (may be null)
  const std::vector<std::vector<int32_t>>* fixed_negatives = nullptr;  // "fixed" candidates
  std::string fixed_description;  // how the protocol line names them ("" = the split's lists)
  const std::vector<std::vector<int32_t>>* genres = nullptr;  // for ILD by genre
  const float* item_emb = nullptr;                            // for ILD by embedding
  int emb_dim = 0;
  std::string data_protocol;  // "dataset | filters | split"
  int threads = 1;
};

struct EvalResult {
  std::string kind = "ranking";  // ranking | rating | pairs
  std::string protocol;
  std::vector<std::pair<std::string, double>> metrics;  // in print order
  std::vector<int32_t> users;                           // evaluated users (dense ids)
  std::map<std::string, std::vector<double>> per_user;  // aligned with users
  int64_t test_items_dropped = 0;                       // test items that were train items (cannot be recommended)
  std::vector<std::vector<int32_t>> tops;               // with EvalSpec::keep_tops: per user (aligned with users)
  // Item-level data of the beyond-accuracy metrics (the report's long-tail and Lorenz curves):
  // train interactions per item, and per K how many users' top-K hold each item.
  std::vector<int64_t> item_pop;
  std::map<int, std::vector<int64_t>> exposure;
  double seconds = 0;

  double get(const std::string& name) const;
  std::string table() const;
  nlohmann::json to_json(const IdMap& user_ids) const;
};

EvalResult evaluate_ranking(const BlockScorer& scorer, const EvalContext& ctx, const EvalSpec& spec);
EvalResult evaluate_ranking(const Model& model, const EvalContext& ctx, const EvalSpec& spec);

}  // namespace siamrec
