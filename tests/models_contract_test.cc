// One behavioural contract every registered model passes (the `implicit` habit): fit, recommend,
// fold-in of an unseen user, empty history, save -> load identical scores, seeded determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "config/config.h"
#include "data/dataset.h"
#include "models/model.h"
#include "models/model_file.h"
#include "tasks/pipeline.h"
#include "testutil.h"
#include "util/error.h"
#include "util/io.h"

using namespace siamrec;

// Two user groups with disjoint tastes: users 0..9 like items 0..9, users 10..19 like items 10..19.
static Dataset planted() {
  Dataset ds = dataset_from_raw(test::planted_log(/*ratings=*/false, /*times=*/false), "planted");
  ds.item_side.title.resize(ds.n_items());  // text for content baselines (tfidf)
  for (int32_t i = 0; i < ds.n_items(); ++i)
    ds.item_side.title[i] = std::string(std::stoi(ds.items.original(i).substr(1)) < 110 ? "alpha " : "beta ") + ds.items.original(i);
  return ds;
}

class Contract : public ::testing::TestWithParam<std::string> {};

TEST_P(Contract, FitRecommendFoldInSaveLoadDeterminism) {
  Dataset ds = planted();
  Config c;
  c.set("model.type", GetParam(), "test");
  c.set("model.neighbors", "5", "test");
  c.set("model.shrink", "0", "test");
  Prepared p = test::all_train(ds);
  RunOptions ro;
  ro.threads = 2;
  TrainedModel m = fit_model(p, c, ro);
  const int32_t I = ds.n_items();
  ASSERT_EQ(m.model->n_items(), I);

  // Scores are finite for every user.
  std::vector<int32_t> users(ds.n_users());
  for (int32_t u = 0; u < ds.n_users(); ++u) users[u] = u;
  std::vector<float> s1(static_cast<size_t>(ds.n_users()) * I);
  m.model->score(users.data(), ds.n_users(), s1.data());
  for (float v : s1) ASSERT_TRUE(std::isfinite(v));

  // Recommend: k items, none of them seen in training.
  int recs = 0;
  recommend_users(m, users, 3, 2, [&](int32_t u, const int32_t* items, const float*, int n) {
    EXPECT_EQ(n, 3);
    for (int j = 0; j < n; ++j) EXPECT_FALSE(p.train_by_user.contains(u, items[j])) << GetParam();
    ++recs;
  });
  EXPECT_EQ(recs, ds.n_users());

  // Fold-in: an unseen user with a history, and an empty history, give finite scores.
  std::vector<float> h(I);
  m.model->score_history({ds.items.find("i101"), ds.items.find("i102")}, h.data());
  for (float v : h) ASSERT_TRUE(std::isfinite(v));
  m.model->score_history({}, h.data());
  for (float v : h) ASSERT_TRUE(std::isfinite(v));

  // Save -> load gives identical scores, and needs no training data.
  test::TempDir t;
  save_model_file(m, t.path() + "/m.bin");
  TrainedModel back = load_model_file(t.path() + "/m.bin");
  std::vector<float> s2(s1.size());
  back.model->score(users.data(), ds.n_users(), s2.data());
  EXPECT_EQ(s1, s2) << GetParam();
  EXPECT_EQ(back.users.ids(), ds.users.ids());
  EXPECT_EQ(back.train.indices, p.train_by_user.indices);

  // Seeded determinism: a second fit gives the same scores.
  TrainedModel again = fit_model(p, c, ro);
  std::vector<float> s3(s1.size());
  again.model->score(users.data(), ds.n_users(), s3.data());
  EXPECT_EQ(s1, s3) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(AllModels, Contract, ::testing::ValuesIn(model_names()),
                         [](const auto& info) { return info.param; });

// Neighbourhood models recover the planted structure: top items are from the user's own group.
TEST(PlantedStructure, KnnModelsRecommendWithinGroup) {
  Dataset ds = planted();
  for (std::string type : {"itemknn", "userknn"}) {
    Config c;
    c.set("model.type", type, "test");
    Prepared p = test::all_train(ds);
    TrainedModel m = fit_model(p, c, RunOptions{});
    std::vector<int32_t> users(ds.n_users());
    for (int32_t u = 0; u < ds.n_users(); ++u) users[u] = u;
    recommend_users(m, users, 3, 1, [&](int32_t u, const int32_t* items, const float*, int n) {
      bool group_a = std::stoi(ds.users.original(u).substr(1)) < 110;
      for (int j = 0; j < n; ++j) {
        bool item_a = std::stoi(ds.items.original(items[j]).substr(1)) < 110;
        EXPECT_EQ(group_a, item_a) << type << " user " << ds.users.original(u);
      }
    });
  }
}

TEST(ModelFile, CorruptTruncatedAndNewerAreRefused) {
  Dataset ds = planted();
  Config c;
  Prepared p = test::all_train(ds);
  TrainedModel m = fit_model(p, c, RunOptions{});
  test::TempDir t;
  std::string path = t.path() + "/m.bin";
  save_model_file(m, path);
  std::string bytes = read_file(path);
  auto refused = [&](const std::string& content, const std::string& expect) {
    atomic_write(path, content);
    try {
      load_model_file(path);
      ADD_FAILURE() << "accepted: " << expect;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << e.what();
    }
  };
  refused(bytes.substr(0, bytes.size() / 2), "checksum mismatch");
  refused(bytes.substr(0, 10), "truncated");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  refused(flipped, "corrupt");
  refused("hello world, this is not a model file at all....................", "wrong magic");
  // A newer format version (with a valid checksum) is refused by version, not by checksum.
  BinWriter w("SRMODEL\1", kModelFormatVersion + 1);
  w.put_str("x");
  atomic_write(path, w.finish());
  try {
    load_model_file(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this siamrec supports"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model_file(t.path() + "/missing.bin"), Error);
}
