// Test helpers: temporary directories, fixture files, the shared data directory.
#pragma once
#include <string>
#include <vector>

#include "tasks/pipeline.h"
#include "util/error.h"

namespace siamrec::test {

// A fresh temporary directory, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name, const std::string& content) const;  // writes, returns path

 private:
  std::string path_;
};

// The real datasets directory ($SIAMREC_DATA_DIR, else ../shared/datasets beside the source tree),
// or "" when absent. With SIAMREC_REQUIRE_DATA=1 (CI) an absent directory fails the test.
std::string shared_data_dir();

// The planted fixture's log: two user groups with disjoint tastes, users u100..u109 each with 6 of
// items i100..i109, users u110..u119 each with 6 of i110..i119; with ratings 1..5 and increasing
// times when asked.
RawLog planted_log(bool ratings, bool times);

// Runs the siamrec CLI with arguments; returns exit code, captures stdout and stderr.
struct RunResult {
  int code;
  std::string out, err;
};
RunResult run_cli(const std::string& args, const std::string& env = "");

// A child process (the siamrec CLI or any program) whose PID is tracked: killed (SIGKILL) and reaped
// when the object dies, so a failing test never leaves a server behind. stdout and stderr go to
// files read by out()/err().
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& dir);
  ~Child();
  int pid() const { return pid_; }
  void signal(int sig) const;
  // The exit code once the child exits within `seconds` (128+N when killed by signal N), -1 if
  // it is still running then.
  int wait(double seconds);
  bool running();
  std::string out() const;
  std::string err() const;

 private:
  int pid_ = -1;
  int status_ = -1;
  std::string out_, err_;
};
std::vector<std::string> cli_argv(const std::vector<std::string>& args);  // SIAMREC_CLI + args

// Raw TCP to 127.0.0.1:port (bytes the HTTP client libraries would refuse to send). -1 on failure.
int tcp_connect(int port);
// Everything the peer sends until it closes or `seconds` pass without data; "" on error.
std::string read_until_close(int fd, double seconds);
// A free loopback port (bound and released; racy only against other programs).
int free_port();
// The planted fixture trained and saved as a model file of the given type (pop, itemknn, siamese).
std::string planted_model_file(const std::string& path, const std::string& type);

// The message of the siamrec::Error (or the given subclass) `f` throws, or "" when it throws none.
template <typename E = Error, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// A fixture whose every interaction is training data (no test split).
Prepared all_train(const Dataset& ds);

}  // namespace siamrec::test

#define SIAMREC_NEED_DATA(dir)                          \
  std::string dir = ::siamrec::test::shared_data_dir(); \
  if (dir.empty()) GTEST_SKIP() << "real datasets not found (set SIAMREC_DATA_DIR)"
