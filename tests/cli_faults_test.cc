// The command line under hostile input and failing outputs: a full disk (/dev/full) and devices,
// links and directories as outputs, out-of-range numbers and byte-order marks in data files, ids
// that carry terminal escapes, unbounded --threads, duplicate YAML keys, a model evaluated on its
// own training data, and the messages and exit codes the README promises.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "data/readers.h"
#include "tasks/embeddings.h"
#include "testutil.h"
#include "util/io.h"

using namespace siamrec;

namespace {

// Runs a shell command line (the CLI with redirections the test chooses); returns the exit code.
int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
std::string cli() { return SIAMREC_CLI; }

// A tiny interaction log (user, item, rating, time) whose ids are safe; and a pop model over it.
struct Fixture {
  test::TempDir dir;
  std::string data, model;
  explicit Fixture(const std::string& extra_rows = "") {
    std::string rows;
    for (int u = 0; u < 12; ++u)
      for (int k = 0; k < 5; ++k) rows += fmt::format("u{}\ti{}\t{}\t{}\n", u, (u + k * 2) % 9, 1 + k % 5, 1000 + k);
    data = dir.file("log.tsv", rows + extra_rows);
    model = dir.path() + "/pop.model";
    auto r = test::run_cli("-q train --set data.path=" + data + " --set model.type=pop --set split.type=loo -o " +
                           model + " --no-eval");
    EXPECT_EQ(r.code, 0) << r.err;
  }
};

bool is_char_device(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

}  // namespace

// Before: output to a full disk exited 0 and `--out /dev/full` replaced the device with a file.
TEST(CliFaults, FullDiskAndDeviceOutputsFailLoudlyAndStayDevices) {
  Fixture f;
  const std::string m = " -m " + f.model;
  EXPECT_EQ(sh(cli() + " recommend" + m + " --user u1 -k 3 >/dev/full 2>/dev/null"), 1);
  EXPECT_EQ(sh(cli() + " recommend" + m + " --all-users >/dev/full 2>/dev/null"), 1);
  std::string pairs = f.dir.file("pairs.tsv", "u1\ti2\nu2\ti3\n");
  EXPECT_EQ(sh(cli() + " score" + m + " --pairs " + pairs + " >/dev/full 2>/dev/null"), 1);
  auto r = test::run_cli("score" + m + " --pairs " + pairs + " --out /dev/full");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("/dev/full"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  r = test::run_cli("recommend" + m + " --all-users --out /dev/full");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("No space left"), std::string::npos) << r.err;
  EXPECT_TRUE(is_char_device("/dev/full"));
  // /dev/null is written through, never renamed over.
  r = test::run_cli("recommend" + m + " --all-users --out /dev/null");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(is_char_device("/dev/null"));
  // A directory is refused by name; a symbolic link keeps being a link to the replaced file.
  r = test::run_cli("score" + m + " --pairs " + pairs + " --out " + f.dir.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
  std::string real = f.dir.file("real.tsv", "old\n"), link = f.dir.path() + "/link.tsv";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  r = test::run_cli("score" + m + " --pairs " + pairs + " --out " + link);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_NE(read_file(real).find("u1\ti2\t"), std::string::npos) << read_file(real);
}

// Read-only targets: a directory the user may not write and a read-only file in it. The tests
// run as root, which ignores permission bits, so as root the CLI runs as user nobody (setpriv);
// every command fails naming the path and the reason, and the old file stays as it was.
TEST(CliFaults, ReadOnlyTargetsFailLoudlyAndStayUntouched) {
  Fixture f;
  namespace fs = std::filesystem;
  const auto readable = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                        fs::perms::others_exec;
  fs::permissions(f.dir.path(), readable);
  const std::string pairs = f.dir.file("pairs.tsv", "u1\ti2\nu2\ti3\n");
  for (const auto& e : fs::directory_iterator(f.dir.path())) fs::permissions(e.path(), readable);
  const std::string ro = f.dir.path() + "/ro";
  fs::create_directory(ro);
  const std::string old = ro + "/old.tsv";
  std::ofstream(old) << "old\n";
  fs::permissions(old, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec);
  std::string as_user;
  if (geteuid() == 0) {
    as_user = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    if (sh(as_user + cli() + " --version >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "cannot run the CLI as user nobody here (setpriv, or the build directory is not readable)";
  }
  const std::string err = f.dir.path() + "/err.txt";  // written by root's shell, not by the CLI
  auto run = [&](const std::string& args) {
    const int code = sh(as_user + cli() + " " + args + " >/dev/null 2>" + err);
    return std::make_pair(code, read_file(err));
  };
  const std::string m = " -m " + f.model;
  for (const std::string& target : {ro + "/new.tsv", old}) {
    auto [code, msg] = run("score" + m + " --pairs " + pairs + " --out " + target);
    EXPECT_EQ(code, 1) << target << ": " << msg;
    EXPECT_NE(msg.find(target), std::string::npos) << msg;
    EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
    std::tie(code, msg) = run("recommend" + m + " --all-users --out " + target);
    EXPECT_EQ(code, 1) << target << ": " << msg;
    EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
  }
  auto [code, msg] =
      run("train --set data.path=" + f.data + " --set model.type=pop --set split.type=loo -o " + ro + "/m.model");
  EXPECT_NE(code, 0) << msg;
  EXPECT_NE(msg.find(ro + "/m.model"), std::string::npos) << msg;
  EXPECT_EQ(read_file(old), "old\n");
  EXPECT_FALSE(fs::exists(ro + "/new.tsv"));
  EXPECT_FALSE(fs::exists(ro + "/m.model"));
  EXPECT_EQ(std::distance(fs::directory_iterator(ro), fs::directory_iterator()), 1) << "a temporary was left";
}

TEST(CliFaults, OutputFileCommitsAtomicallyAndLeavesNoTemporaries) {
  test::TempDir t;
  std::string p = t.file("out.txt", "old");
  {
    OutputFile f(p);
    f.write("new content");
    // Not committed: destroyed (as by an exception) -> the old file stays, no temporary is left.
  }
  EXPECT_EQ(read_file(p), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(t.path()), std::filesystem::directory_iterator()), 1);
  OutputFile g(p);
  g.write(std::string(3 << 20, 'x'));  // more than the buffer: flushed in between
  g.commit();
  EXPECT_EQ(file_size(p), 3 << 20);
}

// Before: a timestamp of 1e23 was cast to int64 (undefined behaviour) and reordered the history.
TEST(CliFaults, OutOfRangeNumbersAreRefusedWithFileLineAndField) {
  test::TempDir t;
  std::string p = t.file("log.tsv", "u1\ti1\t5\t1000\nu1\ti2\t4\t1e23\n");
  DelimitedFormat f;
  f.rating = "2";
  f.time = "3";
  std::string msg = test::error_of<DataError>([&] { read_delimited(p, f, ReadOptions{}); });
  EXPECT_NE(msg.find(":2:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("time"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1e23"), std::string::npos) << msg;
  p = t.file("log2.tsv", "u1\ti1\t1e39\t1000\n");
  msg = test::error_of<DataError>([&] { read_delimited(p, f, ReadOptions{}); });
  EXPECT_NE(msg.find("rating"), std::string::npos) << msg;
  EXPECT_FALSE(parse_timestamp("9223372036854775808.0"));
  EXPECT_FALSE(parse_timestamp("nan"));
  EXPECT_EQ(parse_timestamp("-12.7").value_or(0), -12);
  EXPECT_EQ(parse_timestamp("9223372036854775807").value_or(0), INT64_MAX);
}

// Before: a UTF-8 byte-order mark became part of the first user id (a phantom user).
TEST(CliFaults, ByteOrderMarkIsDropped) {
  test::TempDir t;
  std::string p = t.file("log.tsv", "\xEF\xBB\xBFu1\ti1\nu1\ti2\n");
  RawLog raw = read_delimited(p, DelimitedFormat{}, ReadOptions{});
  ASSERT_EQ(raw.users.size(), 2u);
  EXPECT_EQ(raw.users[0], "u1");
  EXPECT_EQ(raw.users[0], raw.users[1]);
  // With a header, the first column's name is found.
  p = t.file("h.csv", "\xEF\xBB\xBFuser,item\nu1,i1\n");
  DelimitedFormat h;
  h.delimiter = ",";
  h.header = true;
  h.user = "user";
  h.item = "item";
  EXPECT_EQ(read_delimited(p, h, ReadOptions{}).users.at(0), "u1");
}

// Before: ids were printed raw, so a crafted id could clear the screen or retitle the terminal.
TEST(CliFaults, IdsWithControlCharactersAreEscapedInOutput) {
  Fixture f("evil\x1b]0;pwned\x07\ti1\t5\t1\nevil\x1b]0;pwned\x07\ti2\t5\t2\nevil\x1b]0;pwned\x07\ti3\t5\t3\n");
  std::string pairs = f.dir.file("pairs.tsv", "evil\x1b]0;pwned\x07\ti1\n");
  auto r = test::run_cli("score -m " + f.model + " --pairs " + pairs);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_EQ(r.out.find('\x07'), std::string::npos);
  EXPECT_NE(r.out.find("evil\\x1b]0;pwned\\x07\ti1\t"), std::string::npos) << r.out;
  r = test::run_cli("recommend -m " + f.model + " --all-users");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  EXPECT_NE(r.out.find("evil\\x1b"), std::string::npos);
  // Embedding TSV: an id holding a tab and a newline stays one field of one line.
  const std::string tsv = f.dir.path() + "/e.tsv";
  const float e[4] = {1, 2, 3, 4};
  write_embedding_tsv(tsv, {"a\tb\nc", "d"}, e, 2);
  EXPECT_EQ(read_file(tsv), "a\\x09b\\x0ac\t1\t2\nd\t3\t4\n");
}

TEST(CliFaults, MessagesAndExitCodes) {
  Fixture f;
  auto r = test::run_cli("--threads 100000 info");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
  r = test::run_cli("trian -c x.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown command 'trian'"), std::string::npos) << r.err;
  r = test::run_cli("recommend -m " + f.dir.path() + " --user u1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("is a directory"), std::string::npos) << r.err;
  r = test::run_cli("train --set data.path=" + f.dir.path() + "/nope.tsv --set model.type=pop -o " + f.dir.path() +
                    "/x.model");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.err.find("nope.tsv"), std::string::npos) << r.err;
  std::string yaml = f.dir.file("dup.yaml", "model:\n  type: pop\n  type: itemknn\n");
  r = test::run_cli("train -c " + yaml + " -o " + f.dir.path() + "/x.model");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("'model.type' appears twice, at lines 2 and 3"), std::string::npos) << r.err;
  // -q: warnings and errors only; the resolved config is not printed (it is in the model file).
  r = test::run_cli("-q train --set data.path=" + f.data + " --set model.type=pop --set split.type=loo -o " +
                    f.dir.path() + "/q.model --no-eval");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  r = test::run_cli("-v train --set data.path=" + f.data + " --set model.type=pop --set split.type=loo -o " +
                    f.dir.path() + "/v.model --no-eval");
  EXPECT_NE(r.err.find("resolved config"), std::string::npos);
}

// Before: a model trained on ML-100K 'ua' evaluated on 'u1' reported metrics although 15,697 of the
// 20,000 u1 test pairs were its training data.
TEST(CliFaults, EvaluatingOnTheModelsTrainingDataIsRefused) {
  SIAMREC_NEED_DATA(data);
  test::TempDir t;
  const std::string env = "SIAMREC_DATA_DIR=" + data;
  const std::string model = t.path() + "/ua.model";
  auto r = test::run_cli(
      "-q train --set data.dataset=ml-100k --set model.type=pop --set split.type=fixed "
      "--set split.name=ua --no-eval -o " +
          model,
      env);
  ASSERT_EQ(r.code, 0) << r.err;
  r = test::run_cli("-q evaluate -m " + model + " --set split.name=u1", env);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("15697 of the 20000 test interactions"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--allow-overlap"), std::string::npos);
  r = test::run_cli("-q evaluate -m " + model + " --set split.name=u1 --allow-overlap", env);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("OVERLAP: 15697 of 20000"), std::string::npos) << r.out;
  r = test::run_cli("-q evaluate -m " + model, env);  // its own split: no overlap, no note
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("OVERLAP"), std::string::npos);
}

