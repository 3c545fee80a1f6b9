#include "tasks/pipeline.h"

#include <algorithm>
#include <numeric>

#include "content/image.h"
#include "eval/retrieval.h"
#include "tasks/content_data.h"
#include "util/io.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>

#include "data/candidates.h"
#include "data/formats.h"
#include "data/readers.h"
#include "data/registry.h"
#include "eval/metrics.h"
#include "scoring/topk.h"
#include "eval/validation.h"
#include "eval/prediction.h"
#include "util/error.h"
#include "util/strings.h"

namespace siamrec {

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config c = path.empty() ? Config() : Config::from_yaml_file(path);
  for (auto& o : overrides) c.set_override(o);
  return c;
}

// data.order file: each user's line order is her time order (a log without a time column).
static void order_by_file(const Config& c, Dataset& ds) {
  if (c.str("data.order") != "file") return;
  if (ds.log.has_time())
    throw ConfigError("data.order file: the data has a time column (data.time_col); use one or the other");
  ds.log.time.resize(ds.log.size());
  for (size_t r = 0; r < ds.log.size(); ++r) ds.log.time[r] = static_cast<int64_t>(r);
}

// split.type files: one dataset over the union of the three files' ids; the log is train, valid,
// test in order (Dataset::file_parts says where each part ends).
static Dataset load_split_files(const Config& c, const ReadOptions& ro) {
  if (!c.str("data.dataset").empty() || !c.str("data.path").empty())
    throw ConfigError(
        "split.type files reads the data from split.train_file / split.valid_file / split.test_file; leave "
        "data.dataset and data.path empty");
  const std::string files[3] = {c.str("split.train_file"), c.str("split.valid_file"), c.str("split.test_file")};
  const char* keys[3] = {"split.train_file", "split.valid_file", "split.test_file"};
  for (int k : {0, 2})
    if (files[k].empty()) throw ConfigError(fmt::format("split.type files needs {} (a path)", keys[k]));
  RawLog raw;
  std::vector<int64_t> parts;
  bool rated = true, timed = true;
  for (int k = 0; k < 3; ++k) {
    if (files[k].empty()) {
      parts.push_back(0);
      continue;
    }
    if (!file_exists(files[k]) && !file_exists(files[k] + ".inter"))
      throw MissingDataError(fmt::format("{} '{}' does not exist (no such file)", keys[k], files[k]));
    Dataset part = data_format(c.str("data.format")).read(files[k], c, ro);
    rated = rated && part.log.has_rating();
    timed = timed && part.log.has_time();
    for (size_t r = 0; r < part.log.size(); ++r) {
      raw.users.push_back(part.users.original(part.log.user[r]));
      raw.items.push_back(part.items.original(part.log.item[r]));
      raw.rating.push_back(part.log.has_rating() ? part.log.rating[r] : 1.0f);
      raw.time.push_back(part.log.has_time() ? part.log.time[r] : 0);
    }
    parts.push_back(static_cast<int64_t>(part.log.size()));
  }
  if (!rated) raw.rating.clear();
  if (!timed) raw.time.clear();
  Dataset ds = dataset_from_raw(std::move(raw), files[0]);
  ds.file_parts = parts;
  ds.description = fmt::format("train / valid / test files: {} / {} / {} interactions", parts[0], parts[1], parts[2]);
  return ds;
}

