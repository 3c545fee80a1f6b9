#include "tasks/pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>

#include "data/readers.h"
#include "data/registry.h"
#include "eval/metrics.h"
#include "eval/topk.h"
#include "util/error.h"

namespace siamrec {

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config c = path.empty() ? Config() : Config::from_yaml_file(path);
  for (auto& o : overrides) c.set_override(o);
  return c;
}

static std::string delimiter_of(const std::string& d) {
  if (d == "tab" || d == "\\t") return "\t";
  if (d == "comma") return ",";
  if (d == "space") return " ";
  return d;
}

Dataset load_data(const Config& c, const RunOptions& o) {
  const std::string& name = c.str("data.dataset");
  const std::string& path = c.str("data.path");
  if (!name.empty() && !path.empty())
    throw ConfigError("set either data.dataset (a registered dataset) or data.path (your own file), not both");
  ReadOptions ro;
  ro.skip_bad_lines = o.skip_bad_lines;
  if (!name.empty()) {
    LoadOptions lo;
    lo.data_dir_flag = o.data_dir_flag;
    lo.read = ro;
    return load_dataset(name, lo);
  }
  if (path.empty()) throw ConfigError("no data: set data.dataset (e.g. ml-100k) or data.path");
  if (c.str("data.format") == "recbole") return read_recbole(path, {}, ro);
  DelimitedFormat f;
  f.delimiter = delimiter_of(c.str("data.delimiter"));
  f.header = c.flag("data.header");
  f.comment = c.str("data.comment");
  f.quoted = f.delimiter == ",";
  f.user = c.str("data.user_col");
  f.item = c.str("data.item_col");
  f.rating = c.str("data.rating_col");
  f.time = c.str("data.time_col");
  f.numeric_ids = c.flag("data.numeric_ids");
  const bool sessions = c.str("data.format") == "sessions";
  if (sessions) {  // a session is the sequence: it takes the place of the user
    f.user = c.str("data.session_col");
    f.owner = c.str("data.session_user_col");
  }
  f.date = c.str("data.date_col");
  RawLog raw = read_delimited(path, f, ro);
  UserMetaMap owners;
  for (auto& [session, user] : raw.owner) owners[session] = {"user=" + user};
  Dataset ds = dataset_from_raw(std::move(raw), path);
  ds.description = (sessions ? "session log " : "delimited file ") + path;
  if (sessions) attach_user_meta(ds, owners);
  return ds;
}

static FilterSpec filters_of(const Config& c) {
  FilterSpec f;
  f.min_rating = c.real("filter.min_rating");
  f.dedup = c.flag("filter.dedup");
  f.user_core = static_cast<int>(c.integer("filter.user_core"));
  f.item_core = static_cast<int>(c.integer("filter.item_core"));
  return f;
}

static SplitSpec split_of(const Config& c) {
  SplitSpec s;
  s.type = c.str("split.type");
  s.order = c.str("split.order");
  s.ratios = c.reals("split.ratios");
  s.valid = c.flag("split.valid");
  s.name = c.str("split.name");
  s.seed = static_cast<uint64_t>(c.integer("split.seed"));
  if (s.type == "fixed" && s.name.empty()) throw ConfigError("split.type 'fixed' needs split.name (e.g. ua)");
  return s;
}

Prepared prepare(const Config& c, const RunOptions& o) {
  Prepared p;
  p.ds = load_data(c, o);
  if (p.ds.log.size() == 0) throw DataError(fmt::format("dataset '{}' has no interactions", p.ds.name));
  p.split = make_split(p.ds, filters_of(c), split_of(c));
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  spdlog::info("data: {} | train {} / valid {} / test {} interactions", p.split.protocol, p.split.train.size(),
               p.split.valid.size(), p.split.test.size());
  return p;
}

