// siamrec tune (src/tune): search spaces, samplers (TPE beats random on a known optimum), ASHA,
// Pareto fronts, and studies (validation only, crash-safe, resumed to the same trials).
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "eval/stats.h"
#include "report/report.h"
#include "testutil.h"
#include "tasks/pipeline.h"
#include "tune/asha.h"
#include "tune/sampler.h"
#include "tune/space.h"
#include "tune/study.h"
#include "util/io.h"

using namespace siamrec;
using namespace siamrec::tune;

namespace {

std::string error_of(const std::string& yaml) {
  try {
    SearchSpace::from_yaml(yaml, "space.yaml", Config());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// A known optimum: x = 10^-2.5, y = 0.3, c = b.
double objective(const Assignment& a) {
  const double x = std::stod(a.at("train.lr")), y = std::stod(a.at("train.weight_decay"));
  return -std::pow(std::log10(x) + 2.5, 2) - 4 * std::pow(y - 0.3, 2) - (a.at("loss.type") == "bpr" ? 0 : 0.5);
}

double best_of(const std::string& sampler, uint64_t seed, int trials) {
  const Config base;
  SearchSpace s = SearchSpace::from_yaml(
      "train.lr: {loguniform: [0.0001, 1]}\ntrain.weight_decay: {uniform: [0, 1]}\nloss.type: {choice: [triplet, bpr, "
      "bce]}\n",
      "space", base);
  auto smp = make_sampler(sampler, 8);
  std::vector<Observation> done;
  double best = -1e300;
  for (int k = 1; k <= trials; ++k) {
    Assignment a = smp->suggest(s, base, done, seed * 1000 + k);
    const double v = objective(a);
    done.push_back({a, v});
    best = std::max(best, v);
  }
  return best;
}

}  // namespace

TEST(TuneSpace, BadSpacesAreRefusedNamingTheKey) {
  EXPECT_NE(error_of("train.lrr: {uniform: [0, 1]}").find("'train.lrr': not a config key"), std::string::npos);
  EXPECT_NE(error_of("train.lr: {choice: [fast]}").find("'train.lr': value 'fast'"), std::string::npos);
  EXPECT_NE(error_of("train.lr: {uniform: [0.1, 0.1]}").find("'train.lr': empty range"), std::string::npos);
  EXPECT_NE(error_of("train.lr: {normal: [0, 1]}").find("unknown distribution 'normal'"), std::string::npos);
  EXPECT_NE(error_of("train.lr: {loguniform: [0, 1]}").find("positive low bound"), std::string::npos);
  EXPECT_NE(error_of("train.epochs: {int: [1.5, 4]}").find("whole numbers"), std::string::npos);
  EXPECT_NE(error_of("train.epochs: {int: [-5, 4]}").find("'train.epochs': value '-5'"), std::string::npos);
  EXPECT_NE(error_of("split.ratios: {choice: [a]}").find("cannot be tuned"), std::string::npos);
  EXPECT_NE(error_of("loss.margin: {uniform: [0, 1], when: {loss.typ: triplet}}").find("'loss.typ'"),
            std::string::npos);
  EXPECT_NE(error_of("loss.margin: {uniform: [0, 1], when: {loss.type: trplet}}").find("'trplet'"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("expected a map"), std::string::npos);
  EXPECT_NE(error_of("train.epochs: {uniform: [1, 10]}").find("integer key"), std::string::npos);
  EXPECT_NE(error_of("loss.margin: {uniform: [0.1, 1], when: {loss.type: triplet}}\nloss.type: {choice: [triplet, "
                     "bpr]}")
                .find("comes later in the file"),
            std::string::npos);
  EXPECT_EQ(error_of("loss.type: {choice: [triplet, bpr]}\nloss.margin: {uniform: [0.1, 1], when: {loss.type: "
                     "triplet}}\ntower.dim: {int: [8, 64], log: true}"),
            "");
}

TEST(TuneSampler, ConditionalKeysAppearOnlyWhenActiveAndDrawsStayInRange) {
  const Config base;
  SearchSpace s = SearchSpace::from_yaml(
      "loss.type: {choice: [triplet, bpr]}\nloss.margin: {uniform: [0.1, 1], when: {loss.type: triplet}}\n"
      "tower.dim: {int: [8, 64], log: true}\n",
      "space", base);
  auto smp = make_sampler("random", 8);
  int with_margin = 0;
  for (uint64_t k = 0; k < 200; ++k) {
    Assignment a = smp->suggest(s, base, {}, k);
    EXPECT_EQ(a.count("loss.margin") > 0, a.at("loss.type") == "triplet");
    with_margin += a.count("loss.margin") > 0;
    const int dim = std::stoi(a.at("tower.dim"));
    EXPECT_GE(dim, 8);
    EXPECT_LE(dim, 64);
  }
  EXPECT_GT(with_margin, 60);
  EXPECT_LT(with_margin, 140);
  EXPECT_EQ(smp->suggest(s, base, {}, 7), smp->suggest(s, base, {}, 7));  // seeded
}

TEST(TuneSampler, TpeBeatsRandomAtEqualTrialsOverSeeds) {
  int wins = 0;
  double sum_tpe = 0, sum_random = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const double t = best_of("tpe", seed, 40), r = best_of("random", seed, 40);
    wins += t > r;
    sum_tpe += t, sum_random += r;
  }
  EXPECT_GE(wins, 7) << "TPE best " << sum_tpe / 10 << ", random best " << sum_random / 10;
  EXPECT_GT(sum_tpe, sum_random);
}

TEST(TuneAsha, PrunesAPlantedBadTrialAndKeepsTheBest) {
  Asha a(2, 3);
  EXPECT_EQ(a.rung_of(2), 0);
  EXPECT_EQ(a.rung_of(6), 1);
  EXPECT_EQ(a.rung_of(18), 2);
  EXPECT_EQ(a.rung_of(3), -1);
  EXPECT_TRUE(a.report(1, 0.0));   // not a rung
  EXPECT_TRUE(a.report(2, 0.30));  // fewer than eta values at the rung: nothing to compare
  EXPECT_TRUE(a.report(2, 0.32));
  EXPECT_FALSE(a.report(2, 0.05));  // the planted bad trial: not in the best third
  EXPECT_TRUE(a.report(2, 0.40));   // the best so far goes on
  EXPECT_FALSE(a.report(2, 0.31));
}

TEST(TunePareto, NonDominatedPoints) {
  auto f = stats::pareto_front({{0.30, -1.0}, {0.28, -0.5}, {0.25, -0.6}, {0.31, -1.2}, {0.30, -1.0}});
  EXPECT_EQ(f, (std::vector<int>{0, 1, 3, 4}));  // (0.25, -0.6) is dominated by (0.28, -0.5)
}

namespace {
// A synthetic log of two planted user groups, a config over it with `tune_yaml` as its tune
// section, and a search space of lr and dim; files in t.
struct StudyFiles {
  std::string cfg, space;
};
StudyFiles study_files(test::TempDir& t, const std::string& tune_yaml) {
  std::string rows;
  for (int u = 0; u < 120; ++u)
    for (int k = 0; k < 10; ++k) rows += fmt::format("{}\t{}\n", u, (u % 2) * 30 + (u * 7 + k * 3) % 30);
  const std::string data = t.file("log.tsv", rows);
  const std::string cfg = t.file("c.yaml", fmt::format(R"(data: {{path: {}}}
split: {{type: ratio, ratios: [0.8, 0, 0.2]}}
model: {{type: siamese}}
tower: {{type: id, dim: 8}}
train: {{engine: fused, update: example, optimizer: adagrad, epochs: 4, valid_share: 0.2, seed: 3}}
tune: {}
)",
                                                       data, tune_yaml));
  return {cfg, t.file("s.yaml", "train.lr: {loguniform: [0.005, 0.5]}\ntower.dim: {choice: [4, 8, 16]}\n")};
}
// Runs o with one more override and expects a ConfigError whose message holds `what`.
void expect_refused(StudyOptions o, const std::string& name, const std::string& set, const std::string& what) {
  o.study = o.study.substr(0, o.study.rfind('/') + 1) + name;
  o.sets = {set};
  try {
    run_study(o);
    ADD_FAILURE() << set << " was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(TuneStudy, ValidationOnlyResumedStudiesDrawTheSameTrialsAndBestConfigIsWritten) {
  test::TempDir t;
  const auto [cfg, space] = study_files(t, "{objectives: [ndcg@10, -pop_lift@10], startup: 2}");
  StudyOptions o;
  o.config = cfg, o.space = space, o.trials = 4, o.study = t.path() + "/full.jsonl", o.out = t.path() + "/best.yaml";
  StudyResult full = run_study(o);
  ASSERT_EQ(full.trials.size(), 4u);
  for (auto& tr : full.trials) {
    EXPECT_EQ(tr.status, "complete") << tr.error;
    EXPECT_EQ(tr.objectives.size(), 2u);
    EXPECT_EQ(tr.objectives[1], -tr.metrics.at("pop_lift@10"));  // minimised: negated
  }
  EXPECT_NE(full.validation.find("0.2 of each user's train interactions"), std::string::npos) << full.validation;
  EXPECT_FALSE(full.pareto.empty());
  ASSERT_GE(full.best, 0);
  const std::string best = read_file(o.out);
  EXPECT_NE(best.find("# Tuned by `siamrec tune`"), std::string::npos);
  EXPECT_NE(best.find(fmt::format("lr: {}", full.trials[full.best].params.at("train.lr"))), std::string::npos) << best;
  EXPECT_EQ(read_file(o.study).find("\"test\""), std::string::npos);
  // The report reads the study as tune wrote it: the same trials, objectives and front.
  report::Study rs = report::load_study(o.study);
  ASSERT_EQ(rs.trials.size(), 4u);
  EXPECT_EQ(rs.objectives, (std::vector<std::string>{"ndcg@10", "-pop_lift@10"}));
  for (size_t k = 0; k < 4; ++k) EXPECT_EQ(rs.trials[k].objectives, full.trials[k].objectives) << k;
  report::Options ro;
  ro.studies = {o.study};
  const std::string html = report::render_html(ro);
  size_t fronts = 0;
  for (size_t p = html.find(", front</td>"); p != std::string::npos; p = html.find(", front</td>", p + 1)) ++fronts;
  EXPECT_EQ(fronts, full.pareto.size());

  // Interrupted after 2 trials, then resumed: the same 4 trials.
  StudyOptions part = o;
  part.study = t.path() + "/part.jsonl";
  part.trials = 2;
  run_study(part);
  EXPECT_THROW(run_study(part), ConfigError);  // the file exists: --resume or a new file
  part.trials = 4;
  part.resume = true;
  StudyResult resumed = run_study(part);
  ASSERT_EQ(resumed.trials.size(), 4u);
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(resumed.trials[k].params, full.trials[k].params) << k;
    EXPECT_EQ(resumed.trials[k].objectives, full.trials[k].objectives) << k;
  }
  // Another space cannot resume this study.
  StudyOptions other = part;
  other.space = t.file("s2.yaml", "train.lr: {loguniform: [0.001, 0.5]}\n");
  EXPECT_THROW(run_study(other), ConfigError);

  // An explicit sampled validation protocol ranks the trials on it: the same trial scores higher
  // among 5 sampled unseen items than over every item, and the study says which it used.
  StudyOptions sampled = o;
  sampled.study = t.path() + "/sampled.jsonl";
  sampled.trials = 1;
  sampled.out = "";
  sampled.sets = {"train.valid_candidates=uniform:5"};
  StudyResult sr = run_study(sampled);
  ASSERT_EQ(sr.trials.size(), 1u);
  EXPECT_EQ(sr.trials[0].params, full.trials[0].params);
  EXPECT_NE(sr.validation.find("candidates uniform:5"), std::string::npos) << sr.validation;
  EXPECT_GT(sr.trials[0].metrics.at("ndcg@10"), full.trials[0].metrics.at("ndcg@10"));
  // A test protocol of candidate lists (5 negatives each) with train.valid_candidates auto: the
  // trials validate, and are scored, as `siamrec train` validates it, on 5 sampled unseen items,
  // never on the lists, and never by full ranking while early stopping reads the sampled form.
  StudyOptions listed = sampled;
  listed.study = t.path() + "/listed.jsonl";
  listed.sets = {"eval.candidates=file:" + t.file("cands.tsv", "0\t1\t2,3,4,5,6\n")};
  StudyResult lr = run_study(listed);
  ASSERT_EQ(lr.trials.size(), 1u);
  EXPECT_NE(lr.validation.find("candidates uniform:5 (the test protocol's sampled form"), std::string::npos)
      << lr.validation;
  EXPECT_EQ(lr.trials[0].metrics.at("ndcg@10"), sr.trials[0].metrics.at("ndcg@10"));
  EXPECT_EQ(lr.trials[0].epochs, sr.trials[0].epochs);
  // No validation data: refused, the test part is never used instead.
  expect_refused(o, "none.jsonl", "train.valid_share=0", "never evaluates on the test part");
}

TEST(TuneStudy, ParallelTrialsInProcessesAreReproducibleAndResumeOutOfOrder) {
  test::TempDir t;
  const auto [cfg, space] = study_files(t, "{startup: 2, pruner: asha, asha_min_epochs: 1, asha_eta: 2}");
  // Sequential, one thread: the reference for what a trial computes.
  StudyOptions seq;
  seq.config = cfg, seq.space = space, seq.trials = 2, seq.study = t.path() + "/seq.jsonl", seq.threads = 1;
  StudyResult s = run_study(seq);
  // Two at a time on two threads: each trial in its own process with one thread.
  StudyOptions par = seq;
  par.sets = {"tune.parallel=2"};
  par.threads = 2, par.trials = 5, par.study = t.path() + "/par.jsonl";
  StudyResult full = run_study(par);
  ASSERT_EQ(full.trials.size(), 5u);
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(full.trials[k].trial, static_cast<int>(k) + 1);
    EXPECT_NE(full.trials[k].status, "failed") << full.trials[k].error;
  }
  // The first batch draws as the first sequential trials do (random start-up), and a forked trial
  // computes exactly what the same trial computes in the process.
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(full.trials[k].params, s.trials[k].params) << k;
    EXPECT_EQ(full.trials[k].objectives, s.trials[k].objectives) << k;
    EXPECT_EQ(full.trials[k].epochs, s.trials[k].epochs) << k;
  }
  // Killed while trial 3 ran and trial 4 had ended: the file holds 1, 2, 4. Resumed, trial 3 is run
  // again and is the same as in the uninterrupted study: it must not learn from trial 4, its sibling.
  // Trial 4 is planted as the best there could be (for TPE and at every ASHA rung), so seeing it
  // would move trial 3's draw and prune it.
  std::ifstream in(par.study);
  std::string line, kept;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n <= 3) kept += line + "\n";  // the header, trials 1 and 2
  }
  kept += R"({"trial":4,"seed":1,"params":{"train.lr":"0.0051","tower.dim":"4"},"status":"complete","epochs":4,)"
          R"("seconds":1,"metrics":{"ndcg@10":0.99},"objectives":[0.99],"rungs":{"1":0.99,"2":0.99,"4":0.99}})"
          "\n";
  StudyOptions res = par;
  res.study = t.file("res.jsonl", kept);
  res.resume = true;
  StudyResult resumed = run_study(res);
  ASSERT_EQ(resumed.trials.size(), 5u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(resumed.trials[k].trial, full.trials[k].trial);
    EXPECT_EQ(resumed.trials[k].params, full.trials[k].params) << k;
    EXPECT_EQ(resumed.trials[k].objectives, full.trials[k].objectives) << k;
    EXPECT_EQ(resumed.trials[k].status, full.trials[k].status) << k;
  }
  EXPECT_EQ(resumed.trials[3].params.at("train.lr"), "0.0051");  // the recorded trial 4 is kept, not re-run
  // More trials at once than threads: refused, naming the key.
  expect_refused(par, "over.jsonl", "tune.parallel=3", "tune.parallel 3");
}

