// The HTML report (src/report) and its statistics: bootstrap intervals, PCA / t-SNE maps, run and
// log parsing with file:line errors, protocol groups. The full report of real runs is checked by
// tests/report/*.py (HTML parsing, element counts, the browser).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "eval/stats.h"
#include "report/projection.h"
#include "report/report.h"
#include "testutil.h"
#include "util/io.h"

using namespace siamrec;

namespace {
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}
// A ranking run of `n` users with per-user ndcg@10 values drawn around `mean`.
std::string fixture_run(const std::string& protocol, double mean, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.2, 0.2);
  nlohmann::json j;
  std::vector<std::string> users;
  std::vector<double> v;
  double s = 0;
  for (int k = 0; k < n; ++k) {
    users.push_back(std::to_string(k + 1));
    v.push_back(std::clamp(mean + u(rng), 0.0, 1.0));
    s += v.back();
  }
  j["protocol"] = protocol + " | users: " + std::to_string(n);
  j["kind"] = "ranking";
  j["model"] = "fixture";
  j["n_users"] = n;
  j["metrics"] = {{"ndcg@10", s / n}, {"coverage@10", 0.25}};
  j["per_user"] = {{"user", users}, {"ndcg@10", v}};
  std::vector<int64_t> pop = {50, 30, 10, 5, 5}, ex = {n * 6, n * 3, n, 0, 0};
  j["items"] = {{"popularity", pop}, {"exposure", {{"10", ex}}}};
  return j.dump();
}
}  // namespace

TEST(Bootstrap, IntervalHoldsTheMeanShrinksWithNAndIsSeeded) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> d(0.3, 0.1);
  std::vector<double> small(100), big(10000);
  for (auto& x : small) x = d(rng);
  for (auto& x : big) x = d(rng);
  auto a = stats::bootstrap_mean_ci(small, 1000, 0.95, 1);
  auto b = stats::bootstrap_mean_ci(small, 1000, 0.95, 1);
  auto c = stats::bootstrap_mean_ci(big, 1000, 0.95, 1);
  double m = 0;
  for (double x : small) m += x;
  m /= small.size();
  EXPECT_LT(a.lo, m);
  EXPECT_GT(a.hi, m);
  EXPECT_EQ(a.lo, b.lo);  // same seed, same interval
  EXPECT_EQ(a.hi, b.hi);
  // Width ~ 2 * 1.96 * sd / sqrt(n): 0.039 for n = 100, 0.0039 for n = 10,000.
  EXPECT_NEAR(a.hi - a.lo, 0.039, 0.01);
  EXPECT_NEAR(c.hi - c.lo, 0.0039, 0.001);
  auto nan_only = stats::bootstrap_mean_ci({NAN, NAN}, 100, 0.95, 1);
  EXPECT_TRUE(std::isnan(nan_only.lo));
  auto one = stats::bootstrap_mean_ci({0.5, NAN}, 100, 0.95, 1);
  EXPECT_EQ(one.lo, 0.5);
  EXPECT_EQ(one.hi, 0.5);
}

TEST(Projection, PcaFindsTheDirectionOfLargestVariance) {
  // Points along (1, 1, 0) with small noise elsewhere: PC1 carries the spread.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> big(0, 5), small(0, 0.1);
  const int n = 200;
  std::vector<float> x(n * 3);
  std::vector<double> t(n);
  for (int i = 0; i < n; ++i) {
    t[i] = big(rng);
    x[i * 3] = static_cast<float>(t[i] + small(rng));
    x[i * 3 + 1] = static_cast<float>(t[i] + small(rng));
    x[i * 3 + 2] = static_cast<float>(small(rng));
  }
  auto y = report::pca_2d(x.data(), n, 3);
  double corr = 0, syy = 0, stt = 0;
  for (int i = 0; i < n; ++i) corr += y[i * 2] * t[i], syy += y[i * 2] * y[i * 2], stt += t[i] * t[i];
  EXPECT_GT(std::abs(corr) / std::sqrt(syy * stt), 0.999);
  double v2 = 0;
  for (int i = 0; i < n; ++i) v2 += y[i * 2 + 1] * y[i * 2 + 1];
  EXPECT_LT(v2 / n, 0.05);  // the second component holds only the noise
}

