// A synthetic interaction log for scale tests without downloads (siamrec synth): power-law item
// popularity and user activity, and planted clusters (each user and item belongs to one; a user
// draws most of her items from her cluster). Seeded: the same spec gives the same file. Memory is
// O(users + items): the log is streamed to the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace siamrec {

struct SynthSpec {
  int64_t users = 10000, items = 5000, interactions = 200000;
  int clusters = 20;
  double item_alpha = 0.8;  // item popularity ~ rank^-item_alpha (Zipf)
  double user_alpha = 0.6;  // user activity ~ rank^-user_alpha (every user has >= 1 interaction)
  double in_cluster = 0.8;  // share of a user's draws from her own cluster's items
  uint64_t seed = 42;
};

struct SynthSummary {
  int64_t interactions = 0, users = 0, items_used = 0;
  int64_t max_user_degree = 0, max_item_degree = 0;
  double in_cluster_share = 0;  // measured
  double seconds = 0;
  int64_t bytes = 0;
};

// Validates the spec (ConfigError naming the flag) and writes "user<TAB>item<TAB>timestamp" lines,
// one interaction each (distinct items per user, each user's timestamps increasing), atomically to
// `path`; with `clusters_path` non-empty, also "item<TAB>cluster" and "user<TAB>cluster" lines
// ("i<id>" / "u<id>").
SynthSummary write_synthetic(const SynthSpec& s, const std::string& path, const std::string& clusters_path = "");

// A user's cluster and an item's (the file's ids are 0-based integers).
int synth_user_cluster(const SynthSpec& s, int64_t user);
int synth_item_cluster(const SynthSpec& s, int64_t item);

}  // namespace siamrec
