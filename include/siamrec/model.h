// Models: build from a config, fit on a dataset, then recommend, find similar items, score pairs,
// export embeddings, evaluate, save and load. No training data is needed after fit: a saved model
// file holds the ids, the training interactions it excludes, and the weights.
//
//   auto cfg = siamrec::api::ConfigSource::from_file("examples/configs/ml100k-cml.yaml");
//   siamrec::api::Split s = siamrec::api::Dataset::from_config(cfg).split(cfg);
//   siamrec::api::Model m = siamrec::api::Model::create(cfg);
//   m.fit(s.train, s.valid);
//   for (auto& r : m.recommend("1", 10)) std::cout << r.item << " " << r.score << "\n";
//   std::cout << m.evaluate(s.test).table;
//   m.save("cml.model");
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <siamrec/config.h>
#include <siamrec/dataset.h>
#include <siamrec/evaluate.h>

namespace siamrec::api {

struct Scored {
  std::string item;  // original item id
  float score = 0;   // higher = better
};

// After each training epoch (models trained by epochs: Siamese).
struct EpochProgress {
  int epoch = 0, epochs = 0;  // 1-based epoch, configured epoch count
  double loss = 0, seconds = 0;
  bool has_valid = false;  // a validation metric was computed this epoch
  double valid = 0;
  std::string valid_metric;  // e.g. "ndcg@10"
  bool refit = false;        // the refit on train + validation after early stopping
};

struct FitOptions {
  int threads = 0;  // 0 = all cores
  // Called after every epoch; return false to stop (the best weights so far are kept).
  std::function<bool(const EpochProgress&)> on_epoch;
  const std::atomic<bool>* stop = nullptr;  // set from another thread to stop after the current epoch
  std::string checkpoint;                   // per-epoch checkpoint file ("" = none)
  bool resume = false;                      // continue from `checkpoint` when it exists
  std::string log;                          // JSON-lines training log ("" = none)
};

// How Model::evaluate measures.
struct EvaluateOptions {
  // Keys merged over the model's stored config before evaluating (its eval section: candidates, K,
  // exclusions, ...): a YAML file, then YAML text, then key=value overrides.
  ConfigSource config;
  int threads = 0;  // 0 = all cores
  // A model evaluated under another split than its own can meet its training interactions in the
  // test part: evaluate refuses then (ConfigError naming how many) unless allow_overlap, which
  // reports them in the protocol line instead.
  bool allow_overlap = false;
};

// A matrix of embeddings, row-major.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
};

// A read-only view of a matrix the model owns (no copy): rows x cols floats, row-major, at data.
// `owner` keeps that storage alive, also after the model is destroyed or fitted again (a fit builds
// new weights and leaves viewed ones as they were).
struct MatrixView {
  int64_t rows = 0, cols = 0;
  const float* data = nullptr;  // null when the model has no such embeddings
  std::shared_ptr<const void> owner;
};

// What Model::update did (also appended, as JSON, to Model::updates()).
struct UpdateResult {
  int64_t new_interactions = 0;  // rows of the new data
  int64_t replayed = 0;          // earlier interactions sampled into the update (update.replay_share)
  int64_t new_users = 0, new_items = 0;
  int64_t known_interactions = 0;  // every interaction the model now knows (excluded when recommending)
  int epochs = 0;
  double seconds = 0;
  std::string record;  // the history record (JSON)
};

class Model {
 public:
  // A model as configured (model.type and its sections); not yet fitted.
  static Model create(const ConfigSource& config);
  // A model file written by save() or `siamrec train`; throws Error naming the file when it is
  // missing, truncated, corrupt or of a newer format.
  static Model load(const std::string& path);
  static std::vector<std::string> registered();  // model types

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // Fits on `train` (valid: early stopping data, may be an empty Dataset). Both must be parts of
  // one dataset (same ids), e.g. of Dataset::split.
  void fit(const Dataset& train, const Dataset& valid = Dataset(), const FitOptions& o = {});
  bool fitted() const;

  // Incremental update: continues the fitted model on new interactions (any ids: unseen users and
  // items get rows, seen ones keep theirs), mixed with a seeded replay sample of the interactions
  // it knows (update.replay_share), for update.epochs. `overrides` may set update.* keys (and
  // train.lr, train.threads-free keys). Siamese models with a user_item builder continue from their
  // weights (both engines): id and gcn towers grow rows; content towers read new items' side data
  // (from new_data, else by id from the model's registered dataset) with their trained
  // vocabularies. Counting and neighbourhood baselines refit on every known interaction; other
  // models throw ConfigError saying why. The model is changed only when the update succeeds.
  UpdateResult update(const Dataset& new_data, const FitOptions& o = {}, const ConfigSource& overrides = {});
  // New interactions read from a file with this model's data mapping (data.format, columns, ...,
  // with `overrides`), ready for update(). A model with integer ids reads integer ids only.
  Dataset read_new_data(const std::string& path, const ConfigSource& overrides = {},
                        const DatasetOptions& o = {}) const;
  // The update history, oldest first: one JSON object per update.
  std::vector<std::string> updates() const;

