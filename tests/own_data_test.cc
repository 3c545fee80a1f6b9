// Own data and own protocols: split files (split.type files), candidate files (eval.candidates
// file:PATH) and data.order file, against the built-in splits they must reproduce exactly.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/config.h"
#include "data/readers.h"
#include "testutil.h"

using namespace siamrec;

namespace {

Config files_config(const std::string& model, const std::string& train, const std::string& valid,
                    const std::string& test) {
  Config c;
  c.set("split.type", "files", "t");
  c.set("split.train_file", train, "t");
  if (!valid.empty()) c.set("split.valid_file", valid, "t");
  c.set("split.test_file", test, "t");
  c.set("eval.k", "10", "t");
  c.set("model.type", model, "t");
  return c;
}

EvalResult run(const Config& c, const std::string& dir) {
  RunOptions ro{dir, false, 2};
  Prepared p = prepare(c, ro);
  return evaluate_model(fit_model(p, c, ro), p, c, ro);
}

}  // namespace

TEST(OwnData, UaGivenAsFilesGivesExactlyTheUaNumbers) {
  SIAMREC_NEED_DATA(dir);
  const std::string d = dir + "/ml-100k/";
  for (std::string model : {"pop", "itemknn"}) {
    Config fixed;
    fixed.set("data.dataset", "ml-100k", "t");
    fixed.set("split.type", "fixed", "t");
    fixed.set("split.name", "ua", "t");
    fixed.set("eval.k", "10", "t");
    fixed.set("model.type", model, "t");
    Config files = files_config(model, d + "ua.base", "", d + "ua.test");
    files.set("data.rating_col", "2", "t");
    EvalResult a = run(fixed, dir), b = run(files, dir);
    for (const char* m : {"hr@10", "ndcg@10", "recall@10", "mrr@10", "map@10", "auc"})
      EXPECT_EQ(a.get(m), b.get(m)) << model << " " << m;
    EXPECT_EQ(b.users.size(), 943u);
    // The protocol names the files and the two test interactions whose items ua.base lacks.
    EXPECT_NE(b.protocol.find("split: files train 'ua.base' / test 'ua.test'"), std::string::npos) << b.protocol;
    EXPECT_NE(b.protocol.find("2 test interactions with items absent from training"), std::string::npos) << b.protocol;
  }
}

TEST(OwnData, NcfCandidatesGivenAsAFileGiveExactlyTheFixedNumbers) {
  SIAMREC_NEED_DATA(dir);
  // The NCF file speaks the remapped ids of user_list / item_list; the dataset MovieLens ids: the
  // candidate file a user would write for ml-1m-ncf is the NCF file in MovieLens ids.
  const std::string lg = dir + "/ml-1m-implicit-lightgcn/", nd = dir + "/ncf-ml-1m/";
  auto ulist = read_remap_list(lg + "user_list.txt"), ilist = read_remap_list(lg + "item_list.txt");
  test::TempDir tmp;
  std::ifstream in(nd + "ml-1m.test.negative");
  std::ostringstream ncf, posnegs;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string pair, x;
    f >> pair;
    auto comma = pair.find(',');
    const std::string u = ulist[std::stoll(pair.substr(1, comma - 1))];
    const std::string i = ilist[std::stoll(pair.substr(comma + 1, pair.size() - comma - 2))];
    ncf << "(" << u << "," << i << ")";
    posnegs << u << "\t" << i << "\t";
    for (bool first = true; f >> x; first = false) {
      ncf << "\t" << ilist[std::stoll(x)];
      posnegs << (first ? "" : ",") << ilist[std::stoll(x)];
    }
    ncf << "\n", posnegs << "\n";
  }
  const std::string f1 = tmp.file("ncf.negative", ncf.str()), f2 = tmp.file("posnegs.tsv", posnegs.str());
  Config c;
  c.set("data.dataset", "ml-1m-ncf", "t");
  c.set("split.type", "fixed", "t");
  c.set("split.name", "ncf", "t");
  c.set("eval.k", "10", "t");
  c.set("model.type", "pop", "t");
  c.set("eval.candidates", "fixed", "t");
  RunOptions ro{dir, false, 2};
  Prepared p = prepare(c, ro);
  TrainedModel m = fit_model(p, c, ro);
  EvalResult fixed = evaluate_model(m, p, c, ro);
  EXPECT_NEAR(fixed.get("hr@10"), 0.4520, 5e-5);
  for (const std::string& f : {f1, f2}) {
    c.set("eval.candidates", "file:" + f, "t");
    EvalResult r = evaluate_model(m, p, c, ro);
    EXPECT_EQ(r.get("hr@10"), fixed.get("hr@10")) << f;
    EXPECT_EQ(r.get("ndcg@10"), fixed.get("ndcg@10")) << f;
    EXPECT_NE(r.protocol.find("99 listed negatives per user, 6040 users"), std::string::npos) << r.protocol;
    EXPECT_EQ(r.users.size(), 6040u);
  }
}

