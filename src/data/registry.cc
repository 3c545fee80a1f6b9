#include "data/registry.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <set>

#include "content/idx.h"
#include "data/cache.h"
#include "util/error.h"
#include "util/io.h"
#include "util/paths.h"
#include "util/strings.h"

namespace siamrec {

static const char* kNcfAdvice =
    "the NCF leave-one-out files (ml-1m.test.rating, ml-1m.test.negative) come from the NCF authors' "
    "repository (He et al., WWW 2017); place them in DATA_DIR/ncf-ml-1m/";
static const char* kLightgcnAdvice =
    "the LightGCN-style split of all ML-1M interactions (train.txt, test.txt, user_list.txt, "
    "item_list.txt) goes in DATA_DIR/ml-1m-implicit-lightgcn/";

const std::vector<DatasetSpec>& dataset_registry() {
  static const std::vector<DatasetSpec> reg = {
      {"ml-100k", "MovieLens 100K: 100,000 ratings (1-5) of 1,682 movies by 943 users, 1997-98",
       {"ml-100k/u.data"}, {"ml-100k/u.item", "ml-100k/u.genre", "ml-100k/u.user"},
       {"u1", "u2", "u3", "u4", "u5", "ua", "ub"},
       "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
       "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", "ml-100k", 4924029,
       "run `siamrec fetch ml-100k`"},
      {"ml-1m", "MovieLens 1M: movies.dat and users.dat metadata, plus ratings.dat when present",
       {"ml-1m/movies.dat", "ml-1m/users.dat"}, {"ml-1m/ratings.dat"}, {},
       "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
       "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", "ml-1m", 5917549,
       "run `siamrec fetch ml-1m`"},
      {"ml-latest-small", "MovieLens latest-small (2018): 100,836 ratings (0.5-5) by 610 users, with tags",
       {"ml-latest-small/ratings.csv"}, {"ml-latest-small/movies.csv", "ml-latest-small/tags.csv"}, {},
       "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
       "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", "ml-latest-small", 978202,
       "run `siamrec fetch ml-latest-small`"},
      {"ml-1m-lightgcn",
       "all 1,000,209 ML-1M interactions (implicit), LightGCN-style ~80/20 per-user split; MovieLens ids",
       {"ml-1m-implicit-lightgcn/train.txt", "ml-1m-implicit-lightgcn/test.txt",
        "ml-1m-implicit-lightgcn/user_list.txt", "ml-1m-implicit-lightgcn/item_list.txt"},
       {"ml-1m/movies.dat", "ml-1m/users.dat"}, {"lightgcn"}, "", "", "", 0, kLightgcnAdvice},
      {"ml-1m-ncf",
       "all ML-1M interactions (implicit); NCF leave-one-out test (latest item per user) with 99 fixed "
       "negatives; MovieLens ids",
       {"ml-1m-implicit-lightgcn/train.txt", "ml-1m-implicit-lightgcn/test.txt",
        "ml-1m-implicit-lightgcn/user_list.txt", "ml-1m-implicit-lightgcn/item_list.txt",
        "ncf-ml-1m/ml-1m.test.rating", "ncf-ml-1m/ml-1m.test.negative"},
       {"ml-1m/movies.dat", "ml-1m/users.dat"}, {"ncf"}, "", "", "", 0,
       std::string(kLightgcnAdvice) + "; " + kNcfAdvice},
      {"fashion-mnist",
       "Fashion-MNIST: 70,000 28x28 grey product images in 10 categories (60,000 train, 10,000 test), "
       "read from the Debian package dataset-fashion-mnist ($SIAMREC_FASHION_MNIST_DIR or "
       "/usr/share/datasets/fashion-mnist); items only, no users",
       {}, {}, {"fashion"}, "", "", "", 0, "apt-get install dataset-fashion-mnist (scripts/install-deps.sh does)"},
  };
  return reg;
}

// Fashion-MNIST as an item-only dataset: item ids 0..59999 are the train images, 60000..69999 the
// test images (split `fashion`); the category is the item's genre; pixels / 255 are the content.
static Dataset parse_fashion_mnist() {
  const char* env = std::getenv("SIAMREC_FASHION_MNIST_DIR");
  std::string dir = env && *env ? env : kFashionMnistDir;
  FashionMnist tr = load_fashion_mnist(dir, true), te = load_fashion_mnist(dir, false);
  if (tr.images.rows != te.images.rows || tr.images.cols != te.images.cols)
    throw DataError(fmt::format("Fashion-MNIST in '{}': train and test images differ in size", dir));
  Dataset ds;
  const int64_t n = tr.images.n + te.images.n, px = tr.images.rows * tr.images.cols;
  std::vector<std::string> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(std::to_string(i));
  ds.items = IdMap::from_ids(ids);
  ds.item_side.genre_vocab = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  ds.item_side.genres.resize(n);
  ds.item_side.title.resize(n);
  ds.item_side.content.resize(static_cast<size_t>(n * px));
  ds.item_side.content_shape = {1, tr.images.rows, tr.images.cols};
  for (int64_t i = 0; i < n; ++i) {
    bool train = i < tr.images.n;
    int64_t k = train ? i : i - tr.images.n;
    const FashionMnist& f = train ? tr : te;
    int32_t dense = ds.items.find(std::to_string(i));
    uint8_t label = f.labels.labels[k];
    ds.item_side.genres[dense] = {label};
    ds.item_side.title[dense] = fmt::format("{} image {} ({})", train ? "train" : "test", k, ds.item_side.genre_vocab[label]);
    const uint8_t* img = f.images.image(k);
    float* out = ds.item_side.content.data() + static_cast<int64_t>(dense) * px;
    for (int64_t q = 0; q < px; ++q) out[q] = img[q] / 255.0f;
  }
  return ds;
}

const DatasetSpec& dataset_spec(const std::string& name) {
  for (auto& s : dataset_registry())
    if (s.name == name) return s;
  std::string names;
  for (auto& s : dataset_registry()) names += (names.empty() ? "" : ", ") + s.name;
  throw ConfigError(fmt::format("unknown dataset '{}'; registered datasets: {}", name, names));
}

void require_dataset(const DatasetSpec& spec, const std::string& dir, const std::string& origin) {
  for (auto& f : spec.files) {
    std::string p = dir + "/" + f;
    if (!file_exists(p)) {
      std::string fix = spec.how_to_get;
      auto pos = fix.find("DATA_DIR");
      while (pos != std::string::npos) {
        fix.replace(pos, 8, dir);
        pos = fix.find("DATA_DIR");
      }
      throw MissingDataError(fmt::format(
          "dataset '{}' is missing: '{}' not found (data directory '{}' from {}). To fix: {}; or point "
          "SIAMREC_DATA_DIR (or --data-dir) at a folder that holds {}",
          spec.name, p, dir, origin, fix, f));
    }
  }
}

static std::string opt_path(const std::string& dir, const std::string& rel) {
  std::string p = dir + "/" + rel;
  return file_exists(p) ? p : std::string();
}

// ML-1M interactions from the LightGCN files, mapped back to MovieLens ids.
static Dataset parse_ml1m_implicit(const std::string& name, const std::string& dir, const ReadOptions& o) {
  std::string lg = dir + "/ml-1m-implicit-lightgcn/";
  auto ulist = read_remap_list(lg + "user_list.txt", o);
  auto ilist = read_remap_list(lg + "item_list.txt", o);
  RawLog raw;
  for (const char* f : {"train.txt", "test.txt"}) {
    IdPairs p = read_lightgcn(lg + f, o);
    for (size_t k = 0; k < p.user.size(); ++k) {
      if (p.user[k] >= static_cast<int64_t>(ulist.size()))
        throw DataError(fmt::format("{}{}: user id {} is not in user_list.txt ({} users)", lg, f, p.user[k], ulist.size()));
      if (p.item[k] >= static_cast<int64_t>(ilist.size()))
        throw DataError(fmt::format("{}{}: item id {} is not in item_list.txt ({} items)", lg, f, p.item[k], ilist.size()));
      raw.users.push_back(ulist[p.user[k]]);
      raw.items.push_back(ilist[p.item[k]]);
    }
  }
  Dataset ds = dataset_from_raw(std::move(raw), name);
  if (auto m = opt_path(dir, "ml-1m/movies.dat"); !m.empty()) attach_item_meta(ds, read_ml1m_movies(m, o));
  if (auto u = opt_path(dir, "ml-1m/users.dat"); !u.empty()) attach_user_meta(ds, read_ml1m_users(u, o));
  return ds;
}

Dataset parse_dataset(const DatasetSpec& spec, const std::string& dir, const ReadOptions& o) {
  Dataset ds;
  if (spec.name == "ml-100k") {
    DelimitedFormat f;
    f.delimiter = "\t";
    f.user = "0", f.item = "1", f.rating = "2", f.time = "3";
    f.numeric_ids = true;
    ds = dataset_from_raw(read_delimited(dir + "/ml-100k/u.data", f, o), spec.name);
    if (auto it = opt_path(dir, "ml-100k/u.item"), g = opt_path(dir, "ml-100k/u.genre"); !it.empty() && !g.empty())
      attach_item_meta(ds, read_ml100k_items(it, g, o));
    if (auto u = opt_path(dir, "ml-100k/u.user"); !u.empty()) attach_user_meta(ds, read_ml100k_users(u, o));
  } else if (spec.name == "ml-1m") {
    auto movies = read_ml1m_movies(dir + "/ml-1m/movies.dat", o);
    auto users = read_ml1m_users(dir + "/ml-1m/users.dat", o);
    if (auto r = opt_path(dir, "ml-1m/ratings.dat"); !r.empty()) {
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
      spdlog::info("ml-1m: ratings.dat not present in '{}/ml-1m': metadata only (the complete ML-1M "
                   "interactions are available as ml-1m-lightgcn and ml-1m-ncf)", dir);
    }
    attach_item_meta(ds, movies);
    attach_user_meta(ds, users);
  } else if (spec.name == "ml-latest-small") {
    DelimitedFormat f;
    f.delimiter = ",";
    f.header = true;
    f.quoted = true;
    f.user = "userId", f.item = "movieId", f.rating = "rating", f.time = "timestamp";
    f.numeric_ids = true;
    ds = dataset_from_raw(read_delimited(dir + "/ml-latest-small/ratings.csv", f, o), spec.name);
    if (auto m = opt_path(dir, "ml-latest-small/movies.csv"); !m.empty()) {
      auto meta = read_mlsmall_movies(m, o);
      if (auto t = opt_path(dir, "ml-latest-small/tags.csv"); !t.empty()) read_mlsmall_tags(t, meta, o);
      attach_item_meta(ds, meta);
    }
  } else if (spec.name == "ml-1m-lightgcn" || spec.name == "ml-1m-ncf") {
    ds = parse_ml1m_implicit(spec.name, dir, o);
  } else if (spec.name == "fashion-mnist") {
    ds = parse_fashion_mnist();
  } else {
    throw Error(fmt::format("no parser for dataset '{}'", spec.name));
  }
  ds.name = spec.name;
  ds.description = spec.description;
  ds.root = dir;
  return ds;
}

Dataset load_dataset(const std::string& name, const LoadOptions& opt) {
  const DatasetSpec& spec = dataset_spec(name);
  std::string dir = resolve_data_dir(opt.data_dir_flag);
  require_dataset(spec, dir, data_dir_origin(opt.data_dir_flag));
  if (!opt.use_cache || opt.read.skip_bad_lines || spec.files.empty()) return parse_dataset(spec, dir, opt.read);
  std::vector<std::string> files;
  for (auto& f : spec.files) files.push_back(dir + "/" + f);
  for (auto& f : spec.optional_files)
    if (file_exists(dir + "/" + f)) files.push_back(dir + "/" + f);
  std::string key = cache_key(spec.name, files);
  std::string path = resolve_cache_dir() + "/datasets/" + spec.name + "-" + key.substr(0, 24) + ".bin";
  if (file_exists(path)) {
    try {
      Dataset ds = load_dataset_cache(path);
      ds.root = dir;
      return ds;
    } catch (const Error& e) {
      spdlog::warn("ignoring dataset cache: {}", e.what());
    }
  }
  Dataset ds = parse_dataset(spec, dir, opt.read);
  try {
    save_dataset_cache(ds, path);
  } catch (const Error& e) {
    spdlog::warn("could not write dataset cache (continuing without it): {}", e.what());
  }
  return ds;
}

}  // namespace siamrec
