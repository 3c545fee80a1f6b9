// Content towers: image_cnn, audio_cnn (end to end on synthesized tones), text towers (text_cnn,
// gru, lstm, transformer over item text) with cold-start evaluation, and the fusion cold-item rule.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "config/config.h"
#include "data/split.h"
#include "models/model_file.h"
#include "tasks/pipeline.h"
#include "testutil.h"
#include "towers/augment.h"
#include "util/error.h"
#include "util/io.h"

using namespace siamrec;

namespace {

Config make_config(const std::vector<std::string>& sets) {
  Config c;
  for (auto& s : sets) c.set_override(s);
  return c;
}

// 60 grey 8x8 images in 3 classes: a bright bar at rows 1-2 (class 0), 5-6 (class 1), or a
// bright column band (class 2), with noise.
Dataset image_items() {
  Dataset ds;
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) ids.push_back(std::to_string(i));
  ds.items = IdMap::from_ids(ids);
  ds.name = "images";
  ds.item_side.genre_vocab = {"top", "bottom", "band"};
  ds.item_side.genres.resize(60);
  ds.item_side.title.assign(60, "");
  ds.item_side.content_shape = {1, 8, 8};
  ds.item_side.content.assign(60 * 64, 0.0f);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 0.3f);
  for (int i = 0; i < 60; ++i) {
    int cls = i % 3;
    ds.item_side.genres[ds.items.find(std::to_string(i))] = {cls};
    float* img = ds.item_side.content.data() + ds.items.find(std::to_string(i)) * 64;
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        bool on = cls == 0 ? (y == 1 || y == 2) : cls == 1 ? (y == 5 || y == 6) : (x == 3 || x == 4);
        img[y * 8 + x] = (on ? 0.8f : 0.0f) + u(rng);
      }
  }
  return ds;
}

// The image retrieval model of the ImageCnn tests (a small CNN, triplet loss over same-category
// pairs, in-batch semi-hard negatives, 8 epochs), with `more` settings after it.
std::vector<std::string> image_retrieval(const std::vector<std::string>& more) {
  std::vector<std::string> s = {"model.type=siamese",
                                "model.task=retrieval",
                                "tower.type=image_cnn",
                                "tower.hidden=4,8",
                                "tower.dim=8",
                                "comparator.type=euclidean",
                                "loss.type=triplet",
                                "sampler.builder=label",
                                "sampler.pairs_per_item=4",
                                "sampler.type=in_batch",
                                "sampler.batch_mining=semi_hard",
                                "train.batch_size=16",
                                "train.epochs=8",
                                "train.lr=0.01",
                                "eval.k=1,5"};
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

Prepared prepared_items(Dataset ds, double train_share) {
  Prepared p;
  p.ds = std::move(ds);
  SplitSpec s;
  s.type = "cold_items";
  s.ratios = {train_share, 0.0, 1.0 - train_share};
  p.split = make_split(p.ds, FilterSpec{}, s);
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  return p;
}

}  // namespace

TEST(ImageCnn, LearnsCategoriesSavesLoadsAndIsDeterministic) {
  Prepared p = prepared_items(image_items(), 0.5);
  ASSERT_EQ(p.split.heldout_items.size(), 30u);
  Config c = make_config(image_retrieval({"train.valid_share=0"}));
  RunOptions ro;
  ro.threads = 1;
  TrainedModel m = fit_model(p, c, ro);
  EvalResult r = evaluate_model(m, p, c, ro);
  EXPECT_GE(r.get("recall@1"), 0.9) << r.table();  // held-out images only; chance ~0.33
  EXPECT_NE(r.protocol.find("held-out"), std::string::npos);
  test::TempDir t;
  save_model_file(m, t.path() + "/m.bin");
  TrainedModel back = load_model_file(t.path() + "/m.bin");
  int d1 = 0, d2 = 0;
  const float* e1 = m.model->item_embeddings(&d1);
  const float* e2 = back.model->item_embeddings(&d2);
  ASSERT_EQ(d1, d2);
  EXPECT_TRUE(std::equal(e1, e1 + 60 * d1, e2));
  TrainedModel again = fit_model(p, c, ro);
  const float* e3 = again.model->item_embeddings(&d2);
  EXPECT_TRUE(std::equal(e1, e1 + 60 * d1, e3));
  // A grid of the results is a PNG.
  write_retrieval_grid(m, p, c, ro, t.path() + "/grid.png", 3);
  std::string png = read_file(t.path() + "/grid.png");
  EXPECT_EQ(png.substr(1, 3), "PNG");
}

