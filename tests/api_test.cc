// The public C++ API (include/siamrec): datasets from arrays and files, split, fit with progress
// and stop, recommend / history / similar / score / embeddings, evaluate, save / load, errors.
// Only <siamrec/...> headers are used for the API itself; the CLI is the reference it must match.
#include <gtest/gtest.h>

#include <siamrec/siamrec.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "testutil.h"

namespace {

using siamrec::api::ConfigSource;
using siamrec::api::Dataset;
using siamrec::api::Model;

// Two user groups with disjoint tastes: u0..u9 take items a0..a9, u10..u19 items b0..b9, each user
// 7 of her group's 10 items (a rotating window), so the 3 unseen items of her group are the right answer.
struct Planted {
  std::vector<std::string> users, items;
  std::vector<float> ratings;
};
Planted planted() {
  Planted p;
  for (int u = 0; u < 20; ++u)
    for (int j = 0; j < 7; ++j) {
      p.users.push_back("u" + std::to_string(u));
      p.items.push_back(std::string(u < 10 ? "a" : "b") + std::to_string((u + j) % 10));
      p.ratings.push_back(1.0f + static_cast<float>((u + j) % 5));
    }
  return p;
}

TEST(Api, DatasetFromArraysKeepsOriginalIdsBothWays) {
  Planted p = planted();
  Dataset ds = Dataset::from_arrays(p.users, p.items, p.ratings);
  EXPECT_EQ(ds.n_users(), 20);
  EXPECT_EQ(ds.n_items(), 20);
  EXPECT_EQ(ds.size(), 140);
  for (int64_t u = 0; u < ds.n_users(); ++u) EXPECT_EQ(ds.user_index(ds.user_id(u)), u);
  for (int64_t i = 0; i < ds.n_items(); ++i) EXPECT_EQ(ds.item_index(ds.item_id(i)), i);
  EXPECT_EQ(ds.user_index("nobody"), -1);
  // Dense indices follow sorted original ids ("u0" < "u1" < "u10" as strings: not all integers).
  EXPECT_EQ(ds.user_id(0), "u0");
  EXPECT_EQ(ds.user_id(1), "u1");
  EXPECT_EQ(ds.user_id(2), "u10");
  EXPECT_THROW(ds.user_id(20), siamrec::ConfigError);
}

TEST(Api, BadArraysAreRefusedNamingTheRow) {
  Planted p = planted();
  auto msg = siamrec::test::error_of<siamrec::DataError>([&] { Dataset::from_arrays(p.users, {"x"}); });
  EXPECT_NE(msg.find("140 user ids but 1 item ids"), std::string::npos) << msg;
  std::vector<float> bad = p.ratings;
  bad[7] = NAN;
  msg = siamrec::test::error_of<siamrec::DataError>([&] { Dataset::from_arrays(p.users, p.items, bad); });
  EXPECT_NE(msg.find("row 7"), std::string::npos) << msg;
  auto users = p.users;
  users[3] = "";
  msg = siamrec::test::error_of<siamrec::DataError>([&] { Dataset::from_arrays(users, p.items); });
  EXPECT_NE(msg.find("row 3: empty user id"), std::string::npos) << msg;
  msg = siamrec::test::error_of<siamrec::DataError>([&] { Dataset::from_arrays(p.users, p.items, {1.0f}); });
  EXPECT_NE(msg.find("1 ratings for 140 interactions"), std::string::npos) << msg;
}

TEST(Api, ConfigErrorsNameTheKey) {
  auto msg = siamrec::test::error_of<siamrec::ConfigError>([] {
    Model::create(ConfigSource::from_pairs({{"model.type", "nosuchmodel"}}));
  });
  EXPECT_NE(msg.find("nosuchmodel"), std::string::npos) << msg;
  EXPECT_NE(msg.find("itemknn"), std::string::npos) << msg;  // lists the registered ones
  msg = siamrec::test::error_of<siamrec::ConfigError>([] {
    ConfigSource::from_pairs({{"train.nokey", "1"}}).resolved_yaml();
  });
  EXPECT_NE(msg.find("train.nokey"), std::string::npos) << msg;
  msg = siamrec::test::error_of<siamrec::ConfigError>(
      [] { ConfigSource::from_yaml("model:\n  type: [1, 2\n").resolved_yaml(); });
  EXPECT_FALSE(msg.empty());
}

TEST(Api, ItemKnnRecommendsWithinTheGroupAndRoundTripsThroughAFile) {
  Planted p = planted();
  Dataset ds = Dataset::from_arrays(p.users, p.items);
  Model m = Model::create(ConfigSource::from_pairs({{"model.type", "itemknn"}}));
  EXPECT_FALSE(m.fitted());
  EXPECT_THROW(m.recommend("u0", 3), siamrec::Error);
  m.fit(ds);
  ASSERT_TRUE(m.fitted());
  std::set<std::string> seen;
  for (size_t r = 0; r < p.users.size(); ++r)
    if (p.users[r] == "u3") seen.insert(p.items[r]);
  auto recs = m.recommend("u3", 3);
  ASSERT_EQ(recs.size(), 3u);
  for (auto& r : recs) {
    EXPECT_EQ(r.item[0], 'a') << r.item;          // her group's items
    EXPECT_EQ(seen.count(r.item), 0u) << r.item;  // never a seen item
  }
  // exclude_seen=false: seen items may come back, and the list is sorted by score.
  auto all = m.recommend("u3", 10, false);
  ASSERT_EQ(all.size(), 10u);
  for (size_t j = 1; j < all.size(); ++j) EXPECT_GE(all[j - 1].score, all[j].score);
  // Every user at once equals one at a time.
  auto every = m.recommend_all(3);
  ASSERT_EQ(every.size(), 20u);
  for (int64_t u = 0; u < m.n_users(); ++u) {
    auto one = m.recommend(m.user_id(u), 3);
    ASSERT_EQ(one.size(), every[u].size());
    for (size_t j = 0; j < one.size(); ++j) EXPECT_EQ(one[j].item, every[u][j].item);
  }
  // Fold-in from a history of group b items recommends group b items, none of the history.
  int unknown = -1;
  auto fold = m.recommend_history({"b1", "b2", "b3", "zzz"}, 3, &unknown);
  EXPECT_EQ(unknown, 1);
  ASSERT_EQ(fold.size(), 3u);
  for (auto& r : fold) {
    EXPECT_EQ(r.item[0], 'b') << r.item;
    EXPECT_TRUE(r.item != "b1" && r.item != "b2" && r.item != "b3") << r.item;
  }
  auto sim = m.similar("a1", 4);
  ASSERT_EQ(sim.size(), 4u);
  for (auto& r : sim) EXPECT_EQ(r.item[0], 'a') << r.item;
  auto sc = m.score({"u0", "u0"}, {"a5", "b5"});
  ASSERT_EQ(sc.size(), 2u);
  EXPECT_GT(sc[0], sc[1]);
  EXPECT_THROW(m.score({"u0"}, {"nope"}), siamrec::ConfigError);
  EXPECT_THROW(m.recommend("nobody", 3), siamrec::ConfigError);
  EXPECT_THROW(m.recommend("u0", 0), siamrec::ConfigError);

  siamrec::test::TempDir t;
  m.save(t.path() + "/m.model");
  Model back = Model::load(t.path() + "/m.model");
  EXPECT_EQ(back.type(), "itemknn");
  for (int64_t u = 0; u < m.n_users(); ++u) {
    auto a = m.recommend(m.user_id(u), 5), b = back.recommend(m.user_id(u), 5);
    ASSERT_EQ(a.size(), b.size());
    for (size_t j = 0; j < a.size(); ++j) {
      EXPECT_EQ(a[j].item, b[j].item);
      EXPECT_EQ(a[j].score, b[j].score);
    }
  }
  EXPECT_THROW(Model::load(t.path() + "/absent.model"), siamrec::Error);
}

TEST(Api, SiameseFitReportsEpochsStopsOnRequestAndExportsEmbeddings) {
  Planted p = planted();
  Dataset ds = Dataset::from_arrays(p.users, p.items);
  auto cfg = ConfigSource::from_pairs({{"model.type", "siamese"},
                                       {"tower.dim", "8"},
                                       {"train.epochs", "20"},
                                       {"train.valid_share", "0"},
                                       {"train.batch_size", "32"},
                                       {"train.seed", "3"}});
  Model m = Model::create(cfg);
  std::vector<int> epochs;
  std::atomic<bool> stop{false};
  siamrec::api::FitOptions fo;
  fo.threads = 1;
  fo.stop = &stop;
  fo.on_epoch = [&](const siamrec::api::EpochProgress& e) {
    epochs.push_back(e.epoch);
    EXPECT_EQ(e.epochs, 20);
    EXPECT_TRUE(std::isfinite(e.loss));
    if (e.epoch == 3) stop = true;  // the flag stops after the current epoch
    return true;
  };
  m.fit(ds, Dataset(), fo);
  EXPECT_EQ(epochs, (std::vector<int>{1, 2, 3}));
  // A callback returning false stops at once, too.
  Model m2 = Model::create(cfg);
  int calls = 0;
  fo.stop = nullptr;
  fo.on_epoch = [&](const siamrec::api::EpochProgress&) { return ++calls < 2; };
  m2.fit(ds, Dataset(), fo);
  EXPECT_EQ(calls, 2);
  auto ue = m2.user_embeddings(), ie = m2.item_embeddings();
  EXPECT_EQ(ue.rows, 20);
  EXPECT_EQ(ue.cols, 8);
  EXPECT_EQ(ie.rows, 20);
  EXPECT_EQ(ie.data.size(), 20u * 8u);
  // score() of a pair equals the model's ranking score for that user and item.
  auto rec = m2.recommend("u0", 1, false);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_NEAR(m2.score({"u0"}, {rec[0].item})[0], rec[0].score, 1e-4);
}

// The API on a registered dataset gives exactly the command line's numbers.
TEST(Api, EvaluationEqualsTheCommandLine) {
  SIAMREC_NEED_DATA(dir);
  setenv("SIAMREC_DATA_DIR", dir.c_str(), 1);
  auto cfg = ConfigSource::from_pairs({{"data.dataset", "ml-100k"},
                                       {"split.type", "fixed"},
                                       {"split.name", "ua"},
                                       {"model.type", "itemknn"},
                                       {"eval.k", "10"}});
  Dataset ds = Dataset::from_config(cfg);
  EXPECT_EQ(ds.n_users(), 943);
  siamrec::api::Split s = ds.split(cfg);
  EXPECT_EQ(s.test.size(), 9430);
  EXPECT_EQ(s.train.size() + s.test.size(), 100000);
  Model m = Model::create(cfg);
  m.fit(s.train, s.valid);
  EXPECT_THROW(m.evaluate(s.train), siamrec::ConfigError);
  siamrec::api::Evaluation e = m.evaluate(s.test);
  EXPECT_NE(e.protocol.find("ua"), std::string::npos) << e.protocol;
  EXPECT_EQ(e.users.size(), 943u);
  siamrec::test::TempDir t;
  auto r = siamrec::test::run_cli("train --data-dir " + dir +
                                  " --set data.dataset=ml-100k --set split.type=fixed --set split.name=ua "
                                  "--set model.type=itemknn --set eval.k=10 --out " +
                                  t.path() + "/m.model --json " + t.path() + "/run.json");
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(t.path() + "/run.json");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string json = ss.str();
  for (const char* metric : {"ndcg@10", "recall@10", "precision@10"}) {
    auto pos = json.find(std::string("\"") + metric + "\":");
    ASSERT_NE(pos, std::string::npos) << metric;
    double cli = std::stod(json.substr(pos + std::string(metric).size() + 3));
    EXPECT_DOUBLE_EQ(e.get(metric), cli) << metric;
  }
  // The CLI's model file loads through the API with the same recommendations.
  Model cli_model = Model::load(t.path() + "/m.model");
  for (const char* u : {"1", "2", "500"}) {
    auto a = m.recommend(u, 10), b = cli_model.recommend(u, 10);
    ASSERT_EQ(a.size(), b.size());
    for (size_t j = 0; j < a.size(); ++j) EXPECT_EQ(a[j].item, b[j].item) << u;
  }
}

}  // namespace
