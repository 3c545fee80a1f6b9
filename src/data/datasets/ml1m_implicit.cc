// The complete ML-1M interactions (implicit) in two published protocols, mapped back to MovieLens
// ids: the LightGCN-style ~80/20 per-user split (train.txt / test.txt with user_list / item_list)
// and the NCF leave-one-out test with 99 fixed negatives per user (He et al., WWW 2017).
#include <map>

#include <fmt/format.h>

#include "data/readers.h"
#include "data/registry.h"
#include "data/split.h"
#include "util/error.h"

namespace siamrec {
namespace {

const char* kNcfAdvice =
    "the NCF leave-one-out files (ml-1m.test.rating, ml-1m.test.negative) come from the NCF authors' "
    "repository (He et al., WWW 2017); place them in DATA_DIR/ncf-ml-1m/";
const char* kLightgcnAdvice =
    "the LightGCN-style split of all ML-1M interactions (train.txt, test.txt, user_list.txt, "
    "item_list.txt) goes in DATA_DIR/ml-1m-implicit-lightgcn/";

// ML-1M interactions from the LightGCN files, mapped back to MovieLens ids.
Dataset parse_ml1m_implicit(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o) {
  std::string lg = dir + "/ml-1m-implicit-lightgcn/";
  auto ulist = read_remap_list(lg + "user_list.txt", o);
  auto ilist = read_remap_list(lg + "item_list.txt", o);
  RawLog raw;
  for (const char* f : {"train.txt", "test.txt"}) {
    IdPairs p = read_lightgcn(lg + f, o);
    for (size_t k = 0; k < p.user.size(); ++k) {
      if (p.user[k] >= static_cast<int64_t>(ulist.size()))
        throw DataError(
            fmt::format("{}{}: user id {} is not in user_list.txt ({} users)", lg, f, p.user[k], ulist.size()));
      if (p.item[k] >= static_cast<int64_t>(ilist.size()))
        throw DataError(
            fmt::format("{}{}: item id {} is not in item_list.txt ({} items)", lg, f, p.item[k], ilist.size()));
      raw.users.push_back(ulist[p.user[k]]);
      raw.items.push_back(ilist[p.item[k]]);
    }
  }
  Dataset ds = dataset_from_raw(std::move(raw), spec.name);
  if (auto m = optional_path(dir, "ml-1m/movies.dat"); !m.empty()) attach_item_meta(ds, read_ml1m_movies(m, o));
  if (auto u = optional_path(dir, "ml-1m/users.dat"); !u.empty()) attach_user_meta(ds, read_ml1m_users(u, o));
  return ds;
}

void ml1m_implicit_split(const Dataset& ds, const std::string& name, SplitData& out) {
  const std::string& dir = ds.root;
  std::string lg = dir + "/ml-1m-implicit-lightgcn/";
  auto ulist = read_remap_list(lg + "user_list.txt"), ilist = read_remap_list(lg + "item_list.txt");
  auto to_raw = [&](const IdPairs& p, const std::string& where) {
    RawLog raw;
    for (size_t k = 0; k < p.user.size(); ++k) {
      if (p.user[k] >= static_cast<int64_t>(ulist.size()) || p.item[k] >= static_cast<int64_t>(ilist.size()))
        throw DataError(fmt::format("{}: id ({},{}) outside user_list/item_list", where, p.user[k], p.item[k]));
      raw.users.push_back(ulist[p.user[k]]);
      raw.items.push_back(ilist[p.item[k]]);
    }
    return raw;
  };
  if (name == "lightgcn") {
    out.train = map_onto(ds, to_raw(read_lightgcn(lg + "train.txt"), lg + "train.txt"), lg + "train.txt");
    out.test = map_onto(ds, to_raw(read_lightgcn(lg + "test.txt"), lg + "test.txt"), lg + "test.txt");
  } else {  // ncf: train = every interaction minus the NCF test pairs
    std::string nd = dir + "/ncf-ml-1m/";
    NcfTest t = read_ncf(nd + "ml-1m.test.rating", nd + "ml-1m.test.negative");
    IdPairs tp{t.user, t.item};
    out.test = map_onto(ds, to_raw(tp, nd + "ml-1m.test.rating"), nd + "ml-1m.test.rating");
    std::vector<char> keep(ds.log.size(), 1);
    std::map<std::pair<int32_t, int32_t>, int> test_pairs;
    for (size_t k = 0; k < out.test.size(); ++k) test_pairs[{out.test.user[k], out.test.item[k]}] = 0;
    for (size_t r = 0; r < ds.log.size(); ++r) {
      auto it = test_pairs.find({ds.log.user[r], ds.log.item[r]});
      if (it != test_pairs.end()) {
        keep[r] = 0;
        it->second++;
      }
    }
    for (auto& [p, n] : test_pairs)
      if (n == 0)
        throw DataError(fmt::format("NCF test pair (user {}, item {}) is not an ML-1M interaction",
                                    ds.users.original(p.first), ds.items.original(p.second)));
    out.train = ds.log.select(keep);
    out.test_negatives.assign(ds.n_users(), {});
    for (size_t k = 0; k < t.user.size(); ++k) {
      auto& negs = out.test_negatives[out.test.user[k]];
      for (auto n : t.negatives[k]) {
        if (n >= static_cast<int64_t>(ilist.size()))
          throw DataError(fmt::format("{}: negative item {} outside item_list.txt", nd + "ml-1m.test.negative", n));
        negs.push_back(ds.items.find(ilist[n]));
      }
    }
  }
}

DatasetSpec ml1m_implicit(const std::string& name) {
  DatasetSpec s;
  s.name = name;
  s.files = {"ml-1m-implicit-lightgcn/train.txt", "ml-1m-implicit-lightgcn/test.txt",
             "ml-1m-implicit-lightgcn/user_list.txt", "ml-1m-implicit-lightgcn/item_list.txt"};
  s.optional_files = {"ml-1m/movies.dat", "ml-1m/users.dat"};
  s.parse = parse_ml1m_implicit;
  s.fixed_split = ml1m_implicit_split;
  if (name == "ml-1m-lightgcn") {
    s.description = "all 1,000,209 ML-1M interactions (implicit), LightGCN-style ~80/20 per-user split; MovieLens ids";
    s.fixed_splits = {"lightgcn"};
    s.how_to_get = kLightgcnAdvice;
    s.order = 40;
  } else {
    s.description =
        "all ML-1M interactions (implicit); NCF leave-one-out test (latest item per user) with 99 fixed "
        "negatives; MovieLens ids";
    s.files.push_back("ncf-ml-1m/ml-1m.test.rating");
    s.files.push_back("ncf-ml-1m/ml-1m.test.negative");
    s.fixed_splits = {"ncf"};
    s.how_to_get = std::string(kLightgcnAdvice) + "; " + kNcfAdvice;
    s.order = 50;
  }
  return s;
}

}  // namespace

SIAMREC_REGISTER_DATASET(ml1m_lightgcn, ml1m_implicit("ml-1m-lightgcn"));
SIAMREC_REGISTER_DATASET(ml1m_ncf, ml1m_implicit("ml-1m-ncf"));

}  // namespace siamrec
