// Every registered dataset in the shared data directory loads with its official counts; fixed
// splits match their published sizes; cache round trip; missing data is reported clearly.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "data/cache.h"
#include "data/registry.h"
#include "data/split.h"
#include "data/summary.h"
#include "testutil.h"
#include "util/error.h"
#include "util/io.h"

using namespace siamrec;

static Dataset load(const std::string& dir, const std::string& name, bool cache = false) {
  LoadOptions o;
  o.data_dir_flag = dir;
  o.use_cache = cache;
  return load_dataset(name, o);
}

// Element by element; reports the first differing index only (a shifted million-row column would
// otherwise flood the log).
template <typename T>
static void expect_same_elements(const std::vector<T>& a, const std::vector<T>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t k = 0; k < a.size(); ++k)
    if (!(a[k] == b[k])) {
      ADD_FAILURE() << what << " differs at " << k << ": " << ::testing::PrintToString(a[k]) << " vs "
                    << ::testing::PrintToString(b[k]);
      return;
    }
}

// An id map, both ways: the same original id at every dense id, and every original id finds its
// dense id in the other map.
static void expect_same_idmap(const IdMap& a, const IdMap& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(a.numeric(), b.numeric()) << what;
  for (int32_t d = 0; d < a.size(); ++d) {
    if (a.original(d) != b.original(d)) {
      ADD_FAILURE() << what << ": dense id " << d << " is '" << a.original(d) << "' vs '" << b.original(d) << "'";
      return;
    }
    if (b.find(a.original(d)) != d || a.find(b.original(d)) != d) {
      ADD_FAILURE() << what << ": original id '" << a.original(d) << "' does not map back to dense id " << d;
      return;
    }
  }
}

// Every field a Dataset carries: names, id maps, the interaction columns, item and user side data.
static void expect_same_dataset(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.root, b.root);
  expect_same_idmap(a.users, b.users, "users");
  expect_same_idmap(a.items, b.items, "items");
  expect_same_elements(a.log.user, b.log.user, "log.user");
  expect_same_elements(a.log.item, b.log.item, "log.item");
  expect_same_elements(a.log.rating, b.log.rating, "log.rating");
  expect_same_elements(a.log.time, b.log.time, "log.time");
  expect_same_elements(a.item_side.title, b.item_side.title, "item titles");
  expect_same_elements(a.item_side.genres, b.item_side.genres, "item genres");
  expect_same_elements(a.item_side.genre_vocab, b.item_side.genre_vocab, "genre vocabulary");
  expect_same_elements(a.item_side.tags, b.item_side.tags, "item tags");
  expect_same_elements(a.item_side.content, b.item_side.content, "item content");
  expect_same_elements(a.item_side.content_shape, b.item_side.content_shape, "item content shape");
  expect_same_elements(a.user_side.features, b.user_side.features, "user features");
}

TEST(Datasets, Ml100kOfficialCounts) {
  SIAMREC_NEED_DATA(dir);
  Dataset ds = load(dir, "ml-100k");
  EXPECT_EQ(ds.log.size(), 100000u);
  EXPECT_EQ(ds.n_users(), 943);
  EXPECT_EQ(ds.n_items(), 1682);
  EXPECT_EQ(ds.item_title(ds.items.find("1")), "Toy Story (1995)");
  EXPECT_EQ(ds.item_side.genre_vocab.size(), 19u);
  EXPECT_EQ(ds.user_side.features[ds.users.find("1")][0], "age=24");
}

TEST(Datasets, MlLatestSmallOfficialCounts) {
  SIAMREC_NEED_DATA(dir);
  Dataset ds = load(dir, "ml-latest-small");
  EXPECT_EQ(ds.log.size(), 100836u);
  EXPECT_EQ(ds.n_users(), 610);
  EXPECT_EQ(ds.n_items(), 9724);
  EXPECT_FLOAT_EQ(*std::min_element(ds.log.rating.begin(), ds.log.rating.end()), 0.5f);
  int with_tags = 0;
  for (auto& t : ds.item_side.tags) with_tags += !t.empty();
  EXPECT_GT(with_tags, 1000);
}

