// The Siamese core: the model contract for many configurations, planted structure recovery,
// interruption and --resume, bad configurations, and a short real-data quality check.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>
#include <sstream>

#include "eval/validation.h"
#include "config/config.h"
#include "models/model_file.h"
#include "tasks/embeddings.h"
#include "tasks/pipeline.h"
#include "testutil.h"
#include "util/error.h"
#include "util/io.h"

using namespace siamrec;

// Two user groups with disjoint tastes over 20 items with genres: group A (users u100..u109) likes
// items i100..i109 (genre "a"), group B likes i110..i119 (genre "b"); each user has 6 of her
// group's 10 items.
static Dataset planted() {
  Dataset ds = dataset_from_raw(test::planted_log(/*ratings=*/true, /*times=*/true), "planted");
  ds.item_side.genre_vocab = {"a", "b"};
  ds.item_side.genres.resize(ds.n_items());
  ds.item_side.title.resize(ds.n_items());
  for (int32_t i = 0; i < ds.n_items(); ++i)
    ds.item_side.genres[i] = {std::stoi(ds.items.original(i).substr(1)) < 110 ? 0 : 1};
  ds.user_side.features.resize(ds.n_users());
  for (int32_t u = 0; u < ds.n_users(); ++u) ds.user_side.features[u] = {u < 10 ? "group=a" : "group=b"};
  return ds;
}

static Config siamese(const std::vector<std::string>& sets) {
  Config c;
  for (auto s : {"model.type=siamese", "tower.dim=8", "train.epochs=15", "train.batch_size=32", "train.lr=0.05",
                 "train.valid_share=0", "sampler.negatives=2"})
    c.set_override(s);
  for (auto& s : sets) c.set_override(s);
  return c;
}

struct Variant {
  std::string name;
  std::vector<std::string> sets;
};

static std::vector<Variant> variants() {
  return {
      {"cml_triplet_sq_euclidean",
       {"loss.type=triplet", "comparator.type=sq_euclidean", "reg.max_norm=1", "loss.margin=0.5"}},
      {"warp_euclidean", {"loss.type=warp", "comparator.type=euclidean", "sampler.negatives=5", "loss.margin=0.5"}},
      {"bpr_dot_lazy_adam", {"loss.type=bpr", "comparator.type=dot", "train.optimizer=lazy_adam"}},
      {"infonce_cosine_in_batch", {"loss.type=infonce", "comparator.type=cosine", "sampler.type=in_batch"}},
      {"ccl_cosine_shared_bag",
       {"loss.type=ccl", "comparator.type=cosine", "tower.type=bag", "tower.bag=self,genres", "loss.margin=0.2"}},
      {"contrastive_manhattan_hard",
       {"loss.type=contrastive", "comparator.type=manhattan", "sampler.type=hard", "sampler.candidates=5"}},
      {"bce_learned_two_tower_mlp",
       {"loss.type=bce", "comparator.type=learned", "model.shared=false", "user_tower.type=mlp", "tower.type=fusion",
        "tower.parts=id,bag", "tower.bag=genres", "train.lr=0.01"}},
      {"quadruplet_semi_hard_popularity",
       {"loss.type=quadruplet", "sampler.type=semi_hard", "sampler.candidates=6", "loss.margin=0.5"}},
      {"item_item_contrastive",
       {"sampler.builder=item_item", "loss.type=contrastive", "comparator.type=euclidean", "tower.type=bag",
        "tower.bag=self,genres"}},
      {"label_triplet_cosine",
       {"sampler.builder=label", "loss.type=triplet", "comparator.type=cosine", "loss.margin=0.3"}},
      {"label_proxies_infonce_cosine",
       {"sampler.builder=label", "sampler.type=proxies", "loss.type=infonce", "comparator.type=cosine"}},
      {"two_tower_bag_history_adagrad",
       {"model.shared=false", "user_tower.type=bag", "user_tower.bag=history,features", "train.optimizer=adagrad",
        "loss.type=bpr", "comparator.type=dot", "train.lr=0.1"}},
      {"rating_mse_dot",
       {"model.task=rating", "loss.type=mse", "comparator.type=dot", "train.optimizer=sgd", "train.lr=0.01"}},
      {"lightgcn_bpr", {"tower.type=gcn", "tower.layers=2", "loss.type=bpr", "comparator.type=dot"}},
      {"lightgcn_epoch_cache_infonce",
       {"tower.type=gcn", "tower.propagate=epoch", "loss.type=infonce", "comparator.type=cosine",
        "sampler.negatives=4"}},
      {"gcn_weights_torch_spmm_triplet",
       {"tower.type=gcn", "tower.propagation=gcn", "tower.layer_combine=weights", "tower.spmm=torch",
        "loss.type=triplet", "comparator.type=sq_euclidean"}},
      {"sasrec_bce",
       {"model.shared=false", "user_tower.type=transformer", "user_tower.bag=history", "sampler.builder=sequence",
        "loss.type=bce", "comparator.type=dot", "user_tower.max_len=4", "user_tower.layers=1", "train.lr=0.01"}},
      {"gru4rec_bpr",
       {"model.shared=false", "user_tower.type=gru", "user_tower.bag=history", "sampler.builder=sequence",
        "loss.type=bpr", "comparator.type=dot", "train.lr=0.01"}},
      {"gru4rec_session_parallel_bpr_max",
       {"model.shared=false", "user_tower.type=gru", "user_tower.bag=history", "sampler.builder=sequence",
        "loss.type=bpr_max", "sampler.type=in_batch", "comparator.type=dot", "train.session_parallel=true",
        "train.bptt=2", "train.batch_size=4", "train.lr=0.01"}},
      {"bert4rec_cloze",
       {"model.shared=false", "user_tower.type=transformer", "user_tower.bidirectional=true", "user_tower.bag=history",
        "sampler.builder=sequence", "loss.type=bce", "comparator.type=dot", "user_tower.max_len=5",
        "user_tower.layers=1", "train.mask_prob=0.3", "train.lr=0.01"}},
      {"lstm_infonce_in_batch",
       {"model.shared=false", "user_tower.type=lstm", "user_tower.bag=history", "sampler.builder=sequence",
        "loss.type=infonce", "comparator.type=cosine", "sampler.type=in_batch", "train.lr=0.01"}},
  };
}