Dataset load_data(const Config& c, const RunOptions& o) {
  const std::string& name = c.str("data.dataset");
  const std::string& path = c.str("data.path");
  if (!name.empty() && !path.empty())
    throw ConfigError("set either data.dataset (a registered dataset) or data.path (your own file), not both");
  ReadOptions ro;
  ro.skip_bad_lines = o.skip_bad_lines;
  if (c.str("split.type") == "files") {
    Dataset ds = load_split_files(c, ro);
    order_by_file(c, ds);
    return ds;
  }
  const bool table = !c.str("data.content_table").empty();
  if (!name.empty()) {
    LoadOptions lo;
    lo.data_dir_flag = o.data_dir_flag;
    lo.read = ro;
    Dataset ds = load_dataset(name, lo);
    if (table) attach_content_table(c, ds, ro);
    return ds;
  }
  if (path.empty() && table) {  // items only: the content table's items and labels
    Dataset ds;
    attach_content_table(c, ds, ro);
    return ds;
  }
  if (path.empty()) throw ConfigError("no data: set data.dataset (e.g. ml-100k), data.path, or data.content_table");
  if (!file_exists(path) && !file_exists(path + ".inter") && !dir_exists(path))  // recbole: a prefix
    throw MissingDataError(fmt::format("data.path '{}' does not exist (no such file)", path));
  Dataset ds = data_format(c.str("data.format")).read(path, c, ro);
  order_by_file(c, ds);
  if (table) attach_content_table(c, ds, ro);
  return ds;
}

Dataset read_data_file(const Config& c, const std::string& path, const RunOptions& o) {
  ReadOptions ro;
  ro.skip_bad_lines = o.skip_bad_lines;
  if (!file_exists(path) && !file_exists(path + ".inter") && !dir_exists(path))  // recbole: a prefix
    throw MissingDataError(fmt::format("data file '{}' does not exist (no such file)", path));
  Dataset ds = data_format(c.str("data.format")).read(path, c, ro);
  order_by_file(c, ds);
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
  s.train_file = c.str("split.train_file");
  s.valid_file = c.str("split.valid_file");
  s.test_file = c.str("split.test_file");
  if (s.type == "fixed" && s.name.empty()) throw ConfigError("split.type 'fixed' needs split.name (e.g. ua)");
  return s;
}

Prepared prepare(const Config& c, const RunOptions& o) { return prepare_from(load_data(c, o), c); }

Prepared prepare_from(Dataset ds, const Config& c) {
  Prepared p;
  p.ds = std::move(ds);
  p.split = split_by_config(p.ds, c);
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  return p;
}

SplitData split_by_config(const Dataset& ds, const Config& c) {
  if (ds.log.size() == 0 && ds.item_side.content.empty())
    throw DataError(fmt::format("dataset '{}' has no interactions", ds.name));
  SplitData split = make_split(ds, filters_of(c), split_of(c));
  spdlog::info("data: {} | train {} / valid {} / test {} interactions{}", split.protocol, split.train.size(),
               split.valid.size(), split.test.size(),
               split.heldout_items.empty() ? "" : fmt::format(" | {} items held out", split.heldout_items.size()));
  return split;
}

// train.valid_candidates resolved: auto follows a sampled test protocol (own candidate lists and
// fixed lists become uniform:N with their length), else full ranking; cold validation items are
// always ranked among themselves (full).
bool sampled_candidates(const std::string& x) {
  for (const char* pre : {"uniform:", "popularity:"}) {
    const size_t n = std::strlen(pre);
    if (x.compare(0, n, pre) == 0) {
      auto k = parse_int(x.substr(n));
      return k && *k > 0;
    }
  }
  return false;
}

std::string resolved_valid_candidates(const Prepared& p, const Config& c) {
  const std::string& v = c.str("train.valid_candidates");
  if (v != "auto") {
    if (v != "full" && !sampled_candidates(v))
      throw ConfigError(fmt::format(
          "config key 'train.valid_candidates': '{}' is not allowed; allowed: auto, full, uniform:N, popularity:N", v));
    return v;
  }
  if (!p.split.valid_items.empty()) return "full";
  const std::string& e = c.str("eval.candidates");
  if (sampled_candidates(e)) return e;
  size_t n = 0;
  if (e == "fixed") {
    for (const auto& l : p.split.test_negatives) n = std::max(n, l.size());
  } else if (e.rfind("file:", 0) == 0) {  // the test part is not read while fitting: the first list's length
    n = static_cast<size_t>(std::max<int64_t>(0, candidate_file_list_length(e.substr(5))));
  }
  return n > 0 ? fmt::format("uniform:{}", n) : "full";
}