TEST(Projection, TsneSeparatesPlantedClustersAndLowersTheDivergence) {
  // Three clusters in 10 dimensions; t-SNE must keep each point nearer its own cluster.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 0.3);
  const int per = 30, n = 3 * per, dim = 10;
  std::vector<float> x(n * dim);
  for (int i = 0; i < n; ++i)
    for (int d = 0; d < dim; ++d) x[i * dim + d] = static_cast<float>((d == i / per ? 4.0 : 0.0) + noise(rng));
  report::TsneOptions o;
  o.iterations = 400;
  o.exaggeration_iters = 100;
  auto y = report::tsne_2d(x.data(), n, dim, o);
  auto y2 = report::tsne_2d(x.data(), n, dim, o);
  EXPECT_EQ(y, y2);  // deterministic
  int correct = 0;
  for (int i = 0; i < n; ++i) {
    int best = -1;
    double bd = 1e300;
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      double d = std::hypot(y[i * 2] - y[j * 2], y[i * 2 + 1] - y[j * 2 + 1]);
      if (d < bd) bd = d, best = j;
    }
    correct += best / per == i / per;
  }
  EXPECT_EQ(correct, n);
  auto start = report::pca_2d(x.data(), n, dim);
  EXPECT_LT(report::tsne_kl(x.data(), n, dim, y, 30), report::tsne_kl(x.data(), n, dim, start, 30));
}

TEST(ReportInputs, MalformedRunsAndLogsAreRefusedWithFileAndLine) {
  test::TempDir dir;
  const std::string bad = dir.file("bad.json", "{\"protocol\": ");
  EXPECT_THROW(
      {
        try {
          report::load_run(bad, "");
        } catch (const DataError& e) {
          EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos);
          throw;
        }
      },
      DataError);
  EXPECT_THROW(report::load_run(dir.file("x.json", "{\"metrics\": {}}"), ""), DataError);
  EXPECT_THROW(report::load_run(dir.path() + "/absent.json", ""), Error);
  const std::string short_vec =
      dir.file("s.json", R"({"protocol":"p","metrics":{},"per_user":{"user":["1","2"],"ndcg@10":[0.5]}})");
  EXPECT_THROW(report::load_run(short_vec, ""), DataError);
  // Hostile item-level data is refused up front, naming the file, never dereferenced.
  for (const char* items :
       {R"("items":{"popularity":"x","exposure":{}})", R"("items":{"popularity":[1,2],"exposure":{"abc":[1,2]}})",
        R"("items":{"popularity":[1,2],"exposure":{"010":[1,2]}})",
        R"("items":{"popularity":[1,2],"exposure":{"10":[1]}})", R"("items":{"popularity":[1,2]})", R"("items":[])"}) {
    const std::string f = dir.file("items.json", std::string(R"({"protocol":"p","metrics":{},)") + items + "}");
    try {
      report::load_run(f, "");
      ADD_FAILURE() << "accepted " << items;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("items.json"), std::string::npos) << e.what();
    }
  }
  // A run whose fields have odd types still renders (escaped), never injecting markup.
  report::Options odd;
  odd.runs = {dir.file("odd.json", R"({"protocol":"p <b>","metrics":{"ndcg@10":"x"},"model":3,"n_users":"<img>"})")};
  const std::string html = report::render_html(odd);
  EXPECT_EQ(html.find("<img>"), std::string::npos);
  EXPECT_EQ(html.find("p <b>"), std::string::npos);
  const std::string log = dir.file("t.jsonl",
                                   "{\"epoch\":1,\"loss\":0.9,\"valid\":{\"ndcg@10\":0.1}}\n"
                                   "{\"epoch\":2,\"loss\":0.8,\"valid\":{\"ndcg@10\":0.2}}\n"
                                   "not json\n");
  try {
    report::load_training_log(log, "");
    FAIL() << "a malformed log line was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:3"), std::string::npos) << e.what();
  }
  for (const char* bad : {"{\"epoch\":1,\"loss\":1,\"collapse\":1,\"phase\":7}\n",
                          "{\"epoch\":1,\"loss\":1,\"phase\":\"warmup\"}\n", "{\"epoch\":1e12,\"loss\":1}\n"}) {
    try {
      report::load_training_log(dir.file("w.jsonl", bad), "");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("w.jsonl:1"), std::string::npos) << e.what();
    }
  }
  // A resumed run that logged epoch 2 twice: the later line wins, in epoch order.
  auto twice = report::load_training_log(dir.file("twice.jsonl",
                                                  "{\"epoch\":1,\"loss\":0.9}\n{\"epoch\":2,\"loss\":0.8}\n"
                                                  "{\"epoch\":2,\"loss\":0.7}\n{\"epoch\":3,\"loss\":0.6}\n"),
                                         "");
  ASSERT_EQ(twice.epochs.size(), 3u);
  EXPECT_EQ(twice.epochs[1].loss, 0.7);
  const std::string nolos = dir.file("n.jsonl", "{\"epoch\":1}\n");
  try {
    report::load_training_log(nolos, "");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("n.jsonl:1: field 'loss'"), std::string::npos) << e.what();
  }
  // Chosen epoch: the end line when present, else the best validated epoch.
  auto t = report::load_training_log(dir.file("ok.jsonl",
                                              "{\"epoch\":1,\"phase\":\"fit\",\"loss\":0.9,\"valid\":{\"m\":0.3}}\n"
                                              "{\"epoch\":2,\"phase\":\"fit\",\"loss\":0.8,\"valid\":{\"m\":0.2}}\n"),
                                     "");
  EXPECT_EQ(t.chosen_epoch, 1);
  EXPECT_EQ(t.valid_metric, "m");
  t = report::load_training_log(dir.file("end.jsonl",
                                         "{\"epoch\":1,\"phase\":\"fit\",\"loss\":0.9}\n"
                                         "{\"event\":\"end\",\"phase\":\"fit\",\"chosen_epoch\":1}\n"
                                         "{\"epoch\":1,\"phase\":\"refit\",\"loss\":0.7,\"collapse\":true}\n"),
                                "");
  EXPECT_EQ(t.chosen_epoch, 1);
  EXPECT_TRUE(t.refit);
  ASSERT_EQ(t.epochs.size(), 2u);
  EXPECT_TRUE(t.epochs[1].collapse);
}