static void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class SiameseContract : public ::testing::TestWithParam<Variant> {};

TEST_P(SiameseContract, FitRecommendFoldInSaveLoadDeterminism) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  Config c = siamese(GetParam().sets);
  RunOptions ro;
  ro.threads = 1;
  TrainedModel m = fit_model(p, c, ro);
  const int32_t I = ds.n_items(), U = ds.n_users();
  std::vector<int32_t> users(U);
  for (int32_t u = 0; u < U; ++u) users[u] = u;
  std::vector<float> s1(static_cast<size_t>(U) * I);
  m.model->score(users.data(), U, s1.data());
  for (float v : s1) ASSERT_TRUE(std::isfinite(v));
  recommend_users(m, users, 3, 1, [&](int32_t u, const int32_t* items, const float*, int n) {
    ASSERT_EQ(n, 3);
    for (int j = 0; j < n; ++j) EXPECT_FALSE(p.train_by_user.contains(u, items[j]));
  });
  // Fold-in: an unseen user known by two items of group A; and an empty history.
  std::vector<float> h(I);
  m.model->score_history({ds.items.find("i101"), ds.items.find("i102")}, h.data());
  for (float v : h) ASSERT_TRUE(std::isfinite(v));
  m.model->score_history({}, h.data());
  for (float v : h) ASSERT_TRUE(std::isfinite(v));
  // Similar items and pair scores are defined.
  std::vector<std::pair<int32_t, float>> sim;
  ASSERT_TRUE(m.model->similar_items(0, 3, sim));
  EXPECT_EQ(sim.size(), 3u);
  for (auto& [i, v] : sim) EXPECT_NE(i, 0);
  // Save -> load: identical scores without training data.
  test::TempDir t;
  save_model_file(m, t.path() + "/m.bin");
  TrainedModel back = load_model_file(t.path() + "/m.bin");
  std::vector<float> s2(s1.size());
  back.model->score(users.data(), U, s2.data());
  EXPECT_EQ(s1, s2);
  std::vector<float> h2(I), h3(I);
  m.model->score_history({ds.items.find("i101")}, h2.data());
  back.model->score_history({ds.items.find("i101")}, h3.data());
  EXPECT_EQ(h2, h3);
  // Seeded determinism (one thread).
  TrainedModel again = fit_model(p, c, ro);
  std::vector<float> s3(s1.size());
  again.model->score(users.data(), U, s3.data());
  EXPECT_EQ(s1, s3);
}

