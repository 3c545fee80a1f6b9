// The fused engine against the LibTorch engine: identical mini-batch gradients and updates, the
// same quality on a planted fixture, and deterministic mode.
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/optim/sgd.h>

#include <cmath>

#include "config/config.h"
#include "data/dataset.h"
#include "losses/loss.h"
#include "models/model_file.h"
#include "sampling/builder.h"
#include "tasks/pipeline.h"
#include "train/fused.h"
#include "train/net.h"
#include "testutil.h"

using namespace siamrec;

static Dataset planted() {
  RawLog raw;
  for (int u = 0; u < 20; ++u)
    for (int k = 0; k < 6; ++k) {
      raw.users.push_back("u" + std::to_string(100 + u));
      raw.items.push_back("i" + std::to_string(100 + (u < 10 ? 0 : 10) + (u + k * 3) % 10));
      raw.rating.push_back(static_cast<float>(1 + (u + k) % 5));
    }
  Dataset ds = dataset_from_raw(raw, "planted");
  ds.item_side.genre_vocab = {"a", "b", "c"};
  ds.item_side.genres.resize(ds.n_items());
  for (int32_t i = 0; i < ds.n_items(); ++i) ds.item_side.genres[i] = {i % 2, 2};
  return ds;
}

static Config cfg(const std::vector<std::string>& sets) {
  Config c;
  for (auto s : {"model.type=siamese", "tower.dim=6", "sampler.negatives=3", "train.optimizer=adagrad", "train.lr=0.1"})
    c.set_override(s);
  for (auto& s : sets) c.set_override(s);
  return c;
}

struct Case {
  std::string name;
  std::vector<std::string> sets;
};

static void PrintTo(const Case& v, std::ostream* os) { *os << v.name; }

class FusedVsTorch : public ::testing::TestWithParam<Case> {};

