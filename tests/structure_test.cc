// Structure towers: the graph tower (`gcn`) and the sequence encoders over histories (`gru`,
// `lstm`, `transformer`), plus the session-log reader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>
#include <fstream>
#include <random>

#include "config/config.h"
#include "data/dataset.h"
#include "data/readers.h"
#include "models/model_file.h"
#include "sampling/session_parallel.h"
#include "tasks/pipeline.h"
#include "testutil.h"
#include "towers/attention.h"
#include "towers/spmm.h"
#include "towers/tower.h"
#include "util/error.h"

using namespace siamrec;

namespace {

// A bipartite graph over 4 items (0..3) and 3 users (nodes 4..6) in the joint space.
EntityFeatures tiny_graph() {
  std::vector<std::pair<int, int>> edges = {{4, 0}, {4, 1}, {5, 1}, {5, 2}, {5, 3}, {6, 0}, {6, 3}};
  EntityFeatures f;
  f.n = 7;
  std::vector<std::vector<int64_t>> adj(7);
  for (auto [u, i] : edges) adj[u].push_back(i), adj[i].push_back(u);
  f.graph_ptr = {0};
  for (auto& a : adj) {
    f.graph_idx.insert(f.graph_idx.end(), a.begin(), a.end());
    f.graph_ptr.push_back(static_cast<int64_t>(f.graph_idx.size()));
  }
  f.bag_ptr.assign(8, 0);
  return f;
}

torch::Tensor dense_adjacency(const EntityFeatures& f) {
  auto A = torch::zeros({f.n, f.n}, torch::kFloat64);
  for (int64_t r = 0; r < f.n; ++r)
    for (int64_t p = f.graph_ptr[r]; p < f.graph_ptr[r + 1]; ++p) A[r][f.graph_idx[p]] = 1.0;
  auto d = A.sum(1).pow(-0.5);
  return d.unsqueeze(1) * A * d.unsqueeze(0);
}

TowerSpec gcn_spec(const EntityFeatures* f, int64_t layers, const std::string& spmm = "csr") {
  TowerSpec s;
  s.type = "gcn", s.key = "tower", s.dim = 5, s.layers = layers, s.spmm = spmm, s.feats = f;
  return s;
}

}  // namespace

TEST(Spmm, MatchesDenseProduct) {
  EntityFeatures f = tiny_graph();
  Csr m = normalized_adjacency(f.n, f.graph_ptr, f.graph_idx);
  auto A = dense_adjacency(f);
  auto x = torch::randn({f.n, 3});
  std::vector<float> y(static_cast<size_t>(f.n * 3));
  spmm(m, x.data_ptr<float>(), 3, y.data());
  auto expect = A.mm(x.to(torch::kFloat64));
  for (int64_t r = 0; r < f.n; ++r)
    for (int64_t k = 0; k < 3; ++k) EXPECT_NEAR(y[r * 3 + k], expect[r][k].item<double>(), 1e-5);
  // Malformed adjacency is refused with a message.
  EXPECT_NE(test::error_of([&] {
              normalized_adjacency(3, {0, 1, 2, 3}, {1, 0, 9});
            }).find("neighbour 9"),
            std::string::npos);
}

TEST(GcnTower, PropagationMatchesDenseLightGcnAndGradientsAgree) {
  EntityFeatures f = tiny_graph();
  auto A = dense_adjacency(f);
  for (int64_t K : {0, 1, 3}) {
    torch::manual_seed(7);
    auto csr = make_tower(gcn_spec(&f, K, "csr"));
    torch::manual_seed(7);
    auto ref = make_tower(gcn_spec(&f, K, "torch"));
    auto all = torch::arange(f.n, torch::kInt64);
    auto E = csr->tables()[0].detach().to(torch::kFloat64);
    auto sum = E.clone(), cur = E.clone();
    for (int64_t k = 0; k < K; ++k) cur = A.mm(cur), sum = sum + cur;
    auto expect = sum / static_cast<double>(K + 1);
    auto out = csr->forward(all);
    EXPECT_LT((out.to(torch::kFloat64) - expect).abs().max().item<double>(), 1e-5) << "K=" << K;
    // Gradients through siamrec's kernel and through LibTorch's sparse mm agree.
    auto w = torch::randn({f.n, 5});
    (csr->forward(all) * w).sum().backward();
    (ref->forward(all) * w).sum().backward();
    auto g1 = csr->tables()[0].grad(), g2 = ref->tables()[0].grad();
    ASSERT_TRUE(g1.defined() && g2.defined());
    EXPECT_LT((g1 - g2).abs().max().item<double>(), 1e-5) << "K=" << K;
    EXPECT_GT(g1.abs().sum().item<double>(), 0.0);
  }
}

TEST(GcnTower, CachedWithinAStepAndRefreshedAfterAnUpdate) {
  EntityFeatures f = tiny_graph();
  auto t = make_tower(gcn_spec(&f, 2));
  auto ids = torch::tensor({0, 4}, torch::kInt64);
  torch::Tensor a, b;
  {
    torch::NoGradGuard ng;
    a = t->forward(ids).clone();
    t->tables()[0].add_(1.0);  // an optimizer step changes the version counter
    b = t->forward(ids).clone();
  }
  EXPECT_GT((a - b).abs().max().item<double>(), 0.5);
}