TEST(Report, SectionsTableNumbersGroupsAndNoUrl) {
  test::TempDir dir;
  report::Options o;
  o.runs = {dir.file("a.json", fixture_run("ml-100k | ua", 0.3, 300, 1)),
            dir.file("b.json", fixture_run("ml-100k | ua", 0.35, 300, 2))};
  o.bootstrap = 200;
  std::string html = report::render_html(o);
  for (auto* id : {"protocol", "metrics", "charts", "per-user", "training", "beyond", "embeddings"})
    EXPECT_NE(html.find(fmt::format("<section id=\"{}\">", id)), std::string::npos) << id;
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(count(html, "<section"), 7u);
  // The per-user scatter: one point per user; b beats a on average, marked best.
  EXPECT_EQ(count(html, "class=\"point\""), 300u);
  EXPECT_NE(html.find("data-metric=\"ndcg@10\" data-run=\"b\" class=\"best\""), std::string::npos);
  // The table holds the JSON's numbers.
  auto ja = nlohmann::json::parse(read_file(o.runs[0]));
  EXPECT_NE(html.find(fmt::format(">{:.4f}</span>", ja["metrics"]["ndcg@10"].get<double>())), std::string::npos);
  // Long tail (catalogue + 2 runs) and Lorenz (2 runs) curves; coverage by K (2 runs).
  EXPECT_NE(html.find("Gini"), std::string::npos);
  EXPECT_EQ(html.find("different protocols"), std::string::npos);
  o.max_points = 50;
  html = report::render_html(o);
  EXPECT_EQ(count(html, "class=\"point\""), 50u);
  EXPECT_NE(html.find("50 of 300 users drawn"), std::string::npos);

  // A third run under another protocol: its own group, never compared with the others.
  o.runs.push_back(dir.file("c.json", fixture_run("ml-100k | ua | candidates: 100 uniform", 0.6, 300, 3)));
  html = report::render_html(o);
  EXPECT_NE(html.find("2 different protocols"), std::string::npos);
  EXPECT_NE(html.find("<h3>Group 2: ml-100k | ua | candidates: 100 uniform</h3>"), std::string::npos);
  EXPECT_EQ(count(html, "<span class=\"p\""), 1u);  // b vs a on ndcg@10; c is compared with nobody
}

namespace {
const char* kStudyHeader =
    R"({"study":1,"config":"c.yaml","space":"s.yaml","sampler":"tpe","pruner":"asha","objectives":["ndcg@10","-pop_lift@10"],"seed":1,"validation":"0.1 of each user's train interactions"})";
std::string trial_line(int n, const std::string& status, const std::string& objectives, const std::string& lr,
                       const std::string& loss, const std::string& extra = "") {
  return fmt::format(
      R"({{"trial":{},"seed":1,"params":{{"train.lr":"{}","loss.type":"{}"}},"status":"{}","epochs":10,"seconds":1.5,"metrics":{{}},"objectives":{},"rungs":{{}}{}}})",
      n, lr, loss, status, objectives, extra);
}
}  // namespace

