// Every registered part is documented and covered: a name registered without a line in the docs,
// or a ranking metric that breaks the metric contract, fails here. Models, comparators and losses
// are covered by the registry-driven suites (models_contract_test, siamese_gradcheck_test).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "eval/metric.h"
#include "testutil.h"
#include "util/names.h"

using namespace siamrec;

static std::string read_doc(const std::string& rel) {
  std::ifstream f(std::string(SIAMREC_SOURCE_DIR) + "/" + rel);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The docs a user reads (docs/parameters.md is generated from the registries and does not count).
TEST(RegisteredParts, EveryNameIsDocumented) {
  const std::string all = read_doc("README.md") + read_doc("docs/siamese.md") + read_doc("docs/towers.md") +
                          read_doc("docs/metrics.md") + read_doc("docs/architecture.md") + read_doc("docs/serving.md");
  ASSERT_GT(all.size(), 10000u);
  struct Kind {
    const char* kind;
    std::string docs;
    const char* pattern;  // how a name is written there: {} = the name
  };
  const Kind kinds[] = {
      {"dataset", read_doc("README.md"), "`{}`"},
      {"format", read_doc("README.md"), "`{}`"},
      {"metric", read_doc("docs/metrics.md"), "`{}@K`"},
      {"model", all, "`{}`"},
      {"tower", all, "`{}`"},
      {"comparator", all, "`{}`"},
      {"loss", all, "`{}`"},
      {"builder", all, "`{}`"},
      {"sampler", all, "`{}`"},
      {"optimizer", all, "`{}`"},
  };
  for (auto& k : kinds) {
    auto names = registered_names(k.kind);
    EXPECT_FALSE(names.empty()) << k.kind;
    for (auto& n : names) {
      std::string want = k.pattern;
      want.replace(want.find("{}"), 2, n);
      EXPECT_NE(k.docs.find(want), std::string::npos)
          << "registered " << k.kind << " '" << n << "' is not documented (write " << want << ")";
    }
  }
}

// Every ranking metric: in [0, 1], 1 at K = 1 for a list whose one relevant item is first, and
// larger at K = 2 for the relevant items first than for them ranked last.
TEST(RegisteredParts, EveryRankingMetricKeepsTheContract) {
  std::vector<char> best = {1, 1, 0, 0, 0, 0}, worst = {0, 0, 0, 0, 1, 1}, one = {1, 0, 0, 0, 0, 0};
  std::vector<int32_t> items = {10, 11, 12, 13, 14, 15}, worst_items = {12, 13, 14, 15, 10, 11};
  std::vector<std::pair<int32_t, float>> grades = {{10, 5.0f}, {11, 3.0f}}, one_grade = {{10, 4.0f}};
  for (auto* m : ranking_metrics()) {
    UserRanking b{&best, items.data(), 2, &grades}, w{&worst, worst_items.data(), 2, &grades};
    UserRanking o{&one, items.data(), 1, &one_grade};
    double vb = m->at_k(b, 2), vw = m->at_k(w, 2);
    EXPECT_GE(vw, 0.0) << m->name;
    EXPECT_LE(vb, 1.0 + 1e-12) << m->name;
    EXPECT_GT(vb, vw) << m->name;
    EXPECT_NEAR(m->at_k(o, 1), 1.0, 1e-12) << m->name;
    EXPECT_FALSE(m->help.empty()) << m->name;
  }
}
