#include "data/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "data/registry.h"
#include "util/error.h"
#include "util/io.h"
#include "util/paths.h"

namespace siamrec {
namespace fs = std::filesystem;

static size_t write_cb(char* p, size_t sz, size_t n, void* f) { return std::fwrite(p, sz, n, static_cast<FILE*>(f)); }

static void download(const std::string& url, const std::string& out) {
  FILE* f = std::fopen(out.c_str(), "wb");
  if (!f) throw Error(fmt::format("cannot write '{}'", out));
  CURL* c = curl_easy_init();
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  std::fclose(f);
  if (rc != CURLE_OK) {
    std::remove(out.c_str());
    throw Error(
        fmt::format("download of {} failed: {} (offline? place the files in the data directory "
                    "yourself, or pass --archive FILE with a copy of the archive)",
                    url, err[0] ? err : curl_easy_strerror(rc)));
  }
}

void unpack_archive(const std::string& archive, const std::string& dest) {
  // Freed on every path, exceptions included (make_dirs and atomic_write throw too).
  std::unique_ptr<struct archive, int (*)(struct archive*)> handle(archive_read_new(), archive_read_free);
  struct archive* a = handle.get();
  archive_read_support_format_all(a);
  archive_read_support_filter_all(a);
  if (archive_read_open_filename(a, archive.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::string msg = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    throw Error(fmt::format("cannot open archive '{}': {}", archive, msg));
  }
  struct archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    fs::path rel = fs::path(name).lexically_normal();
    if (rel.is_absolute() || (!rel.empty() && *rel.begin() == ".."))
      throw Error(fmt::format("archive '{}' has an unsafe path '{}'", archive, name));
    fs::path out = fs::path(dest) / rel;
    if (archive_entry_filetype(e) == AE_IFDIR) {
      make_dirs(out.string());
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    make_dirs(out.parent_path().string());
    std::string data;
    const void* buf;
    size_t size;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
      data.append(static_cast<const char*>(buf), size);
    if (r != ARCHIVE_EOF) {
      std::string msg = archive_error_string(a) ? archive_error_string(a) : "read error";
      throw Error(fmt::format("archive '{}': cannot extract '{}': {}", archive, name, msg));
    }
    atomic_write(out.string(), data);
  }
  std::string msg = rc == ARCHIVE_EOF ? "" : (archive_error_string(a) ? archive_error_string(a) : "read error");
  if (!msg.empty()) throw Error(fmt::format("archive '{}' is corrupt: {}", archive, msg));
}

std::string fetch_dataset(const std::string& name, const FetchOptions& o) {
  const DatasetSpec& spec = dataset_spec(name);
  std::string dir = resolve_data_dir(o.data_dir_flag);
  if (spec.url.empty())
    throw Error(fmt::format("dataset '{}' has no official archive siamrec can fetch: {}", name, spec.how_to_get),
                kExitUsage);
  std::string final_dir = dir + "/" + spec.archive_folder;
  bool present = true;
  for (auto& f : spec.files) present &= file_exists(dir + "/" + f);
  if (present && !o.force) {
    spdlog::info("{} is already present in '{}' (use --force to fetch again)", name, final_dir);
    return final_dir;
  }
  make_dirs(dir);
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(
        fmt::format("data directory '{}' is not writable; fetch into another one with --data-dir DIR "
                    "or SIAMREC_DATA_DIR",
                    dir));
  std::string archive = o.archive_path;
  std::string tmp_archive;
  if (archive.empty()) {
    std::string cache = resolve_cache_dir() + "/downloads";
    make_dirs(cache);
    tmp_archive = cache + "/" + spec.archive_folder + ".zip.part";
    spdlog::info("downloading {}", spec.url);
    download(spec.url, tmp_archive);
    archive = tmp_archive;
  }
  std::string got = sha256_file(archive);
  if (got != spec.sha256) {
    if (!tmp_archive.empty()) std::remove(tmp_archive.c_str());
    throw Error(
        fmt::format("'{}' has SHA-256 {}, expected {} for {}; the archive is corrupt or not the "
                    "official one",
                    archive, got, spec.sha256, name));
  }
  std::string staging = fmt::format("{}/.siamrec-fetch-{}-{}", dir, spec.archive_folder, ::getpid());
  fs::remove_all(staging);
  unpack_archive(archive, staging);
  std::string unpacked = staging + "/" + spec.archive_folder;
  if (!dir_exists(unpacked)) {
    fs::remove_all(staging);
    throw Error(fmt::format("archive '{}' has no top-level folder '{}'", archive, spec.archive_folder));
  }
  std::error_code ec;
  if (dir_exists(final_dir)) fs::remove_all(final_dir, ec);
  fs::rename(unpacked, final_dir, ec);
  fs::remove_all(staging);
  if (ec) throw Error(fmt::format("cannot move unpacked files into '{}': {}", final_dir, ec.message()));
  if (!tmp_archive.empty()) std::remove(tmp_archive.c_str());
  spdlog::info("{} verified (sha256 {}) and unpacked into '{}'", name, got.substr(0, 16), final_dir);
  return final_dir;
}

}  // namespace siamrec