INSTANTIATE_TEST_SUITE_P(Configs, SiameseContract, ::testing::ValuesIn(variants()),
                         [](const auto& i) { return i.param.name; });

// Every user's score of every item after one-thread training of a siamese config on `p`, and the
// largest difference between two such score tables (the "same model" tests below).
static std::vector<float> all_scores(const Prepared& p, const std::vector<std::string>& sets) {
  const int32_t U = p.ds.n_users(), I = p.ds.n_items();
  std::vector<int32_t> users(U);
  for (int32_t u = 0; u < U; ++u) users[u] = u;
  RunOptions ro;
  ro.threads = 1;
  TrainedModel m = fit_model(p, siamese(sets), ro);
  std::vector<float> s(static_cast<size_t>(U) * I);
  m.model->score(users.data(), U, s.data());
  return s;
}
static double largest_gap(const std::vector<float>& x, const std::vector<float>& y) {
  double g = 0;
  for (size_t k = 0; k < x.size(); ++k) g = std::max(g, std::abs(static_cast<double>(x[k]) - y[k]));
  return g;
}

// train.pack_windows: short windows share rows behind a block-diagonal causal mask. Without
// dropout the packed batches are the padded ones, so training gives the same model up to float
// rounding (the planted users' 6-item histories give windows of 4 and 1 inputs at max_len 4: four
// 1-item windows share a row); another seed is far from it.
TEST(SiameseSequence, PackedWindowsTrainThePaddedModel) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  std::string type;
  auto scores = [&](const std::vector<std::string>& more) {
    std::vector<std::string> sets = {
        "model.shared=false", "user_tower.type=" + type, "user_tower.bag=history", "sampler.builder=sequence",
        "loss.type=bce",      "comparator.type=dot",     "user_tower.max_len=4",   "user_tower.heads=2",
        "train.lr=0.01",      "train.epochs=5"};
    sets.insert(sets.end(), more.begin(), more.end());
    return all_scores(p, sets);
  };
  // gru: the own kernel restarts at each segment; BERT4Rec (bidirectional): the same masks in both
  for (std::string t : {"transformer", "gru", "transformer+bidirectional"}) {
    type = t.substr(0, t.find('+'));
    const std::string bi =
        "user_tower.bidirectional=" + std::string(t.find('+') != std::string::npos ? "true" : "false");
    auto packed = scores({"train.pack_windows=true", bi});
    auto padded = scores({"train.pack_windows=false", bi});
    auto other = scores({"train.pack_windows=true", "train.seed=7", bi});
    EXPECT_LT(largest_gap(packed, padded), 1e-3) << t;
    EXPECT_GT(largest_gap(packed, other), 1e-2) << t;
  }
}

// Users u100..u(100+U-1) whose best-scored unseen item (scores s: every user x every item) is
// item "i" + want(u).
static int next_item_hits(const Prepared& p, const std::vector<float>& s, int U, const std::function<int(int)>& want) {
  const Dataset& ds = p.ds;
  int hits = 0;
  for (int u = 0; u < U; ++u) {
    const int32_t du = ds.users.find("u" + std::to_string(100 + u));
    int32_t best = -1;
    for (int32_t i = 0; i < ds.n_items(); ++i)
      if (!p.train_by_user.contains(du, i) && (best < 0 || s[du * ds.n_items() + i] > s[du * ds.n_items() + best]))
        best = i;
    hits += best == ds.items.find("i" + std::to_string(want(u)));
  }
  return hits;
}