TrainedModel fit_model(const Prepared& p, const Config& c, const RunOptions& o) {
  TrainedModel m;
  m.model = create_model(c.str("model.type"));
  FitData d;
  d.ds = &p.ds;
  d.train = &p.split.train;
  d.valid = &p.split.valid;
  d.train_by_user = &p.train_by_user;
  d.heldout_items = &p.split.heldout_items;
  d.valid_items = &p.split.valid_items;
  d.cfg = &c;
  d.threads = o.threads;
  d.protocol = p.split.protocol;
  d.checkpoint = o.checkpoint;
  d.resume = o.resume;
  d.log_path = o.log_path;
  d.valid_is_evaluated = o.valid_is_evaluated;
  d.validator = ranking_validator();
  d.valid_candidates = resolved_valid_candidates(p, c);
  if (p.split.valid.size() > 0)
    spdlog::info("validation: {} on {}, {}", c.str("train.valid_metric"),
                 c.integer("train.valid_users") > 0
                     ? fmt::format("at most {} users (seeded sample)", c.integer("train.valid_users"))
                     : std::string("every validation user"),
                 d.valid_candidates == "full" ? std::string("full ranking")
                                              : fmt::format("candidates {} (seeded per user)", d.valid_candidates));
  d.on_epoch = o.on_epoch;
  d.stop = o.stop;
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
  if (p.split.valid.size() > 0 && m.model->fitted_on_valid()) {  // refit on train + valid: all of it trained
    Interactions all = p.split.train;
    for (size_t r = 0; r < p.split.valid.size(); ++r) all.append_row(p.split.valid, r);
    Csr t = Csr::from_interactions(all, p.ds.n_users(), false);
    m.train.indptr = std::move(t.indptr);
    m.train.indices = std::move(t.indices);
  } else if (p.split.valid.size() > 0) {
    Csr v = Csr::from_interactions(p.split.valid, p.ds.n_users(), false);
    m.valid.indptr = std::move(v.indptr);
    m.valid.indices = std::move(v.indices);
  }
  return m;
}

int64_t training_overlap(const TrainedModel& m, const Prepared& p) {
  int64_t n = 0;
  const auto& t = p.split.test;
  const int64_t rows = static_cast<int64_t>(m.train.indptr.size()) - 1;
  for (size_t k = 0; k < t.size(); ++k) {
    const int32_t u = t.user[k], i = t.item[k];
    if (u >= rows) continue;
    auto b = m.train.indices.begin() + m.train.indptr[u], e = m.train.indices.begin() + m.train.indptr[u + 1];
    n += std::find(b, e, i) != e;
  }
  return n;
}

