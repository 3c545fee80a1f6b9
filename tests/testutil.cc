#include "testutil.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "config/config.h"
#include "models/model_file.h"
#include "util/io.h"

namespace siamrec::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "siamrec-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  path_ = p ? p : "/tmp";
}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}
std::string TempDir::file(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  fs::create_directories(fs::path(p).parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

std::string shared_data_dir() {
  std::string dir;
  if (const char* e = std::getenv("SIAMREC_DATA_DIR"); e && *e)
    dir = e;
  else
    dir = std::string(SIAMREC_TESTUTIL_SOURCE_DIR) + "/../shared/datasets";
  if (dir_exists(dir + "/ml-100k")) return dir;
  if (const char* r = std::getenv("SIAMREC_REQUIRE_DATA"); r && std::string(r) == "1")
    ADD_FAILURE() << "SIAMREC_REQUIRE_DATA=1 but no datasets in '" << dir << "'";
  return "";
}

RunResult run_cli(const std::string& args, const std::string& env) {
  TempDir t;
  std::string cmd = env + " " + SIAMREC_TESTUTIL_CLI + " " + args + " >" + t.path() + "/out 2>" + t.path() + "/err";
  int rc = std::system(cmd.c_str());
  RunResult r;
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = read_file(t.path() + "/out");
  r.err = read_file(t.path() + "/err");
  return r;
}

Child::Child(const std::vector<std::string>& argv, const std::string& dir)
    : out_(dir + "/child.out"), err_(dir + "/child.err") {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    int o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
        e = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1), dup2(e, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    execv(args[0], args.data());
    _exit(127);
  }
}
Child::~Child() {
  if (pid_ > 0 && status_ < 0) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}
void Child::signal(int sig) const {
  if (pid_ > 0 && status_ < 0) kill(pid_, sig);
}
int Child::wait(double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (status_ < 0) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() > until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}
bool Child::running() { return wait(0) < 0; }
std::string Child::out() const { return file_exists(out_) ? read_file(out_) : ""; }
std::string Child::err() const { return file_exists(err_) ? read_file(err_) : ""; }

std::vector<std::string> cli_argv(const std::vector<std::string>& args) {
  std::vector<std::string> v{SIAMREC_TESTUTIL_CLI};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

int tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string read_until_close(int fd, double seconds) {
  std::string got;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(seconds * 1000));
    if (r <= 0) return got;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return got;
    got.append(buf, static_cast<size_t>(n));
  }
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string planted_model_file(const std::string& path, const std::string& type) {
  RawLog raw;
  for (int u = 0; u < 20; ++u)
    for (int k = 0; k < 6; ++k) {
      raw.users.push_back(std::to_string(100 + u));
      raw.items.push_back(std::to_string(100 + (u < 10 ? 0 : 10) + (u + k * 3) % 10));
    }
  Prepared p;
  p.ds = dataset_from_raw(raw, "planted");
  p.split.train = p.ds.log;
  p.train_by_user = Csr::from_interactions(p.ds.log, p.ds.n_users(), false);
  Config c;
  c.set_override("model.type=" + type);
  if (type == "siamese")
    for (auto s : {"tower.dim=8", "train.epochs=5", "train.valid_share=0", "tower.type=bag"}) c.set_override(s);
  save_model_file(fit_model(p, c, RunOptions{}), path);
  return path;
}

Prepared all_train(const Dataset& ds) {
  Prepared p;
  p.ds = ds;
  p.split.train = ds.log;
  p.split.protocol = ds.name + " | all train";
  p.train_by_user = Csr::from_interactions(ds.log, ds.n_users(), false);
  return p;
}

RawLog planted_log(bool ratings, bool times) {
  RawLog raw;
  for (int u = 0; u < 20; ++u)
    for (int k = 0; k < 6; ++k) {
      int base = u < 10 ? 0 : 10;
      raw.users.push_back("u" + std::to_string(100 + u));
      raw.items.push_back("i" + std::to_string(100 + base + (u + k * 3) % 10));
      if (ratings) raw.rating.push_back(static_cast<float>(1 + (u + k) % 5));
      if (times) raw.time.push_back(1000 + u * 10 + k);
    }
  return raw;
}

}  // namespace siamrec::test