// A retrieval model (sampler.builder label) is tuned on its trainer's retrieval validation among
// held-out labelled training images: the objective is recall@1 at the best epoch, and the split's
// held-out (test) images are never read. Replacing every one of them with noise changes nothing.
TEST(TuneStudy, RetrievalModelsAreTunedOnHeldOutTrainingItemsOnly) {
  auto write_images = [](test::TempDir& t) {
    std::ofstream csv(t.path() + "/images.csv");
    csv << "item_id,path,label\n";
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> noise(0, 130);
    for (int i = 0; i < 150; ++i) {
      const int cls = i % 3;
      std::vector<uint8_t> px(64);
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          const bool on = cls == 0 ? (y == 1 || y == 2) : cls == 1 ? (y == 5 || y == 6) : (x == 3 || x == 4);
          px[static_cast<size_t>(y * 8 + x)] = static_cast<uint8_t>((on ? 200 : 0) + noise(rng));
        }
      const std::string name = fmt::format("im{}.png", i);
      EXPECT_TRUE(stbi_write_png((t.path() + "/" + name).c_str(), 8, 8, 1, px.data(), 8));
      csv << "p" << i << "," << name << ",c" << cls << "\n";
    }
    return t.path() + "/images.csv";
  };
  test::TempDir t;
  const std::string table = write_images(t);
  const std::string cfg =
      t.file("c.yaml", fmt::format(R"(data: {{content_table: {}, content: image, image_size: 8, image_channels: 1}}
split: {{type: cold_items, ratios: [0.5, 0, 0.5]}}
model: {{type: siamese, task: retrieval}}
tower: {{type: image_cnn, hidden: [4, 8], dim: 8}}
comparator: {{type: euclidean}}
loss: {{type: triplet}}
sampler: {{builder: label, pairs_per_item: 4, type: in_batch, batch_mining: semi_hard}}
train: {{batch_size: 16, epochs: 2, lr: 0.01, valid_share: 0.3, seed: 3}}
eval: {{k: [1, 5]}}
tune: {{startup: 1}}
)",
                                   table));
  const std::string space = t.file("s.yaml", "train.lr: {loguniform: [0.002, 0.01]}\ntower.dim: {choice: [2, 4]}\n");
  StudyOptions o;
  o.config = cfg, o.space = space, o.trials = 2, o.threads = 1, o.study = t.path() + "/r.jsonl";
  o.out = t.path() + "/best.yaml";
  StudyResult r = run_study(o);
  ASSERT_EQ(r.trials.size(), 2u);
  EXPECT_EQ(r.objectives, (std::vector<std::string>{"recall@1"}));
  for (auto& tr : r.trials) {
    ASSERT_EQ(tr.status, "complete") << tr.error;
    ASSERT_EQ(tr.objectives.size(), 1u);
    EXPECT_EQ(tr.objectives[0], tr.metrics.at("recall@1"));
    EXPECT_GT(tr.objectives[0], 0.0);
    EXPECT_LE(tr.objectives[0], 1.0);
    EXPECT_EQ(tr.epochs, 2);
  }
  EXPECT_NE(r.validation.find("held out by the trainer"), std::string::npos) << r.validation;
  EXPECT_NE(r.validation.find("held-out items (75) are never read"), std::string::npos) << r.validation;
  EXPECT_NE(read_file(o.out).find("recall@1"), std::string::npos);

  // The split's held-out images replaced by noise: the same trials, to the bit.
  RunOptions ro;
  ro.threads = 1;
  Prepared p = prepare(load_config(cfg, {}), ro);
  ASSERT_EQ(p.split.heldout_items.size(), 75u);
  std::mt19937 rng(9);
  // Overwrites with noise the images of the split's held-out items (held) or of the others.
  auto noise_over = [&](bool held) {
    for (int i = 0; i < 150; ++i) {
      const int32_t d = p.ds.items.find("p" + std::to_string(i));
      const auto& h = p.split.heldout_items;
      if ((std::find(h.begin(), h.end(), d) != h.end()) != held) continue;
      std::vector<uint8_t> px(64);
      for (auto& v : px) v = static_cast<uint8_t>(rng() % 256);
      ASSERT_TRUE(stbi_write_png((t.path() + "/im" + std::to_string(i) + ".png").c_str(), 8, 8, 1, px.data(), 8));
    }
  };
  noise_over(true);
  StudyOptions o2 = o;
  o2.study = t.path() + "/r2.jsonl", o2.out = "";
  StudyResult r2 = run_study(o2);
  ASSERT_EQ(r2.trials.size(), 2u);
  for (size_t k = 0; k < 2; ++k) EXPECT_EQ(r2.trials[k].objectives, r.trials[k].objectives) << k;
  // ... while the images the trainer validates on do change it.
  noise_over(false);
  StudyOptions o3 = o2;
  o3.study = t.path() + "/r3.jsonl";
  StudyResult r3 = run_study(o3);
  EXPECT_NE(r3.trials[0].objectives, r.trials[0].objectives);

  // No held-out training items, or a ranking objective: refused.
  expect_refused(o, "n1.jsonl", "train.valid_share=0", "never evaluates on the test items");
  expect_refused(o, "n2.jsonl", "tune.objectives=ndcg@10", "retrieval Recall@K");
}

// Every example config and search space the docs point to still reads against the parameter table
// (a renamed key or a narrowed range would otherwise break them silently: no test trains them all).
TEST(ExampleFiles, ConfigsAndSearchSpacesRead) {
  namespace fs = std::filesystem;
  const fs::path root = SIAMREC_SOURCE_DIR;
  int configs = 0, spaces = 0;
  for (const auto& e : fs::directory_iterator(root / "examples/configs"))
    if (e.path().extension() == ".yaml") {
      EXPECT_NO_THROW(Config::from_yaml_file(e.path().string())) << e.path();
      ++configs;
    }
  const Config base = Config::from_yaml_text("", "defaults");
  for (const auto& e : fs::directory_iterator(root / "examples/tuning"))
    if (e.path().extension() == ".yaml") {
      EXPECT_NO_THROW(SearchSpace::from_yaml(read_file(e.path().string()), e.path().string(), base)) << e.path();
      ++spaces;
    }
  EXPECT_GE(configs, 20);
  EXPECT_GE(spaces, 5);
}