// train.session_parallel (GRU4Rec's session-parallel mini-batches): users walk a ring of 12 items
// with a hub item X between every two, p(s), X, p(s+1), X, ..., X (6 of each), so the item after a
// history's last X is p(s+6), new to her, which only the item before the X tells. With 3 inputs
// per mini-batch, two of a history's five X inputs open a mini-batch: lanes of whole histories
// with the state carried across mini-batches predict every user's next item (48 of 48, with
// GRU4Rec's in-batch BPR-max and with sampled BCE); the same lanes restarted from 0 at each
// mini-batch got 28 and 32. (1 step of backpropagation, GRU4Rec's own, learns this only in part,
// 24-40 of 48 over seeds: its gradient never teaches the state to keep the item before an X.)
TEST(SiameseSequence, SessionParallelLearnsFromTheCarriedState) {
  RawLog raw;
  const int U = 48, I = 12, N = 6;
  for (int u = 0; u < U; ++u)
    for (int k = 0; k < 2 * N; ++k) {
      raw.users.push_back("u" + std::to_string(100 + u));
      raw.items.push_back(k % 2 ? std::string("X") : "i" + std::to_string(100 + (u * 5 + k / 2) % I));
      raw.time.push_back(1000 + k);
    }
  Dataset ds = dataset_from_raw(raw, "hub ring");
  Prepared p = test::all_train(ds);
  for (auto more : std::vector<std::vector<std::string>>{{"loss.type=bpr_max", "sampler.type=in_batch"},
                                                         {"loss.type=bce", "sampler.negatives=1"}}) {
    std::vector<std::string> sets = {
        "model.shared=false",  "user_tower.type=gru", "user_tower.bag=history", "sampler.builder=sequence",
        "comparator.type=dot", "tower.dim=16",        "user_tower.max_len=12",  "train.session_parallel=true",
        "train.batch_size=8",  "train.lr=0.02",       "train.epochs=60",        "train.bptt=3",
        "train.seed=5"};
    sets.insert(sets.end(), more.begin(), more.end());
    const int hits = next_item_hits(p, all_scores(p, sets), U, [&](int u) { return 100 + (u * 5 + N) % I; });
    EXPECT_GE(hits, U * 9 / 10) << more[0];
  }
}

// BERT4Rec (user_tower.bidirectional): users walk a ring of 24 items, each reading 12 consecutive
// ones. Cloze training (masked items predicted from both sides) with a mask token appended at
// scoring time predicts the item after her last, new to her, for nearly every user.
TEST(SiameseSequence, Bert4RecPredictsTheNextItemFromAMaskToken) {
  RawLog raw;
  const int U = 48, I = 24, N = 12;
  for (int u = 0; u < U; ++u)
    for (int k = 0; k < N; ++k) {
      raw.users.push_back("u" + std::to_string(100 + u));
      raw.items.push_back("i" + std::to_string(100 + (u * 5 + k) % I));
      raw.time.push_back(1000 + k);
    }
  Dataset ds = dataset_from_raw(raw, "ring");
  Prepared p = test::all_train(ds);
  auto s = all_scores(p, {"model.shared=false", "user_tower.type=transformer", "user_tower.bidirectional=true",
                          "user_tower.bag=history", "sampler.builder=sequence", "comparator.type=dot", "tower.dim=16",
                          "user_tower.layers=1", "user_tower.max_len=8", "loss.type=bce", "sampler.negatives=4",
                          "train.mask_prob=0.3", "train.batch_size=16", "train.lr=0.01", "train.epochs=80"});
  EXPECT_GE(next_item_hits(p, s, U, [&](int u) { return 100 + (u * 5 + N) % I; }), U * 9 / 10);
}

// train.score_in_place: negatives of a gathering item tower (gcn, id) are scored against its table
// in place; the same values and gradients as gathering the rows, so the same model up to float
// rounding (with the L2 term over the negatives computed from the table with row counts); another
// seed is far from it.
TEST(SiameseTraining, ScoresInPlaceTrainTheGatheredModel) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  for (auto base : std::vector<std::vector<std::string>>{
           {"tower.type=gcn", "comparator.type=cosine", "loss.type=infonce", "sampler.negatives=8", "reg.l2=0.01"},
           {"tower.type=id", "comparator.type=dot", "loss.type=bpr", "sampler.negatives=3", "reg.l2=0.01"}}) {
    base.push_back("train.epochs=8");
    auto with = [&](std::vector<std::string> more) {
      more.insert(more.begin(), base.begin(), base.end());
      return all_scores(p, more);
    };
    auto in_place = with({"train.score_in_place=true"});
    auto gathered = with({"train.score_in_place=false"});
    auto other = with({"train.score_in_place=true", "train.seed=7"});
    EXPECT_LT(largest_gap(in_place, gathered), 1e-3) << base[0];
    EXPECT_GT(largest_gap(in_place, other), 1e-2) << base[0];
  }
}

