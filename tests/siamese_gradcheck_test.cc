// Finite-difference gradient checks for every comparator and loss (double precision).
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include "comparators/comparator.h"
#include "comparators/gathered.h"
#include "losses/loss.h"

using namespace siamrec;

// Checks d f / d x for every entry of x by central differences.
template <typename F>
static void check_grad(F f, torch::Tensor x, const std::string& what, double tol = 1e-5) {
  x = x.detach().clone().set_requires_grad(true);
  auto y = f(x);
  y.backward();
  auto g = x.grad().clone();
  auto xd = x.detach();
  const double eps = 1e-6;
  for (int64_t k = 0; k < xd.numel(); ++k) {
    double orig = xd.view(-1)[k].item<double>();
    xd.view(-1)[k] = orig + eps;
    double up = f(xd).template item<double>();
    xd.view(-1)[k] = orig - eps;
    double dn = f(xd).template item<double>();
    xd.view(-1)[k] = orig;
    double num = (up - dn) / (2 * eps), ana = g.view(-1)[k].item<double>();
    ASSERT_NEAR(ana, num, tol * std::max(1.0, std::abs(num))) << what << " entry " << k;
  }
}

class ComparatorGrad : public ::testing::TestWithParam<std::string> {};

TEST_P(ComparatorGrad, FiniteDifferences) {
  torch::manual_seed(3);
  ComparatorSpec s;
  s.type = GetParam();
  s.dim = 4;
  auto c = make_comparator(s);
  c->to(torch::kFloat64);
  auto a = torch::randn({3, 4}, torch::kFloat64), b = torch::randn({3, 4}, torch::kFloat64);
  auto w = torch::randn({3}, torch::kFloat64);
  check_grad([&](const torch::Tensor& x) { return (c->similarity(x, b) * w).sum(); }, a,
             GetParam() + " similarity d/da");
  check_grad([&](const torch::Tensor& x) { return (c->similarity(a, x) * w).sum(); }, b,
             GetParam() + " similarity d/db");
  check_grad([&](const torch::Tensor& x) { return (c->distance(x, b) * w).sum(); }, a, GetParam() + " distance d/da");
  // Broadcast form used for negatives: [B,1,d] vs [B,k,d]
  auto n = torch::randn({3, 2, 4}, torch::kFloat64);
  check_grad([&](const torch::Tensor& x) { return c->similarity(a.unsqueeze(1), x).sum(); }, n,
             GetParam() + " broadcast");
  // Matrix forms agree with pairwise evaluation.
  auto m = c->similarity_matrix(a, b);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(m[i][j].item<double>(), c->similarity(a[i], b[j]).item<double>(), 1e-9) << GetParam();
  auto dm = c->distance_matrix(a, b);
  EXPECT_NEAR(dm[1][2].item<double>(), c->distance(a[1], b[2]).item<double>(), 1e-9) << GetParam();
  if (c->is_metric()) {
    EXPECT_NEAR(c->distance(a, a).abs().max().item<double>(), 0.0, 1e-5) << GetParam();
    EXPECT_GE(c->distance(a, b).min().item<double>(), 0.0) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(All, ComparatorGrad, ::testing::ValuesIn(ComparatorRegistry::get().names()),
                         [](const auto& i) { return i.param; });

class LossGrad : public ::testing::TestWithParam<std::string> {};

TEST_P(LossGrad, FiniteDifferencesAndZeroWhenSeparated) {
  torch::manual_seed(5);
  LossSpec s;
  s.type = GetParam();
  s.margin = 0.5;
  auto loss = make_loss(s);
  LossInputs in;
  in.n_items = 100;
  auto pos = torch::randn({4}, torch::kFloat64), neg = torch::randn({4, 3}, torch::kFloat64);
  auto nn = torch::randn({4}, torch::kFloat64);
  in.labels = torch::randn({4}, torch::kFloat64);
  auto with = [&](torch::Tensor p, torch::Tensor n, torch::Tensor q) {
    LossInputs x = in;
    x.pos = p;
    x.neg = n;
    x.neg_neg = q;
    return loss->forward(x);
  };
  check_grad([&](const torch::Tensor& x) { return with(x, neg, nn); }, pos, GetParam() + " d/dpos", 1e-4);
  if (loss->min_negatives() > 0)
    check_grad([&](const torch::Tensor& x) { return with(pos, x, nn); }, neg, GetParam() + " d/dneg", 1e-4);
  // A well-separated batch costs less than a confused one.
  torch::Tensor good_pos, good_neg, bad_pos, bad_neg;
  if (loss->wants_distance()) {
    good_pos = torch::zeros({4}, torch::kFloat64), good_neg = torch::full({4, 3}, 10.0, torch::kFloat64);
    bad_pos = torch::full({4}, 10.0, torch::kFloat64), bad_neg = torch::zeros({4, 3}, torch::kFloat64);
  } else {
    good_pos = torch::full({4}, 1.0, torch::kFloat64), good_neg = torch::full({4, 3}, -1.0, torch::kFloat64);
    bad_pos = torch::full({4}, -1.0, torch::kFloat64), bad_neg = torch::full({4, 3}, 1.0, torch::kFloat64);
  }
  if (!loss->uses_labels()) {
    auto far = torch::full({4}, 10.0, torch::kFloat64), near = torch::zeros({4}, torch::kFloat64);
    EXPECT_LT(with(good_pos, good_neg, far).item<double>(), with(bad_pos, bad_neg, near).item<double>()) << GetParam();
  } else {
    EXPECT_NEAR(with(in.labels, neg, nn).item<double>(), 0.0, 1e-12);
  }
}

INSTANTIATE_TEST_SUITE_P(All, LossGrad, ::testing::ValuesIn(LossRegistry::get().names()),
                         [](const auto& i) { return i.param; });

TEST(Losses, TripletValueByHand) {
  LossSpec s;
  s.type = "triplet";  // default margin 1.0 (the survey's alpha)
  auto loss = make_loss(s);
  LossInputs in;
  in.pos = torch::tensor({0.5, 2.0}, torch::kFloat64);
  in.neg = torch::tensor({{1.0}, {4.0}}, torch::kFloat64);
  // max(0, 0.5 - 1 + 1) = 0.5; max(0, 2 - 4 + 1) = 0 -> mean 0.25
  EXPECT_NEAR(loss->forward(in).item<double>(), 0.25, 1e-12);
  s.type = "contrastive";
  auto c = make_loss(s);
  // pairs: (d=0.5,y=1) -> 0.25; (d=1,y=0) -> max(0,1-1)^2 = 0; (d=2,y=1) -> 4; (d=4,y=0) -> 0 => mean 4.25/4
  EXPECT_NEAR(c->forward(in).item<double>(), 4.25 / 4, 1e-12);
  s.type = "bpr";
  auto b = make_loss(s);
  in.pos = torch::tensor({1.0}, torch::kFloat64);
  in.neg = torch::tensor({{0.0}}, torch::kFloat64);
  EXPECT_NEAR(b->forward(in).item<double>(), std::log(1 + std::exp(-1.0)), 1e-12);
}

// GRU4Rec's losses, by hand: negatives weighted by their softmax share; masked negatives get none
// and an anchor without a valid negative is left out of the mean.
TEST(Losses, Gru4RecMaxLossesByHand) {
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  const double w0 = 1 / (1 + std::exp(2.0)), w1 = 1 - w0;  // softmax of the negatives (0, 2)
  LossSpec s;
  s.type = "bpr_max";
  s.bpreg = 0.5;
  auto bm = make_loss(s);
  s.type = "top1_max";
  auto tm = make_loss(s);
  LossInputs in;
  in.pos = torch::tensor({1.0}, torch::kFloat64);
  in.neg = torch::tensor({{0.0, 2.0}}, torch::kFloat64);
  EXPECT_NEAR(bm->forward(in).item<double>(), -std::log(w0 * sig(1) + w1 * sig(-1)) + 0.5 * (w1 * 4), 1e-12);
  EXPECT_NEAR(tm->forward(in).item<double>(), w0 * (sig(-1) + sig(0)) + w1 * (sig(1) + sig(4)), 1e-12);
  // Row 0 keeps only its first negative; row 1 has none (left out).
  in.pos = torch::tensor({1.0, 3.0}, torch::kFloat64);
  in.neg = torch::tensor({{0.0, 2.0}, {5.0, 5.0}}, torch::kFloat64);
  in.neg_mask = torch::tensor({{true, false}, {false, false}});
  EXPECT_NEAR(bm->forward(in).item<double>(), -std::log(sig(1)), 1e-12);
  EXPECT_NEAR(tm->forward(in).item<double>(), sig(-1) + sig(0), 1e-12);
  // Gradients stay finite through the masked row (its softmax of -inf is NaN before zeroing).
  auto neg = in.neg.clone().requires_grad_(true);
  LossInputs g = in;
  g.neg = neg;
  bm->forward(g).backward();
  EXPECT_TRUE(torch::isfinite(neg.grad()).all().item<bool>());
  EXPECT_EQ(neg.grad()[1].abs().sum().item<double>(), 0.0);
}

// Scores read in place from a table (comparators/gathered.h) are the comparator's scores of the
// gathered rows, in value and in gradient (anchors and table), for dot and cosine: with rows drawn
// twice by one anchor and by several, a zero anchor and a zero row (cosine's clamped norms), and
// zero upstream gradients; an id outside the table is refused.
TEST(Comparators, GatheredSimilarityIsTheComparatorOnGatheredRows) {
  torch::manual_seed(3);
  const int64_t n = 9, N = 13, k = 6, d = 20;
  auto a0 = torch::randn({n, d});
  a0[4].zero_();
  auto t0 = torch::randn({N, d});
  t0[7].zero_();
  auto ids = torch::randint(0, N, {n, k}, torch::kInt64);
  ids[0][1] = ids[0][2] = 7;  // a zero row, twice in one anchor's list
  ids[1][0] = 3, ids[2][0] = 3;
  auto up = torch::randn({n, k});
  up[5].zero_();
  for (const char* name : {"dot", "cosine"}) {
    auto comp = make_comparator(ComparatorSpec{name});
    const bool cosine = std::string(name) == "cosine";
    auto a1 = a0.clone().requires_grad_(true), t1 = t0.clone().requires_grad_(true);
    auto ref = comp->similarity(a1.unsqueeze(1), t1.index_select(0, ids.reshape({-1})).view({n, k, d}));
    (ref * up).sum().backward();
    auto a2 = a0.clone().requires_grad_(true), t2 = t0.clone().requires_grad_(true);
    auto own = gathered_similarity(a2, t2, ids, cosine);
    (own * up).sum().backward();
    // Relative: a zero vector's cosine gradient is scaled by 1 / 1e-8 (the clamped norm) in both.
    auto rel = [](const torch::Tensor& x, const torch::Tensor& y) {
      return ((x - y).abs() / (y.abs() + 1)).max().item<double>();
    };
    EXPECT_LT(rel(own, ref), 1e-5) << name;
    EXPECT_LT(rel(a2.grad(), a1.grad()), 1e-5) << name;
    EXPECT_LT(rel(t2.grad(), t1.grad()), 1e-5) << name;
    EXPECT_GT(t1.grad().abs().max().item<double>(), 0.1) << name;  // gradients that could differ
    EXPECT_TRUE(torch::isfinite(t2.grad()).all().item<bool>()) << name;
  }
  auto bad = ids.clone();
  bad[3][3] = N;
  EXPECT_THROW(gathered_similarity(a0, t0, bad, false), std::exception);
}
