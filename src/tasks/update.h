// Incremental updates (siamrec update, api::Model::update, Python partial_fit): a trained model
// continued on new interactions, its id space grown by their new users and items.
#pragma once
#include <cstdint>
#include <string>

#include "config/config.h"
#include "data/dataset.h"
#include "models/model_file.h"
#include "tasks/pipeline.h"

namespace siamrec {

struct UpdateResult {
  int64_t new_interactions = 0;  // rows of the new data (after filter.min_rating / filter.dedup)
  int64_t replayed = 0;          // earlier interactions sampled into the update's training data
  int64_t new_users = 0, new_items = 0;
  int64_t known_interactions = 0;  // every interaction the updated model knows (excluded when recommending)
  int epochs = 0;
  double seconds = 0;
  std::string record;  // the JSON line appended to the model's update history
};

// New interactions for model `tm`, read with the data mapping of config `c` (its data.format,
// columns, delimiter, ...) from `path` (update_model filters them). A model with integer ids reads
// integer ids only, so a file of other ids is refused with file:line.
Dataset read_new_interactions(const Config& c, const std::string& path, const TrainedModel& tm, const RunOptions& o);

// Side data (item titles, genres, tags; user features) for ds's entities from `meta`, a dataset
// holding them (e.g. the registered dataset a model was trained on), matched by original id; returns
// how many of ds's items `meta` describes. A model of a registered dataset whose towers read side
// data gets its new entities' this way in read_new_interactions.
int64_t attach_side_data(Dataset& ds, const Dataset& meta);

// Updates `tm` in place: grows its id maps (the sorted union of old and new ids), continues the
// model (Model::update) on the new interactions and a seeded replay sample of the old
// (update.replay_share), for update.epochs; the known interactions become old + new, and the
// history gets one record. `c` is the model's config with any update.* overrides.
UpdateResult update_model(TrainedModel& tm, const Dataset& fresh, const Config& c, const RunOptions& o,
                          const std::string& source);

}  // namespace siamrec