// Planted structure: for every user, her group's unseen items score above the other group's items
// (AUC over unseen items), and the top recommendation comes from her own group.
TEST(SiamesePlanted, RecoversTwoGroups) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  for (auto sets : std::vector<std::vector<std::string>>{
           {"loss.type=triplet", "reg.max_norm=1", "loss.margin=0.5", "train.epochs=100"},
           {"tower.type=bag", "loss.type=bpr", "comparator.type=dot", "train.epochs=30"},
           {"tower.type=gcn", "loss.type=bpr", "comparator.type=dot", "train.epochs=30"},
           {"user_tower.type=gru", "model.shared=false", "user_tower.bag=history", "sampler.builder=sequence",
            "loss.type=bpr", "comparator.type=dot", "train.epochs=40"}}) {
    TrainedModel m = fit_model(p, siamese(sets), RunOptions{});
    const int32_t U = ds.n_users(), I = ds.n_items();
    std::vector<int32_t> users(U);
    for (int32_t u = 0; u < U; ++u) users[u] = u;
    std::vector<float> s(static_cast<size_t>(U) * I);
    m.model->score(users.data(), U, s.data());
    double auc = 0;
    int top_in = 0;
    for (int32_t u = 0; u < U; ++u) {
      bool ga = u < 10;
      std::vector<float> in, out;
      int32_t best = -1;
      for (int32_t i = 0; i < I; ++i) {
        if (p.train_by_user.contains(u, i)) continue;
        float v = s[static_cast<size_t>(u) * I + i];
        bool ia = std::stoi(ds.items.original(i).substr(1)) < 110;
        (ia == ga ? in : out).push_back(v);
        if (best < 0 || v > s[static_cast<size_t>(u) * I + best]) best = i;
      }
      int wins = 0;
      for (float a : in)
        for (float b : out) wins += a > b;
      auc += static_cast<double>(wins) / (in.size() * out.size());
      top_in += ga == (std::stoi(ds.items.original(best).substr(1)) < 110);
    }
    auc /= U;
    // Random scores: AUC 0.5 and ~25% of top items in-group.
    EXPECT_GT(auc, 0.8) << sets[0];
    EXPECT_GE(top_in, 16) << sets[0] << " top-1 in own group for " << top_in << "/20 users";
    // Fold-in of an unseen group-A user ranks a group-A item first.
    std::vector<float> h(I);
    m.model->score_history({ds.items.find("i100"), ds.items.find("i103"), ds.items.find("i106")}, h.data());
    int32_t best = static_cast<int32_t>(std::max_element(h.begin(), h.end()) - h.begin());
    EXPECT_LT(std::stoi(ds.items.original(best).substr(1)), 110) << sets[0];
  }
}

