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
  EXPECT_EQ(a.users.ids(), b.users.ids());
  EXPECT_EQ(a.items.ids(), b.items.ids());
  EXPECT_EQ(a.log.user, b.log.user);
  EXPECT_EQ(a.log.item, b.log.item);
  EXPECT_EQ(a.item_side.title, b.item_side.title);
  EXPECT_EQ(b.root, dir);
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
  EXPECT_EQ(a.log.item, b.log.item);
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