// The same mini-batch through both engines: gradients of every table row, then one SGD step.
TEST_P(FusedVsTorch, SameGradientAndUpdate) {
  Dataset ds = planted();
  Config c = cfg(GetParam().sets);
  ASSERT_EQ(fused_unsupported(c), "") << GetParam().name;
  Csr hist = Csr::from_interactions(ds.log, ds.n_users(), false);
  auto builder = make_builder(c.str("sampler.builder"));
  builder->build(ds, ds.log, hist, c);
  NetLayout L = build_layout(c, ds, hist, builder->anchor_is_user());
  torch::manual_seed(1);
  SiameseNet net(c, L);
  net.set_history(&hist);
  auto loss = make_loss(LossSpec::from_config(c));
  const int k = loss->min_negatives() == 0 ? 0 : static_cast<int>(c.integer("sampler.negatives"));
  // A fixed batch: the first 8 positives, negatives i -> (i * 7 + j) % n_items.
  std::vector<int64_t> a, p, negs;
  std::vector<float> y;
  float offset = loss->uses_labels() ? 3.0f : 0.0f;
  for (int r = 0; r < 8; ++r) {
    const Positive& t = builder->positives()[r * 5];
    a.push_back(t.a), p.push_back(t.p), y.push_back(t.y);
    for (int j = 0; j < k; ++j) negs.push_back((r * 7 + j * 3 + 1) % ds.n_items());
  }
  // LibTorch: the trainer's forward.
  auto comp = net.comparator();
  auto ta = torch::tensor(a), tp = torch::tensor(p);
  auto ea = net.anchors(ta), ep = net.items(tp);
  LossInputs li;
  li.n_items = ds.n_items();
  bool dist = loss->wants_distance();
  li.pos = dist ? comp->distance(ea, ep) : comp->similarity(ea, ep);
  torch::Tensor en;
  if (k > 0) {
    en = net.items(torch::tensor(negs)).view({8, k, -1});
    li.neg = dist ? comp->distance(ea.unsqueeze(1), en) : comp->similarity(ea.unsqueeze(1), en);
  }
  if (loss->uses_labels()) li.labels = torch::tensor(y) - offset;
  auto L_t = loss->forward(li);
  double l2 = c.real("reg.l2");
  if (l2 > 0) {
    auto r = ea.pow(2).sum(1).mean() + ep.pow(2).sum(1).mean();
    if (en.defined()) r = r + en.pow(2).sum(2).mean();
    L_t = L_t + l2 * r;
  }
  L_t.backward();
  auto tables = net.tables();
  // Fused on the same storage.
  FusedSpec f;
  f.user_anchor = L.user_anchor;
  f.joint = L.user_anchor && L.shared;
  f.n_items = L.n_items;
  f.dim = net.dim();
  f.items = {tables[0].data_ptr<float>(), tables[0].size(0), c.str("tower.type") == "bag", false, &L.items};
  if (tables.size() > 1) f.users = {tables[1].data_ptr<float>(), tables[1].size(0), c.str("user_tower.type") == "bag", false, &L.users};
  f.comparator = c.str("comparator.type");
  f.loss = c.str("loss.type");
  f.optimizer = "sgd";  // Adagrad's first step is sign-like and would amplify 1e-9 rounding residues
  f.margin = c.real("loss.margin");
  f.temperature = c.real("loss.temperature");
  f.lr = c.real("train.lr");
  f.l2 = l2;
  f.k = k;
  f.label_offset = offset;
  auto sampler = make_sampler("uniform");
  std::vector<int64_t> pop(ds.n_items(), 1);
  sampler->init(ds.n_items(), pop, c);
  FusedEngine fe(f, *builder, *sampler);
  std::vector<float> gi, gu;
  double L_f = fe.batch_gradient(a, p, negs, y, gi, gu);
  EXPECT_NEAR(L_f, L_t.item<double>(), 1e-5 * std::max(1.0, std::abs(L_f))) << GetParam().name;
  auto check = [&](const torch::Tensor& t, const std::vector<float>& g, const char* what) {
    auto grad = t.grad().to_dense().contiguous();
    ASSERT_EQ(static_cast<size_t>(grad.numel()), g.size()) << what;
    const float* tg = grad.data_ptr<float>();
    for (size_t q = 0; q < g.size(); ++q)
      ASSERT_NEAR(g[q], tg[q], 1e-5 + 1e-4 * std::abs(tg[q])) << GetParam().name << " " << what << " entry " << q;
  };
  check(tables[0], gi, "item table");
  if (tables.size() > 1) check(tables[1], gu, "user table");
  // One SGD step in each engine from the same weights.
  torch::NoGradGuard ng;
  auto before = tables[0].detach().clone();
  torch::optim::SGD opt(std::vector<torch::Tensor>{tables[0]}, torch::optim::SGDOptions(f.lr));
  opt.step();
  auto torch_after = tables[0].detach().clone();
  tables[0].copy_(before);
  fe.batch_step(a, p, negs, y);
  EXPECT_LT((tables[0] - torch_after).abs().max().item<double>(), 1e-5) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(
    Losses, FusedVsTorch,
    ::testing::Values(Case{"triplet_sq_euclidean_id", {"loss.type=triplet", "comparator.type=sq_euclidean", "loss.margin=2"}},
                      Case{"bpr_dot_bag_shared", {"loss.type=bpr", "comparator.type=dot", "tower.type=bag", "tower.bag=self,genres"}},
                      Case{"infonce_cosine_two_tower", {"loss.type=infonce", "comparator.type=cosine", "model.shared=false",
                                                        "user_tower.type=bag", "loss.temperature=0.5"}},
                      Case{"contrastive_euclidean", {"loss.type=contrastive", "comparator.type=euclidean", "loss.margin=2"}},
                      Case{"bce_dot_l2", {"loss.type=bce", "comparator.type=dot", "reg.l2=0.1"}},
                      Case{"warp_sq_euclidean", {"loss.type=warp", "comparator.type=sq_euclidean", "loss.margin=1.5"}},
                      Case{"ccl_cosine", {"loss.type=ccl", "comparator.type=cosine", "loss.margin=-0.5"}},
                      Case{"mse_dot", {"loss.type=mse", "comparator.type=dot"}},
                      Case{"triplet_item_item_bag", {"sampler.builder=item_item", "loss.type=triplet", "tower.type=bag",
                                                     "comparator.type=euclidean", "loss.margin=2"}}),
    [](const auto& i) { return i.param.name; });

static double group_auc(const TrainedModel& m, const Dataset& ds, const Csr& train) {
  const int32_t U = ds.n_users(), I = ds.n_items();
  std::vector<int32_t> users(U);
  for (int32_t u = 0; u < U; ++u) users[u] = u;
  std::vector<float> s(static_cast<size_t>(U) * I);
  m.model->score(users.data(), U, s.data());
  double auc = 0;
  for (int32_t u = 0; u < U; ++u) {
    std::vector<float> in, out;
    for (int32_t i = 0; i < I; ++i) {
      if (train.contains(u, i)) continue;
      bool same = (u < 10) == (std::stoi(ds.items.original(i).substr(1)) < 110);
      (same ? in : out).push_back(s[static_cast<size_t>(u) * I + i]);
    }
    int wins = 0;
    for (float x : in)
      for (float z : out) wins += x > z;
    auc += static_cast<double>(wins) / (in.size() * out.size());
  }
  return auc / U;
}

TEST(FusedEngine, SameQualityAsTorchOnPlantedGroups) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  double auc[2];
  int e = 0;
  for (std::string engine : {"fused", "torch"}) {
    Config c = cfg({"loss.type=bpr", "comparator.type=dot", "tower.type=bag", "train.epochs=40", "train.batch_size=16",
                    "train.valid_share=0", "train.engine=" + engine});
    TrainedModel m = fit_model(p, c, RunOptions{});
    auc[e++] = group_auc(m, ds, p.train_by_user);
  }
  EXPECT_GT(auc[0], 0.8);
  EXPECT_GT(auc[1], 0.8);
  EXPECT_NEAR(auc[0], auc[1], 0.05);
}