// An interrupted run resumed from its checkpoint ends exactly where an uninterrupted run ends: the
// LibTorch engine, and the fused engine with mini-batch and per-example updates.
TEST(SiameseTraining, ResumeAfterInterruptionMatchesUninterrupted) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  for (std::vector<std::string> engine :
       {std::vector<std::string>{"train.engine=torch"},
        {"train.engine=fused", "train.optimizer=adagrad", "train.lr=0.05"},
        {"train.engine=fused", "train.optimizer=adagrad", "train.lr=0.05", "train.update=example", "tower.dim=16"},
        // The label proxies are trained state too: the checkpoint carries them (no validation, so
        // the model is the last epoch's, not a best epoch kept from before the interruption).
        {"train.engine=torch", "sampler.builder=label", "sampler.type=proxies", "comparator.type=euclidean",
         "train.valid_share=0"}}) {
    std::vector<std::string> sets = {"loss.type=triplet", "train.epochs=6", "train.valid_share=0.2",
                                     "train.patience=100"};
    sets.insert(sets.end(), engine.begin(), engine.end());
    Config c = siamese(sets);
    test::TempDir t;
    RunOptions full;
    full.threads = 1;
    TrainedModel a = fit_model(p, c, full);
    RunOptions first = full;
    first.checkpoint = t.path() + "/run.ckpt";
    // Interrupt after epoch 3 through the fit path: FitData is built by fit_model, so go direct.
    {
      TrainedModel tmp;
      tmp.model = create_model("siamese");
      FitData d;
      d.ds = &p.ds, d.train = &p.split.train, d.valid = &p.split.valid, d.train_by_user = &p.train_by_user;
      d.cfg = &c, d.threads = 1, d.checkpoint = first.checkpoint, d.stop_after_epoch = 3;
      d.validator = ranking_validator();
      tmp.model->fit(d);
    }
    ASSERT_TRUE(file_exists(first.checkpoint)) << engine.back();
    RunOptions second = first;
    second.resume = true;
    TrainedModel b = fit_model(p, c, second);
    std::vector<int32_t> users(ds.n_users());
    for (int32_t u = 0; u < ds.n_users(); ++u) users[u] = u;
    std::vector<float> sa(users.size() * ds.n_items()), sb(sa.size());
    a.model->score(users.data(), ds.n_users(), sa.data());
    b.model->score(users.data(), ds.n_users(), sb.data());
    EXPECT_EQ(sa, sb) << engine.back();
    // A checkpoint from another config is refused.
    Config other = siamese({"loss.type=bpr", "comparator.type=dot", "train.epochs=6", "train.valid_share=0.2"});
    EXPECT_THROW(fit_model(p, other, second), ConfigError) << engine.back();
  }
}

TEST(SiameseTraining, JsonLogHasEpochsAndEmbeddingHealth) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  test::TempDir t;
  RunOptions ro;
  ro.log_path = t.path() + "/log.jsonl";
  fit_model(p, siamese({"train.epochs=3", "train.valid_share=0.2"}), ro);
  std::string log = read_file(ro.log_path);
  int lines = 0;
  for (char ch : log) lines += ch == '\n';
  EXPECT_EQ(lines, 4);  // three epochs and the pass's end line
  auto j = nlohmann::json::parse(log.substr(0, log.find('\n')));
  EXPECT_EQ(j["epoch"], 1);
  EXPECT_EQ(j["phase"], "fit");
  auto end = nlohmann::json::parse(log.substr(log.rfind('\n', log.size() - 2) + 1));
  EXPECT_EQ(end["event"], "end");
  EXPECT_GE(end["chosen_epoch"].get<int>(), 1);
  EXPECT_LE(end["chosen_epoch"].get<int>(), 3);
  EXPECT_TRUE(j.contains("emb_mean_norm"));
  EXPECT_TRUE(j.contains("emb_var"));
  EXPECT_TRUE(j["valid"].contains("ndcg@10"));
}

// train.lr_schedule cosine: epoch e of E trains at lr (1 + cos(pi (e - 1) / E)) / 2, and the refit
// pass, which trains the best epoch count, keeps the fit's E, so each of its epochs sees the rate
// the fit validated (the log's "lr" says what each epoch trained at).
TEST(SiameseTraining, CosineScheduleKeepsItsHorizonInTheRefit) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  test::TempDir t;
  RunOptions ro;
  ro.log_path = t.path() + "/log.jsonl";
  const int E = 12;
  fit_model(p,
            siamese({"train.epochs=" + std::to_string(E), "train.valid_share=0.2", "train.refit=true",
                     "train.lr_schedule=cosine", "train.lr=0.01", "train.patience=2"}),
            ro);
  std::istringstream in(read_file(ro.log_path));
  std::string line;
  int fit = 0, refit = 0, chosen = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("epoch")) {
      if (j.value("event", "") == "end" && chosen == 0) chosen = j["chosen_epoch"].get<int>();
      continue;
    }
    const int e = j["epoch"].get<int>();
    (j["phase"] == "refit" ? refit : fit)++;
    EXPECT_NEAR(j["lr"].get<double>(), 0.01 * 0.5 * (1 + std::cos(M_PI * (e - 1) / E)), 1e-12) << line;
  }
  // At 1 or E the refit would train at the same rates whatever its horizon.
  ASSERT_GE(chosen, 2);
  ASSERT_LT(chosen, E);
  EXPECT_EQ(refit, chosen);
  EXPECT_GT(fit, chosen);
  EXPECT_THROW(fit_model(p, siamese({"train.lr_schedule=cosine", "train.lr_step=2"}), ro), ConfigError);
}