TEST(Datasets, Ml1mLightgcnOfficialCountsAndMovieLensIds) {
  SIAMREC_NEED_DATA(dir);
  Dataset ds = load(dir, "ml-1m-lightgcn");
  EXPECT_EQ(ds.log.size(), 1000209u);
  EXPECT_EQ(ds.n_users(), 6040);
  EXPECT_EQ(ds.n_items(), 3706);
  // ids are MovieLens ids: movie 1193 (the first of item_list.txt) carries its movies.dat title.
  EXPECT_EQ(ds.item_title(ds.items.find("1193")), "One Flew Over the Cuckoo's Nest (1975)");
  EXPECT_LT(ds.memory_bytes(), 100u << 20);
  SplitData s = make_split(ds, {}, SplitSpec{"fixed", "random", {0.8, 0.1, 0.1}, false, "lightgcn", 1});
  EXPECT_EQ(s.train.size(), 797758u);
  EXPECT_EQ(s.test.size(), 202451u);
}

TEST(Datasets, Ml1mNcfProtocol) {
  SIAMREC_NEED_DATA(dir);
  Dataset ds = load(dir, "ml-1m-ncf");
  SplitData s = make_split(ds, {}, SplitSpec{"fixed", "random", {0.8, 0.1, 0.1}, false, "ncf", 1});
  EXPECT_EQ(s.test.size(), 6040u);
  std::set<int32_t> users(s.test.user.begin(), s.test.user.end());
  EXPECT_EQ(users.size(), 6040u);
  // Every NCF test pair is an ML-1M interaction (make_split verifies it) and leaves train.
  EXPECT_EQ(s.train.size(), 1000209u - 6040u);
  ASSERT_EQ(s.test_negatives.size(), 6040u);
  for (int32_t u = 0; u < 6040; ++u) {
    ASSERT_EQ(s.test_negatives[u].size(), 99u) << "user " << ds.users.original(u);
    for (auto i : s.test_negatives[u]) ASSERT_GE(i, 0);
  }
  EXPECT_NE(s.protocol.find("ncf"), std::string::npos);
}

TEST(Datasets, Ml1mMetadataWithoutRatings) {
  SIAMREC_NEED_DATA(dir);
  Dataset ds = load(dir, "ml-1m");
  EXPECT_EQ(ds.n_items(), 3883);
  EXPECT_EQ(ds.n_users(), 6040);
}

TEST(Datasets, CacheRoundTripIsIdenticalAndFast) {
  SIAMREC_NEED_DATA(dir);
  test::TempDir t;
  setenv("SIAMREC_CACHE_DIR", t.path().c_str(), 1);
  Dataset a = load(dir, "ml-1m-ncf", true);  // parses and writes the cache
  Dataset b = load(dir, "ml-1m-ncf", true);  // reads the cache
  unsetenv("SIAMREC_CACHE_DIR");
  // The comparison means something: the parse has the interactions and the ML-1M side data.
  EXPECT_EQ(a.log.size(), 1000209u);
  ASSERT_EQ(a.item_side.title.size(), static_cast<size_t>(a.n_items()));
  EXPECT_EQ(a.item_side.genres.size(), static_cast<size_t>(a.n_items()));
  EXPECT_FALSE(a.item_side.genre_vocab.empty());
  EXPECT_EQ(a.user_side.features.size(), static_cast<size_t>(a.n_users()));
  EXPECT_EQ(b.root, dir);
  expect_same_dataset(a, b);
}

// The same without real data: a fixture with every kind of field through the cache file.
TEST(Datasets, CacheFileRoundTripKeepsEveryField) {
  RawLog raw;
  raw.users = {"u2", "u1", "u2", "u3"};
  raw.items = {"10", "7", "7", "12"};
  raw.rating = {4.5f, 1.0f, 3.0f, 0.5f};
  raw.time = {30, 10, 20, 40};
  Dataset a = dataset_from_raw(raw, "fixture");
  a.description = "a fixture with side data";
  a.item_side.title = {"Seven", "Ten, the sequel", ""};
  a.item_side.genre_vocab = {"Action", "Drama"};
  a.item_side.genres = {{0, 1}, {}, {1}};
  a.item_side.tags = {{"funny"}, {}, {"dark", "slow"}};
  a.user_side.features = {{"age=20", "gender=F"}, {"age=30"}, {}};
  test::TempDir t;
  save_dataset_cache(a, t.path() + "/d.bin");
  Dataset b = load_dataset_cache(t.path() + "/d.bin");
  ASSERT_EQ(a.n_items(), 3);
  EXPECT_TRUE(a.items.numeric());
  EXPECT_EQ(a.items.original(0), "7");  // numeric order
  EXPECT_FALSE(a.users.numeric());
  expect_same_dataset(a, b);
}