// kill -9 in the middle of training, and in the middle of the refit pass after early stopping: the
// run resumed with --resume writes a model byte-identical to an uninterrupted run's.
TEST(CliFaults, KillNineDuringTrainingAndRefitThenResumeIsByteIdentical) {
  test::TempDir t;
  std::string rows;
  for (int u = 0; u < 300; ++u)
    for (int k = 0; k < 12; ++k) rows += fmt::format("u{}\ti{}\n", u, (u % 30) * 7 + k * 13 % 200);
  const std::string data = t.file("log.tsv", rows);
  const std::vector<std::string> base = {"--threads", "1",
                                         "-q",        "train",
                                         "--set",     "data.path=" + data,
                                         "--set",     "model.type=siamese",
                                         "--set",     "tower.type=id",
                                         "--set",     "tower.dim=16",
                                         "--set",     "train.engine=torch",
                                         "--set",     "train.epochs=24",
                                         "--set",     "train.eval_every=2",
                                         "--set",     "train.patience=3",
                                         "--set",     "train.refit=true",
                                         "--set",     "split.type=loo",
                                         "--no-eval"};
  auto with_out = [&](const std::string& out, bool resume) {
    std::vector<std::string> a = base;
    a.insert(a.end(), {"-o", out});
    if (resume) a.push_back("--resume");
    return test::cli_argv(a);
  };
  const std::string ref = t.path() + "/ref.model";
  {
    test::Child c(with_out(ref, false), t.path());
    ASSERT_EQ(c.wait(300), 0) << c.err();
  }
  for (const std::string stage : {"", ".refit"}) {
    const std::string out = t.path() + "/run" + (stage.empty() ? "" : "-refit") + ".model";
    const std::string ckpt = out + ".ckpt" + stage;
    bool killed = false;
    {
      test::Child c(with_out(out, false), t.path());
      for (int i = 0; i < 60000 && c.running(); ++i) {
        if (file_exists(ckpt)) {
          c.signal(SIGKILL);
          killed = true;
          break;
        }
        usleep(1000);
      }
      c.wait(30);
    }
    ASSERT_TRUE(killed) << "the run ended before writing " << ckpt;
    ASSERT_FALSE(file_exists(out)) << "a killed run left a model file";
    test::Child r(with_out(out, true), t.path());
    ASSERT_EQ(r.wait(300), 0) << r.err();
    EXPECT_EQ(sha256_file(out), sha256_file(ref)) << "resumed after kill -9 at " << ckpt;
  }
}