// A tiny own log: users a, b, c; items x1..x6.
static std::string small_log() { return "a\tx1\na\tx2\na\tx3\nb\tx2\nb\tx4\nc\tx5\nc\tx1\n"; }

TEST(OwnData, SplitFilesCountUsersWithoutTrainingAndNameMissingFiles) {
  test::TempDir tmp;
  const std::string train = tmp.file("train.tsv", small_log());
  const std::string valid = tmp.file("valid.tsv", "a\tx4\nd\tx1\n");
  const std::string test = tmp.file("test.tsv", "a\tx5\nb\tx6\nd\tx2\ne\tx3\n");
  Config c = files_config("pop", train, valid, test);
  RunOptions ro;
  Prepared p = prepare(c, ro);
  EXPECT_EQ(p.split.train.size(), 7u);
  EXPECT_EQ(p.split.valid.size(), 1u);  // d has no training data
  EXPECT_EQ(p.split.test.size(), 2u);   // d and e skipped; b's x6 is a cold item, kept
  EXPECT_NE(p.split.protocol.find("2 test interactions of 2 users without training data skipped"), std::string::npos)
      << p.split.protocol;
  EXPECT_NE(p.split.protocol.find("1 valid interactions of 1 users without training data skipped"), std::string::npos)
      << p.split.protocol;
  EXPECT_NE(p.split.protocol.find("1 test interactions with items absent from training"), std::string::npos)
      << p.split.protocol;
  // One id space over the three files: d, e and x6 exist.
  EXPECT_EQ(p.ds.n_users(), 5);
  EXPECT_EQ(p.ds.n_items(), 6);
  Config missing = files_config("pop", train, "", tmp.path() + "/nope.tsv");
  try {
    prepare(missing, ro);
    FAIL() << "a missing test file was accepted";
  } catch (const MissingDataError& e) {
    EXPECT_NE(std::string(e.what()).find("split.test_file"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nope.tsv"), std::string::npos) << e.what();
  }
  Config no_test = files_config("pop", train, "", "");
  EXPECT_THROW(prepare(no_test, ro), ConfigError);
  Config both = files_config("pop", train, "", test);
  both.set("data.dataset", "ml-100k", "t");
  EXPECT_THROW(prepare(both, ro), ConfigError);
  Config bad_line = files_config("pop", train, "", tmp.file("bad.tsv", "a\tx1\nonlyone\n"));
  try {
    prepare(bad_line, ro);
    FAIL() << "a malformed test line was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:2"), std::string::npos) << e.what();
  }
}

