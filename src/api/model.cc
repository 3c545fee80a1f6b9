// The public Model (include/siamrec/model.h) over models/, eval/ and the task pipeline.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <thread>

#include "api/impl.h"
#include "data/registry.h"
#include "eval/evaluator.h"
#include "models/model.h"
#include "scoring/topk.h"
#include "tasks/embeddings.h"
#include "tasks/pipeline.h"
#include "tasks/update.h"
#include "util/io.h"
#include "util/strings.h"
#include "util/error.h"
#include "util/names.h"

namespace siamrec::api {

const char* version() { return SIAMREC_VERSION; }

void set_log_level(const std::string& level) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {{"debug", spdlog::level::debug},
                                                                              {"info", spdlog::level::info},
                                                                              {"warn", spdlog::level::warn},
                                                                              {"error", spdlog::level::err},
                                                                              {"off", spdlog::level::off}};
  for (auto& [name, l] : kLevels)
    if (level == name) return spdlog::set_level(l);
  throw ConfigError(fmt::format("log level '{}' is not one of debug, info, warn, error, off", level));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;
Model::Impl& Model::impl() const { return *impl_; }

const siamrec::Model& Model::Impl::model() const {
  if (!tm.model) throw Error("the model is not fitted: call fit() (or load a model file) first");
  return *tm.model;
}

Model Model::create(const ConfigSource& config) {
  init_runtime();
  auto impl = std::make_unique<Impl>();
  impl->cfg = siamrec::resolve_config(config);
  siamrec::create_model(impl->cfg.str("model.type"));  // an unknown type fails here, naming the registered ones
  return Model(std::move(impl));
}

Model Model::load(const std::string& path) {
  init_runtime();
  auto impl = std::make_unique<Impl>();
  impl->tm = load_model_file(path);
  impl->cfg = Config::from_yaml_text(impl->tm.config_yaml, "model file '" + path + "'");
  return Model(std::move(impl));
}

std::vector<std::string> Model::registered() { return siamrec::model_names(); }

// The pipeline's options for a fit or an update (threads, checkpoint, log, stop, progress).
static RunOptions run_options(const FitOptions& o) {
  RunOptions ro;
  ro.threads = resolve_threads(o.threads);
  ro.checkpoint = o.checkpoint;
  ro.resume = o.resume;
  ro.log_path = o.log;
  ro.stop = o.stop;
  if (o.on_epoch)
    ro.on_epoch = [&o](const EpochInfo& e) {
      EpochProgress pr;
      pr.epoch = e.epoch, pr.epochs = e.epochs, pr.loss = e.loss, pr.seconds = e.seconds;
      pr.has_valid = e.has_valid, pr.valid = e.valid, pr.valid_metric = e.valid_metric, pr.refit = e.refit;
      return o.on_epoch(pr);
    };
  return ro;
}

void Model::fit(const Dataset& train, const Dataset& valid, const FitOptions& o) {
  const auto& tr = train.impl();
  const auto& va = valid.impl();
  if (tr.part == Dataset::Impl::kValid || tr.part == Dataset::Impl::kTest)
    throw ConfigError(fmt::format("fit: '{}' is a validation or test part; fit on the train part", tr.protocol));
  if (valid.size() > 0 && va.ds != tr.ds)
    throw ConfigError("fit: the validation data is not a part of the training data's dataset (ids differ)");
  Prepared p;
  p.ds = *tr.ds;
  if (tr.split) {
    p.split.heldout_items = tr.split->heldout_items;
    p.split.valid_items = tr.split->valid_items;
    p.split.protocol = tr.split->protocol;
  } else {
    p.split.protocol = tr.protocol + " | no split (all interactions train)";
  }
  p.split.train = tr.log();
  if (valid.size() > 0) p.split.valid = va.log();
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  RunOptions ro = run_options(o);
  impl_->tm = fit_model(p, impl_->cfg, ro);
  impl_->ds = tr.ds;
}

bool Model::fitted() const { return impl_->tm.model != nullptr; }

// A model config with a source's keys applied over it.
static Config merged(const Config& base, const ConfigSource& s) {
  Config c = base;
  if (!s.file.empty()) c.merge(Config::from_yaml_file(s.file), s.file);
  if (!s.yaml.empty()) c.merge(Config::from_yaml_text(s.yaml, "YAML text"), "YAML text");
  for (auto& o : s.set) c.set_override(o);
  return c;
}

Dataset Model::read_new_data(const std::string& path, const ConfigSource& overrides, const DatasetOptions& o) const {
  impl_->model();
  init_runtime();
  RunOptions ro;
  ro.data_dir_flag = o.data_dir;
  ro.skip_bad_lines = o.skip_bad_lines;
  siamrec::Dataset ds = read_new_interactions(merged(impl_->cfg, overrides), path, impl_->tm, ro);
  auto impl = std::make_shared<Dataset::Impl>();
  impl->protocol =
      fmt::format("{} ({} users, {} items, {} interactions)", path, ds.n_users(), ds.n_items(), ds.log.size());
  impl->ds = std::make_shared<const siamrec::Dataset>(std::move(ds));
  return Dataset(impl);
}

UpdateResult Model::update(const Dataset& new_data, const FitOptions& o, const ConfigSource& overrides) {
  impl_->model();
  const auto& nd = new_data.impl();
  // The data to add: the dataset's ids with the part's rows.
  siamrec::Dataset fresh = *nd.ds;
  fresh.log = nd.log();
  Config c = merged(impl_->cfg, overrides);
  RunOptions ro = run_options(o);
  // Work on a copy of the model file's state: a failed update leaves this model as it was.
  TrainedModel tm = impl_->tm;
  tm.model = clone_model(*impl_->tm.model);
  siamrec::UpdateResult r = update_model(tm, fresh, c, ro, nd.protocol);
  impl_->tm = std::move(tm);
  impl_->cfg = c;
  impl_->ds.reset();  // the fitted-on dataset no longer matches the grown id space
  UpdateResult out;
  out.new_interactions = r.new_interactions, out.replayed = r.replayed, out.new_users = r.new_users;
  out.new_items = r.new_items, out.known_interactions = r.known_interactions, out.epochs = r.epochs;
  out.seconds = r.seconds, out.record = r.record;
  return out;
}

std::vector<std::string> Model::updates() const { return impl_->tm.updates; }
std::string Model::type() const { return impl_->cfg.str("model.type"); }
std::string Model::config_yaml() const { return impl_->cfg.to_yaml(); }
std::string Model::protocol() const { return impl_->tm.protocol; }
int64_t Model::n_users() const { return impl_->tm.users.size(); }
int64_t Model::n_items() const { return impl_->tm.items.size(); }

std::string Model::user_id(int64_t i) const {
  if (i < 0 || i >= n_users())
    throw ConfigError(fmt::format("user index {} is out of range (0..{})", i, n_users() - 1));
  return impl_->tm.users.original(static_cast<int32_t>(i));
}
int64_t Model::user_index(const std::string& id) const { return impl_->tm.users.find(id); }
int64_t Model::item_index(const std::string& id) const { return impl_->tm.items.find(id); }
std::string Model::item_title(const std::string& item) const {
  int32_t i = impl_->tm.items.find(item);
  const auto& t = impl_->tm.item_titles;
  return i >= 0 && i < static_cast<int32_t>(t.size()) ? t[i] : std::string();
}

std::vector<int64_t> Model::training_items(int64_t u) const {
  const Csr& t = impl_->tm.train;
  if (u < 0 || u >= n_users())
    throw ConfigError(fmt::format("user index {} is out of range (0..{})", u, n_users() - 1));
  if (u >= t.rows()) return {};
  return std::vector<int64_t>(t.indices.begin() + t.begin(static_cast<int32_t>(u)),
                              t.indices.begin() + t.end(static_cast<int32_t>(u)));
}

void Model::set_exclude(const std::string& mode) {
  if (mode != "train+valid" && mode != "train" && mode != "none")
    throw ConfigError(fmt::format("exclude '{}' is not one of train+valid, train, none", mode));
  impl_->exclude = mode;
}
std::string Model::exclude() const { return impl_->exclude; }

std::vector<int64_t> Model::excluded_items(int64_t u) const {
  if (impl_->exclude == "none") {
    if (u < 0 || u >= n_users())
      throw ConfigError(fmt::format("user index {} is out of range (0..{})", u, n_users() - 1));
    return {};
  }
  std::vector<int64_t> out = training_items(u);
  const Csr& v = impl_->tm.valid;
  if (impl_->exclude == "train+valid" && u < v.rows()) {
    out.insert(out.end(), v.indices.begin() + v.begin(static_cast<int32_t>(u)),
               v.indices.begin() + v.end(static_cast<int32_t>(u)));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
  return out;
}

std::string Model::retrieval_space() const {
  Similarity kind;
  if (!impl_->model().retrieval_kind(&kind)) return "";
  switch (kind) {
    case Similarity::Dot:
      return "dot";
    case Similarity::Cosine:
      return "cosine";
    case Similarity::NegEuclidean:
      return "euclidean";
    case Similarity::NegSqEuclidean:
      return "sq_euclidean";
  }
  return "";
}

std::string Model::item_id(int64_t i) const {
  if (i < 0 || i >= n_items())
    throw ConfigError(fmt::format("item index {} is out of range (0..{})", i, n_items() - 1));
  return impl_->tm.items.original(static_cast<int32_t>(i));
}

static int32_t find_user(const TrainedModel& tm, const std::string& id) {
  int32_t u = tm.users.find(id);
  if (u < 0) throw ConfigError(fmt::format("user '{}' is not in model ({} users)", id, tm.users.size()));
  return u;
}
static int32_t find_item(const TrainedModel& tm, const std::string& id) {
  int32_t i = tm.items.find(id);
  if (i < 0) throw ConfigError(fmt::format("item '{}' is not in model ({} items)", id, tm.items.size()));
  return i;
}

// Top-k for users (tasks' recommend_users: chunked, bounded memory), as Scored lists in user order.
static void rank(const TrainedModel& tm, const std::string& mode, const std::vector<int32_t>& users, int k,
                 bool exclude_seen, int threads, const std::function<void(int32_t, std::vector<Scored>&&)>& emit) {
  if (k < 1) throw ConfigError(fmt::format("k must be >= 1, got {}", k));
  recommend_users(
      tm, users, k, resolve_threads(threads),
      [&](int32_t u, const int32_t* items, const float* scores, int n) {
        std::vector<Scored> v;
        v.reserve(n);
        for (int j = 0; j < n; ++j) v.push_back({tm.items.original(items[j]), scores[j]});
        emit(u, std::move(v));
      },
      exclude_seen && mode != "none", mode == "train+valid");
}

std::vector<Scored> Model::recommend(const std::string& user, int k, bool exclude_seen, int threads) const {
  impl_->model();
  std::vector<Scored> out;
  rank(impl_->tm, impl_->exclude, {find_user(impl_->tm, user)}, k, exclude_seen, threads,
       [&](int32_t, std::vector<Scored>&& v) { out = std::move(v); });
  return out;
}

std::vector<std::vector<Scored>> Model::recommend_all(int k, bool exclude_seen, int threads) const {
  std::vector<std::vector<Scored>> out;
  out.reserve(static_cast<size_t>(n_users()));
  recommend_each(k, exclude_seen, threads, [&](const std::string&, const std::vector<Scored>& l) { out.push_back(l); });
  return out;
}

void Model::recommend_each(int k, bool exclude_seen, int threads,
                           const std::function<void(const std::string&, const std::vector<Scored>&)>& emit) const {
  impl_->model();
  std::vector<int32_t> users(static_cast<size_t>(impl_->tm.users.size()));
  for (int32_t u = 0; u < static_cast<int32_t>(users.size()); ++u) users[u] = u;
  rank(impl_->tm, impl_->exclude, users, k, exclude_seen, threads,
       [&](int32_t u, std::vector<Scored>&& v) { emit(impl_->tm.users.original(u), v); });
}

std::vector<Scored> Model::recommend_history(const std::vector<std::string>& items, int k, int* unknown) const {
  const siamrec::Model& m = impl_->model();
  if (k < 1) throw ConfigError(fmt::format("k must be >= 1, got {}", k));
  std::vector<int32_t> hist;
  int miss = 0;
  for (auto& id : items) {
    int32_t i = impl_->tm.items.find(id);
    if (i < 0)
      ++miss;
    else
      hist.push_back(i);
  }
  if (unknown) *unknown = miss;
  std::vector<float> row(static_cast<size_t>(n_items()));
  m.score_history(hist, row.data());
  for (auto i : hist) row[i] = -INFINITY;
  std::vector<int32_t> top(static_cast<size_t>(k));
  int nt = topk_row(row.data(), static_cast<int32_t>(row.size()), k, top.data());
  std::vector<Scored> out;
  for (int j = 0; j < nt; ++j) out.push_back({impl_->tm.items.original(top[j]), row[top[j]]});
  return out;
}

std::vector<Scored> Model::similar(const std::string& item, int k) const {
  const siamrec::Model& m = impl_->model();
  if (k < 1) throw ConfigError(fmt::format("k must be >= 1, got {}", k));
  std::vector<std::pair<int32_t, float>> sim;
  if (!m.similar_items(find_item(impl_->tm, item), k, sim))
    throw ConfigError(fmt::format("model type '{}' has no item similarity (use itemknn or a siamese model)", m.type()));
  std::vector<Scored> out;
  for (auto& [i, s] : sim) out.push_back({impl_->tm.items.original(i), s});
  return out;
}

std::vector<float> Model::score(const std::vector<std::string>& users, const std::vector<std::string>& items) const {
  impl_->model();
  if (users.size() != items.size())
    throw ConfigError(fmt::format("score: {} users but {} items (one of each per pair)", users.size(), items.size()));
  std::vector<int64_t> u(users.size()), i(items.size());
  for (size_t r = 0; r < users.size(); ++r)
    u[r] = find_user(impl_->tm, users[r]), i[r] = find_item(impl_->tm, items[r]);
  std::vector<float> out(users.size());
  score_indices(u.data(), i.data(), static_cast<int64_t>(u.size()), out.data());
  return out;
}

void Model::recommend_indices(const int64_t* users, int64_t n, int k, bool exclude_seen, int threads, int64_t* items,
                              float* scores) const {
  impl_->model();
  if (k < 1) throw ConfigError(fmt::format("k must be >= 1, got {}", k));
  std::vector<int32_t> us(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    if (users[r] < 0 || users[r] >= n_users())
      throw ConfigError(fmt::format("user index {} (position {}) is out of range (0..{})", users[r], r, n_users() - 1));
    us[r] = static_cast<int32_t>(users[r]);
  }
  int64_t row = 0;
  recommend_users(
      impl_->tm, us, k, resolve_threads(threads),
      [&](int32_t, const int32_t* top, const float* sc, int nt) {
        int64_t* it = items + row * k;
        float* s = scores + row * k;
        for (int j = 0; j < k; ++j) {
          it[j] = j < nt ? top[j] : -1;
          s[j] = j < nt ? sc[j] : -INFINITY;
        }
        ++row;
      },
      exclude_seen && impl_->exclude != "none", impl_->exclude == "train+valid");
}

void Model::score_indices(const int64_t* users, const int64_t* items, int64_t n, float* out) const {
  const siamrec::Model& m = impl_->model();
  std::vector<int32_t> u(static_cast<size_t>(n)), i(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    if (users[r] < 0 || users[r] >= n_users())
      throw ConfigError(fmt::format("user index {} (position {}) is out of range (0..{})", users[r], r, n_users() - 1));
    if (items[r] < 0 || items[r] >= n_items())
      throw ConfigError(fmt::format("item index {} (position {}) is out of range (0..{})", items[r], r, n_items() - 1));
    u[r] = static_cast<int32_t>(users[r]), i[r] = static_cast<int32_t>(items[r]);
  }
  if (n > 0) m.score_pairs(u.data(), i.data(), n, out);
  const float off = m.rating_offset();
  for (int64_t r = 0; r < n; ++r) out[r] += off;
}

bool Model::numeric_user_ids() const { return impl_->tm.users.numeric(); }
bool Model::numeric_item_ids() const { return impl_->tm.items.numeric(); }

MatrixView Model::user_embeddings_view() const {
  MatrixView v;
  int dim = 0;
  v.data = impl_->model().user_embeddings(&dim);
  if (v.data) v.rows = n_users(), v.cols = dim, v.owner = impl_->tm.model;
  return v;
}

MatrixView Model::item_embeddings_view() const {
  MatrixView v;
  int dim = 0;
  v.data = impl_->model().item_embeddings(&dim);
  if (v.data) v.rows = n_items(), v.cols = dim, v.owner = impl_->tm.model;
  return v;
}

static Matrix copy_of(const MatrixView& v) {
  Matrix mx;
  if (!v.data) return mx;
  mx.rows = v.rows, mx.cols = v.cols;
  mx.data.assign(v.data, v.data + v.rows * v.cols);
  return mx;
}

Matrix Model::user_embeddings() const { return copy_of(user_embeddings_view()); }
Matrix Model::item_embeddings() const { return copy_of(item_embeddings_view()); }

// The pipeline's view of a test (or valid) part of the model's dataset.
static Prepared prepared_for(const TrainedModel& tm, const Dataset& test, const char* what) {
  const auto& te = test.impl();
  if (te.part == Dataset::Impl::kTrain)
    throw ConfigError(fmt::format("{}: '{}' is the training part; use the test (or valid) part", what, te.protocol));
  if (tm.users.ids() != te.ds->users.ids() || tm.items.ids() != te.ds->items.ids())
    throw ConfigError(fmt::format("{}: the model was fitted on other data ({} users x {} items) than '{}' ({} x {})",
                                  what, tm.users.size(), tm.items.size(), te.ds->name, te.ds->n_users(),
                                  te.ds->n_items()));
  Prepared p;
  p.ds = *te.ds;
  p.split.test = te.log();
  if (te.split) {
    p.split.protocol = te.split->protocol;
    if (te.part == Dataset::Impl::kTest) {
      p.split.valid = te.split->valid;  // excluded from the candidates when testing
      p.split.test_negatives = te.split->test_negatives;
    }
    p.split.heldout_items = te.split->heldout_items;
  } else {
    p.split.protocol = te.protocol;
  }
  p.train_by_user = tm.train;
  return p;
}

Evaluation Model::evaluate(const Dataset& test, const std::vector<std::string>& overrides, int threads) const {
  EvaluateOptions o;
  o.config.set = overrides;
  o.threads = threads;
  return evaluate(test, o);
}

std::string Model::merged_config_yaml(const ConfigSource& overrides) const {
  return merged(impl_->cfg, overrides).to_yaml();
}

Evaluation Model::evaluate(const Dataset& test, const EvaluateOptions& o) const {
  impl_->model();
  const TrainedModel& tm = impl_->tm;
  Prepared p = prepared_for(tm, test, "evaluate");
  Config c = merged(impl_->cfg, o.config);
  RunOptions ro;
  ro.threads = resolve_threads(o.threads);
  // A model evaluated under another split than its own may be tested on its training data.
  const int64_t overlap = tm.protocol != p.split.protocol ? training_overlap(tm, p) : 0;
  if (overlap > 0 && !o.allow_overlap)
    throw ConfigError(
        fmt::format("{} of the {} test interactions of '{}' are training data of the model (trained under '{}'): "
                    "its metrics would be inflated. Evaluate under the model's own split, or allow the overlap "
                    "(--allow-overlap) to report them anyway",
                    overlap, p.split.test.size(), p.split.protocol, tm.protocol));
  EvalResult r = evaluate_model(tm, p, c, ro);
  if (overlap > 0)
    r.protocol += fmt::format(
        " | OVERLAP: {} of {} test interactions are training data of the model (trained under '{}'; "
        "--allow-overlap)",
        overlap, p.split.test.size(), tm.protocol);
  if (test.impl().part == Dataset::Impl::kValid) r.protocol += " | evaluated on: the validation part";
  Evaluation e;
  e.kind = r.kind;
  e.protocol = r.protocol;
  e.metrics = r.metrics;
  e.seconds = r.seconds;
  e.table = r.table();
  const IdMap& ids = r.kind == "retrieval" ? p.ds.items : p.ds.users;  // retrieval: per query item
  auto j = r.to_json(ids);
  j["model"] = tm.model->type();
  j["config"] = c.to_yaml();
  e.json = j.dump(1);
  if (r.kind == "ranking" || r.kind == "retrieval")
    for (auto u : r.users) e.users.push_back(ids.original(u));
  e.per_user = r.per_user;
  return e;
}

void Model::write_embeddings(const std::string& path, bool items) const {
  const siamrec::Model& m = impl_->model();
  int dim = 0;
  const float* e = items ? m.item_embeddings(&dim) : m.user_embeddings(&dim);
  const char* what = items ? "items" : "users";
  if (!e) throw ConfigError(fmt::format("model type '{}' has no {} embeddings", m.type(), what));
  const auto& ids = items ? impl_->tm.items.ids() : impl_->tm.users.ids();
  const bool npy = path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (npy) {
    write_npy(path, e, static_cast<int64_t>(ids.size()), dim);
    std::string list;
    for (auto& id : ids) list += printable(id) + "\n";  // one id per line, whatever the id holds
    atomic_write(path.substr(0, path.size() - 4) + ".ids", list);
  } else {
    write_embedding_tsv(path, ids, e, dim);
  }
}

Model::Clusters Model::cluster_items(int k, int max_iterations, uint64_t seed) const {
  const siamrec::Model& m = impl_->model();
  int dim = 0;
  const float* e = m.item_embeddings(&dim);
  if (!e) throw ConfigError(fmt::format("model type '{}' has no item embeddings to cluster", m.type()));
  if (k < 1) throw ConfigError(fmt::format("k must be >= 1, got {}", k));
  if (max_iterations < 1) throw ConfigError(fmt::format("iterations must be >= 1, got {}", max_iterations));
  KMeansResult r = kmeans(e, impl_->tm.items.size(), dim, k, max_iterations, seed);
  Clusters c;
  c.assign = std::move(r.assign);
  c.iterations = r.iterations;
  c.inertia = r.inertia;
  c.dim = dim;
  return c;
}

std::vector<int64_t> Model::item_popularity() const {
  std::vector<int64_t> pop(static_cast<size_t>(n_items()), 0);
  for (auto i : impl_->tm.train.indices) ++pop[i];
  return pop;
}

void Model::write_retrieval_grid(const Dataset& test, const std::string& png_path, int queries, int threads) const {
  impl_->model();
  if (queries < 1) throw ConfigError(fmt::format("queries must be >= 1, got {}", queries));
  Prepared p = prepared_for(impl_->tm, test, "write_retrieval_grid");
  RunOptions ro;
  ro.threads = resolve_threads(threads);
  siamrec::write_retrieval_grid(impl_->tm, p, impl_->cfg, ro, png_path, queries);
}

double Evaluation::get(const std::string& metric) const {
  for (auto& [k, v] : metrics)
    if (k == metric) return v;
  std::string names;
  for (auto& [k, _] : metrics) names += (names.empty() ? "" : ", ") + k;
  throw ConfigError(fmt::format("metric '{}' is not in this evaluation; available: {}", metric, names));
}

void Model::remove_checkpoints(const std::string& checkpoint) {
  for (auto& f : checkpoint_files(checkpoint)) std::remove(f.c_str());
}

void Model::save(const std::string& path) const {
  impl_->model();
  save_model_file(impl_->tm, path);
}

}  // namespace siamrec::api