// Early stopping of a retrieval model: train.valid_share of the training items is held out and,
// after each epoch, every one of them queries the others (retrieval Recall@1 by default); refit
// then trains on every training item for the best epoch count. A ranking metric is refused.
TEST(ImageCnn, RetrievalModelsValidateOnHeldOutItems) {
  Prepared p = prepared_items(image_items(), 0.5);
  std::vector<std::string> sets = image_retrieval({"train.valid_share=0.2", "train.patience=8", "train.refit=true"});
  Config c = make_config(sets);
  std::vector<EpochInfo> seen;
  RunOptions ro;
  ro.threads = 1;
  ro.on_epoch = [&](const EpochInfo& e) {
    seen.push_back(e);
    return true;
  };
  TrainedModel m = fit_model(p, c, ro);
  int validated = 0, refit = 0;
  double last = -1;
  for (const auto& e : seen) {
    if (e.refit) {
      ++refit;
      continue;
    }
    ASSERT_TRUE(e.has_valid) << "epoch " << e.epoch;
    EXPECT_EQ(e.valid_metric, "recall@1");
    EXPECT_GE(e.valid, 0.0);
    EXPECT_LE(e.valid, 1.0);
    last = e.valid;
    ++validated;
  }
  EXPECT_EQ(validated, 8);
  EXPECT_GE(refit, 1) << "no refit pass";
  EXPECT_GE(last, 0.5) << "6 held-out images of 3 classes: chance 0.2";
  EXPECT_GE(evaluate_model(m, p, c, ro).get("recall@1"), 0.9);

  sets.push_back("train.valid_metric=ndcg@10");
  try {
    fit_model(p, make_config(sets), RunOptions{});
    FAIL() << "a ranking metric validated a retrieval model";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.valid_metric 'ndcg@10'"), std::string::npos) << e.what();
  }
}

TEST(ImageCnn, NoContentIsAClearError) {
  Dataset ds = image_items();
  ds.item_side.content.clear();
  ds.item_side.content_shape.clear();
  Prepared p = prepared_items(std::move(ds), 0.5);
  Config c =
      make_config({"model.type=siamese", "tower.type=image_cnn", "sampler.builder=label", "train.valid_share=0"});
  EXPECT_NE(test::error_of([&] { fit_model(p, c, RunOptions{}); }).find("content"), std::string::npos);
}

namespace {

void write_wav(const std::string& path, const std::vector<float>& x, int rate) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  sf_write_float(f, x.data(), static_cast<sf_count_t>(x.size()));
  sf_close(f);
}

}  // namespace