TEST(OwnData, CandidateFilesAreValidatedWithFileAndLine) {
  test::TempDir tmp;
  const std::string train = tmp.file("train.tsv", small_log());
  const std::string test = tmp.file("test.tsv", "a\tx5\nb\tx6\n");
  Config c = files_config("pop", train, "", test);
  RunOptions ro;
  Prepared p = prepare(c, ro);
  TrainedModel m = fit_model(p, c, ro);
  auto eval_with = [&](const std::string& content) {
    Config e = c;
    e.set("eval.candidates", "file:" + tmp.file("cand.tsv", content), "t");
    return evaluate_model(m, p, e, ro);
  };
  auto fails_with = [&](const std::string& content, const std::string& words) {
    try {
      eval_with(content);
      ADD_FAILURE() << "accepted: " << content;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  // Good lists in each layout give the same numbers.
  EvalResult l1 = eval_with("a\tx5\tx4,x6\nb\tx6\tx1,x3\n");
  EvalResult l2 = eval_with("(a,x5)\tx4\tx6\n(b,x6)\tx1\tx3\n");
  EvalResult l3 = eval_with("a\tx4,x5,x6\nb\tx3,x1,x6\n");
  EXPECT_EQ(l1.get("ndcg@10"), l2.get("ndcg@10"));
  EXPECT_EQ(l1.get("ndcg@10"), l3.get("ndcg@10"));
  EXPECT_NE(l1.protocol.find("pos-negs layout: each test item + 2 listed negatives per user, 2 users"),
            std::string::npos)
      << l1.protocol;
  // The list layout adds a missing positive (counted in the protocol).
  EvalResult added = eval_with("a\tx4,x6\nb\tx3,x1,x6\n");
  EXPECT_NE(added.protocol.find("1 test items added"), std::string::npos) << added.protocol;
  fails_with("a\tx5\tx4,x9\nb\tx6\tx1\n", "cand.tsv:1: field 'candidate': unknown item 'x9'");
  fails_with("a\tx5\tx4,x4\nb\tx6\tx1\n", "cand.tsv:1: field 'candidate': item 'x4' is listed twice");
  fails_with("a\tx5\tx4\nzz\tx6\tx1\n", "cand.tsv:2: field 'user': unknown user 'zz'");
  fails_with("a\tx4\tx6\nb\tx6\tx1\n", "cand.tsv:1: field 'positive': item 'x4' is not a test item of user 'a'");
  fails_with("a\tx5\tx6\nb\tx6\tx5\na\tx5\tx1\n", "cand.tsv:3: field 'user': user 'a' has a second candidate list");
  fails_with("a\tx5\tx4\n", "1 test users have no candidate list (e.g. user 'b')");
  fails_with("(a,x5)\tx4\nb\tx6\tx1\n", "cand.tsv:2: field 'line': a 'pos-negs' line in a 'ncf' file");
  fails_with("a\tx5\tx4\tx1\tx2\n", "cand.tsv:1: field 'line': 5 tab-separated fields");
  // A listed negative that is a test item is kept as listed (NCF's file has some) and counted.
  EvalResult kept = eval_with("(a,x5)\tx5\tx4\n(b,x6)\tx1\n");
  EXPECT_NE(kept.protocol.find("1 listed negatives are test items of their user, kept"), std::string::npos)
      << kept.protocol;
}

TEST(OwnData, DataOrderFileMakesLineOrderTheTime) {
  test::TempDir tmp;
  // No time column: with data.order file, leave-one-out by time holds out each user's last line.
  const std::string log = tmp.file("log.tsv", "a\tx3\na\tx1\na\tx2\nb\tx2\nb\tx4\nb\tx1\n");
  Config c;
  c.set("data.path", log, "t");
  c.set("data.order", "file", "t");
  c.set("split.type", "loo", "t");
  c.set("split.order", "time", "t");
  RunOptions ro;
  Prepared p = prepare(c, ro);
  ASSERT_EQ(p.split.test.size(), 2u);
  std::vector<std::string> held;
  for (size_t r = 0; r < 2; ++r) held.push_back(p.ds.items.original(p.split.test.item[r]));
  std::sort(held.begin(), held.end());
  EXPECT_EQ(held, (std::vector<std::string>{"x1", "x2"}));  // a's last line x2, b's last line x1
  c.set("data.path", tmp.file("timed.tsv", "a\tx3\t5\na\tx1\t6\n"), "t");
  c.set("data.time_col", "2", "t");
  EXPECT_THROW(prepare(c, ro), ConfigError);  // a time column and data.order file: one or the other
}

TEST(OwnData, RefitOnTheSplitsValidationKeepsTheTestUsers) {
  // Choose the epoch count on the split's validation part, retrain on train + valid, test on the
  // same test users (before: refit only after a carved validation set).
  Dataset ds = dataset_from_raw(test::planted_log(false, false), "planted");
  Config c;
  c.set("model.type", "siamese", "t");
  c.set("tower.dim", "8", "t");
  c.set("train.epochs", "6", "t");
  c.set("train.patience", "2", "t");
  c.set("train.seed", "3", "t");
  c.set("split.type", "ratio", "t");
  c.set("split.ratios", "0.6,0.2,0.2", "t");
  c.set("eval.k", "3", "t");
  RunOptions ro;
  ro.threads = 1;
  int refit_epochs = 0, best = 0;
  ro.on_epoch = [&](const EpochInfo& e) {
    refit_epochs += e.refit;
    return true;
  };
  Prepared p = prepare_from(ds, c);
  ASSERT_GT(p.split.valid.size(), 0u);
  c.set("train.refit", "false", "t");
  TrainedModel plain = fit_model(p, c, ro);
  EXPECT_EQ(refit_epochs, 0);
  EXPECT_FALSE(plain.model->fitted_on_valid());
  EXPECT_EQ(plain.valid.nnz(), static_cast<int64_t>(p.split.valid.size()));
  c.set("train.refit", "true", "t");
  TrainedModel refit = fit_model(p, c, ro);
  best = refit_epochs;
  EXPECT_GT(best, 0) << "the refit pass ran";
  EXPECT_TRUE(refit.model->fitted_on_valid());
  EXPECT_EQ(refit.train.nnz(), static_cast<int64_t>(p.split.train.size() + p.split.valid.size()));
  EXPECT_EQ(refit.valid.nnz(), 0);  // validation items are training data now: excluded as train items
  EvalResult a = evaluate_model(plain, p, c, ro), b = evaluate_model(refit, p, c, ro);
  EXPECT_EQ(a.users, b.users);
  EXPECT_NE(b.protocol.find("exclusions: train items + validation items"), std::string::npos) << b.protocol;
}

TEST(OwnData, EvaluateOnTheValidationPartFromTheCommandLine) {
  test::TempDir tmp;
  std::string log;
  for (int u = 0; u < 30; ++u)
    for (int j = 0; j < 10; ++j) log += "u" + std::to_string(u) + "\ti" + std::to_string((u * 7 + j * 3) % 40) + "\n";
  const std::string path = tmp.file("log.tsv", log);
  const std::string base = "evaluate --set data.path=" + path +
                           " --set split.type=ratio --set model.type=itemknn --set model.neighbors=5 --set eval.k=5";
  test::RunResult valid = test::run_cli(base + " --on valid");
  ASSERT_EQ(valid.code, 0) << valid.err;
  EXPECT_NE(valid.out.find("evaluated on: the validation part"), std::string::npos) << valid.out;
  test::RunResult on_test = test::run_cli(base);
  ASSERT_EQ(on_test.code, 0) << on_test.err;
  EXPECT_EQ(on_test.out.find("evaluated on: the validation part"), std::string::npos);
  test::RunResult none =
      test::run_cli("evaluate --set data.path=" + path + " --set split.type=loo --set model.type=pop --on valid");
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("--on valid: the split has no validation part"), std::string::npos) << none.err;
}