  std::string type() const;         // "siamese", "itemknn", ...
  std::string config_yaml() const;  // the resolved config it was built with
  std::string protocol() const;     // the data it was fitted on
  int64_t n_users() const;
  int64_t n_items() const;
  std::string user_id(int64_t index) const;
  std::string item_id(int64_t index) const;
  int64_t user_index(const std::string& id) const;  // -1 when unknown
  int64_t item_index(const std::string& id) const;
  std::string item_title(const std::string& item) const;  // "" when unknown or untitled
  // The item indices a user was trained on (sorted).
  std::vector<int64_t> training_items(int64_t user_index) const;
  // What exclude_seen drops from recommendations: "train+valid" (default: her train items and the
  // split's validation items the model saw without training on them, the set the evaluation
  // excludes, so printed lists are the evaluated ones), "train", or "none". Throws ConfigError
  // naming the allowed modes.
  void set_exclude(const std::string& mode);
  std::string exclude() const;
  // The item indices exclude_seen drops for a user under the current mode (sorted, distinct).
  std::vector<int64_t> excluded_items(int64_t user_index) const;
  // The space of the embeddings as a retrieval index sees it: "dot", "cosine", "euclidean" or
  // "sq_euclidean" when scores are that function of a user and an item embedding, else "".
  std::string retrieval_space() const;

  // Top-k items for a known user (original id); exclude_seen drops her training items. Throws
  // ConfigError naming the user when unknown.
  std::vector<Scored> recommend(const std::string& user, int k = 10, bool exclude_seen = true, int threads = 0) const;
  // Top-k for every user (user index order), as `siamrec recommend --all-users`.
  std::vector<std::vector<Scored>> recommend_all(int k = 10, bool exclude_seen = true, int threads = 0) const;
  // The same, streamed: `emit` gets each user's list in user index order, while memory stays
  // bounded (users are ranked in chunks) however many users there are.
  void recommend_each(int k, bool exclude_seen, int threads,
                      const std::function<void(const std::string& user, const std::vector<Scored>& items)>& emit) const;
  // Fold-in: top-k for a user known only by her history (original item ids; unknown ids are
  // skipped and counted in *unknown when given); the history's items are excluded.
  std::vector<Scored> recommend_history(const std::vector<std::string>& items, int k = 10,
                                        int* unknown = nullptr) const;
  // The k items most similar to `item` (itself excluded); throws ConfigError when the model type
  // has no item similarity.
  std::vector<Scored> similar(const std::string& item, int k = 10) const;
  // Scores of (user, item) pairs of original ids (rating models: the predicted rating); throws
  // ConfigError naming an unknown id.
  std::vector<float> score(const std::vector<std::string>& users, const std::vector<std::string>& items) const;

  // Batch forms over dense indices (user_index / item_index), for bindings and bulk callers
  // (faiss-style: the caller owns the buffers). recommend_indices fills items and scores with n x k
  // entries, row r for users[r] (repeats allowed); a row with fewer than k candidates is padded with
  // item -1 and score -infinity. score_indices writes n scores. Both throw ConfigError naming the
  // first out-of-range index.
  void recommend_indices(const int64_t* users, int64_t n, int k, bool exclude_seen, int threads, int64_t* items,
                         float* scores) const;
  void score_indices(const int64_t* users, const int64_t* items, int64_t n, float* out) const;
  // True when every original id is an integer (bindings then return ids as integers).
  bool numeric_user_ids() const;
  bool numeric_item_ids() const;
  // Embeddings (rows = users or items in index order); empty when the model has none.
  Matrix user_embeddings() const;
  Matrix item_embeddings() const;
  // The same without a copy (see MatrixView for the lifetime).
  MatrixView user_embeddings_view() const;
  MatrixView item_embeddings_view() const;

  // Evaluates on `test` (a part of the dataset the model was fitted on) under the protocol of the
  // model's config (eval section), with `overrides` ("eval.candidates=uniform:100", ...).
  Evaluation evaluate(const Dataset& test, const std::vector<std::string>& overrides = {}, int threads = 0) const;
  Evaluation evaluate(const Dataset& test, const EvaluateOptions& o) const;
  // The config evaluate uses: the model's stored config with `overrides` merged (as EvaluateOptions::config).
  std::string merged_config_yaml(const ConfigSource& overrides) const;

  // Embedding export: PATH.npy (float32 rows x dim, with the rows' original ids in PATH.ids, one per
  // line) or else a TSV (id<TAB>values); written atomically. Throws ConfigError when the model has
  // no such embeddings.
  void write_embeddings(const std::string& path, bool items = true) const;

  // k-means (k-means++ seeding, Lloyd iterations) on the item embeddings.
  struct Clusters {
    std::vector<int32_t> assign;  // cluster of each item (item index order)
    int iterations = 0;
    double inertia = 0;  // sum of squared distances to the assigned centroids
    int dim = 0;
  };
  Clusters cluster_items(int k, int max_iterations = 100, uint64_t seed = 42) const;
  // Training interactions per item (item index order): the popularity the model was trained on.
  std::vector<int64_t> item_popularity() const;

  // Item retrieval on image items (model.task retrieval, e.g. Fashion-MNIST): a PNG grid of
  // `queries` test queries (left) and their top-5 (green frame = same category, red = not),
  // written atomically. Throws ConfigError when the items have no square images.
  void write_retrieval_grid(const Dataset& test, const std::string& png_path, int queries = 8, int threads = 0) const;

  // Writes the model file atomically (the same file `siamrec train --out` writes).
  void save(const std::string& path) const;
  // Deletes the checkpoint files a fit with FitOptions::checkpoint = `checkpoint` wrote (once the
  // model is saved they are obsolete).
  static void remove_checkpoints(const std::string& checkpoint);

  struct Impl;
  Impl& impl() const;  // for the library's own clients (CLI, Python); not a stable API

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace siamrec::api
