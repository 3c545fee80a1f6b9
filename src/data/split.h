// Filters (explicit -> implicit, de-duplication, iterative k-core) and seeded splits. Every split
// carries a one-line protocol description that later results repeat.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

struct FilterSpec {
  double min_rating = 0;  // keep interactions with rating >= min_rating (0: keep all)
  bool dedup = false;     // keep one interaction per (user, item): the latest by time, else the first
  int user_core = 0;      // iterative k-core: users with >= user_core and items with >= item_core
  int item_core = 0;
  std::string describe() const;
};

// Returns the filtered log (dataset ids are kept; filtered-out users/items simply have no rows).
Interactions apply_filters(const Interactions& log, int32_t n_users, int32_t n_items, const FilterSpec& f);
// Per-user random hold-out of `share` of each user's interactions (users with fewer than 3 keep
// all; every user keeps at least one), seeded: the validation set early stopping and tuning carve
// from train when the split has no validation part.
void carve_per_user(const Interactions& train, int32_t n_users, double share, uint64_t seed, Interactions& fit,
                    Interactions& valid);

struct SplitSpec {
  std::string type = "ratio";                    // ratio | loo | temporal | fixed | cold_items
  std::string order = "random";                  // ratio and loo: random | time
  std::vector<double> ratios = {0.8, 0.1, 0.1};  // ratio, temporal, cold_items: train, valid, test shares
  bool valid = false;                            // loo: also hold out a validation item (second latest)
  std::string name;                              // fixed: a split the dataset ships (ua, u1..u5, lightgcn, ncf, ...)
  uint64_t seed = 42;
  std::string train_file, valid_file, test_file;  // files: the parts' files (the dataset's file_parts)
  std::string describe() const;
};

struct SplitData {
  Interactions train, valid, test;
  // Fixed candidate negatives per user (NCF's 99); empty when the protocol has none.
  std::vector<std::vector<int32_t>> test_negatives;
  // Items held out entirely (cold-start test items, Fashion-MNIST test images): never trained on,
  // never drawn as negatives; the candidates of eval.candidates heldout and of retrieval.
  std::vector<int32_t> heldout_items;
  // cold_items: the validation items (also never trained on; early stopping ranks within them).
  std::vector<int32_t> valid_items;
  std::string protocol;  // "dataset | filters | split"
};

SplitData make_split(const Dataset& ds, const FilterSpec& f, const SplitSpec& s);

}  // namespace siamrec
