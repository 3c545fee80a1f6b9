// Incremental updates (tasks/update.h, siamrec update): grown id spaces, rows kept, new rows
// initialised from their neighbours, replay, refusals, and the CLI's faults (bad data, kill -9).
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <numeric>

#include <fmt/format.h>

#include "models/model.h"
#include "data/registry.h"
#include "models/model_file.h"
#include "tasks/content_data.h"
#include "tasks/pipeline.h"
#include "tasks/update.h"
#include "testutil.h"
#include "util/io.h"

using namespace siamrec;

namespace {

// Item ids are words ("i0"..."i29"), so new items may be named freely.
std::string item(int k) { return "i" + std::to_string(k); }

// Two taste groups: users a0..a29 like items i0..i14, users b0..b29 items i15..i29 (8 each).
RawLog groups(int users_per_group = 30, const std::string& prefix = "") {
  RawLog r;
  for (int g = 0; g < 2; ++g)
    for (int u = 0; u < users_per_group; ++u)
      for (int k = 0; k < 8; ++k) {
        r.users.push_back(prefix + (g ? "b" : "a") + std::to_string(u));
        r.items.push_back(item(g * 15 + (u * 3 + k * 5) % 15));
      }
  return r;
}

Config cml(const std::vector<std::string>& sets = {}) {
  Config c;
  for (auto s :
       {"model.type=siamese", "tower.type=id", "tower.dim=8", "comparator.type=sq_euclidean", "loss.type=triplet",
        "loss.margin=0.5", "reg.max_norm=1", "sampler.negatives=4", "train.engine=fused", "train.update=example",
        "train.optimizer=adagrad", "train.lr=0.1", "train.epochs=20", "train.valid_share=0", "update.epochs=10"})
    c.set_override(s);
  for (auto& s : sets) c.set_override(s);
  return c;
}

TrainedModel fit(const RawLog& raw, const Config& c) {
  Prepared p = test::all_train(dataset_from_raw(raw, "groups"));
  RunOptions ro;
  ro.threads = 1;
  return fit_model(p, c, ro);
}

std::vector<float> scores(const TrainedModel& m, const std::string& user) {
  const int32_t u = m.users.find(user);
  std::vector<float> s(static_cast<size_t>(m.items.size()));
  m.model->score(&u, 1, s.data());
  return s;
}

float score_of(const TrainedModel& m, const std::string& user, const std::string& item) {
  return scores(m, user)[static_cast<size_t>(m.items.find(item))];
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const float* row(const float* e, int dim, int32_t r) { return e + static_cast<size_t>(r) * dim; }

}  // namespace

TEST(Update, GrowsIdsKeepsOldRowsAndStartsNewRowsAtTheirNeighboursMean) {
  TrainedModel m = fit(groups(), cml());
  TrainedModel before = m;
  before.model = clone_model(*m.model);
  // A new user (group a's taste) and a new item that group-a users took.
  RawLog add;
  for (int k = 0; k < 5; ++k) add.users.push_back("new_user"), add.items.push_back(item(k));
  for (int u = 0; u < 6; ++u) add.users.push_back("a" + std::to_string(u)), add.items.push_back("new_item");
  Dataset fresh = dataset_from_raw(add, "add");
  RunOptions ro;
  ro.threads = 1;
  // Learning rate 0: the update moves no weight, so what it carried over is visible exactly.
  UpdateResult r = update_model(m, fresh, cml({"train.lr=0"}), ro, "add");
  EXPECT_EQ(r.new_users, 1);
  EXPECT_EQ(r.new_items, 1);
  EXPECT_EQ(r.new_interactions, 11);
  EXPECT_EQ(r.replayed, 11);  // replay share 0.5: as many earlier interactions as new ones
  EXPECT_EQ(m.users.size(), before.users.size() + 1);
  EXPECT_EQ(m.items.size(), before.items.size() + 1);
  ASSERT_EQ(m.updates.size(), 1u);
  EXPECT_NE(m.updates[0].find("\"new_items\":1"), std::string::npos) << m.updates[0];
  // Every old (user, item) pair scores as before: the rows moved with their ids.
  for (const char* u : {"a0", "a17", "b3", "b29"})
    for (const char* i : {"i0", "i7", "i14", "i15", "i29"})
      EXPECT_FLOAT_EQ(score_of(m, u, i), score_of(before, u, i)) << u << " " << i;
  // New rows: the new user at the mean of her items' rows, the new item at its users' mean.
  int dim = 0, bdim = 0;
  const float* ie = m.model->item_embeddings(&dim);
  const float* ue = m.model->user_embeddings(&dim);
  const float* bie = before.model->item_embeddings(&bdim);
  const float* bue = before.model->user_embeddings(&bdim);
  ASSERT_EQ(dim, 8);
  for (int d = 0; d < dim; ++d) {
    double su = 0, si = 0;
    for (int k = 0; k < 5; ++k) su += row(bie, dim, before.items.find(item(k)))[d];
    for (int u = 0; u < 6; ++u) si += row(bue, dim, before.users.find("a" + std::to_string(u)))[d];
    EXPECT_NEAR(row(ue, dim, m.users.find("new_user"))[d], su / 5, 1e-5);
    EXPECT_NEAR(row(ie, dim, m.items.find("new_item"))[d], si / 6, 1e-5);
  }
  // The known interactions (excluded when recommending) are the old and the new ones.
  EXPECT_EQ(m.train.nnz(), before.train.nnz() + 11);
  EXPECT_TRUE(m.train.contains(m.users.find("a3"), m.items.find("new_item")));
  // The file keeps all of it.
  test::TempDir t;
  save_model_file(m, t.path() + "/m.model");
  TrainedModel back = load_model_file(t.path() + "/m.model");
  EXPECT_EQ(back.updates, m.updates);
  EXPECT_FLOAT_EQ(score_of(back, "new_user", "i3"), score_of(m, "new_user", "i3"));
}

TEST(Update, TrainedUpdateRecommendsTheNewItemToItsGroupAndTheNewUserHerGroupsItems) {
  TrainedModel m = fit(groups(), cml());
  RawLog add;
  for (int k = 15; k < 20; ++k) add.users.push_back("new_user"), add.items.push_back(item(k));  // group b
  for (int u = 0; u < 20; ++u) add.users.push_back("a" + std::to_string(u)), add.items.push_back("new_item");
  RunOptions ro;
  ro.threads = 1;
  update_model(m, dataset_from_raw(add, "add"), cml(), ro, "add");
  // The new user: her group's unseen items (20..29) above group a's.
  auto s = scores(m, "new_user");
  double b = 0, a = 0;
  for (int i = 20; i < 30; ++i) b += s[static_cast<size_t>(m.items.find(item(i)))];
  for (int i = 0; i < 15; ++i) a += s[static_cast<size_t>(m.items.find(item(i)))];
  EXPECT_GT(b / 10, a / 15);
  // The new item, for the group-a users who did not take it: above group b's items on average
  // for every one of them, above the best of group b for most (measured: 7 of 10).
  const int32_t ni = m.items.find("new_item");
  int above_best = 0, above_mean = 0;
  for (int u = 20; u < 30; ++u) {
    auto su = scores(m, "a" + std::to_string(u));
    float best_b = -INFINITY;
    double mean_b = 0;
    for (int i = 15; i < 30; ++i) {
      const float v = su[static_cast<size_t>(m.items.find(item(i)))];
      best_b = std::max(best_b, v);
      mean_b += v / 15;
    }
    above_best += su[static_cast<size_t>(ni)] > best_b;
    above_mean += su[static_cast<size_t>(ni)] > mean_b;
  }
  EXPECT_EQ(above_mean, 10);
  EXPECT_GE(above_best, 6);
}

// Side data for groups(): group a's items are genre A with "alpha" titles, group b's genre B
// with "beta" titles.
void describe_groups(Dataset& ds) {
  ds.item_side.genre_vocab = {"A", "B"};
  ds.item_side.title.resize(static_cast<size_t>(ds.n_items()));
  ds.item_side.genres.resize(static_cast<size_t>(ds.n_items()));
  for (int32_t i = 0; i < ds.n_items(); ++i) {
    const bool b = std::stoi(ds.items.original(i).substr(1)) >= 15;
    ds.item_side.title[i] = std::string(b ? "beta" : "alpha") + " film " + ds.items.original(i);
    ds.item_side.genres[i] = {b ? 1 : 0};
  }
}

// Content towers (bag of own id + genres, a text CNN over titles and genres, a fusion of an id and
// a genre bag) are updated with the vocabularies they were trained on: at learning rate 0 every old
// pair scores exactly as before, so the old items' features were rebuilt with the same token ids;
// a new item is read from its side data (genre B, a "beta" title: group b's taste before any
// training on it), an unknown genre is dropped, and the model file keeps what the next update needs.
TEST(Update, ContentTowersReadNewItemsWithTheVocabulariesTheyWereTrainedOn) {
  const std::vector<std::vector<std::string>> towers = {
      {"tower.type=bag", "tower.bag=self,genres"},
      {"tower.type=text_cnn", "tower.text=title,genres", "tower.kernel_sizes=1,2", "tower.max_len=8"},
      {"tower.type=fusion", "tower.parts=id,bag", "tower.bag=genres"}};
  for (const auto& tower : towers) {
    SCOPED_TRACE(tower[0]);
    std::vector<std::string> sets = {"model.shared=false",   "user_tower.type=id", "comparator.type=dot",
                                     "loss.type=bpr",        "train.engine=torch", "train.update=minibatch",
                                     "train.optimizer=adam", "train.lr=0.02",      "train.batch_size=64",
                                     "train.epochs=15",      "sampler.negatives=1"};
    sets.insert(sets.end(), tower.begin(), tower.end());
    Config c = cml(sets);
    Dataset ds = dataset_from_raw(groups(), "groups");
    describe_groups(ds);
    RunOptions ro;
    ro.threads = 1;
    TrainedModel m = fit_model(test::all_train(ds), c, ro);
    TrainedModel before = m;
    before.model = clone_model(*m.model);

    RawLog add;
    for (int u = 0; u < 6; ++u) add.users.push_back("b" + std::to_string(u)), add.items.push_back("i40");
    add.users.push_back("a0"), add.items.push_back("i41");
    for (int k = 0; k < 4; ++k) add.users.push_back("new_user"), add.items.push_back(item(k));
    Dataset fresh = dataset_from_raw(add, "add");
    fresh.item_side.genre_vocab = {"Z", "B"};  // another vocabulary: B is the model's 1, Z unknown
    fresh.item_side.title.assign(static_cast<size_t>(fresh.n_items()), "");
    fresh.item_side.genres.assign(static_cast<size_t>(fresh.n_items()), {});
    fresh.item_side.title[fresh.items.find("i40")] = "beta film new";
    fresh.item_side.genres[fresh.items.find("i40")] = {1};
    fresh.item_side.genres[fresh.items.find("i41")] = {0};

    UpdateResult r = update_model(m, fresh, cml(concat(sets, {"train.lr=0"})), ro, "add");
    EXPECT_EQ(r.new_items, 2);
    for (const char* u : {"a0", "a17", "b3", "b29"})
      for (const char* i : {"i0", "i7", "i14", "i15", "i29"})
        EXPECT_NEAR(score_of(m, u, i), score_of(before, u, i), 1e-4) << u << " " << i;  // CNN batches differ
    // The new genre-B item: group b's more than group a's, before any training on it.
    double a = 0, b = 0;
    for (int u = 10; u < 30; ++u) {
      a += score_of(m, "a" + std::to_string(u), "i40");
      b += score_of(m, "b" + std::to_string(u), "i40");
    }
    EXPECT_GT(b, a) << "the new genre-B item is not group b's";

    // Through the file: the next update reads with the same vocabularies.
    test::TempDir t;
    save_model_file(m, t.path() + "/m.model");
    TrainedModel back = load_model_file(t.path() + "/m.model");
    RawLog more;
    more.users.push_back("b9"), more.items.push_back("i42");
    Dataset fresh2 = dataset_from_raw(more, "more");
    fresh2.item_side.genre_vocab = {"B"};
    fresh2.item_side.title = {"beta film newer"};
    fresh2.item_side.genres = {{0}};
    update_model(back, fresh2, cml(concat(sets, {"train.lr=0"})), ro, "more");
    for (const char* u : {"a0", "b3", "new_user"})
      for (const char* i : {"i0", "i29", "i40", "i41"}) EXPECT_NEAR(score_of(back, u, i), score_of(m, u, i), 1e-4);
    EXPECT_NEAR(score_of(back, "b3", "i42"), score_of(back, "b3", "i40"), 1e-4) << "two items with one content";
  }
}

// A model of a registered dataset given new data without side data (a file of ids, arrays, a
// DataFrame): the new items' genres come from the dataset by id. A genre bag without the own id
// makes an item its genres, so the new item scores exactly as an old item of the same genres.
TEST(Update, NewItemsOfARegisteredDatasetAreReadWithItsMetadata) {
  SIAMREC_NEED_DATA(dir);
  LoadOptions lo;
  lo.data_dir_flag = dir;
  const Dataset ml = load_dataset("ml-100k", lo);
  // The model knows users 1-200 and the items they took, except item 50 (Star Wars).
  RawLog base, add;
  for (size_t r = 0; r < ml.log.size(); ++r) {
    const std::string& u = ml.users.original(ml.log.user[r]);
    const std::string& i = ml.items.original(ml.log.item[r]);
    if (std::stoi(u) > 200) continue;
    (i == "50" ? add : base).users.push_back(u);
    (i == "50" ? add : base).items.push_back(i);
  }
  Dataset ds = dataset_from_raw(base, "ml-100k users 1-200");
  attach_side_data(ds, ml);
  Config c =
      cml({"data.dataset=ml-100k", "model.shared=false", "user_tower.type=id", "tower.type=bag", "tower.bag=genres",
           "comparator.type=dot", "loss.type=bpr", "train.engine=torch", "train.update=minibatch",
           "train.optimizer=adam", "train.lr=0.01", "train.batch_size=1024", "train.epochs=1", "sampler.negatives=1"});
  RunOptions ro;
  ro.threads = 2;
  ro.data_dir_flag = dir;
  TrainedModel m = fit_model(test::all_train(ds), c, ro);
  ASSERT_LT(m.items.find("50"), 0);
  Dataset fresh = dataset_from_raw(add, "star wars");  // ids only
  ASSERT_TRUE(fresh.item_side.empty());
  Config c0 = c;
  c0.set_override("train.lr=0");
  update_model(m, fresh, c0, ro, "star wars");
  // Star Wars (Action|Adventure|Romance|Sci-Fi|War) and The Empire Strikes Back (item 172,
  // Action|Adventure|Drama|Romance|Sci-Fi|War) differ by Drama; Return of the Jedi (181) is
  // Action|Adventure|Romance|Sci-Fi|War, like Star Wars.
  ASSERT_GE(m.items.find("50"), 0);
  for (const char* u : {"1", "13", "200"}) {
    EXPECT_FLOAT_EQ(score_of(m, u, "50"), score_of(m, u, "181")) << u;
    EXPECT_NE(score_of(m, u, "50"), score_of(m, u, "172")) << u;
  }
}

// Image content (data.content_table): `siamrec update`'s reader takes the new items' images from the
// config's table, which lists old and new items alike; a new item with an old item's image is
// encoded as that item.
TEST(Update, NewItemsImagesComeFromTheContentTable) {
  test::TempDir t;
  std::ofstream csv(t.path() + "/images.csv");
  csv << "item_id,path\n";
  auto image = [&](const std::string& id, bool right) {
    std::vector<uint8_t> px(64, 0);
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) px[static_cast<size_t>(y * 8 + x)] = (x >= 4) == right ? 255 : 0;
    ASSERT_TRUE(stbi_write_png((t.path() + "/" + id + ".png").c_str(), 8, 8, 1, px.data(), 8));
    csv << id << "," << id << ".png\n";
  };
  for (int k = 0; k < 30; ++k) image(item(k), k >= 15);
  image("i40", true);
  csv.close();
  Config c =
      cml({"data.content_table=" + t.path() + "/images.csv", "data.content=image", "data.image_size=8",
           "data.image_channels=1", "model.shared=false", "user_tower.type=id", "tower.type=image_cnn",
           "tower.hidden=4,8", "comparator.type=dot", "loss.type=bpr", "train.engine=torch", "train.update=minibatch",
           "train.optimizer=adam", "train.lr=0.01", "train.batch_size=64", "train.epochs=3", "sampler.negatives=1"});
  Dataset ds = dataset_from_raw(groups(), "groups");
  attach_content_table(c, ds, ReadOptions{}, /*known_only=*/true);
  RunOptions ro;
  ro.threads = 1;
  TrainedModel m = fit_model(test::all_train(ds), c, ro);
  {
    std::ofstream add(t.path() + "/add.tsv");
    for (int u = 0; u < 6; ++u) add << "b" << u << "\ti40\n";
  }
  Dataset fresh = read_new_interactions(c, t.path() + "/add.tsv", m, ro);
  ASSERT_EQ(fresh.item_side.content_shape, (std::vector<int64_t>{1, 8, 8}));
  Config c0 = c;
  c0.set_override("train.lr=0");
  update_model(m, fresh, c0, ro, "add.tsv");
  for (const char* u : {"a3", "b20"}) {
    EXPECT_NEAR(score_of(m, u, "i40"), score_of(m, u, "i15"), 1e-5) << u;
    EXPECT_GT(std::abs(score_of(m, u, "i40") - score_of(m, u, "i0")), 1e-4) << u;
  }
}