// Tone mixtures: each class is a chord of two pitches; items vary in amplitude, phase, onset,
// detuning (+-1.5%) and noise. The network must learn the chord from log-mel spectrograms.
TEST(AudioCnn, LearnsToneClassesEndToEndFromWavFiles) {
  test::TempDir t;
  const int rate = 16000, n = 8000;
  const double chords[4][2] = {{220, 330}, {262, 523}, {392, 494}, {587, 880}};
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> U(0, 1);
  std::ofstream csv(t.path() + "/audio.csv");
  csv << "item_id,path,label\n";
  for (int i = 0; i < 96; ++i) {
    int cls = i % 4;
    std::vector<float> x(n, 0.0f);
    int onset = static_cast<int>(U(rng) * 2000);
    for (int h = 0; h < 2; ++h) {
      double f = chords[cls][h] * (1 + (U(rng) - 0.5) * 0.03), a = 0.2 + 0.3 * U(rng), ph = U(rng) * 6.283;
      for (int s = onset; s < n; ++s) x[s] += static_cast<float>(a * std::sin(6.283185307 * f * s / rate + ph));
    }
    for (auto& v : x) v += static_cast<float>((U(rng) - 0.5) * 0.1);
    std::string name = "tone" + std::to_string(i) + ".wav";
    write_wav(t.path() + "/" + name, x, rate);
    csv << "t" << i << "," << name << ",chord" << cls << "\n";
  }
  csv.close();
  Config c = make_config({"data.content_table=" + t.path() + "/audio.csv",
                          "data.content=audio",
                          "audio.frames=32",
                          "audio.n_mels=32",
                          "split.type=cold_items",
                          "split.ratios=0.5,0,0.5",
                          "model.type=siamese",
                          "model.task=retrieval",
                          "tower.type=audio_cnn",
                          "tower.hidden=8,16",
                          "tower.dim=16",
                          "comparator.type=euclidean",
                          "loss.type=triplet",
                          "sampler.builder=label",
                          "sampler.pairs_per_item=4",
                          "sampler.type=in_batch",
                          "sampler.batch_mining=semi_hard",
                          "train.batch_size=32",
                          "train.epochs=10",
                          "train.lr=0.01",
                          "train.valid_share=0",
                          "eval.k=1,5"});
  RunOptions ro;
  ro.threads = 2;
  Prepared p = prepare(c, ro);
  ASSERT_EQ(p.ds.n_items(), 96);
  ASSERT_EQ(p.ds.item_side.content_shape, (std::vector<int64_t>{1, 32, 32}));
  TrainedModel m = fit_model(p, c, ro);
  EvalResult r = evaluate_model(m, p, c, ro);
  EXPECT_GE(r.get("recall@1"), 0.9) << r.table();  // 48 held-out clips; chance 0.25
  // A corrupt audio file is named in the error.
  atomic_write(t.path() + "/tone0.wav", "RIFF....WAVEnot really audio");
  std::string e = test::error_of([&] { prepare(c, ro); });
  EXPECT_NE(e.find("tone0.wav"), std::string::npos) << e;
}

namespace {

// Users of group A like items titled "alpha ..." (genre a), group B "beta ..."; 40 items,
// 20 users, each user 8 items of her group. Cold-item splits hold out items entirely.
Dataset text_planted() {
  RawLog raw;
  std::mt19937 rng(3);
  for (int u = 0; u < 20; ++u)
    for (int k = 0; k < 8; ++k) {
      int base = u < 10 ? 0 : 20;
      raw.users.push_back("u" + std::to_string(100 + u));
      raw.items.push_back("i" + std::to_string(100 + base + (u * 3 + k * 5) % 20));
    }
  Dataset ds = dataset_from_raw(raw, "text-planted");
  ds.item_side.genre_vocab = {"a", "b"};
  ds.item_side.genres.resize(ds.n_items());
  ds.item_side.title.resize(ds.n_items());
  ds.item_side.tags.resize(ds.n_items());
  const char* fill[] = {"red", "story", "night", "city", "love", "war"};
  for (int32_t i = 0; i < ds.n_items(); ++i) {
    bool a = std::stoi(ds.items.original(i).substr(1)) < 120;
    ds.item_side.genres[i] = {a ? 0 : 1};
    ds.item_side.title[i] = std::string(a ? "Alpha " : "Beta ") + fill[i % 6] + " " + fill[(i / 6) % 6];
    ds.item_side.tags[i] = {a ? "bright" : "dark"};
  }
  return ds;
}

// Share of users whose best-scored held-out item is of their own group (chance: about 0.5). Text
// tells the group only, not which of the group's cold items a user took, so this is the check.
double own_group_top1(const Model& m, const Prepared& p) {
  std::vector<char> held(p.ds.n_items(), 0);
  for (auto i : p.split.heldout_items) held[i] = 1;
  std::vector<float> s(p.ds.n_items());
  int good = 0;
  for (int32_t u = 0; u < p.ds.n_users(); ++u) {
    m.score(&u, 1, s.data());
    int32_t best = -1;
    for (int32_t i = 0; i < p.ds.n_items(); ++i)
      if (held[i] && (best < 0 || s[i] > s[best])) best = i;
    bool ua = std::stoi(p.ds.users.original(u).substr(1)) < 110,
         ia = std::stoi(p.ds.items.original(best).substr(1)) < 120;
    good += ua == ia;
  }
  return static_cast<double>(good) / p.ds.n_users();
}

}  // namespace

