// A model scores items for users. Baselines and Siamese models alike implement this interface,
// register themselves by name (the XGBoost habit), and pass one contract test (the implicit habit).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "scoring/topk.h"
#include "train/fit_data.h"

namespace siamrec {

class BinWriter;
class BinReader;
class Config;
struct Csr;
struct Dataset;
struct Interactions;

// What `Model::update` continues on (siamrec update): the grown id space and the interactions.
struct UpdateData {
  // fit.ds: the grown id space (old ids and the new data's, sorted as every IdMap); fit.train: the
  // interactions to train on (the new ones and a replay sample of the old); fit.train_by_user:
  // every known interaction (old and new), for exclusions and known positives.
  FitData fit;
  const Interactions* all = nullptr;        // every known interaction (models that refit)
  std::vector<int32_t> user_map, item_map;  // old dense id -> new dense id
  // The new data as read (its own ids): side data of new entities (titles, genres, tags, content,
  // user features) for models whose towers read it; `source` names it in messages.
  const Dataset* fresh = nullptr;
  std::string source;
  int epochs = 5;
  std::string init = "mean";  // new rows: mean of known neighbours' vectors, or the model's init
  double lr_scale = 1.0;      // the update's learning rate: the model's train.lr times this
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string type() const = 0;
  virtual void fit(const FitData& d) = 0;
  // Scores every item for n users: out is n x n_items(), row-major. Higher = better.
  virtual void score(const int32_t* users, int n, float* out) const = 0;
  // Scores every item for a user known only by her history (fold-in of an unseen user).
  virtual void score_history(const std::vector<int32_t>& items, float* out) const = 0;
  virtual void save(BinWriter& w) const = 0;
  virtual void load(BinReader& r) = 0;
  // Item embeddings (n_items x dim, row-major) when the model has them; nullptr otherwise.
  virtual const float* item_embeddings(int* dim) const { return nullptr; }
  virtual const float* user_embeddings(int* dim) const { return nullptr; }
  // Scores of explicit (user, item) pairs (feature extraction, rating and pair tasks). The default
  // scores whole rows; models with embeddings override it.
  virtual void score_pairs(const int32_t* users, const int32_t* items, int64_t n, float* out) const;
  // Added to score_pairs for rating prediction (the training mean); 0 for ranking models.
  virtual float rating_offset() const { return 0.0f; }
  // True when the last fit trained on the split's validation part too (train.refit after early
  // stopping on it): its validation interactions are then training data.
  virtual bool fitted_on_valid() const { return false; }
  // The similarity of user/item embeddings as a retrieval space (for ANN indexes); false when the
  // model's scores are not a function of two embeddings with a GEMM form.
  virtual bool retrieval_kind(Similarity* kind) const { return false; }
  // The k items most similar to `item` (itself excluded); false when the model has no notion of
  // item similarity.
  virtual bool similar_items(int32_t item, int k, std::vector<std::pair<int32_t, float>>& out) const;
  // Continues the model on new interactions in a grown id space. The default refits on every known
  // interaction (u.all), which is what counting and neighbourhood baselines amount to; trainable
  // models override it to continue from their weights; models that cannot be updated throw
  // ConfigError saying why.
  virtual void update(const UpdateData& u);

  int32_t n_users() const { return n_users_; }
  int32_t n_items() const { return n_items_; }

 protected:
  int32_t n_users_ = 0, n_items_ = 0;
  friend class ModelIo;
};

using ModelFactory = std::function<std::unique_ptr<Model>()>;
// Registers a model type; returns true so it can initialize a static.
bool register_model(const std::string& name, const std::string& help, ModelFactory f);
std::vector<std::string> model_names();
std::string model_help(const std::string& name);
// Throws ConfigError listing the registered names when unknown.
std::unique_ptr<Model> create_model(const std::string& name);

#define SIAMREC_REGISTER_MODEL(NAME, HELP, CLS) \
  static const bool siamrec_registered_##CLS =  \
      ::siamrec::register_model(NAME, HELP, [] { return std::make_unique<CLS>(); })

}  // namespace siamrec
