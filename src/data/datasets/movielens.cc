// The GroupLens MovieLens archives: ML-100K (with its fixed splits u1..u5, ua, ub), ML-1M and
// ML-latest-small. One registration each; the official archive and its SHA-256 let `siamrec fetch`
// download them.
#include <spdlog/spdlog.h>

#include "data/readers.h"
#include "data/registry.h"
#include "data/split.h"

namespace siamrec {
namespace {

DelimitedFormat ml100k_format() {
  DelimitedFormat f;
  f.delimiter = "\t";
  f.user = "0", f.item = "1", f.rating = "2", f.time = "3";
  f.numeric_ids = true;
  return f;
}

Dataset parse_ml100k(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o) {
  Dataset ds = dataset_from_raw(read_delimited(dir + "/ml-100k/u.data", ml100k_format(), o), spec.name);
  if (auto it = optional_path(dir, "ml-100k/u.item"), g = optional_path(dir, "ml-100k/u.genre");
      !it.empty() && !g.empty())
    attach_item_meta(ds, read_ml100k_items(it, g, o));
  if (auto u = optional_path(dir, "ml-100k/u.user"); !u.empty()) attach_user_meta(ds, read_ml100k_users(u, o));
  return ds;
}

// u1..u5 (five-fold 80/20) and ua / ub (10 ratings per user in the test set), as shipped.
void ml100k_split(const Dataset& ds, const std::string& name, SplitData& out) {
  std::string base = ds.root + "/ml-100k/" + name + ".base", test = ds.root + "/ml-100k/" + name + ".test";
  out.train = map_onto(ds, read_delimited(base, ml100k_format()), base);
  out.test = map_onto(ds, read_delimited(test, ml100k_format()), test);
}

Dataset parse_ml1m(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o) {
  Dataset ds;
  auto movies = read_ml1m_movies(dir + "/ml-1m/movies.dat", o);
  auto users = read_ml1m_users(dir + "/ml-1m/users.dat", o);
  if (auto r = optional_path(dir, "ml-1m/ratings.dat"); !r.empty()) {
    DelimitedFormat f;
    f.delimiter = "::";
    f.user = "0", f.item = "1", f.rating = "2", f.time = "3";
    f.numeric_ids = true;
    ds = dataset_from_raw(read_delimited(r, f, o), spec.name);
  } else {
    // Metadata only: every user and movie of the metadata files, no interactions.
    std::vector<std::string> uids, iids;
    for (auto& [id, _] : users) uids.push_back(id);
    for (auto& [id, _] : movies) iids.push_back(id);
    ds.name = spec.name;
    ds.users = IdMap::from_ids(uids);
    ds.items = IdMap::from_ids(iids);
    spdlog::info(
        "ml-1m: ratings.dat not present in '{}/ml-1m': metadata only (the complete ML-1M "
        "interactions are available as ml-1m-lightgcn and ml-1m-ncf)",
        dir);
  }
  attach_item_meta(ds, movies);
  attach_user_meta(ds, users);
  return ds;
}

Dataset parse_mlsmall(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o) {
  DelimitedFormat f;
  f.delimiter = ",";
  f.header = true;
  f.quoted = true;
  f.user = "userId", f.item = "movieId", f.rating = "rating", f.time = "timestamp";
  f.numeric_ids = true;
  Dataset ds = dataset_from_raw(read_delimited(dir + "/ml-latest-small/ratings.csv", f, o), spec.name);
  if (auto m = optional_path(dir, "ml-latest-small/movies.csv"); !m.empty()) {
    auto meta = read_mlsmall_movies(m, o);
    if (auto t = optional_path(dir, "ml-latest-small/tags.csv"); !t.empty()) read_mlsmall_tags(t, meta, o);
    attach_item_meta(ds, meta);
  }
  return ds;
}

DatasetSpec ml100k() {
  DatasetSpec s;
  s.name = "ml-100k";
  s.description = "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users, 1997-98";
  s.files = {"ml-100k/u.data"};
  s.optional_files = {"ml-100k/u.item", "ml-100k/u.genre", "ml-100k/u.user"};
  s.fixed_splits = {"u1", "u2", "u3", "u4", "u5", "ua", "ub"};
  s.url = "https://files.grouplens.org/datasets/movielens/ml-100k.zip";
  s.sha256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229";
  s.archive_folder = "ml-100k";
  s.archive_size = 4924029;
  s.how_to_get = "run `siamrec fetch ml-100k`";
  s.parse = parse_ml100k;
  s.fixed_split = ml100k_split;
  s.order = 10;
  return s;
}

DatasetSpec ml1m() {
  DatasetSpec s;
  s.name = "ml-1m";
  s.description = "MovieLens 1M: movies.dat and users.dat metadata, plus ratings.dat when present";
  s.files = {"ml-1m/movies.dat", "ml-1m/users.dat"};
  s.optional_files = {"ml-1m/ratings.dat"};
  s.url = "https://files.grouplens.org/datasets/movielens/ml-1m.zip";
  s.sha256 = "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20";
  s.archive_folder = "ml-1m";
  s.archive_size = 5917549;
  s.how_to_get = "run `siamrec fetch ml-1m`";
  s.parse = parse_ml1m;
  s.order = 20;
  return s;
}

DatasetSpec mlsmall() {
  DatasetSpec s;
  s.name = "ml-latest-small";
  s.description = "MovieLens latest-small (2018): 100,836 ratings (0.5-5) by 610 users, with tags";
  s.files = {"ml-latest-small/ratings.csv"};
  s.optional_files = {"ml-latest-small/movies.csv", "ml-latest-small/tags.csv"};
  s.url = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip";
  s.sha256 = "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436";
  s.archive_folder = "ml-latest-small";
  s.archive_size = 978202;
  s.how_to_get = "run `siamrec fetch ml-latest-small`";
  s.parse = parse_mlsmall;
  s.order = 30;
  return s;
}

}  // namespace

SIAMREC_REGISTER_DATASET(ml100k, ml100k());
SIAMREC_REGISTER_DATASET(ml1m, ml1m());
SIAMREC_REGISTER_DATASET(mlsmall, mlsmall());

}  // namespace siamrec
