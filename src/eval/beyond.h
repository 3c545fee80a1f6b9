// Beyond-accuracy metrics over the recommendation lists of all evaluated users
// (formulas in docs/metrics.md): coverage, Gini, entropy, novelty, ARP, long-tail share,
// intra-list diversity (genres, embeddings) and popularity lift.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace siamrec {

struct BeyondInputs {
  int32_t n_items = 0;
  int64_t n_train_users = 0;                                  // users with at least one train interaction
  std::vector<int64_t> item_pop;                              // train interactions per item
  std::vector<int64_t> item_users;                            // distinct train users per item
  const std::vector<std::vector<int32_t>>* genres = nullptr;  // item -> genre ids (may be null)
  const float* emb = nullptr;                                 // item embeddings (may be null)
  int dim = 0;
  double head_share = 0.2;  // most popular share of items = short head
};

struct BeyondResult {
  std::map<std::string, double> aggregate;              // "coverage", "gini", ...
  std::map<std::string, std::vector<double>> per_user;  // per-user metrics (NaN = undefined)
  std::vector<int64_t> exposure;                        // per item: the lists that hold it
};

// lists[u]: the u-th evaluated user's top-K items (truncated to K); profile_arp[u]: mean train
// popularity of that user's train items.
BeyondResult beyond_accuracy(const std::vector<std::vector<int32_t>>& lists, const std::vector<double>& profile_arp,
                             const BeyondInputs& in);

}  // namespace siamrec