// LightGCN (gcn tower): its rows grow and its graph is rebuilt from every known interaction.
TEST(Update, GraphTowerGrowsAndRecommendsTheNewItemToItsGroup) {
  Config c = cml({"tower.type=gcn", "tower.layers=2", "comparator.type=cosine", "loss.type=infonce",
                  "loss.temperature=0.2", "train.engine=torch", "train.update=minibatch", "train.optimizer=adam",
                  "train.lr=0.01", "train.batch_size=64", "train.epochs=20", "update.lr_scale=1"});
  TrainedModel m = fit(groups(), c);
  RawLog add;
  for (int u = 0; u < 20; ++u) add.users.push_back("a" + std::to_string(u)), add.items.push_back("new_item");
  for (int k = 15; k < 20; ++k) add.users.push_back("new_user"), add.items.push_back(item(k));
  RunOptions ro;
  ro.threads = 1;
  UpdateResult r = update_model(m, dataset_from_raw(add, "add"), c, ro, "add");
  EXPECT_EQ(r.new_items, 1);
  EXPECT_EQ(r.new_users, 1);
  int above = 0;
  for (int u = 20; u < 30; ++u)
    above += score_of(m, "a" + std::to_string(u), "new_item") > score_of(m, "b" + std::to_string(u), "new_item");
  EXPECT_GE(above, 9) << "group a's users who did not take the new item rank it above group b's";
  auto s = scores(m, "new_user");
  double b = 0, a = 0;
  for (int i = 20; i < 30; ++i) b += s[static_cast<size_t>(m.items.find(item(i)))];
  for (int i = 0; i < 15; ++i) a += s[static_cast<size_t>(m.items.find(item(i)))];
  EXPECT_GT(b / 10, a / 15);
}