TEST(GcnTower, PerEpochPropagationHoldsNeighbourLayersUntilTheNextEpoch) {
  EntityFeatures f = tiny_graph();
  TowerSpec s = gcn_spec(&f, 2);
  s.propagate = "epoch";
  auto t = make_tower(s);
  auto all = torch::arange(f.n, torch::kInt64);
  auto exact = [&] {
    torch::NoGradGuard ng;  // evaluation is always exact
    return t->forward(all).clone();
  };
  t->begin_epoch();
  auto first = t->forward(all).detach().clone();
  EXPECT_LT((first - exact()).abs().max().item<double>(), 1e-6);  // fresh epoch: same as exact
  {
    torch::NoGradGuard ng;
    t->tables()[0].add_(0.5);  // a training step
  }
  auto stale = t->forward(all).detach();
  // Only the ego term moved: + 0.5 / (K + 1) everywhere; the exact propagation moved more.
  EXPECT_LT((stale - first - 0.5 / 3.0).abs().max().item<double>(), 1e-5);
  EXPECT_GT((exact() - stale).abs().max().item<double>(), 1e-3);
  t->begin_epoch();
  EXPECT_LT((t->forward(all).detach() - exact()).abs().max().item<double>(), 1e-6);
}

TEST(GcnTower, FoldInOfAKnownUserIsHerEmbeddingWithoutTheEgoTerm) {
  EntityFeatures f = tiny_graph();
  const int64_t K = 2;
  auto t = make_tower(gcn_spec(&f, K));
  torch::NoGradGuard ng;
  // User node 5 has items 1, 2, 3: the fold-in of that history rebuilds her layers 1..K.
  auto fold = t->forward_bags(torch::tensor({1, 2, 3}, torch::kInt64), torch::zeros({1}, torch::kInt64));
  auto own = t->forward(torch::tensor({5}, torch::kInt64));
  auto ego = t->tables()[0][5] / static_cast<double>(K + 1);
  EXPECT_LT((fold[0] + ego - own[0]).abs().max().item<double>(), 1e-5);
}

TEST(GcnTower, NeedsTheJointGraph) {
  EntityFeatures f;
  f.n = 3;
  f.bag_ptr.assign(4, 0);
  EXPECT_NE(test::error_of([&] { make_tower(gcn_spec(&f, 2)); }).find("user-item graph"), std::string::npos);
}

namespace {

struct SeqFixture {
  EntityFeatures items, users;
  std::shared_ptr<Tower> item_tower, user_tower;
  // type "transformer-post": the post-LayerNorm blocks with positions from the oldest item.
  SeqFixture(const std::string& type_, int64_t max_len = 8) {
    const bool post = type_ == "transformer-post";
    const std::string type = post ? "transformer" : type_;
    items.n = 12;
    items.bag_ptr.assign(13, 0);
    users.n = 2;
    users.bag_vocab = 12;
    users.bag_tok = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // user 0: 1 2 3; user 1: 4..9
    users.bag_ptr = {0, 3, 9};
    torch::manual_seed(3);
    TowerSpec is;
    is.type = "id", is.key = "tower", is.dim = 8, is.feats = &items;
    item_tower = make_tower(is);
    TowerSpec us;
    us.type = type, us.key = "user_tower", us.dim = 8, us.layers = 2, us.heads = 2, us.max_len = max_len;
    us.feats = &users, us.item_tower = item_tower.get();
    if (post) us.norm = "post", us.positions = "oldest";
    user_tower = make_tower(us);
    user_tower->train(false);
  }
};

}  // namespace

class SequenceTowers : public ::testing::TestWithParam<std::string> {};

TEST_P(SequenceTowers, CausalNoFutureLeak) {
  SeqFixture fx(GetParam());
  torch::NoGradGuard ng;
  auto seq = torch::tensor({{1, 2, 3, 4, 5, 6}}, torch::kInt64);
  auto len = torch::tensor({6}, torch::kInt64);
  auto a = fx.user_tower->forward_positions(seq, len);
  auto seq2 = seq.clone();
  seq2[0][4] = 11;  // perturb a later item
  auto b = fx.user_tower->forward_positions(seq2, len);
  EXPECT_LT((a.slice(1, 0, 4) - b.slice(1, 0, 4)).abs().max().item<double>(), 1e-6) << "earlier states changed";
  EXPECT_GT((a.slice(1, 4, 6) - b.slice(1, 4, 6)).abs().max().item<double>(), 1e-4) << "later states ignore the change";
}