TrainedModel fit_model(const Prepared& p, const Config& c, const RunOptions& o) {
  TrainedModel m;
  m.model = create_model(c.str("model.type"));
  FitData d;
  d.ds = &p.ds;
  d.train = &p.split.train;
  d.valid = &p.split.valid;
  d.train_by_user = &p.train_by_user;
  d.cfg = &c;
  d.threads = o.threads;
  d.protocol = p.split.protocol;
  d.checkpoint = o.checkpoint;
  d.resume = o.resume;
  d.log_path = o.log_path;
  auto t0 = std::chrono::steady_clock::now();
  m.model->fit(d);
  spdlog::info("fitted model '{}' in {:.2f} s", m.model->type(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  m.config_yaml = c.to_yaml();
  m.protocol = p.split.protocol;
  m.users = p.ds.users;
  m.items = p.ds.items;
  m.item_titles = p.ds.item_side.title;
  m.train.indptr = p.train_by_user.indptr;
  m.train.indices = p.train_by_user.indices;
  return m;
}

// Rating task: RMSE and MAE of score_pairs + offset on the held-out ratings.
static EvalResult evaluate_rating(const TrainedModel& m, const Prepared& p) {
  auto t0 = std::chrono::steady_clock::now();
  const Interactions& t = p.split.test;
  if (!t.has_rating()) throw ConfigError("model.task 'rating' needs ratings in the test data");
  std::vector<float> pred(t.size());
  m.model->score_pairs(t.user.data(), t.item.data(), static_cast<int64_t>(t.size()), pred.data());
  float off = m.model->rating_offset();
  for (auto& x : pred) x += off;
  EvalResult r;
  r.kind = "rating";
  r.metrics = {{"rmse", metric::rmse(pred, t.rating)}, {"mae", metric::mae(pred, t.rating)}};
  r.users.resize(t.size());
  r.protocol = fmt::format("{} | task: rating prediction on {} held-out ratings (prediction = similarity + train mean {:.4f})",
                           p.split.protocol, t.size(), off);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// Pair task: each test interaction (label 1) and one seeded unseen item of the same user (label 0).
static EvalResult evaluate_pairs(const TrainedModel& m, const Prepared& p, const Config& c) {
  auto t0 = std::chrono::steady_clock::now();
  const Interactions& t = p.split.test;
  Csr test_by_user = Csr::from_interactions(t, p.ds.n_users(), false);
  std::vector<int32_t> us, is;
  std::vector<int> labels;
  std::mt19937_64 rng(mix64(static_cast<uint64_t>(c.integer("eval.seed")) ^ 0x9a1));
  const int32_t I = p.ds.n_items();
  for (size_t r = 0; r < t.size(); ++r) {
    int32_t u = t.user[r];
    us.push_back(u), is.push_back(t.item[r]), labels.push_back(1);
    int32_t j = static_cast<int32_t>(rng() % static_cast<uint64_t>(I));
    for (int tries = 0; tries < 100 && (m.train.contains(u, j) || test_by_user.contains(u, j)); ++tries)
      j = static_cast<int32_t>(rng() % static_cast<uint64_t>(I));
    us.push_back(u), is.push_back(j), labels.push_back(0);
  }
  std::vector<float> s(us.size());
  m.model->score_pairs(us.data(), is.data(), static_cast<int64_t>(us.size()), s.data());
  double thr = c.real("eval.threshold");
  auto pm = metric::pair_metrics(s, labels, static_cast<float>(thr));
  EvalResult r;
  r.kind = "pairs";
  r.metrics = {{"accuracy", pm.accuracy}, {"precision", pm.precision}, {"recall", pm.recall}, {"f1", pm.f1}, {"roc_auc", pm.roc_auc}};
  r.users.resize(us.size());
  r.protocol = fmt::format("{} | task: pair classification, {} test pairs (label 1) + 1 uniformly sampled unseen item per pair "
                           "(label 0, seed {}) | threshold {:g}",
                           p.split.protocol, t.size(), c.integer("eval.seed"), thr);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

EvalResult evaluate_model(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o) {
  if (m.users.ids() != p.ds.users.ids() || m.items.ids() != p.ds.items.ids())
    throw Error(fmt::format("the model was trained on other data ({} users x {} items) than '{}' ({} x {}); evaluate "
                            "it on the dataset of its config",
                            m.users.size(), m.items.size(), p.ds.name, p.ds.n_users(), p.ds.n_items()));
  EvalContext ctx;
  ctx.n_users = p.ds.n_users();
  ctx.n_items = p.ds.n_items();
  ctx.train = &m.train;
  ctx.test = &p.split.test;
  ctx.valid = &p.split.valid;
  ctx.fixed_negatives = &p.split.test_negatives;
  if (!p.ds.item_side.genres.empty()) ctx.genres = &p.ds.item_side.genres;
  ctx.data_protocol = p.split.protocol;
  ctx.threads = o.threads;
  const std::string& task = c.str("model.task");
  if (task == "rating") return evaluate_rating(m, p);
  if (task == "pairs") return evaluate_pairs(m, p, c);
  return evaluate_ranking(*m.model, ctx, EvalSpec::from_config(c));
}

void recommend_users(const TrainedModel& m, const std::vector<int32_t>& users, int k, int threads,
                     const std::function<void(int32_t, const int32_t*, const float*, int)>& emit) {
  // Users are processed in chunks; each chunk is ranked in parallel, then emitted in order, so
  // memory stays bounded however many users there are.
  const size_t chunk = 4096;
  RankOptions ro;
  ro.k = k;
  ro.threads = threads;
  ro.exclude = &m.train;
  for (size_t lo = 0; lo < users.size(); lo += chunk) {
    std::vector<int32_t> part(users.begin() + lo, users.begin() + std::min(users.size(), lo + chunk));
    std::vector<std::vector<int32_t>> tops(part.size());
    std::vector<std::vector<float>> scores(part.size());
    rank_users(part, m.items.size(), [&](const int32_t* u, int n, float* out) { m.model->score(u, n, out); }, ro,
               [&](int64_t idx, int32_t, const float* row, const int32_t* top, int nt) {
                 tops[idx].assign(top, top + nt);
                 for (int j = 0; j < nt; ++j) scores[idx].push_back(row[top[j]]);
               });
    for (size_t r = 0; r < part.size(); ++r) emit(part[r], tops[r].data(), scores[r].data(), static_cast<int>(tops[r].size()));
  }
}

}  // namespace siamrec
