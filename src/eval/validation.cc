#include "eval/validation.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include <fmt/format.h>

#include "eval/evaluator.h"
#include "eval/metric.h"
#include "eval/retrieval.h"
#include "util/error.h"
#include "util/rng.h"
#include "util/strings.h"

namespace siamrec {

namespace {

// Items of a held-out set query each other (retrieval validation of label-builder models).
double retrieval_validation(const ValidationRequest& q) {
  const auto [name, K] = parse_metric(q.metric, "train.valid_metric");
  if (name != "recall")
    throw ConfigError(fmt::format(
        "train.valid_metric '{}': a retrieval model (sampler.builder label) is validated by retrieval among "
        "held-out items; set train.valid_metric recall@K (the share of queries with an item of their category "
        "in the top K)",
        q.metric));
  std::vector<float> unit;
  const float* emb = q.item_vectors;
  if (q.similarity == Similarity::Cosine) {
    unit.assign(q.item_vectors, q.item_vectors + static_cast<size_t>(q.n_items) * q.dim);
    normalize_rows(unit.data(), q.n_items, q.dim);
    emb = unit.data();
  }
  RetrievalSpec spec;
  spec.ks = {K};
  spec.threads = q.threads;
  return evaluate_retrieval(emb, q.dim, q.similarity, *q.retrieval_set, *q.labels, spec).get(q.metric);
}

}  // namespace

Validator ranking_validator() {
  return [](const ValidationRequest& q) {
    if (q.retrieval_set) return retrieval_validation(q);
    const int K = parse_metric(q.metric, "train.valid_metric").second;
    EvalContext ctx;
    ctx.n_users = q.n_users, ctx.n_items = q.n_items;
    ctx.train = q.exclude;
    ctx.test = q.valid;
    ctx.threads = q.threads;
    ctx.data_protocol = "validation";
    // A seeded sample of the validation users (the same sample at every validation).
    Interactions sample;
    if (q.max_users > 0) {
      std::vector<int32_t> users;
      std::vector<char> has(static_cast<size_t>(q.n_users), 0);
      for (int32_t u : q.valid->user)
        if (!has[u]) has[u] = 1, users.push_back(u);
      if (static_cast<int64_t>(users.size()) > q.max_users) {
        std::sort(users.begin(), users.end());
        std::mt19937_64 rng(mix64(q.seed ^ 0x76616c6964ULL));
        for (size_t k = users.size(); k > 1; --k) std::swap(users[k - 1], users[rng() % k]);
        std::fill(has.begin(), has.end(), 0);
        for (int64_t k = 0; k < q.max_users; ++k) has[users[k]] = 1;
        std::vector<char> keep(q.valid->size());
        for (size_t r = 0; r < keep.size(); ++r) keep[r] = has[q.valid->user[r]];
        sample = q.valid->select(keep);
        ctx.test = &sample;
      }
    }
    EvalSpec s;
    s.ks = {K};
    s.candidates = q.candidates;
    s.seed = q.seed;
    double v;
    if (!q.candidate_items) {
      v = evaluate_ranking(*q.scorer, ctx, s).get(q.metric);
    } else {
      std::vector<char> cand(static_cast<size_t>(q.n_items), 0);
      for (auto i : *q.candidate_items) cand[i] = 1;
      v = evaluate_ranking(restrict_to(*q.scorer, cand), ctx, s).get(q.metric);
    }
    if (std::isnan(v))
      throw ConfigError(
          fmt::format("train.valid_metric '{}' is not computed on this validation data (graded metrics "
                      "need ratings)",
                      q.metric));
    return v;
  };
}

}  // namespace siamrec
