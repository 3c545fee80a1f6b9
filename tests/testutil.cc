#include "testutil.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

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
