// Dataset summary printed by `siamrec info` (and the demo).
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.h"

namespace siamrec {

struct DatasetSummary {
  std::string name, description;
  int64_t users = 0, items = 0, interactions = 0;
  int64_t active_users = 0, active_items = 0;  // with at least one interaction
  double density = 0;
  std::map<float, int64_t> rating_histogram;  // empty when there are no ratings
  int64_t time_min = 0, time_max = 0;         // 0,0 when there are no timestamps
  double top20_share = 0;                     // share of interactions on the 20% most popular items (of active items)
  int64_t items_with_title = 0, items_with_genres = 0, items_with_tags = 0, genres = 0;
  size_t memory_bytes = 0;
};

DatasetSummary summarize(const Dataset& ds);
std::string summary_text(const DatasetSummary& s);
nlohmann::json summary_json(const DatasetSummary& s);

}  // namespace siamrec