class TextTowers : public ::testing::TestWithParam<std::string> {};

TEST_P(TextTowers, ColdItemsRankedFromTextSavedLoadedDeterministic) {
  Dataset ds = text_planted();
  Prepared p;
  p.ds = ds;
  SplitSpec s;
  s.type = "cold_items";
  s.ratios = {0.7, 0.0, 0.3};
  p.split = make_split(p.ds, FilterSpec{}, s);
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  std::vector<std::string> sets = {
      "model.type=siamese",       "model.shared=false",  "user_tower.type=id",  "tower.dim=8",
      "tower.type=" + GetParam(), "comparator.type=dot", "loss.type=bpr",       "sampler.negatives=3",
      "train.epochs=25",          "train.lr=0.02",       "train.batch_size=32", "train.valid_share=0",
      "eval.candidates=heldout",  "eval.k=1,3",          "tower.layers=1",      "tower.max_len=8"};
  if (GetParam() == "gru" || GetParam() == "lstm") sets.push_back("tower.bidirectional=true");
  if (GetParam() == "fusion") sets.push_back("tower.parts=id,text_cnn"), sets.push_back("tower.dropout=0.5");
  Config c = make_config(sets);
  RunOptions ro;
  ro.threads = 1;
  TrainedModel m = fit_model(p, c, ro);
  EvalResult r = evaluate_model(m, p, c, ro);
  // The best cold item is of the user's own group (learned from text alone), and the protocol
  // ranks held-out items only.
  EXPECT_GE(own_group_top1(*m.model, p), 0.9) << GetParam() << "\n" << r.table();
  EXPECT_NE(r.protocol.find("held-out (never trained) items only"), std::string::npos) << r.protocol;
  test::TempDir t;
  save_model_file(m, t.path() + "/m.bin");
  TrainedModel back = load_model_file(t.path() + "/m.bin");
  std::vector<int32_t> users(p.ds.n_users());
  for (int32_t u = 0; u < p.ds.n_users(); ++u) users[u] = u;
  std::vector<float> s1(users.size() * p.ds.n_items()), s2(s1.size()), s3(s1.size());
  m.model->score(users.data(), p.ds.n_users(), s1.data());
  back.model->score(users.data(), p.ds.n_users(), s2.data());
  EXPECT_EQ(s1, s2);
  TrainedModel again = fit_model(p, c, ro);
  again.model->score(users.data(), p.ds.n_users(), s3.data());
  EXPECT_EQ(s1, s3);
}

INSTANTIATE_TEST_SUITE_P(Towers, TextTowers, ::testing::Values("text_cnn", "gru", "lstm", "transformer", "fusion"));

TEST(TfidfBaseline, RanksColdItemsOfTheUsersGroupFirst) {
  Prepared p;
  p.ds = text_planted();
  SplitSpec s;
  s.type = "cold_items";
  s.ratios = {0.7, 0.0, 0.3};
  p.split = make_split(p.ds, FilterSpec{}, s);
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  Config c = make_config({"model.type=tfidf", "eval.candidates=heldout", "eval.k=1"});
  TrainedModel m = fit_model(p, c, RunOptions{});
  EvalResult r = evaluate_model(m, p, c, RunOptions{});
  EXPECT_GE(own_group_top1(*m.model, p), 0.95) << r.table();
  // Hand check: a user's profile is closer to an item of her group than to one of the other.
  std::vector<float> sc(p.ds.n_items());
  m.model->score_history({p.ds.items.find("i100")}, sc.data());
  EXPECT_GT(sc[p.ds.items.find("i101")], sc[p.ds.items.find("i121")]);
  EXPECT_NEAR(sc[p.ds.items.find("i100")], 1.0, 1e-5);  // cosine of an item with itself
}

