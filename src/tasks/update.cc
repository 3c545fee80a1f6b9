#include "tasks/update.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <random>
#include <tuple>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "data/registry.h"
#include "data/split.h"
#include "models/side_source.h"
#include "tasks/content_data.h"
#include "util/error.h"
#include "util/rng.h"

namespace siamrec {

int64_t attach_side_data(Dataset& ds, const Dataset& meta) {
  ItemSide& is = ds.item_side;
  is = ItemSide{};
  is.genre_vocab = meta.item_side.genre_vocab;
  is.title.assign(static_cast<size_t>(ds.n_items()), "");
  is.genres.assign(static_cast<size_t>(ds.n_items()), {});
  is.tags.assign(static_cast<size_t>(ds.n_items()), {});
  int64_t found = 0;
  for (int32_t i = 0; i < ds.n_items(); ++i) {
    const int32_t m = meta.items.find(ds.items.original(i));
    if (m < 0) continue;
    ++found;
    const size_t k = static_cast<size_t>(m);
    if (k < meta.item_side.title.size()) is.title[i] = meta.item_side.title[k];
    if (k < meta.item_side.genres.size()) is.genres[i] = meta.item_side.genres[k];
    if (k < meta.item_side.tags.size()) is.tags[i] = meta.item_side.tags[k];
  }
  ds.user_side.features.assign(static_cast<size_t>(ds.n_users()), {});
  for (int32_t u = 0; u < ds.n_users(); ++u) {
    const int32_t m = meta.users.find(ds.users.original(u));
    if (m >= 0 && static_cast<size_t>(m) < meta.user_side.features.size())
      ds.user_side.features[u] = meta.user_side.features[static_cast<size_t>(m)];
  }
  return found;
}

Dataset read_new_interactions(const Config& c, const std::string& path, const TrainedModel& tm, const RunOptions& o) {
  Config cc = c;
  cc.set("data.dataset", "", "update");
  cc.set("data.path", path, "update");
  if (tm.users.numeric() && tm.items.numeric() && tm.users.size() > 0)
    cc.set("data.numeric_ids", "true", "update (the model's ids are integers)");
  // Filtered (min rating, dedup) by update_model, on every path the data comes by.
  Dataset ds = read_data_file(cc, path, o);
  if (ds.log.size() == 0) spdlog::warn("'{}' holds no interactions: the update changes nothing but the history", path);
  // Content towers over images or audio: the new data's items' content from the config's table
  // (which may list every item, old and new).
  if (!c.str("data.content_table").empty() && ds.n_items() > 0) {
    ReadOptions ro;
    ro.skip_bad_lines = o.skip_bad_lines;
    attach_content_table(cc, ds, ro, /*known_only=*/true);
  }
  return ds;
}

namespace {

// The sorted union of two id lists (IdMap's order), and where each old id went.
IdMap grow(const IdMap& old, const IdMap& add, std::vector<int32_t>& map, const char* what, const std::string& source) {
  std::vector<std::string> ids = old.ids();
  ids.insert(ids.end(), add.ids().begin(), add.ids().end());
  IdMap u = IdMap::from_ids(std::move(ids));
  map.resize(static_cast<size_t>(old.size()));
  for (int32_t k = 0; k < old.size(); ++k) {
    map[k] = u.find(old.original(k));
    if (map[k] < 0)  // e.g. "007" in the new data and "7" in the model: one number, two spellings
      throw DataError(
          fmt::format("'{}': a {} id of the new data equals the model's {} id '{}' as a number but is "
                      "spelled differently",
                      source, what, what, old.original(k)));
  }
  return u;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

UpdateResult update_model(TrainedModel& tm, const Dataset& fresh, const Config& c, const RunOptions& o,
                          const std::string& source) {
  const auto t0 = std::chrono::steady_clock::now();
  UpdateResult res;
  // The rows to add: filtered as the config filters (min rating, dedup; no k-core), whatever
  // path the data came by (a file through read_new_interactions, or the API's own datasets).
  Interactions rows = fresh.log;
  FilterSpec f;
  f.min_rating = c.real("filter.min_rating");
  f.dedup = c.flag("filter.dedup");
  if (f.min_rating > 0 || f.dedup) rows = apply_filters(rows, fresh.n_users(), fresh.n_items(), f);
  // Ids of the model's type: integer ids stay integer ids (else the id order would change).
  for (auto [old, add, what] : {std::tuple{&tm.users, &fresh.users, "user"}, {&tm.items, &fresh.items, "item"}}) {
    if (!old->numeric() || old->size() == 0) continue;
    for (size_t r = 0; r < rows.size(); ++r) {
      const std::string& id = add->original(std::string(what) == "user" ? rows.user[r] : rows.item[r]);
      if (id.empty() || id.find_first_not_of("-0123456789") != std::string::npos)
        throw DataError(
            fmt::format("'{}': {} id '{}' is not an integer, but the model's {} ids are", source, what, id, what));
    }
  }
  // Only ids that occur in the rows join the model (a dataset's other ids get no rows).
  IdMap used_users, used_items;
  {
    std::vector<std::string> us, is;
    for (size_t r = 0; r < rows.size(); ++r) {
      us.push_back(fresh.users.original(rows.user[r]));
      is.push_back(fresh.items.original(rows.item[r]));
    }
    used_users = IdMap::from_ids(std::move(us));
    used_items = IdMap::from_ids(std::move(is));
  }
  std::vector<int32_t> umap, imap;
  IdMap users = grow(tm.users, used_users, umap, "user", source);
  IdMap items = grow(tm.items, used_items, imap, "item", source);
  res.new_users = users.size() - tm.users.size();
  res.new_items = items.size() - tm.items.size();

  // Every known interaction: the model's (its train rows) and the new ones, in the grown id space.
  Interactions old_rows, new_rows;
  for (int32_t u = 0; u < tm.train.rows(); ++u)
    for (int64_t p = tm.train.begin(u); p < tm.train.end(u); ++p) {
      old_rows.user.push_back(umap[u]);
      old_rows.item.push_back(imap[tm.train.indices[p]]);
    }
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::string& us = fresh.users.original(rows.user[r]);
    const std::string& is = fresh.items.original(rows.item[r]);
    const int32_t u = users.find(us), i = items.find(is);
    if (u < 0 || i < 0)
      throw DataError(fmt::format("'{}': {} id '{}' equals one of the model's as a number but is spelled differently",
                                  source, u < 0 ? "user" : "item", u < 0 ? us : is));
    new_rows.user.push_back(u);
    new_rows.item.push_back(i);
  }
  res.new_interactions = static_cast<int64_t>(new_rows.size());
  // Epochs actually run (an update stopped by the caller ends early).
  int epochs_run = 0;
  RunOptions counted = o;
  counted.on_epoch = [&](const EpochInfo& e) {
    epochs_run = e.epoch;
    return o.on_epoch ? o.on_epoch(e) : true;
  };
  Interactions all = old_rows;
  for (size_t r = 0; r < new_rows.size(); ++r) all.append_row(new_rows, r);
  res.known_interactions = static_cast<int64_t>(all.size());

  // A seeded replay sample of the earlier interactions (update.replay_share of the training rows).
  const double share = c.real("update.replay_share");
  const uint64_t seed = mix64(static_cast<uint64_t>(c.integer("train.seed")) ^ (tm.updates.size() + 1));
  int64_t n_replay = share > 0 ? std::llround(static_cast<double>(new_rows.size()) * share / (1 - share)) : 0;
  n_replay = std::min<int64_t>(n_replay, static_cast<int64_t>(old_rows.size()));
  if (n_replay > 0 && c.str("loss.type") == "mse")
    throw ConfigError(
        "update.replay_share: a rating model (loss.type mse) cannot replay earlier interactions, whose ratings a "
        "model file does not keep; set update.replay_share 0");
  std::vector<int64_t> idx(old_rows.size());
  for (size_t k = 0; k < idx.size(); ++k) idx[k] = static_cast<int64_t>(k);
  std::mt19937_64 rng(seed);
  for (int64_t k = 0; k < n_replay; ++k)
    std::swap(idx[static_cast<size_t>(k)],
              idx[static_cast<size_t>(k + static_cast<int64_t>(rng() % (idx.size() - k)))]);
  idx.resize(static_cast<size_t>(n_replay));
  std::sort(idx.begin(), idx.end());
  Interactions train = new_rows;
  if (n_replay == 0 && rows.has_rating()) train.rating = rows.rating;  // rating models: new rows only
  for (auto r : idx) train.append_row(old_rows, static_cast<size_t>(r));
  res.replayed = n_replay;

  // The grown dataset: ids, every known interaction, titles (old ones kept, new ones from the data).
  Dataset ds;
  ds.name = tm.protocol;
  ds.users = users;
  ds.items = items;
  ds.log = all;
  ds.item_side.title.assign(static_cast<size_t>(items.size()), "");
  for (int32_t i = 0; i < tm.items.size(); ++i)
    if (static_cast<size_t>(i) < tm.item_titles.size()) ds.item_side.title[imap[i]] = tm.item_titles[i];
  for (int32_t i = 0; i < fresh.items.size(); ++i) {
    const int32_t d = items.find(fresh.items.original(i));
    if (ds.item_side.title[d].empty()) ds.item_side.title[d] = fresh.item_title(i);
  }
  Csr known = Csr::from_interactions(all, users.size(), false);

  const Interactions none;
  UpdateData ud;
  ud.fit.ds = &ds;
  ud.fit.train = &train;
  ud.fit.valid = &none;
  ud.fit.train_by_user = &known;
  ud.fit.cfg = &c;
  ud.fit.threads = o.threads;
  ud.fit.protocol = tm.protocol;
  ud.fit.checkpoint = o.checkpoint;
  ud.fit.resume = o.resume;
  ud.fit.log_path = o.log_path;
  ud.fit.on_epoch = counted.on_epoch;
  ud.fit.stop = o.stop;
  ud.all = &all;
  ud.user_map = umap;
  ud.item_map = imap;
  // A model of a registered dataset whose towers read side data (genres, tags, text, user
  // features), given new data without any (a file, arrays, a DataFrame): the new entities' side
  // data come from that dataset's metadata, by id.
  Dataset described;
  ud.fresh = &fresh;
  const std::string named = c.str("data.dataset");
  if (!named.empty() && reads_side_data(c) && fresh.item_side.empty() && fresh.user_side.features.empty() &&
      (res.new_items > 0 || res.new_users > 0)) {
    LoadOptions lo;
    lo.data_dir_flag = o.data_dir_flag;
    lo.read.skip_bad_lines = o.skip_bad_lines;
    described = fresh;
    const int64_t found = attach_side_data(described, load_dataset(named, lo));
    spdlog::info("update: side data of {} of the {} items in '{}' from dataset '{}'", found, described.n_items(),
                 source, named);
    ud.fresh = &described;
  }
  ud.source = source;
  ud.epochs = static_cast<int>(c.integer("update.epochs"));
  ud.init = c.str("update.init");
  ud.lr_scale = c.real("update.lr_scale");
  spdlog::info("update: {} new interactions ({} new users, {} new items) + {} replayed; {} epochs", new_rows.size(),
               res.new_users, res.new_items, n_replay, ud.epochs);
  if (new_rows.size() > 0) tm.model->update(ud);  // nothing new: the weights stay as they are
  if (o.stop && o.stop->load())
    throw Error(fmt::format("the update was stopped after {} of {} epochs: the model is left as it was", epochs_run,
                            ud.epochs));

  // The model file's side: ids, titles, known interactions, validation rows, config, history.
  Csr valid;
  if (tm.valid.indptr.size() > 1) {
    Interactions v;
    for (int32_t u = 0; u < tm.valid.rows(); ++u)
      for (int64_t p = tm.valid.begin(u); p < tm.valid.end(u); ++p) {
        v.user.push_back(umap[u]);
        v.item.push_back(imap[tm.valid.indices[p]]);
      }
    valid = Csr::from_interactions(v, users.size(), false);
  }
  tm.users = std::move(users);
  tm.items = std::move(items);
  tm.item_titles = std::move(ds.item_side.title);
  tm.train = std::move(known);
  tm.valid = std::move(valid);
  tm.config_yaml = c.to_yaml();
  res.epochs = new_rows.size() > 0 && tm.model->type() == "siamese" ? epochs_run : 0;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json rec = {{"date", utc_now()},
                        {"source", source},
                        {"new_interactions", res.new_interactions},
                        {"new_users", res.new_users},
                        {"new_items", res.new_items},
                        {"replayed", res.replayed},
                        {"epochs", res.epochs},
                        {"init", ud.init},
                        {"seconds", res.seconds},
                        {"users", tm.users.size()},
                        {"items", tm.items.size()},
                        {"known_interactions", res.known_interactions}};
  res.record = rec.dump();
  tm.updates.push_back(res.record);
  return res;
}

}  // namespace siamrec