TEST(FusedEngine, DeterministicModeIsReproducibleWithTwoThreads) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  Config c = cfg({"loss.type=triplet", "train.epochs=5", "train.batch_size=8", "train.valid_share=0", "train.engine=fused",
                  "train.deterministic=true"});
  RunOptions ro;
  ro.threads = 2;
  std::vector<float> s[2];
  for (int r = 0; r < 2; ++r) {
    TrainedModel m = fit_model(p, c, ro);
    std::vector<int32_t> users(ds.n_users());
    for (int32_t u = 0; u < ds.n_users(); ++u) users[u] = u;
    s[r].resize(users.size() * ds.n_items());
    m.model->score(users.data(), ds.n_users(), s[r].data());
  }
  EXPECT_EQ(s[0], s[1]);
}

TEST(FusedEngine, UnsupportedConfigsAreNamed) {
  EXPECT_NE(fused_unsupported(cfg({"tower.type=mlp"})).find("tower.type 'mlp'"), std::string::npos);
  EXPECT_NE(fused_unsupported(cfg({"train.optimizer=adam"})).find("dense adam"), std::string::npos);
  EXPECT_NE(fused_unsupported(cfg({"sampler.type=hard"})).find("sampler.type 'hard'"), std::string::npos);
  EXPECT_NE(fused_unsupported(cfg({"comparator.type=learned"})).find("learned"), std::string::npos);
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  EXPECT_THROW(fit_model(p, cfg({"train.engine=fused", "train.optimizer=adam"}), RunOptions{}), ConfigError);
}

// Per-example Hogwild updates (train.update example) learn the planted groups like mini-batches,
// for id and bag towers; the mode refuses determinism and the LibTorch engine.
TEST(FusedEngine, PerExampleUpdatesLearnPlantedGroups) {
  Dataset ds = planted();
  Prepared p = test::all_train(ds);
  for (std::string tower : {"id", "bag"}) {
    Config c = cfg({"loss.type=bpr", "comparator.type=dot", "tower.type=" + tower, "train.epochs=20", "train.lr=0.05",
                    "train.valid_share=0", "train.engine=fused", "train.update=example"});
    RunOptions ro;
    ro.threads = 2;
    TrainedModel m = fit_model(p, c, ro);
    EXPECT_GT(group_auc(m, ds, p.train_by_user), 0.8) << tower;
  }
  EXPECT_THROW(fit_model(p, cfg({"train.engine=fused", "train.update=example", "train.deterministic=true"}), RunOptions{}),
               ConfigError);
  EXPECT_THROW(fit_model(p, cfg({"train.engine=torch", "train.update=example"}), RunOptions{}), ConfigError);
}