TEST(ColdItemsSplit, HoldsOutWholeItems) {
  Dataset ds = text_planted();
  SplitSpec s;
  s.type = "cold_items";
  s.ratios = {0.7, 0.0, 0.3};
  SplitData sp = make_split(ds, FilterSpec{}, s);
  std::set<int32_t> train_items(sp.train.item.begin(), sp.train.item.end()),
      held(sp.heldout_items.begin(), sp.heldout_items.end());
  EXPECT_EQ(held.size(), 12u);  // 30% of 40 items
  for (auto i : sp.test.item) EXPECT_TRUE(held.count(i));
  for (auto i : held) EXPECT_FALSE(train_items.count(i));
  EXPECT_EQ(sp.train.size() + sp.test.size(), ds.log.size());
  EXPECT_TRUE(sp.valid_items.empty());
  // With a validation share, validation items are held out too (and disjoint from test items).
  s.ratios = {0.6, 0.2, 0.2};
  SplitData sv = make_split(ds, FilterSpec{}, s);
  EXPECT_EQ(sv.valid_items.size(), 8u);
  for (auto i : sv.valid_items) EXPECT_FALSE(std::count(sv.heldout_items.begin(), sv.heldout_items.end(), i));
  for (auto i : sv.valid.item) EXPECT_TRUE(std::count(sv.valid_items.begin(), sv.valid_items.end(), i));
  for (auto i : sv.train.item) EXPECT_FALSE(std::count(sv.valid_items.begin(), sv.valid_items.end(), i));
  Config c = make_config({"eval.candidates=heldout"});
  Prepared p;
  p.ds = ds;
  p.split = make_split(ds, FilterSpec{}, SplitSpec{});
  p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
  TrainedModel m = fit_model(p, make_config({"model.type=pop"}), RunOptions{});
  EXPECT_NE(test::error_of([&] { evaluate_model(m, p, c, RunOptions{}); }).find("cold_items"), std::string::npos);
}

// ---- tower-level contract: shapes, gradients reach every parameter, determinism by seed ----------
#include <torch/torch.h>

#include "towers/tower.h"

class ContentTowerContract : public ::testing::TestWithParam<std::string> {};