// update.lr_scale: the update's optimizer starts afresh (Adagrad's first steps are its largest),
// so its learning rate is the model's times this. The old items' rows move less at 0.05 than at
// 1, and still move.
TEST(Update, LearningRateScaleBoundsHowFarOldRowsMove) {
  TrainedModel base = fit(groups(), cml());
  RawLog add;
  for (int u = 0; u < 20; ++u)
    for (int k = 0; k < 3; ++k) add.users.push_back("b" + std::to_string(u)), add.items.push_back(item(k));
  int dim = 0;
  const float* e0 = base.model->item_embeddings(&dim);
  std::vector<float> before(e0, e0 + static_cast<size_t>(base.items.size()) * dim);
  auto moved = [&](double scale) {
    TrainedModel m = base;
    m.model = clone_model(*base.model);
    RunOptions ro;
    ro.threads = 1;
    update_model(m, dataset_from_raw(add, "add"), cml({fmt::format("update.lr_scale={}", scale)}), ro, "add");
    int d = 0;
    const float* e = m.model->item_embeddings(&d);
    double sum = 0;
    for (int32_t i = 0; i < base.items.size(); ++i) {
      const int32_t j = m.items.find(base.items.original(i));
      for (int k = 0; k < d; ++k) sum += std::abs(row(e, d, j)[k] - row(before.data(), d, i)[k]);
    }
    return sum / (static_cast<double>(base.items.size()) * d);
  };
  const double full = moved(1.0), small = moved(0.05);
  EXPECT_GT(small, 0.0);
  EXPECT_LT(small, 0.3 * full) << "lr_scale 0.05 moved old rows " << small << ", lr_scale 1 " << full;
}