TEST_P(SequenceTowers, PaddingInABatchChangesNothing) {
  SeqFixture fx(GetParam());
  torch::NoGradGuard ng;
  // Users 0 (3 items) and 1 (6 items) in one padded batch, and each alone.
  auto both = fx.user_tower->forward(torch::tensor({0, 1}, torch::kInt64));
  auto u0 = fx.user_tower->forward(torch::tensor({0}, torch::kInt64));
  auto u1 = fx.user_tower->forward(torch::tensor({1}, torch::kInt64));
  EXPECT_LT((both[0] - u0[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LT((both[1] - u1[0]).abs().max().item<double>(), 1e-5);
  // A user is the state after her last item: the same as the last position of her sequence.
  auto st =
      fx.user_tower->forward_positions(torch::tensor({{1, 2, 3}}, torch::kInt64), torch::tensor({3}, torch::kInt64));
  EXPECT_LT((st[0][2] - u0[0]).abs().max().item<double>(), 1e-5);
  // Fold-in of the same history gives the same vector; an empty history gives zeros.
  auto fold = fx.user_tower->forward_bags(torch::tensor({1, 2, 3}, torch::kInt64), torch::zeros({1}, torch::kInt64));
  EXPECT_LT((fold[0] - u0[0]).abs().max().item<double>(), 1e-5);
  auto empty = fx.user_tower->forward_bags(torch::zeros({0}, torch::kInt64), torch::zeros({1}, torch::kInt64));
  EXPECT_EQ(empty.abs().sum().item<double>(), 0.0);
}

TEST_P(SequenceTowers, ManyHistoriesAtOnceAreEachAlone) {
  // More histories than one chunk (they are then encoded by length, 256 at a time): each row is
  // the history's own vector; lengths 0..11 with max_len 8 (longer ones keep their latest 8).
  SeqFixture fx(GetParam());
  torch::NoGradGuard ng;
  std::vector<int64_t> tok, off;
  std::mt19937 rng(11);
  for (int b = 0; b < 600; ++b) {
    off.push_back(static_cast<int64_t>(tok.size()));
    for (int k = static_cast<int>(rng() % 12); k > 0; --k) tok.push_back(1 + static_cast<int64_t>(rng() % 11));
  }
  auto all = fx.user_tower->forward_bags(torch::tensor(tok, torch::kInt64), torch::tensor(off, torch::kInt64));
  ASSERT_EQ(all.size(0), 600);
  double worst = 0;
  for (int b = 0; b < 600; b += 7) {
    const int64_t e = b + 1 < 600 ? off[b + 1] : static_cast<int64_t>(tok.size());
    std::vector<int64_t> one(tok.begin() + off[b], tok.begin() + e);
    auto alone = fx.user_tower->forward_bags(torch::tensor(one, torch::kInt64), torch::zeros({1}, torch::kInt64));
    worst = std::max(worst, (all[b] - alone[0]).abs().max().item<double>());
  }
  EXPECT_LT(worst, 1e-5);
}

// Histories packed back to back into rows (the trainer's train.pack_windows) give each history's
// own states: rows of segments 3+2+1 (2 padding), 8, and 4+4; two heads (a mask per row, repeated
// per head). Towers that cannot pack say so and refuse.
TEST_P(SequenceTowers, PackedHistoriesAreEachAlone) {
  SeqFixture fx(GetParam());
  torch::NoGradGuard ng;
  if (!fx.user_tower->packs_positions()) {
    EXPECT_THROW(fx.user_tower->forward_packed(torch::zeros({1, 4}, torch::kInt64), {{4}}), std::exception);
    return;
  }
  std::vector<std::vector<int64_t>> lengths = {{3, 2, 1}, {8}, {4, 4}};
  std::mt19937 rng(5);
  auto seq = torch::zeros({3, 8}, torch::kInt64);
  for (int r = 0; r < 3; ++r) {
    int64_t c = 0;
    for (int64_t n : lengths[r])
      for (int64_t t = 0; t < n; ++t) seq[r][c++] = 1 + static_cast<int64_t>(rng() % 11);
  }
  auto packed = fx.user_tower->forward_packed(seq, lengths);
  ASSERT_EQ(packed.size(0), 3);
  ASSERT_EQ(packed.size(1), 8);
  double worst = 0;
  int segments = 0;
  for (int r = 0; r < 3; ++r) {
    int64_t c = 0;
    for (int64_t n : lengths[r]) {
      auto alone = fx.user_tower->forward_positions(seq[r].slice(0, c, c + n).unsqueeze(0), torch::tensor({n}));
      worst = std::max(worst, (packed[r].slice(0, c, c + n) - alone[0]).abs().max().item<double>());
      c += n, ++segments;
    }
  }
  EXPECT_EQ(segments, 6);
  EXPECT_LT(worst, 1e-5);
  EXPECT_TRUE(torch::isfinite(packed).all().item<bool>());  // padding rows too (no all -inf softmax row)
  EXPECT_THROW(fx.user_tower->forward_packed(seq, {{5, 4}, {8}, {8}}), std::exception);  // beyond the width
}

TEST_P(SequenceTowers, ReadsOnlyTheLatestMaxLenItems) {
  SeqFixture fx(GetParam(), /*max_len=*/3);
  torch::NoGradGuard ng;
  auto u1 = fx.user_tower->forward(torch::tensor({1}, torch::kInt64));  // 4..9 -> 7 8 9
  auto last3 = fx.user_tower->forward_bags(torch::tensor({7, 8, 9}, torch::kInt64), torch::zeros({1}, torch::kInt64));
  EXPECT_LT((u1[0] - last3[0]).abs().max().item<double>(), 1e-5);
}

TEST_P(SequenceTowers, GradientsReachTheSharedItemTower) {
  SeqFixture fx(GetParam());
  fx.user_tower->train(true);
  auto st =
      fx.user_tower->forward_positions(torch::tensor({{1, 2, 3}}, torch::kInt64), torch::tensor({3}, torch::kInt64));
  (st * torch::randn(st.sizes())).sum().backward();  // a plain sum is constant after LayerNorm
  auto g = fx.item_tower->tables()[0].grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g[1].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(g[10].abs().sum().item<double>(), 0.0);  // item 10 is not in the sequence
  int with_grad = 0;
  for (auto& p : fx.user_tower->parameters())
    with_grad += p.grad().defined() && p.grad().abs().sum().item<double>() > 0;
  EXPECT_GT(with_grad, 0);
}

INSTANTIATE_TEST_SUITE_P(Encoders, SequenceTowers, ::testing::Values("gru", "lstm", "transformer", "transformer-post"));

// SASRec's positions: counted back from the latest item (its left padding), so a history of n <
// max_len items uses the last n position rows; `oldest` uses the first n.
TEST(SequenceTowers, SasrecPositionsCountBackFromTheLatestItem) {
  for (const char* type : {"transformer", "transformer-post"}) {
    SeqFixture fx(type, /*max_len=*/8);
    torch::NoGradGuard ng;
    torch::Tensor pos;
    for (auto& np : fx.user_tower->named_parameters())
      if (np.key() == "positions") pos = np.value();
    ASSERT_TRUE(pos.defined());
    const bool latest = std::string(type) == "transformer";
    auto u0 = fx.user_tower->forward(torch::tensor({0}, torch::kInt64));  // 3 items
    // (Not a constant shift: LayerNorm, before every sublayer and at the end, would erase it.)
    auto delta = torch::randn({8});
    pos[0].add_(delta);  // the oldest position row
    auto a = fx.user_tower->forward(torch::tensor({0}, torch::kInt64));
    pos[0].sub_(delta);
    pos[7].add_(delta);  // the latest position row
    auto b = fx.user_tower->forward(torch::tensor({0}, torch::kInt64));
    pos[7].sub_(delta);
    const double da = (a - u0).abs().max().item<double>(), db = (b - u0).abs().max().item<double>();
    EXPECT_EQ(da > 1e-4, !latest) << type;
    EXPECT_EQ(db > 1e-4, latest) << type;
  }
  // pre: a final LayerNorm (SASRec's); post: none.
  SeqFixture pre("transformer"), post("transformer-post");
  auto has_last = [](Tower& t) {
    for (auto& np : t.named_parameters())
      if (np.key().rfind("ln_last", 0) == 0) return true;
    return false;
  };
  EXPECT_TRUE(has_last(*pre.user_tower));
  EXPECT_FALSE(has_last(*post.user_tower));
}

// The SASRec blocks' own attention and dropout (towers/attention.cc).
TEST(SequenceTowers, OwnAttentionIsLibTorchsAndFastDropoutIsInvertedDropout) {
  torch::manual_seed(5);
  torch::nn::MultiheadAttention m(torch::nn::MultiheadAttentionOptions(8, 2).dropout(0.3));
  m->eval();
  auto x = torch::randn({6, 3, 8});  // [L, B, d]
  auto mask = torch::full({6, 6}, -std::numeric_limits<float>::infinity()).triu(1);
  auto ref = std::get<0>(m->forward(x, x, x, {}, /*need_weights=*/false, mask));
  auto own = self_attention(m, x, mask, 0.3, /*training=*/false);
  EXPECT_LT((ref - own).abs().max().item<double>(), 1e-5);
  // Gradients through it match LibTorch's too.
  auto x1 = x.clone().requires_grad_(true), x2 = x.clone().requires_grad_(true);
  auto w = torch::randn({6, 3, 8});
  (std::get<0>(m->forward(x1, x1, x1, {}, false, mask)) * w).sum().backward();
  (self_attention(m, x2, mask, 0.3, false) * w).sum().backward();
  EXPECT_LT((x1.grad() - x2.grad()).abs().max().item<double>(), 1e-4);

  auto y = torch::ones({1000, 50}).requires_grad_(true);
  torch::manual_seed(7);
  auto d1 = fast_dropout(y, 0.2, true);
  torch::manual_seed(7);
  auto d2 = fast_dropout(y, 0.2, true);
  EXPECT_TRUE(torch::equal(d1, d2)) << "not reproducible under torch::manual_seed";
  auto kept = (d1 > 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(kept, 0.8, 0.01);                                          // 50,000 draws: sd 0.0018
  EXPECT_LT(((d1 - 1.25).abs() * (d1 > 0)).max().item<double>(), 1e-6);  // kept values scaled by 1/(1-p)
  d1.sum().backward();
  EXPECT_TRUE(torch::equal(y.grad(), d1.detach()));  // the gradient is the mask
  auto d3 = fast_dropout(y, 0.2, true);
  EXPECT_FALSE(torch::equal(d1, d3)) << "the same mask twice";
  EXPECT_TRUE(torch::equal(fast_dropout(y, 0.2, false), y));
  // A hash of the element index: no column pattern (each of 50 columns near 0.8).
  auto col = (d3 > 0).to(torch::kFloat64).mean(0);
  EXPECT_GT(col.min().item<double>(), 0.74);
  EXPECT_LT(col.max().item<double>(), 0.86);
}

// The GRU's own forward/backward (towers/gru_kernel.cc, user_tower.rnn_kernel own) is LibTorch's
// GRU: the same weights give the same states and the same gradients for every parameter, the item
// table and a padded batch of histories, over 2 layers; inference (no graph) gives the same states.
// User towers over histories of 40 items, read through an id item tower of width d (made
// after the caller seeds LibTorch).
struct HistoryTowers {
  EntityFeatures items, users;
  std::shared_ptr<Tower> item_tower;
  explicit HistoryTowers(int64_t d) {
    items.n = 40;
    items.bag_ptr.assign(41, 0);
    users.n = 1;
    users.bag_vocab = 40;
    users.bag_ptr = {0, 0};
    TowerSpec is;
    is.type = "id", is.key = "tower", is.dim = d, is.feats = &items;
    item_tower = make_tower(is);
  }
  HistoryTowers(const HistoryTowers&) = delete;
  TowerSpec user(const char* type, int64_t d, int64_t layers, int64_t max_len) {
    TowerSpec us;
    us.type = type, us.key = "user_tower", us.dim = d, us.layers = layers, us.max_len = max_len;
    us.feats = &users, us.item_tower = item_tower.get();
    return us;
  }
};

TEST(SequenceTowers, OwnGruIsLibTorchsGruInValueAndGradient) {
  torch::manual_seed(9);
  HistoryTowers h(24);
  auto& item_tower = h.item_tower;
  // fold: the first layer reads the item table's projection (40 items < 7 x 30 positions).
  for (bool fold : {true, false}) {
    SCOPED_TRACE(fold ? "folded first layer" : "projected positions");
    auto make = [&](const char* kernel) {
      TowerSpec us = h.user("gru", 24, 2, 30);
      us.rnn_kernel = kernel, us.rnn_fold = fold;
      return make_tower(us);
    };
    auto own = make("own"), ref = make("torch");
    for (auto& t : item_tower->parameters())
      if (t.grad().defined()) t.grad().zero_();
    {
      torch::NoGradGuard ng;
      auto po = own->named_parameters(), pr = ref->named_parameters();
      for (auto& p : pr) po[p.key()].copy_(p.value());
    }
    own->train(true), ref->train(true);  // dropout 0: training and inference are the same function
    std::mt19937 rng(4);
    const int64_t B = 7, L = 30;
    auto seq = torch::zeros({B, L}, torch::kInt64);
    std::vector<int64_t> len(B);
    for (int64_t b = 0; b < B; ++b) {
      len[b] = b == 0 ? L : 1 + static_cast<int64_t>(rng() % L);
      for (int64_t t = 0; t < len[b]; ++t) seq[b][t] = 1 + static_cast<int64_t>(rng() % 39);
    }
    auto lengths = torch::tensor(len, torch::kInt64);
    auto w = torch::randn({B, L, 24});
    auto so = own->forward_positions(seq, lengths);
    auto sr = ref->forward_positions(seq, lengths);
    EXPECT_LT((so - sr).abs().max().item<double>(), 2e-6);
    EXPECT_GT(sr.abs().max().item<double>(), 0.05);  // not a trivially small output
    EXPECT_FALSE(torch::equal(so, sr)) << "the own kernel did not run (its exp differs in the last bits)";
    auto table = item_tower->tables()[0];
    (so * w).sum().backward();
    auto gi_own = table.grad().clone();
    table.grad().zero_();
    (sr * w).sum().backward();
    EXPECT_LT((gi_own - table.grad()).abs().max().item<double>(), 1e-5);
    auto po = own->named_parameters(), pr = ref->named_parameters();
    int compared = 0;
    for (auto& p : pr) {
      auto go = po[p.key()].grad();
      ASSERT_TRUE(go.defined()) << p.key();
      const double scale = p.value().grad().abs().max().item<double>();
      EXPECT_GT(scale, 0.0) << p.key();
      EXPECT_LT((go - p.value().grad()).abs().max().item<double>(), 1e-5 * std::max(1.0, scale)) << p.key();
      ++compared;
    }
    EXPECT_EQ(compared, 8);  // 2 layers x (w_ih, w_hh, b_ih, b_hh)
    torch::NoGradGuard ng;
    auto inf = own->forward_positions(seq, lengths);
    EXPECT_LT((inf - sr.detach()).abs().max().item<double>(), 2e-6);
    // The user vectors (the last state of each history) also agree.
    std::vector<int64_t> tok, off;
    for (int64_t b = 0; b < B; ++b) {
      off.push_back(static_cast<int64_t>(tok.size()));
      for (int64_t t = 0; t < len[b]; ++t) tok.push_back(seq[b][t].item<int64_t>());
    }
    auto uo = own->forward_bags(torch::tensor(tok), torch::tensor(off));
    auto ur = ref->forward_bags(torch::tensor(tok), torch::tensor(off));
    EXPECT_LT((uo - ur).abs().max().item<double>(), 2e-6);
  }
}

// Session-parallel mini-batches (Tower::forward_stream): a history read in chunks with the state
// carried across them gives the states of one pass; a reset inside a chunk starts a history alone;
// and a chunk's gradient from a carried state is LibTorch's GRU's with that state as hx (the
// gradient stops at the chunk's start).
TEST(SequenceTowers, StreamedGruCarriesItsStateAcrossChunks) {
  torch::manual_seed(5);
  HistoryTowers h(16);
  auto& item_tower = h.item_tower;
  auto gru = make_tower(h.user("gru", 16, 2, 30));
  ASSERT_TRUE(gru->streams());
  gru->train(true);  // dropout 0
  const int64_t R = 3, L = 24, K = 6;
  auto seq = torch::randint(1, 40, {R, L}, torch::kInt64);
  auto whole = gru->forward_positions(seq, torch::full({R}, L, torch::kInt64)).detach();
  // Row 1 starts a new history at position 10 (chunk 1, step 4).
  auto suffix =
      gru->forward_positions(seq.slice(0, 1, 2).slice(1, 10, L), torch::full({1}, L - 10, torch::kInt64)).detach();
  std::vector<torch::Tensor> state, parts;
  for (int64_t c = 0; c < L / K; ++c) {
    auto reset = torch::zeros({R, K}, torch::kUInt8);
    if (c == 0) reset.select(1, 0).fill_(1);
    if (c == 1) reset[1][4] = 1;
    parts.push_back(gru->forward_stream(seq.slice(1, c * K, (c + 1) * K), reset, state).detach());
    ASSERT_EQ(state.size(), 2u);
    EXPECT_FALSE(state[0].requires_grad());
  }
  auto streamed = torch::cat(parts, 1);
  EXPECT_LT((streamed.select(0, 0) - whole.select(0, 0)).abs().max().item<double>(), 2e-6);
  EXPECT_LT((streamed.select(0, 2) - whole.select(0, 2)).abs().max().item<double>(), 2e-6);
  EXPECT_LT((streamed[1].slice(0, 10, L) - suffix[0]).abs().max().item<double>(), 2e-6);
  EXPECT_GT((streamed[1].slice(0, 10, L) - whole[1].slice(0, 10, L)).abs().max().item<double>(), 1e-3);
  // The last chunk again from the carried states before it, against LibTorch's GRU with hx.
  std::vector<torch::Tensor> h0;
  {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> st;
    gru->forward_stream(
        seq.slice(1, 0, L - K),
        [&] {
          auto r = torch::zeros({R, L - K}, torch::kUInt8);
          r.select(1, 0).fill_(1);
          return r;
        }(),
        st);
    h0 = st;
  }
  auto chunk = seq.slice(1, L - K, L);
  auto st = h0;
  auto y = gru->forward_stream(chunk, torch::zeros({R, K}, torch::kUInt8), st);
  torch::nn::GRU ref(torch::nn::GRUOptions(16, 16).num_layers(2).batch_first(true));
  {
    torch::NoGradGuard ng;
    auto po = gru->named_parameters();
    for (auto& q : ref->named_parameters()) q.value().copy_(po["rnn." + q.key()]);
  }
  auto x = item_tower->forward(chunk.reshape({-1})).view({R, K, 16}).detach();
  auto yr = std::get<0>(ref->forward(x, torch::stack(h0)));
  EXPECT_LT((y - yr).abs().max().item<double>(), 2e-6);
  auto w = torch::randn({R, K, 16});
  (y * w).sum().backward();
  (yr * w).sum().backward();
  auto po = gru->named_parameters();
  int compared = 0;
  for (auto& q : ref->named_parameters()) {
    auto g = po["rnn." + q.key()].grad();
    ASSERT_TRUE(g.defined()) << q.key();
    const double scale = q.value().grad().abs().max().item<double>();
    EXPECT_GT(scale, 0.0) << q.key();
    EXPECT_LT((g - q.value().grad()).abs().max().item<double>(), 1e-5 * std::max(1.0, scale)) << q.key();
    ++compared;
  }
  EXPECT_EQ(compared, 8);
  // A wrong number of carried states is refused.
  std::vector<torch::Tensor> bad = {torch::zeros({R, 16})};
  EXPECT_THROW(gru->forward_stream(chunk, torch::zeros({R, K}, torch::kUInt8), bad), Error);
}

// BERT4Rec (user_tower.bidirectional on the transformer): every position reads the whole history
// (a later item changes an earlier state) but never the padding; kMaskItem reads a learned mask
// token that gets a gradient; a user is the state of a mask token after her latest max_len - 1
// items; packed histories are each read alone; and the post-LN blocks are refused.
TEST(SequenceTowers, Bert4RecReadsTheWholeHistoryAndAMaskToken) {
  torch::manual_seed(8);
  HistoryTowers h(16);
  TowerSpec us = h.user("transformer", 16, 2, 10);
  us.heads = 2, us.bidirectional = true;
  auto bert = make_tower(us);
  ASSERT_TRUE(bert->cloze());
  bert->train(false);
  torch::NoGradGuard ng;
  auto seq = torch::randint(1, 40, {2, 8}, torch::kInt64);
  auto lengths = torch::tensor(std::vector<int64_t>{8, 5});
  auto st = bert->forward_positions(seq, lengths);
  auto later = seq.clone();
  later[0][6] = (later[0][6].item<int64_t>() % 39) + 1;
  auto pad = seq.clone();
  pad[1].slice(0, 5, 8).fill_(7);
  auto st_later = bert->forward_positions(later, lengths);
  auto st_pad = bert->forward_positions(pad, lengths);
  EXPECT_GT((st_later[0][2] - st[0][2]).abs().max().item<double>(), 1e-4) << "an earlier state must read later items";
  EXPECT_LT((st_pad[1].slice(0, 0, 5) - st[1].slice(0, 0, 5)).abs().max().item<double>(), 1e-6);
  // The user: a mask token after her latest 9 items.
  std::vector<int64_t> hist;
  for (int k = 0; k < 12; ++k) hist.push_back(1 + (k * 7) % 39);
  auto user = bert->forward_bags(torch::tensor(hist), torch::tensor(std::vector<int64_t>{0}));
  std::vector<int64_t> last9(hist.end() - 9, hist.end());
  last9.push_back(Tower::kMaskItem);
  auto at_mask = bert->forward_positions(torch::tensor(last9).unsqueeze(0), torch::tensor(std::vector<int64_t>{10}));
  EXPECT_LT((user[0] - at_mask[0][9]).abs().max().item<double>(), 1e-5);
  last9.back() = hist.back();
  auto at_item = bert->forward_positions(torch::tensor(last9).unsqueeze(0), torch::tensor(std::vector<int64_t>{10}));
  EXPECT_GT((at_item[0][9] - at_mask[0][9]).abs().max().item<double>(), 1e-4) << "the mask token must be read";
  // Packed rows: two histories in one row are each read alone.
  auto row = torch::cat({seq[1].slice(0, 0, 5), seq[0]}).unsqueeze(0);  // 5 + 8 = 13 wide
  auto packed = bert->forward_packed(row, {{5, 8}});
  EXPECT_LT((packed[0].slice(0, 0, 5) - st[1].slice(0, 0, 5)).abs().max().item<double>(), 1e-5);
  EXPECT_LT((packed[0].slice(0, 5, 13) - st[0]).abs().max().item<double>(), 1e-5);
  {
    torch::GradMode::set_enabled(true);
    bert->train(true);
    auto masked = seq.clone();
    masked[0][3] = Tower::kMaskItem;
    bert->forward_positions(masked, lengths).sum().backward();
    auto g = bert->named_parameters()["mask_token"].grad();
    ASSERT_TRUE(g.defined());
    EXPECT_GT(g.abs().max().item<double>(), 0.0);
    torch::GradMode::set_enabled(false);
  }
  us.norm = "post";
  EXPECT_NE(test::error_of([&] { make_tower(us); }).find("norm pre"), std::string::npos);
}

// The epoch's session-parallel mini-batches: every transition of every history exactly once, a
// reset exactly where a history starts, each lane continuing its history from one mini-batch to
// the next, no row without inputs, and the user order set by the seed.
TEST(SessionParallel, ChunksReadEveryHistoryOnceInLanes) {
  RawLog raw;
  std::mt19937 rng(3);
  for (int u = 0; u < 30; ++u) {
    const int n = u % 7 == 0 ? 1 : 2 + static_cast<int>(rng() % 20);  // some single-item users
    for (int k = 0; k < n; ++k) {
      raw.users.push_back("u" + std::to_string(u));
      raw.items.push_back("i" + std::to_string(rng() % 50));
      raw.time.push_back(k);
    }
  }
  Dataset ds = dataset_from_raw(raw, "lanes");
  const Csr S = sequences_by_user(ds.log, ds.n_users());
  int64_t transitions = 0;
  for (int32_t u = 0; u < S.rows(); ++u) transitions += std::max<int64_t>(0, S.end(u) - S.begin(u) - 1);
  for (int64_t K : {1, 4}) {
    auto chunks = session_chunks(S, 5, K, 11);
    std::map<int32_t, int64_t> next_pos;  // user -> the next position expected of her
    std::vector<int32_t> lane_user(5, -1);
    int64_t seen = 0;
    for (const auto& c : chunks) {
      ASSERT_GT(c.rows(), 0);
      std::vector<bool> row_used(static_cast<size_t>(c.rows()), false);
      for (size_t k = 0; k < c.flat.size(); ++k) {
        const int64_t r = c.flat[k] / K, t = c.flat[k] % K;
        const int32_t u = static_cast<int32_t>(c.user[k]);
        const int64_t lane = c.lanes[r];
        row_used[r] = true;
        const int64_t at = next_pos.count(u) ? next_pos[u] : S.begin(u);
        ASSERT_LT(at + 1, S.end(u));
        EXPECT_EQ(c.seq[c.flat[k]], S.indices[at]);
        EXPECT_EQ(c.next[k], S.indices[at + 1]);
        EXPECT_EQ(c.reset[c.flat[k]] != 0, at == S.begin(u)) << "user " << u << " step " << t;
        if (at != S.begin(u)) {
          EXPECT_EQ(lane_user[lane], u) << "a history moved lanes";
        }
        lane_user[lane] = u;
        next_pos[u] = at + 1;
        ++seen;
      }
      for (bool used : row_used) EXPECT_TRUE(used);
    }
    EXPECT_EQ(seen, transitions);
    for (int32_t u = 0; u < S.rows(); ++u)
      if (S.end(u) - S.begin(u) >= 2) {
        EXPECT_EQ(next_pos[u], S.end(u) - 1) << u;
      }
    EXPECT_EQ(session_chunks(S, 5, K, 11)[0].user, chunks[0].user);
    EXPECT_NE(session_chunks(S, 5, K, 12)[0].user, chunks[0].user);
  }
  EXPECT_THROW(session_chunks(S, 0, 1, 1), Error);
}

// Model files before format 6 were trained with the post blocks and oldest-first positions: their
// configs (which lack the two keys) load as such; newer ones keep what they say.
TEST(SequenceTowers, OldModelFilesKeepTheirTransformerBlocks) {
  Config c5 = Config::from_yaml_text("user_tower:\n  type: transformer\n", "v5");
  upgrade_model_config(c5, 5);
  EXPECT_EQ(c5.str("user_tower.norm"), "post");
  EXPECT_EQ(c5.str("user_tower.positions"), "oldest");
  Config c6 = Config::from_yaml_text("user_tower:\n  type: transformer\n", "v6");
  upgrade_model_config(c6, 6);
  EXPECT_EQ(c6.str("user_tower.norm"), "pre");
  EXPECT_EQ(c6.str("user_tower.positions"), "latest");
  Config c5x = Config::from_yaml_text("user_tower:\n  norm: pre\n", "v5");
  upgrade_model_config(c5x, 5);
  EXPECT_EQ(c5x.str("user_tower.norm"), "pre");
}

TEST(SequenceTowers, BidirectionalHistoryIsRefused) {
  EntityFeatures items, users;
  items.n = 3;
  items.bag_ptr.assign(4, 0);
  users.n = 1, users.bag_vocab = 3, users.bag_ptr = {0, 0};
  TowerSpec is;
  is.type = "id", is.key = "tower", is.dim = 4, is.feats = &items;
  auto it = make_tower(is);
  TowerSpec us;
  us.type = "gru", us.key = "user_tower", us.dim = 4, us.bidirectional = true, us.feats = &users,
  us.item_tower = it.get();
  EXPECT_NE(test::error_of([&] { make_tower(us); }).find("causally"), std::string::npos);
  us.type = "transformer", us.bidirectional = false, us.heads = 3;
  EXPECT_NE(test::error_of([&] { make_tower(us); }).find("must divide"), std::string::npos);
}

// ---- session logs ---------------------------------------------------------------------------

TEST(Sessions, ReaderOrdersByDateThenTimeframeAndKeepsTheUser) {
  test::TempDir t;
  std::string path = t.path() + "/train-item-views.csv";
  {
    std::ofstream o(path);
    o << "sessionId;userId;itemId;timeframe;eventdate\n"
         "1;NA;81766;526309;2016-05-09\n"
         "1;NA;31331;1031018;2016-05-09\n"
         "1;NA;32118;243569;2016-05-09\n"
         "2;7;9654;75848;2016-05-10\n"
         "2;7;33043;0;2016-05-11\n"
         "2;7;77;9000;2016-05-10\n";
  }
  Config c;
  for (const std::string& s :
       std::vector<std::string>{"data.path=" + path, "data.format=sessions", "data.delimiter=;", "data.header=true",
                                "data.session_col=sessionId", "data.session_user_col=userId", "data.item_col=itemId",
                                "data.time_col=timeframe", "data.date_col=eventdate"})
    c.set_override(s);
  Dataset ds = load_data(c, RunOptions{});
  ASSERT_EQ(ds.n_users(), 2);  // sessions
  Csr seq = sequences_by_user(ds.log, ds.n_users());
  auto items_of = [&](int32_t s) {
    std::vector<std::string> v;
    for (int64_t p = seq.begin(s); p < seq.end(s); ++p) v.push_back(ds.items.original(seq.indices[p]));
    return v;
  };
  int32_t s1 = ds.users.find("1"), s2 = ds.users.find("2");
  EXPECT_EQ(items_of(s1), (std::vector<std::string>{"32118", "81766", "31331"}));
  EXPECT_EQ(items_of(s2), (std::vector<std::string>{"77", "9654", "33043"}));  // 05-10 9000 < 05-10 75848 < 05-11 0
  ASSERT_EQ(ds.user_side.features.size(), 2u);
  EXPECT_TRUE(ds.user_side.features[s1].empty());  // NA: anonymous
  EXPECT_EQ(ds.user_side.features[s2], (std::vector<std::string>{"user=7"}));
  // A malformed date names the file and line.
  {
    std::ofstream o(path, std::ios::app);
    o << "3;NA;5;10;2016-13-01\n";
  }
  std::string e = test::error_of([&] { load_data(c, RunOptions{}); });
  EXPECT_NE(e.find("train-item-views.csv:8"), std::string::npos) << e;
  EXPECT_NE(e.find("YYYY-MM-DD"), std::string::npos) << e;
  EXPECT_EQ(parse_date_days("1970-01-02").value_or(-1), 1);
  EXPECT_EQ(parse_date_days("2016-05-09").value_or(-1), 16930);
  EXPECT_FALSE(parse_date_days("2015-02-29"));
}
