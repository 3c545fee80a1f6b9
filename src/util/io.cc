#include "util/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <openssl/evp.h>

namespace siamrec {
namespace fs = std::filesystem;

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
int64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

static std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  std::string out;
  char buf[1 << 16];
  while (true) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw DataError(fmt::format("'{}': corrupt gzip stream ({})", path, msg));
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  gzclose(f);
  return out;
}

std::string read_file(const std::string& path) {
  if (dir_exists(path)) throw Error(fmt::format("'{}' is a directory, expected a file", path));
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) return read_gzip(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  std::string s;
  in.seekg(0, std::ios::end);
  auto n = in.tellg();
  if (n < 0) throw Error(fmt::format("cannot read '{}'", path));
  s.resize(static_cast<size_t>(n));
  in.seekg(0);
  in.read(s.data(), n);
  if (!in) throw Error(fmt::format("read error on '{}'", path));
  return s;
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec && !dir_exists(path)) throw Error(fmt::format("cannot create directory '{}': {}", path, ec.message()));
}

void atomic_write(const std::string& path, std::string_view content) {
  fs::path p(path);
  std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  if (!dir_exists(dir)) make_dirs(dir);
  std::random_device rd;
  std::string tmp = fmt::format("{}/.{}.tmp.{}.{:x}", dir, p.filename().string(), ::getpid(), rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t w = ::write(fd, content.data() + off, content.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(e)));
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot write '{}': {}", path, std::strerror(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("cannot move temporary file into '{}': {}", path, std::strerror(e)));
  }
}

static std::string hex(const unsigned char* d, unsigned n) {
  static const char* k = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = k[d[i] >> 4];
    s[2 * i + 1] = k[d[i] & 15];
  }
  return s;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  return hex(md, n);
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), buf.size());
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  EVP_MD_CTX_free(ctx);
  return hex(md, n);
}

// ---- binary container -------------------------------------------------------------------------
static constexpr size_t kDigest = 32;

static std::string raw_sha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

BinWriter::BinWriter(const char magic[8], uint32_t version) {
  buf_.append(magic, 8);
  put<uint32_t>(version);
}

std::string BinWriter::finish() {
  std::string out = buf_;
  out += raw_sha256(buf_);
  return out;
}

void BinWriter::save(const std::string& path) { atomic_write(path, finish()); }

BinReader::BinReader(std::string bytes, const char magic[8], uint32_t max_version, const std::string& path,
                     const std::string& what)
    : data_(std::move(bytes)), path_(path), what_(what) {
  if (data_.size() < 8 + 4 + kDigest)
    throw Error(fmt::format("{} '{}' is truncated ({} bytes)", what_, path_, data_.size()));
  if (std::memcmp(data_.data(), magic, 8) != 0)
    throw Error(fmt::format("'{}' is not a siamrec {} (wrong magic number)", path_, what_));
  end_ = data_.size() - kDigest;
  if (raw_sha256(std::string_view(data_.data(), end_)) != std::string_view(data_.data() + end_, kDigest))
    throw Error(fmt::format("{} '{}' is corrupt or truncated (checksum mismatch)", what_, path_));
  pos_ = 8;
  version_ = get<uint32_t>();
  if (version_ > max_version)
    throw Error(
        fmt::format("{} '{}' has format version {}, newer than this siamrec supports ({}); "
                    "upgrade siamrec to read it",
                    what_, path_, version_, max_version));
}

BinReader BinReader::open(const std::string& path, const char magic[8], uint32_t max_version, const std::string& what) {
  if (!file_exists(path)) throw Error(fmt::format("{} '{}' does not exist", what, path));
  return BinReader(read_file(path), magic, max_version, path, what);
}

void BinReader::truncated() {
  throw Error(fmt::format("{} '{}' is malformed (a section runs past the end of the file)", what_, path_));
}

}  // namespace siamrec