TEST(Update, NoNewDataLeavesScoresUnchanged) {
  TrainedModel m = fit(groups(), cml());
  TrainedModel before = m;
  before.model = clone_model(*m.model);
  RunOptions ro;
  UpdateResult r = update_model(m, dataset_from_raw(RawLog{}, "empty"), cml(), ro, "empty");
  EXPECT_EQ(r.new_interactions, 0);
  EXPECT_EQ(r.epochs, 0);
  EXPECT_EQ(m.users.ids(), before.users.ids());
  for (const char* u : {"a0", "b5"}) EXPECT_EQ(scores(m, u), scores(before, u));
  EXPECT_EQ(m.updates.size(), 1u);
}

TEST(Update, BaselinesRefitOnEveryKnownInteractionAndOtherBuildersAreRefused) {
  Config pop;
  pop.set_override("model.type=pop");
  TrainedModel m = fit(groups(), pop);
  RawLog add;
  for (int u = 0; u < 40; ++u) add.users.push_back("x" + std::to_string(u)), add.items.push_back("hit");
  RunOptions ro;
  update_model(m, dataset_from_raw(add, "add"), pop, ro, "add");
  auto s = scores(m, "a0");
  EXPECT_EQ(std::max_element(s.begin(), s.end()) - s.begin(), m.items.find("hit"));  // 40 takers: the top item

  Config tfidf;
  tfidf.set_override("model.type=tfidf");
  TrainedModel t = m;
  t.model = create_model("tfidf");  // refused before it would read anything
  try {
    update_model(t, dataset_from_raw(add, "add"), tfidf, ro, "add");
    FAIL() << "tfidf was updated";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("text"), std::string::npos) << e.what();
  }
  // Item-item builders are refused: a model file keeps no time order for their windows.
  Config ii = cml({"sampler.builder=item_item", "train.engine=torch", "train.update=minibatch", "train.epochs=2"});
  TrainedModel g = fit(groups(), ii);
  try {
    update_model(g, dataset_from_raw(add, "add"), ii, ro, "add");
    FAIL() << "an item-item model was updated";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sampler.builder is 'item_item'"), std::string::npos) << e.what();
  }
}