TEST(ReportStudy, LeaderboardBestParetoFrontAndChartsOfATuneStudy) {
  test::TempDir dir;
  std::string text = std::string(kStudyHeader) + "\n";
  text += trial_line(1, "complete", "[0.30,-0.6]", "0.01", "triplet") + "\n";
  text += trial_line(2, "complete", "[0.25,-0.4]", "0.001", "bpr") + "\n";
  text += trial_line(3, "complete", "[0.20,-0.7]", "0.1", "triplet") + "\n";  // dominated by trial 1
  text += trial_line(4, "pruned", "[0.10,-0.5]", "0.003", "bpr") + "\n";
  text += trial_line(5, "failed", "[]", "9", "bpr", R"(,"error":"diverged <b>")") + "\n";
  report::Options o;
  o.studies = {dir.file("s.jsonl", text)};
  const std::string html = report::render_html(o);
  // A study alone: only its section, no run sections.
  EXPECT_EQ(count(html, "<section"), 1u);
  EXPECT_NE(html.find("<section id=\"tuning\">"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("3 complete, 1 pruned, 1 failed"), std::string::npos);
  EXPECT_NE(html.find("pop_lift@10 (lower is better)"), std::string::npos);
  // Best first; trials 1 and 2 are the front; trial 3 is dominated; the minimised metric is shown as measured.
  EXPECT_NE(html.find("<td class=\"text\">complete, best, front</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>2</td><td class=\"text\">complete, front</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>3</td><td class=\"text\">complete</td>"), std::string::npos);
  EXPECT_LT(html.find("<td>1</td>"), html.find("<td>3</td>"));
  EXPECT_NE(html.find(">0.6000</span>"), std::string::npos);
  EXPECT_EQ(html.find(">-0.6000</span>"), std::string::npos);
  EXPECT_NE(html.find("the 2 trial(s) no other trial beats"), std::string::npos);
  // The failed trial is named, its message escaped.
  EXPECT_NE(html.find("trial 5: diverged &lt;b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("diverged <b>"), std::string::npos);
  // Points: by trial 4 (3 complete + 1 pruned), lr 4 (on a log scale), Pareto 3; loss.type as bars.
  EXPECT_EQ(count(html, "class=\"point\""), 11u);
  EXPECT_NE(html.find("log10 train.lr"), std::string::npos);
  EXPECT_NE(html.find("triplet (2)"), std::string::npos);
  EXPECT_NE(html.find("bpr (1)"), std::string::npos);

  // With a run, the run sections come back and the study follows them.
  o.runs = {dir.file("a.json", fixture_run("ml-100k | ua", 0.3, 50, 1))};
  o.bootstrap = 50;
  const std::string both = report::render_html(o);
  EXPECT_EQ(count(both, "<section"), 8u);
  EXPECT_LT(both.find("<section id=\"embeddings\">"), both.find("<section id=\"tuning\">"));
}

TEST(ReportStudy, MalformedStudiesAreRefusedWithFileAndLineAndACutLastLineIsSkipped) {
  test::TempDir dir;
  auto refused = [&](const std::string& name, const std::string& text, const std::string& where) {
    try {
      report::load_study(dir.file(name, text));
      ADD_FAILURE() << "accepted " << name;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    }
  };
  refused("nohead.jsonl", trial_line(1, "complete", "[0.3,-0.5]", "0.01", "bpr") + "\n", "nohead.jsonl:1");
  refused("json.jsonl", std::string(kStudyHeader) + "\n{not json\n", "json.jsonl:2");
  refused("status.jsonl", std::string(kStudyHeader) + "\n" + trial_line(1, "done", "[0.3,-0.5]", "0.01", "bpr") + "\n",
          "status.jsonl:2");
  refused("arity.jsonl", std::string(kStudyHeader) + "\n" + trial_line(1, "complete", "[0.3]", "0.01", "bpr") + "\n",
          "arity.jsonl:2");
  refused("types.jsonl", std::string(kStudyHeader) + "\n" + R"({"trial":"x","status":"complete"})" + "\n",
          "types.jsonl:2");
  refused("empty.jsonl", "", "empty.jsonl");
  EXPECT_THROW(report::load_study(dir.path() + "/absent.jsonl"), Error);
  // The line a running study is writing (no newline yet) is left out, and the report says so.
  const std::string cut =
      dir.file("cut.jsonl", std::string(kStudyHeader) + "\n" + trial_line(1, "complete", "[0.3,-0.5]", "0.01", "bpr") +
                                "\n{\"trial\":2,\"se");
  report::Study s = report::load_study(cut);
  EXPECT_EQ(s.trials.size(), 1u);
  EXPECT_TRUE(s.cut_last_line);
  report::Options o;
  o.studies = {cut};
  EXPECT_NE(report::render_html(o).find("last line was cut"), std::string::npos);
  // Nothing to report at all is a usage error.
  EXPECT_THROW(report::render_html(report::Options{}), Error);
}