// sampler.type proxies on id embeddings: an item's only training signal is its cosine to one learned
// vector per label (its label's the positive, the other's the negative), so items sharing a label
// come out nearest each other, whichever labels they are given: the planted genres, then labels
// by the parity of the item number, which cut across them.
TEST(SiameseTraining, LabelProxiesGatherItemsByTheirLabels) {
  for (bool parity : {false, true}) {
    Dataset ds = planted();
    if (parity)
      for (int32_t i = 0; i < ds.n_items(); ++i)
        ds.item_side.genres[i] = {std::stoi(ds.items.original(i).substr(1)) % 2};
    Prepared p = test::all_train(ds);
    RunOptions ro;
    ro.threads = 1;
    TrainedModel m = fit_model(p,
                               siamese({"sampler.builder=label", "sampler.type=proxies", "loss.type=infonce",
                                        "loss.temperature=0.1", "comparator.type=cosine"}),
                               ro);
    int same = 0, total = 0;
    for (int32_t i = 0; i < ds.n_items(); ++i) {
      std::vector<std::pair<int32_t, float>> sim;
      ASSERT_TRUE(m.model->similar_items(i, 9, sim));
      for (auto& [j, v] : sim) same += ds.item_side.genres[j] == ds.item_side.genres[i], ++total;
    }
    // Each item has 9 others of its label among 19: chance 9/19.
    EXPECT_EQ(same, total) << (parity ? "parity labels" : "planted genres");
  }
}

TEST(SiameseConfig, BadCombinationsFailBeforeTraining) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  auto msg = [&](std::vector<std::string> sets) {
    try {
      fit_model(p, siamese(sets), RunOptions{});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg({"loss.type=contrastive", "comparator.type=dot"}).find("is not a metric"), std::string::npos);
  EXPECT_NE(msg({"loss.type=quadruplet", "sampler.negatives=1"}).find("sampler.negatives >= 2"), std::string::npos);
  EXPECT_NE(msg({"tower.type=fusion", "tower.parts=id"}).find("at least two"), std::string::npos);
  // Structure and content towers name what they need.
  EXPECT_NE(msg({"tower.type=gcn", "model.shared=false"}).find("user-item graph"), std::string::npos);
  EXPECT_NE(msg({"sampler.builder=sequence"}).find("needs a sequence user tower"), std::string::npos);
  EXPECT_NE(msg({"model.shared=false", "user_tower.type=gru", "user_tower.bag=history,features"}).find("history only"),
            std::string::npos);
  EXPECT_NE(msg({"tower.type=text_cnn"}).find("users have none"), std::string::npos);
  EXPECT_NE(msg({"model.shared=false", "user_tower.type=gru"}).find("needs sampler.builder sequence"),
            std::string::npos);
  EXPECT_NE(msg({"train.session_parallel=true"}).find("needs sampler.builder sequence"), std::string::npos);
  EXPECT_NE(msg({"model.shared=false", "user_tower.type=transformer", "user_tower.bag=history",
                 "sampler.builder=sequence", "train.session_parallel=true"})
                .find("user_tower.rnn_kernel own"),
            std::string::npos);
  EXPECT_NE(msg({"tower.type=image_cnn", "sampler.builder=label"}).find("content"), std::string::npos);
  // Proxies are one vector per label: label builders only, and a loss that reads negatives.
  EXPECT_NE(msg({"sampler.type=proxies"}).find("needs sampler.builder label"), std::string::npos);
  EXPECT_NE(msg({"sampler.type=proxies", "sampler.builder=label", "loss.type=mse"}).find("loss.type 'mse' reads none"),
            std::string::npos);
  EXPECT_NE(msg({"sampler.type=proxies", "sampler.builder=label", "loss.type=quadruplet"})
                .find("cannot use sampler.type 'proxies'"),
            std::string::npos);
  EXPECT_NE(msg({"model.shared=false", "user_tower.type=transformer", "user_tower.heads=3", "sampler.builder=sequence"})
                .find("must divide"),
            std::string::npos);
  // Without side data and ratings: an mlp tower has no input, mse has no target.
  Dataset bare = dataset_from_raw(RawLog{{"u1", "u2"}, {"i1", "i2"}, {}, {}}, "bare");
  p = test::all_train(bare);
  EXPECT_NE(msg({"tower.type=mlp"}).find("no dense features"), std::string::npos);
  EXPECT_NE(msg({"loss.type=mse"}).find("needs ratings"), std::string::npos);
  Config c;
  try {
    c.set_override("tower.type=resnet");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("allowed values: audio_cnn, bag, fusion, gcn, gru, id"), std::string::npos)
        << e.what();
  }
  try {
    c.set_override("loss.type=hinge");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bce, bpr, bpr_max, ccl, contrastive"), std::string::npos) << e.what();
  }
}