EvalResult evaluate_model(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o) {
  if (m.users.ids() != p.ds.users.ids() || m.items.ids() != p.ds.items.ids())
    throw Error(
        fmt::format("the model was trained on other data ({} users x {} items) than '{}' ({} x {}); evaluate "
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
  if (task == "rating") return evaluate_rating(*m.model, p.split.test, p.split.protocol);
  if (task == "pairs")
    return evaluate_pairs(*m.model, m.train, p.split.test, p.ds.n_users(), p.ds.n_items(),
                          static_cast<uint64_t>(c.integer("eval.seed")), c.real("eval.threshold"), p.split.protocol);
  if (task == "retrieval") return evaluate_item_retrieval(m, p, c, o, nullptr);
  EvalSpec spec = EvalSpec::from_config(c);
  spec.keep_tops = o.keep_tops;
  if (spec.candidates.rfind("file:", 0) == 0) {
    // Own candidate lists: read (validated against the test part), then ranked as fixed lists.
    const std::string path = spec.candidates.substr(5);
    ReadOptions rop;
    rop.skip_bad_lines = o.skip_bad_lines;
    CandidateLists lists = read_candidate_file(path, p.ds, p.split.test, rop);
    ctx.fixed_negatives = &lists.negatives;
    ctx.fixed_description = lists.describe(path);
    spec.candidates = "fixed";
    return evaluate_ranking(*m.model, ctx, spec);
  }
  if (spec.candidates == "heldout") {
    // Cold start: full ranking within the held-out items only (every other item scores -inf).
    const auto& held = p.split.heldout_items;
    if (held.empty())
      throw ConfigError("eval.candidates 'heldout' needs a split that holds out items (split.type cold_items)");
    std::vector<char> cand(p.ds.n_items(), 0);
    for (auto i : held) cand[i] = 1;
    const Model& model = *m.model;
    const int32_t I = p.ds.n_items();
    spec.candidates = "full";
    EvalResult r = evaluate_ranking(
        restrict_to([&](const int32_t* users, int n, float* out) { model.score(users, n, out); }, cand), ctx, spec);
    auto pos = r.protocol.find(fmt::format("full ranking over all {} items", I));
    if (pos != std::string::npos)
      r.protocol.replace(pos, fmt::format("full ranking over all {} items", I).size(),
                         fmt::format("full ranking within the {} held-out (never trained) items only", held.size()));
    return r;
  }
  return evaluate_ranking(*m.model, ctx, spec);
}

namespace {
// The items of a retrieval evaluation: the held-out items, or every item.
std::vector<int32_t> retrieval_set(const Prepared& p) {
  std::vector<int32_t> set = p.split.heldout_items;
  if (set.empty()) {
    set.resize(p.ds.n_items());
    std::iota(set.begin(), set.end(), 0);
  }
  return set;
}

// Each item of `set` queries the others; tops: the first keep_queries queries' top keep_top.
EvalResult retrieval_over(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o,
                          const std::vector<int32_t>& set, std::vector<std::vector<int32_t>>* tops, int keep_queries,
                          int keep_top) {
  int dim = 0;
  const float* emb = m.model->item_embeddings(&dim);
  Similarity kind;
  if (!emb || !m.model->retrieval_kind(&kind))
    throw ConfigError(
        fmt::format("model.task 'retrieval' needs an embedding model with a dot, cosine or euclidean comparator "
                    "(model '{}' has none)",
                    m.model->type()));
  const auto& g = p.ds.item_side.genres;
  std::vector<int32_t> label;
  for (auto i : set) {
    if (static_cast<size_t>(i) >= g.size() || g[i].empty())
      throw DataError(fmt::format("model.task 'retrieval': item '{}' has no category", p.ds.items.original(i)));
    label.push_back(g[i][0]);
  }
  std::vector<float> unit;
  if (kind == Similarity::Cosine) {  // gemm_scores expects unit rows for cosine
    unit.assign(emb, emb + static_cast<size_t>(p.ds.n_items()) * dim);
    normalize_rows(unit.data(), p.ds.n_items(), dim);
    emb = unit.data();
  }
  RetrievalSpec rs;
  rs.threads = o.threads;
  rs.ks.clear();
  for (auto k : c.ints("eval.k")) rs.ks.push_back(static_cast<int>(k));
  if (std::find(rs.ks.begin(), rs.ks.end(), 1) == rs.ks.end()) rs.ks.insert(rs.ks.begin(), 1);
  rs.keep_queries = keep_queries;
  rs.keep_top = keep_top;
  EvalResult r = evaluate_retrieval(emb, dim, kind, set, label, rs, tops);
  r.protocol = fmt::format(
      "{} | task: retrieval: each of the {} {} items queries the other {} | relevant: same category | "
      "similarity: the model's comparator | K: {}",
      p.split.protocol, set.size(), p.split.heldout_items.empty() ? "" : "held-out", set.size() - 1,
      fmt::join(rs.ks, ","));
  return r;
}
}  // namespace

EvalResult evaluate_item_retrieval(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o,
                                   std::vector<std::vector<int32_t>>* tops, int keep_queries, int keep_top) {
  return retrieval_over(m, p, c, o, retrieval_set(p), tops, keep_queries, keep_top);
}

void recommend_users(const TrainedModel& m, const std::vector<int32_t>& users, int k, int threads,
                     const std::function<void(int32_t, const int32_t*, const float*, int)>& emit, bool exclude_seen,
                     bool exclude_valid) {
  // Users are processed in chunks; each chunk is ranked in parallel, then emitted in order, so
  // memory stays bounded however many users there are.
  const size_t chunk = 4096;
  RankOptions ro;
  ro.k = k;
  ro.threads = threads;
  ro.exclude = exclude_seen ? &m.train : nullptr;
  ro.exclude_extra = exclude_seen && exclude_valid && m.valid.rows() > 0 ? &m.valid : nullptr;
  for (size_t lo = 0; lo < users.size(); lo += chunk) {
    std::vector<int32_t> part(users.begin() + lo, users.begin() + std::min(users.size(), lo + chunk));
    std::vector<std::vector<int32_t>> tops(part.size());
    std::vector<std::vector<float>> scores(part.size());
    rank_users(
        part, m.items.size(), [&](const int32_t* u, int n, float* out) { m.model->score(u, n, out); }, ro,
        [&](int64_t idx, int32_t, const float* row, const int32_t* top, int nt) {
          tops[idx].assign(top, top + nt);
          for (int j = 0; j < nt; ++j) scores[idx].push_back(row[top[j]]);
        });
    for (size_t r = 0; r < part.size(); ++r)
      emit(part[r], tops[r].data(), scores[r].data(), static_cast<int>(tops[r].size()));
  }
}

}  // namespace siamrec

namespace siamrec {

void write_retrieval_grid(const TrainedModel& m, const Prepared& p, const Config& c, const RunOptions& o,
                          const std::string& path, int queries) {
  const auto& side = p.ds.item_side;
  if (side.content_shape.size() != 3 || side.content_shape[1] != side.content_shape[2] ||
      (side.content_shape[0] != 1 && side.content_shape[0] != 3))
    throw ConfigError("--grid needs square grey or RGB item images (e.g. data.dataset fashion-mnist)");
  // The first `queries` items of the retrieval set are the grid's queries: evaluate them with tops.
  std::vector<std::vector<int32_t>> tops;
  std::vector<int32_t> set = retrieval_set(p);
  // Spread the queries over the set (every n/queries-th item) by rotating them to the front.
  std::vector<int32_t> front, rest;
  const size_t step = std::max<size_t>(1, set.size() / static_cast<size_t>(queries));
  for (size_t k = 0; k < set.size(); ++k)
    (k % step == 0 && front.size() < static_cast<size_t>(queries) ? front : rest).push_back(set[k]);
  front.insert(front.end(), rest.begin(), rest.end());
  set = front;
  retrieval_over(m, p, c, o, set, &tops, queries, 5);
  const int64_t C = side.content_shape[0], S = side.content_shape[1], per = C * S * S;
  auto image = [&](int32_t i) {
    return std::vector<float>(side.content.begin() + i * per, side.content.begin() + (i + 1) * per);
  };
  auto label = [&](int32_t i) { return side.genres[i].empty() ? -1 : side.genres[i][0]; };
  std::vector<GridRow> rows;
  for (size_t r = 0; r < tops.size(); ++r) {
    GridRow row;
    row.images.push_back(image(set[r]));
    row.cell_borders.push_back(std::nullopt);
    for (auto i : tops[r]) {
      row.images.push_back(image(i));
      row.cell_borders.push_back(label(i) == label(set[r]) ? kGreen : kRed);
    }
    rows.push_back(std::move(row));
  }
  GridOptions go;
  go.cell = static_cast<int>(S) * 3;
  write_png_grid(path, rows, static_cast<int>(C), static_cast<int>(S), go);
  spdlog::info("retrieval grid ({} queries x top-5) written to {}", rows.size(), path);
}

}  // namespace siamrec
