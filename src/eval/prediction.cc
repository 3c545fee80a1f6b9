#include "eval/prediction.h"

#include <chrono>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "eval/metrics.h"
#include "models/model.h"
#include "util/error.h"
#include "util/rng.h"

namespace siamrec {

EvalResult evaluate_rating(const Model& model, const Interactions& t, const std::string& data_protocol) {
  auto t0 = std::chrono::steady_clock::now();
  if (!t.has_rating()) throw ConfigError("model.task 'rating' needs ratings in the test data");
  std::vector<float> pred(t.size());
  model.score_pairs(t.user.data(), t.item.data(), static_cast<int64_t>(t.size()), pred.data());
  float off = model.rating_offset();
  for (auto& x : pred) x += off;
  EvalResult r;
  r.kind = "rating";
  r.metrics = {{"rmse", metric::rmse(pred, t.rating)}, {"mae", metric::mae(pred, t.rating)}};
  r.users.resize(t.size());
  r.protocol =
      fmt::format("{} | task: rating prediction on {} held-out ratings (prediction = similarity + train mean {:.4f})",
                  data_protocol, t.size(), off);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

EvalResult evaluate_pairs(const Model& model, const Csr& train, const Interactions& t, int32_t n_users, int32_t n_items,
                          uint64_t seed, double thr, const std::string& data_protocol) {
  auto t0 = std::chrono::steady_clock::now();
  Csr test_by_user = Csr::from_interactions(t, n_users, false);
  std::vector<int32_t> us, is;
  std::vector<int> labels;
  std::mt19937_64 rng(mix64(seed ^ 0x9a1));
  const int32_t I = n_items;
  for (size_t r = 0; r < t.size(); ++r) {
    int32_t u = t.user[r];
    us.push_back(u), is.push_back(t.item[r]), labels.push_back(1);
    int32_t j = static_cast<int32_t>(rng() % static_cast<uint64_t>(I));
    for (int tries = 0; tries < 100 && (train.contains(u, j) || test_by_user.contains(u, j)); ++tries)
      j = static_cast<int32_t>(rng() % static_cast<uint64_t>(I));
    us.push_back(u), is.push_back(j), labels.push_back(0);
  }
  std::vector<float> s(us.size());
  model.score_pairs(us.data(), is.data(), static_cast<int64_t>(us.size()), s.data());
  auto pm = metric::pair_metrics(s, labels, static_cast<float>(thr));
  EvalResult r;
  r.kind = "pairs";
  r.metrics = {{"accuracy", pm.accuracy},
               {"precision", pm.precision},
               {"recall", pm.recall},
               {"f1", pm.f1},
               {"roc_auc", pm.roc_auc}};
  r.users.resize(us.size());
  r.protocol = fmt::format(
      "{} | task: pair classification, {} test pairs (label 1) + 1 uniformly sampled unseen item per pair "
      "(label 0, seed {}) | threshold {:g}",
      data_protocol, t.size(), seed, thr);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace siamrec