TEST(Embeddings, NpyTsvAndKMeans) {
  test::TempDir t;
  std::vector<float> x = {0, 0, 0.1f, 0, 0, 0.1f, 10, 10, 10.1f, 10, 10, 10.1f};
  write_npy(t.path() + "/e.npy", x.data(), 6, 2);
  std::string b = read_file(t.path() + "/e.npy");
  EXPECT_EQ(b.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(b.size() % 64, (6 * 2 * 4) % 64);  // header padded to 64 bytes
  EXPECT_NE(b.find("'shape': (6, 2)"), std::string::npos);
  write_embedding_tsv(t.path() + "/e.tsv", {"a", "b", "c", "d", "e", "f"}, x.data(), 2);
  EXPECT_EQ(read_file(t.path() + "/e.tsv").substr(0, 6), "a\t0\t0\n");
  auto r = kmeans(x.data(), 6, 2, 2, 50, 1);
  EXPECT_EQ(r.assign[0], r.assign[1]);
  EXPECT_EQ(r.assign[0], r.assign[2]);
  EXPECT_EQ(r.assign[3], r.assign[5]);
  EXPECT_NE(r.assign[0], r.assign[3]);
  EXPECT_LT(r.inertia, 0.1);
  EXPECT_THROW(kmeans(x.data(), 6, 2, 7, 10, 1), ConfigError);
}

// A short real-data run: a CML model beats Pop on ML-100K ua by a clear margin.
TEST(SiameseQuality, ShortCmlRunBeatsPopOnMl100k) {
  SIAMREC_NEED_DATA(dir);
  RunOptions ro{dir, false, 2};
  Config c;
  for (auto s : {"data.dataset=ml-100k", "split.type=fixed", "split.name=ua", "eval.k=10", "model.type=siamese",
                 "loss.type=triplet", "loss.margin=0.5", "reg.max_norm=1", "sampler.negatives=10", "train.lr=0.005",
                 "train.epochs=6", "train.valid_share=0"})
    c.set_override(s);
  Prepared p = prepare(c, ro);
  EvalResult r = evaluate_model(fit_model(p, c, ro), p, c, ro);
  EXPECT_GT(r.get("ndcg@10"), 0.20) << r.table();  // Pop: 0.1331
}

TEST(SiameseQuality, ShortLightGcnRunBeatsPopOnMl100k) {
  SIAMREC_NEED_DATA(dir);
  RunOptions ro{dir, false, 2};
  Config c;
  for (auto s :
       {"data.dataset=ml-100k", "split.type=fixed", "split.name=ua", "eval.k=10", "model.type=siamese",
        "tower.type=gcn", "tower.layers=2", "comparator.type=cosine", "loss.type=infonce", "loss.temperature=0.2",
        "sampler.negatives=20", "train.lr=0.002", "train.batch_size=2048", "train.epochs=8", "train.valid_share=0"})
    c.set_override(s);
  Prepared p = prepare(c, ro);
  EvalResult r = evaluate_model(fit_model(p, c, ro), p, c, ro);
  EXPECT_GT(r.get("ndcg@10"), 0.20) << r.table();  // Pop: 0.1331
}