// The command line: mismatched or malformed data is refused with file:line and leaves the model
// file as it was; kill -9 during an update leaves the old model intact and --resume finishes it
// (and refuses to continue it with other data).
TEST(UpdateCli, BadDataIsRefusedAndKillNineThenResumeMatchesAnUninterruptedUpdate) {
  test::TempDir t;
  std::string base, more;
  for (int u = 0; u < 200; ++u)
    for (int k = 0; k < 10; ++k) base += fmt::format("{}\t{}\n", u, (u % 20) * 7 + k * 13 % 150);
  for (int u = 150; u < 260; ++u)
    for (int k = 0; k < 10; ++k) more += fmt::format("{}\t{}\n", u, (u % 20) * 7 + k * 11 % 170);
  const std::string data = t.file("base.tsv", base), add = t.file("more.tsv", more);
  const std::string model = t.path() + "/m.model";
  auto r = test::run_cli(fmt::format(
      "--threads 1 -q train --set data.path={} --set model.type=siamese --set tower.type=id --set tower.dim=16 "
      "--set train.engine=torch --set train.epochs=3 --set train.valid_share=0 --set split.type=ratio -o {} --no-eval",
      data, model));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string sha = sha256_file(model);
  // Ids of another type (the model's are integers), and a column the file does not have.
  const std::string words = t.file("words.tsv", "12\t7\nalice\t7\n");
  r = test::run_cli(fmt::format("-q update -m {} -d {} -o {}", model, words, model));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("words.tsv:2"), std::string::npos) << r.err;
  r = test::run_cli(fmt::format("-q update -m {} -d {} -o {} --set data.rating_col=5", model, add, model));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("more.tsv:1"), std::string::npos) << r.err;
  r = test::run_cli(fmt::format("-q update -m {} -d {} -o {} --set update.bogus=1", model, add, model));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(sha256_file(model), sha) << "a refused update changed the model file";

  const std::string ref = t.path() + "/ref.model";
  auto argv = [&](const std::string& out, bool resume) {
    std::vector<std::string> a = {"--threads", "1", "-q", "update", "-m",       model,
                                  "-d",        add, "-o", out,      "--epochs", "40"};
    if (resume) a.push_back("--resume");
    return test::cli_argv(a);
  };
  {
    test::Child c(argv(ref, false), t.path());
    ASSERT_EQ(c.wait(300), 0) << c.err();
  }
  const std::string out = t.path() + "/run.model";
  bool killed = false;
  {
    test::Child c(argv(out, false), t.path());
    for (int i = 0; i < 60000 && c.running(); ++i) {
      if (file_exists(out + ".ckpt")) {
        c.signal(SIGKILL);
        killed = true;
        break;
      }
      usleep(1000);
    }
    c.wait(30);
  }
  ASSERT_TRUE(killed) << "the update ended before its first checkpoint";
  EXPECT_FALSE(file_exists(out)) << "a killed update left a model file";
  EXPECT_EQ(sha256_file(model), sha) << "a killed update changed the old model";
  {  // Resuming with other new data (one line changed) is refused: the checkpoint is another run's.
    std::string edited = more;
    edited.replace(0, edited.find('\n'), "150\t3");
    const std::string add2 = t.file("more2.tsv", edited);
    r = test::run_cli(fmt::format("--threads 1 -q update -m {} -d {} -o {} --epochs 40 --resume", model, add2, out));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("other training data"), std::string::npos) << r.err;
    EXPECT_TRUE(file_exists(out + ".ckpt")) << "a refused resume removed the checkpoint";
  }
  test::Child c(argv(out, true), t.path());
  ASSERT_EQ(c.wait(300), 0) << c.err();
  // The same weights as the uninterrupted update (the history's dates and seconds differ).
  TrainedModel a = load_model_file(ref), b = load_model_file(out);
  ASSERT_EQ(a.users.ids(), b.users.ids());
  int da = 0, db = 0;
  const float* ea = a.model->item_embeddings(&da);
  const float* eb = b.model->item_embeddings(&db);
  ASSERT_EQ(da, db);
  EXPECT_TRUE(std::equal(ea, ea + static_cast<size_t>(a.items.size()) * da, eb));
  EXPECT_EQ(a.users.size(), 260);
}
