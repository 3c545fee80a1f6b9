// Model files: one file per trained model, needing no training data to load.
// Layout (binary container of util/io.h): magic "SRMODEL", format version, the resolved config
// (YAML), the split protocol, user and item id maps, item titles, the training interactions
// (user -> items, to exclude seen items), the model type and its weights, SHA-256 checksum.
// Written atomically; newer format versions are refused with a clear message.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/model.h"

namespace siamrec {

class Config;

struct TrainedModel {
  std::string config_yaml;  // fully resolved config the model was trained with
  std::string protocol;     // data | filters | split it was trained under
  IdMap users, items;
  std::vector<std::string> item_titles;  // may be empty
  Csr train;                             // user -> train items
  // user -> the split's validation items the model did not train on: seen data all the same, so
  // recommendations exclude them with the train items (as the evaluation does). Empty without a
  // validation part, or when the model was fitted on train + validation.
  Csr valid;
  // One JSON object per `siamrec update` the model went through (date, source, counts, seconds),
  // oldest first; empty for a model that was only trained.
  std::vector<std::string> updates;
  std::shared_ptr<Model> model;  // shared: zero-copy embedding views keep the weights alive
};

// 2: entity graphs (gcn); 3: text, warm flags, content; 4: validation interactions (older files load
// with none); 5: the update history; 6: SASRec transformer blocks by default (user_tower.norm pre,
// positions latest); 7: Siamese models keep the side data and text vocabulary their towers read
// (updates of content towers).
inline constexpr uint32_t kModelFormatVersion = 7;
// A config read from a file of format `version` as that version meant it: keys added since get
// the values that reproduce the old behaviour where their new defaults would change it.
void upgrade_model_config(Config& c, uint32_t version);
void save_model_file(const TrainedModel& m, const std::string& path);
TrainedModel load_model_file(const std::string& path);
// A deep copy of a model through its own save and load (in memory).
std::shared_ptr<Model> clone_model(const Model& m);

}  // namespace siamrec