TEST_P(ContentTowerContract, ShapesGradientsDeterminism) {
  EntityFeatures f;
  f.n = 4;
  f.bag_ptr.assign(5, 0);
  f.text_vocab = 9;
  f.text_ptr = {0, 3, 4, 9, 9};  // item 3 has no text
  f.text_tok = {2, 3, 4, 5, 6, 7, 8, 2, 3};
  f.content_shape = {1, 8, 8};
  f.content.resize(4 * 64);
  for (size_t k = 0; k < f.content.size(); ++k) f.content[k] = static_cast<float>((k * 37) % 11) / 11.0f;
  TowerSpec s;
  const bool flatten = GetParam() == "image_cnn:flatten";  // tower.cnn_head flatten
  s.type = flatten ? "image_cnn" : GetParam(), s.key = "tower", s.dim = 6, s.layers = 1, s.heads = 2, s.max_len = 4,
  s.feats = &f;
  if (flatten) s.cnn_head = "flatten";
  s.hidden = {4};
  s.bidirectional = GetParam() == "gru";
  auto build = [&] {
    torch::manual_seed(9);
    auto t = make_tower(s);
    t->train(true);
    return t;
  };
  auto ids = torch::tensor({0, 1, 2, 3}, torch::kInt64);
  {  // determinism by seed (fresh towers, eval mode)
    torch::NoGradGuard ng;
    auto a = build(), b = build();
    a->train(false), b->train(false);
    EXPECT_TRUE(torch::equal(a->forward(ids), b->forward(ids))) << GetParam();
  }
  auto t = build();
  if (s.type == "image_cnn") {  // the linear layer reads 4 channels: averaged, or at each of the 4 x 4 positions
    EXPECT_EQ(t->named_parameters()["out.weight"].size(1), flatten ? 4 * 4 * 4 : 4) << GetParam();
  }
  auto out = t->forward(ids);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{4, 6}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  (out * torch::randn({4, 6})).sum().backward();
  for (auto& p : t->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << GetParam() << " " << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << GetParam() << " " << p.key();
  }
  t->train(false);
  torch::NoGradGuard ng;
  if (s.type != "image_cnn" && s.type != "audio_cnn") {  // text towers: empty text -> zeros
    EXPECT_EQ(t->forward(torch::tensor({3}, torch::kInt64)).abs().sum().item<double>(), 0.0) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(Towers, ContentTowerContract,
                         ::testing::Values("text_cnn", "gru", "lstm", "transformer", "image_cnn", "image_cnn:flatten",
                                           "audio_cnn"));

namespace {

// n grey side x side images whose pixel k of the whole buffer is (k * mul % mod) / mod - shift.
EntityFeatures patterned_images(int64_t n, int64_t side, size_t mul, size_t mod, float shift) {
  EntityFeatures f;
  f.n = n;
  f.content_shape = {1, side, side};
  f.content.resize(static_cast<size_t>(n * side * side));
  for (size_t k = 0; k < f.content.size(); ++k)
    f.content[k] = static_cast<float>((k * mul) % mod) / static_cast<float>(mod) - shift;
  return f;
}

// make_tower(s) throws a ConfigError naming `key`.
void expect_refused(const TowerSpec& s, const std::string& key) {
  try {
    make_tower(s);
    ADD_FAILURE() << s.type << " was accepted; expected a refusal naming " << key;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
}

}  // namespace

// The CNN block, recomputed by hand in NCHW from the tower's own parameters (the tower runs
// channels-last): conv, then batch norm and ReLU, with the 2x2 max-pool after ReLU
// (tower.cnn_pool after) or before batch norm (before). In training, the batch norm's running mean
// moves by 0.1 of the batch mean of what it sees: the conv output, or the pooled conv output.
TEST(CnnTower, PoolOrderAndChannelsLastMatchAHandComputedBlock) {
  auto f = patterned_images(5, 6, 53, 17, 0.4f);
  auto ids = torch::tensor({0, 1, 2, 3, 4}, torch::kInt64);
  auto x = torch::from_blob(f.content.data(), {5, 1, 6, 6}, torch::kFloat32).clone();
  std::vector<torch::Tensor> outs;
  for (std::string order : {"after", "before"}) {
    TowerSpec s;
    s.type = "image_cnn", s.key = "tower", s.dim = 3, s.hidden = {4}, s.feats = &f, s.cnn_pool = order;
    torch::manual_seed(3);
    auto t = make_tower(s);
    auto P = t->named_parameters();
    auto B = t->named_buffers();
    const auto w = P["conv0.weight"].detach().contiguous();
    {
      torch::NoGradGuard ng;
      t->train(true);
      t->forward(ids);
      auto conv = torch::conv2d(x, w, {}, 1, 1);
      auto seen = order == "before" ? torch::max_pool2d(conv, 2) : conv;
      EXPECT_TRUE(torch::allclose(B["bn0.running_mean"], 0.1 * seen.mean({0, 2, 3}), 1e-5, 1e-6)) << order;
      t->train(false);
      auto bn = [&](const torch::Tensor& v) {
        auto sh = std::vector<int64_t>{1, 4, 1, 1};
        return (v - B["bn0.running_mean"].view(sh)) / torch::sqrt(B["bn0.running_var"].view(sh) + 1e-5) *
                   P["bn0.weight"].view(sh) +
               P["bn0.bias"].view(sh);
      };
      auto h = order == "before" ? torch::relu(bn(seen)) : torch::max_pool2d(torch::relu(bn(conv)), 2);
      auto want = torch::linear(h.mean({2, 3}), P["out.weight"], P["out.bias"]);
      auto got = t->forward(ids);
      EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-5)) << order << "\n" << got << "\n" << want;
      outs.push_back(got);
    }
  }
  EXPECT_FALSE(torch::allclose(outs[0], outs[1], 1e-3, 1e-4));  // the two orders are different models
}

// The batched crop/flip gather equals cropping and mirroring each padded image by hand with the
// same random draws; spectrograms only shift in time.
TEST(CnnTower, CropFlipAugmentEqualsPerImageCrops) {
  torch::manual_seed(11);
  auto x = torch::randn({40, 2, 5, 7});
  for (bool image : {true, false}) {
    torch::manual_seed(5);
    auto got = crop_flip_augment(x, image, 2);
    torch::manual_seed(5);
    auto off = torch::randint(0, 5, {40, 2}, torch::kInt64);
    auto flip = torch::rand({40});
    namespace F = torch::nn::functional;
    auto padded =
        F::pad(x, F::PadFuncOptions(image ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{0, 0, 2, 2}));
    int flipped = 0, shifted = 0;
    for (int64_t b = 0; b < 40; ++b) {
      int64_t dy = off[b][0].item<int64_t>(), dx = image ? off[b][1].item<int64_t>() : 0;
      auto want = padded[b].slice(1, dy, dy + 5).slice(2, dx, dx + 7);
      if (image && flip[b].item<float>() < 0.5f) want = want.flip({2}), ++flipped;
      shifted += dy != 2;
      ASSERT_TRUE(torch::equal(got[b], want)) << "image " << image << " item " << b;
    }
    EXPECT_EQ(got.sizes(), x.sizes());
    EXPECT_GT(shifted, 10);
    if (image) {
      EXPECT_GT(flipped, 5);
    }
  }
}

// tower.cnn_tta flip: outside training the embedding is the mean of the plain tower's outputs for
// the image and its mirror (so an image and its mirror embed alike); training is unchanged.
TEST(CnnTower, FlipTestTimeAugmentationAveragesTheMirror) {
  EntityFeatures f;
  f.n = 4;
  f.content_shape = {1, 6, 6};
  f.content.resize(4 * 36);
  for (size_t k = 0; k < 36; ++k) f.content[k] = static_cast<float>((k * 29) % 13) / 13.0f - 0.5f;
  for (size_t r = 0; r < 6; ++r)  // item 1 is item 0 mirrored; items 2-3 something else
    for (size_t c = 0; c < 6; ++c) f.content[36 + r * 6 + c] = f.content[r * 6 + 5 - c];
  for (size_t k = 72; k < f.content.size(); ++k) f.content[k] = static_cast<float>((k * 7) % 11) / 11.0f;
  auto make = [&](const std::string& tta) {
    TowerSpec s;
    s.type = "image_cnn", s.key = "tower", s.dim = 3, s.hidden = {4, 5}, s.feats = &f, s.cnn_tta = tta;
    torch::manual_seed(9);
    auto t = make_tower(s);
    t->train(false);
    return t;
  };
  auto plain = make("none"), tta = make("flip");
  torch::NoGradGuard ng;
  auto p = plain->forward(torch::tensor({0, 1, 2, 3}, torch::kInt64));
  auto t = tta->forward(torch::tensor({0, 1, 2, 3}, torch::kInt64));
  EXPECT_FALSE(torch::allclose(p[0], p[1], 1e-3, 1e-4));  // the plain tower tells the mirrors apart
  EXPECT_TRUE(torch::allclose(t[0], 0.5 * (p[0] + p[1]), 1e-5, 1e-6)) << t << p;
  EXPECT_TRUE(torch::allclose(t[0], t[1], 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(t[2], p[2], 1e-3, 1e-4));
  tta->train(true);
  plain->train(true);
  EXPECT_TRUE(torch::allclose(tta->forward(torch::tensor({2, 3}, torch::kInt64)),
                              plain->forward(torch::tensor({2, 3}, torch::kInt64)), 1e-5, 1e-6));

  TowerSpec audio;
  audio.type = "audio_cnn", audio.key = "tower", audio.dim = 3, audio.feats = &f, audio.cnn_tta = "flip";
  expect_refused(audio, "tower.cnn_tta");
}

// tower.dropout on image_cnn drops head inputs while training only: same parameters, same eval output.
TEST(CnnTower, DropoutActsOnlyWhileTraining) {
  auto f = patterned_images(6, 6, 31, 19, 0.5f);
  auto make = [&](double p) {
    TowerSpec s;
    s.type = "image_cnn", s.key = "tower", s.dim = 3, s.hidden = {4}, s.feats = &f, s.dropout = p;
    torch::manual_seed(4);
    return make_tower(s);
  };
  auto plain = make(0), drop = make(0.5);
  auto ids = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kInt64);
  torch::NoGradGuard ng;
  EXPECT_FALSE(torch::allclose(plain->forward(ids), drop->forward(ids), 1e-3, 1e-4));  // training
  plain->train(false), drop->train(false);
  EXPECT_TRUE(torch::allclose(plain->forward(ids), drop->forward(ids), 1e-5, 1e-6));
}

// tower.precision bf16: the same model computed in bfloat16 (autocast) gives float32 embeddings
// within bfloat16's rounding of the float32 ones, float32 gradients, and leaves autocast off after
// the forward; other towers refuse it.
TEST(CnnTower, Bf16AutocastMatchesFloat32WithinRounding) {
  auto f = patterned_images(8, 8, 37, 23, 0.5f);
  auto make = [&](const std::string& precision) {
    TowerSpec s;
    s.type = "image_cnn", s.key = "tower", s.dim = 5, s.hidden = {8, 16}, s.feats = &f, s.precision = precision;
    s.cnn_head = "flatten";
    torch::manual_seed(6);
    return make_tower(s);
  };
  auto ids = torch::tensor({0, 1, 2, 3, 4, 5, 6, 7}, torch::kInt64);
  auto fp = make("fp32"), bf = make("bf16");
  auto a = fp->forward(ids), b = bf->forward(ids);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(b.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(torch::equal(a, b));  // computed in bfloat16, not float32
  EXPECT_LT((a - b).abs().max().item<float>(), 0.03f * a.abs().max().item<float>()) << a << b;
  b.pow(2).sum().backward();
  auto g = bf->named_parameters()["conv0.weight"].grad();
  ASSERT_TRUE(g.defined());
  EXPECT_EQ(g.scalar_type(), torch::kFloat32);
  EXPECT_GT(g.abs().sum().item<float>(), 0.0f);
  bf->train(false);
  torch::NoGradGuard ng;
  EXPECT_EQ(bf->forward(ids).scalar_type(), torch::kFloat32);

  TowerSpec mlp;
  mlp.type = "mlp", mlp.key = "tower", mlp.dim = 3, mlp.precision = "bf16";
  expect_refused(mlp, "tower.precision");
}

// tower.cnn_convs 2: each block is conv-BN-ReLU, conv-BN-ReLU, pool (VGG), recomputed by hand from
// the tower's parameters (conv0, bn0, conv0_1, bn0_1) in eval mode.
TEST(CnnTower, TwoConvsPerBlockMatchAHandComputedBlock) {
  auto f = patterned_images(3, 6, 41, 17, 0.3f);
  TowerSpec s;
  s.type = "image_cnn", s.key = "tower", s.dim = 2, s.hidden = {3}, s.feats = &f, s.cnn_convs = 2;
  torch::manual_seed(8);
  auto t = make_tower(s);
  auto P = t->named_parameters();
  auto B = t->named_buffers();
  ASSERT_TRUE(P.contains("conv0_1.weight") && P.contains("bn0_1.weight"));
  EXPECT_EQ(P["conv0_1.weight"].sizes(), (std::vector<int64_t>{3, 3, 3, 3}));
  torch::NoGradGuard ng;
  t->train(true);
  auto ids = torch::tensor({0, 1, 2}, torch::kInt64);
  t->forward(ids);  // moves the running statistics away from 0 / 1
  t->train(false);
  auto layer = [&](const torch::Tensor& v, const std::string& n) {
    auto sh = std::vector<int64_t>{1, 3, 1, 1};
    auto c = torch::conv2d(v, P["conv" + n + ".weight"].contiguous(), {}, 1, 1);
    return torch::relu((c - B["bn" + n + ".running_mean"].view(sh)) /
                           torch::sqrt(B["bn" + n + ".running_var"].view(sh) + 1e-5) *
                           P["bn" + n + ".weight"].view(sh) +
                       P["bn" + n + ".bias"].view(sh));
  };
  auto x = torch::from_blob(f.content.data(), {3, 1, 6, 6}, torch::kFloat32).clone();
  auto h = torch::max_pool2d(layer(layer(x, "0"), "0_1"), 2);
  auto want = torch::linear(h.mean({2, 3}), P["out.weight"], P["out.bias"]);
  auto got = t->forward(ids);
  EXPECT_TRUE(torch::allclose(got, want, 1e-4, 1e-5)) << got << "\n" << want;
}