TEST(Datasets, CorruptCacheIsIgnoredNotFatal) {
  SIAMREC_NEED_DATA(dir);
  test::TempDir t;
  setenv("SIAMREC_CACHE_DIR", t.path().c_str(), 1);
  Dataset a = load(dir, "ml-100k", true);
  // Truncate every cache file: the next load must re-parse, with the same result.
  for (auto& e : std::filesystem::directory_iterator(t.path() + "/datasets")) {
    std::string bytes = read_file(e.path().string());
    atomic_write(e.path().string(), bytes.substr(0, bytes.size() / 2));
  }
  Dataset b = load(dir, "ml-100k", true);
  unsetenv("SIAMREC_CACHE_DIR");
  // Both loads parsed the files: everything must agree, ratings, times and side data included.
  EXPECT_EQ(a.log.size(), 100000u);
  EXPECT_EQ(a.log.rating.size(), 100000u);
  EXPECT_EQ(a.log.time.size(), 100000u);
  EXPECT_EQ(a.item_side.title.size(), 1682u);
  EXPECT_EQ(a.user_side.features.size(), 943u);
  expect_same_dataset(a, b);
}

TEST(Datasets, MissingDatasetNamesWhatAndWhere) {
  test::TempDir t;
  try {
    load(t.path(), "ml-100k");
    FAIL() << "expected MissingDataError";
  } catch (const MissingDataError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'ml-100k'"), std::string::npos) << m;
    EXPECT_NE(m.find(t.path() + "/ml-100k/u.data"), std::string::npos) << m;
    EXPECT_NE(m.find("SIAMREC_DATA_DIR"), std::string::npos) << m;
    EXPECT_NE(m.find("siamrec fetch ml-100k"), std::string::npos) << m;
    EXPECT_EQ(e.exit_code(), kExitMissingData);
  }
}

TEST(Datasets, UnknownDatasetListsNames) {
  try {
    dataset_spec("ml-10m");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ml-100k, ml-1m"), std::string::npos);
  }
}

TEST(Cli, InfoPrintsSummaryAndExitCodes) {
  SIAMREC_NEED_DATA(dir);
  auto r = test::run_cli("info --dataset ml-100k --json", "SIAMREC_DATA_DIR=" + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"interactions\": 100000"), std::string::npos) << r.out;
  test::TempDir t;
  auto m = test::run_cli("info --dataset ml-100k", "SIAMREC_DATA_DIR=" + t.path());
  EXPECT_EQ(m.code, 4);
  EXPECT_NE(m.err.find("dataset 'ml-100k' is missing"), std::string::npos) << m.err;
  auto u = test::run_cli("info --dataset nope", "SIAMREC_DATA_DIR=" + dir);
  EXPECT_EQ(u.code, 2);
  EXPECT_NE(u.err.find("unknown dataset 'nope'"), std::string::npos) << u.err;
  auto bad = test::run_cli("info --bogus-flag");
  EXPECT_EQ(bad.code, 2);
}

TEST(Cli, FetchVerifiesChecksumOfLocalArchive) {
  test::TempDir t;
  std::string fake = t.file("ml-100k.zip", "definitely not the GroupLens archive");
  auto r = test::run_cli("fetch ml-100k --archive " + fake + " --data-dir " + t.path() + "/data");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("expected 50d2a982"), std::string::npos) << r.err;
  EXPECT_FALSE(dir_exists(t.path() + "/data/ml-100k"));
  auto n = test::run_cli("fetch ml-1m-ncf --data-dir " + t.path());
  EXPECT_EQ(n.code, 2);
  EXPECT_NE(n.err.find("no official archive"), std::string::npos) << n.err;
}
