#include "util/paths.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace siamrec {

std::string home_dir() {
  const char* h = std::getenv("HOME");
  if (h && *h) return h;
  if (auto* pw = getpwuid(getuid())) return pw->pw_dir;
  return "/tmp";
}

static std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string resolve_data_dir(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  if (auto e = env("SIAMREC_DATA_DIR"); !e.empty()) return e;
  return home_dir() + "/.cache/siamrec/datasets";
}

std::string data_dir_origin(const std::string& flag_value) {
  if (!flag_value.empty()) return "--data-dir";
  if (!env("SIAMREC_DATA_DIR").empty()) return "SIAMREC_DATA_DIR";
  return "default location";
}

std::string resolve_cache_dir() {
  if (auto e = env("SIAMREC_CACHE_DIR"); !e.empty()) return e;
  return home_dir() + "/.cache/siamrec/cache";
}

}  // namespace siamrec
