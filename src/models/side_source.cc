#include "models/side_source.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "config/config.h"
#include "data/cache.h"
#include "util/error.h"
#include "util/io.h"

namespace siamrec {

SideSource SideSource::of(const Dataset& ds, const std::string& tokenizer) {
  SideSource s;
  s.present = true;
  s.items.title = ds.item_side.title;
  s.items.genres = ds.item_side.genres;
  s.items.genre_vocab = ds.item_side.genre_vocab;
  s.items.tags = ds.item_side.tags;
  s.users = ds.user_side;
  s.tokenizer = tokenizer;
  return s;
}

void SideSource::save(BinWriter& w) const {
  write_side_data(w, items, users);
  w.put_str(tokenizer);
}

void SideSource::load(BinReader& r, int32_t n_items, int32_t n_users) {
  try {
    read_side_data(r, items, users);
  } catch (const Error& e) {
    throw Error(fmt::format("model file is malformed (siamese side data: {})", e.what()));
  }
  tokenizer = r.get_str();
  if (items.title.size() > static_cast<size_t>(n_items) || items.genres.size() > static_cast<size_t>(n_items) ||
      items.tags.size() > static_cast<size_t>(n_items) || users.features.size() > static_cast<size_t>(n_users))
    throw Error("model file is malformed (siamese side data has more entities than the model)");
  present = true;
}

bool reads_side_data(const Config& c) {
  auto has = [](const std::vector<std::string>& v, const char* s) { return std::count(v.begin(), v.end(), s) > 0; };
  std::vector<std::string> types{c.str("tower.type")};
  if (types[0] == "fusion") types = c.strs("tower.parts");
  for (auto& t : types) {
    if (t == "mlp" || t == "text_cnn" || t == "gru" || t == "lstm" || t == "transformer") return true;
    if (t == "bag" && (has(c.strs("tower.bag"), "genres") || has(c.strs("tower.bag"), "tags"))) return true;
  }
  if (!c.flag("model.shared")) {
    std::vector<std::string> ut{c.str("user_tower.type")};
    if (ut[0] == "fusion") ut = c.strs("user_tower.parts");
    for (auto& t : ut) {
      if (t == "mlp") return true;
      if (t == "bag" && has(c.strs("user_tower.bag"), "features")) return true;
    }
  }
  return false;
}

std::string GrownSide::describe() const {
  std::string s = fmt::format("{} new items", new_items);
  if (new_items_without_side) s += fmt::format(" ({} without any side data)", new_items_without_side);
  std::vector<std::string> dropped;
  if (dropped_genres) dropped.push_back(fmt::format("{} genres", dropped_genres));
  if (dropped_tags) dropped.push_back(fmt::format("{} tags", dropped_tags));
  if (dropped_features) dropped.push_back(fmt::format("{} user features", dropped_features));
  if (!dropped.empty())
    s += fmt::format("; dropped as unknown to the model's vocabularies: {}", fmt::join(dropped, ", "));
  return s;
}

GrownSide grow_side(const SideSource& kept, const std::vector<float>& old_content,
                    const std::vector<int64_t>& content_shape, const std::vector<int32_t>& item_map,
                    const std::vector<int32_t>& user_map, const Dataset& fresh, const std::string& source,
                    Dataset& grown) {
  GrownSide g;
  const size_t ni = static_cast<size_t>(grown.n_items()), nu = static_cast<size_t>(grown.n_users());
  std::vector<int32_t> old_of_item(ni, -1), old_of_user(nu, -1);
  for (size_t k = 0; k < item_map.size(); ++k) old_of_item[static_cast<size_t>(item_map[k])] = static_cast<int32_t>(k);
  for (size_t k = 0; k < user_map.size(); ++k) old_of_user[static_cast<size_t>(user_map[k])] = static_cast<int32_t>(k);

  std::map<std::string, int32_t> genre_id;
  for (size_t k = 0; k < kept.items.genre_vocab.size(); ++k)
    genre_id.emplace(kept.items.genre_vocab[k], static_cast<int32_t>(k));
  std::set<std::string> tag_set, feature_set;
  for (auto& t : kept.items.tags) tag_set.insert(t.begin(), t.end());
  for (auto& f : kept.users.features) feature_set.insert(f.begin(), f.end());

  int64_t per = content_shape.empty() ? 0 : 1;
  for (auto d : content_shape) per *= d;
  if (per > 0 && !fresh.item_side.content.empty() && fresh.item_side.content_shape != content_shape)
    throw DataError(fmt::format("'{}': item content of shape {} cannot join a model trained on content of shape {}",
                                source, fmt::join(fresh.item_side.content_shape, "x"), fmt::join(content_shape, "x")));

  ItemSide& is = grown.item_side;
  const std::vector<std::string> old_titles = is.title;  // update_model's titles (the model file's and the data's)
  is = ItemSide{};
  is.title.assign(ni, "");
  is.genres.assign(ni, {});
  is.genre_vocab = kept.items.genre_vocab;
  is.tags.assign(ni, {});
  if (per > 0) {
    is.content_shape = content_shape;
    is.content.assign(ni * static_cast<size_t>(per), 0.0f);
  }
  auto at = [](const auto& v, size_t k) -> decltype(v[0]) {
    static const std::remove_reference_t<decltype(v[0])> none{};
    return k < v.size() ? v[k] : none;
  };
  for (size_t i = 0; i < ni; ++i) {
    if (i < old_titles.size()) is.title[i] = old_titles[i];
    const int32_t o = old_of_item[i];
    if (o >= 0) {
      if (!at(kept.items.title, static_cast<size_t>(o)).empty()) is.title[i] = kept.items.title[static_cast<size_t>(o)];
      is.genres[i] = at(kept.items.genres, static_cast<size_t>(o));
      is.tags[i] = at(kept.items.tags, static_cast<size_t>(o));
      if (per > 0 && static_cast<size_t>(o + 1) * per <= old_content.size())
        std::copy_n(old_content.begin() + static_cast<int64_t>(o) * per, per,
                    is.content.begin() + static_cast<int64_t>(i) * per);
      continue;
    }
    ++g.new_items;
    const int32_t f = fresh.items.find(grown.items.original(static_cast<int32_t>(i)));
    bool any = !is.title[i].empty();
    if (f >= 0) {
      const size_t fi = static_cast<size_t>(f);
      if (!at(fresh.item_side.title, fi).empty()) is.title[i] = fresh.item_side.title[fi];
      any = any || !is.title[i].empty();
      for (auto k : at(fresh.item_side.genres, fi)) {
        auto it = genre_id.find(fresh.item_side.genre_vocab.at(static_cast<size_t>(k)));
        if (it == genre_id.end()) {
          ++g.dropped_genres;
          continue;
        }
        is.genres[i].push_back(it->second);
      }
      for (auto& t : at(fresh.item_side.tags, fi)) {
        if (!tag_set.count(t)) {
          ++g.dropped_tags;
          continue;
        }
        is.tags[i].push_back(t);
      }
      any = any || !at(fresh.item_side.genres, fi).empty() || !at(fresh.item_side.tags, fi).empty();
      if (per > 0 && (fi + 1) * static_cast<size_t>(per) <= fresh.item_side.content.size()) {
        std::copy_n(fresh.item_side.content.begin() + static_cast<int64_t>(fi) * per, per,
                    is.content.begin() + static_cast<int64_t>(i) * per);
        any = true;
      }
    }
    if (!any) ++g.new_items_without_side;
  }

  UserSide& us = grown.user_side;
  us.features.assign(nu, {});
  for (size_t u = 0; u < nu; ++u) {
    const int32_t o = old_of_user[u];
    if (o >= 0) {
      us.features[u] = at(kept.users.features, static_cast<size_t>(o));
      continue;
    }
    const int32_t f = fresh.users.find(grown.users.original(static_cast<int32_t>(u)));
    if (f < 0) continue;
    for (auto& s : at(fresh.user_side.features, static_cast<size_t>(f))) {
      if (!feature_set.count(s)) {
        ++g.dropped_features;
        continue;
      }
      us.features[u].push_back(s);
    }
  }
  return g;
}

}  // namespace siamrec
