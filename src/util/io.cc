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

OutputFile::OutputFile(const std::string& path) : path_(path), target_(path) {
  if (path.empty()) throw Error("an output path is empty");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    // Replace the file the link points to, keep the link.
    std::error_code ec;
    fs::path resolved = fs::weakly_canonical(fs::path(path), ec);
    if (ec) throw Error(fmt::format("cannot write '{}': cannot resolve the symbolic link: {}", path, ec.message()));
    target_ = resolved.string();
  }
  if (::stat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot write '{}': it is a directory", path));
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode))
      throw Error(fmt::format("cannot write '{}': not a regular file, device or pipe", path));
    direct_ = true;  // never renamed over: /dev/null stays a device
    fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open", errno);
    return;
  }
  fs::path p(target_);
  std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  if (!dir_exists(dir)) make_dirs(dir);
  std::random_device rd;
  tmp_ = fmt::format("{}/.{}.tmp.{}.{:x}", dir, p.filename().string(), ::getpid(), rd());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    tmp_.clear();
    fail("cannot create a file beside", errno);
  }
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void OutputFile::fail(const char* what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
  throw Error(fmt::format("{} '{}': {}{}", what, path_, std::strerror(err),
                          err == ENOSPC ? " (the output is incomplete; nothing was replaced)" : ""));
}

void OutputFile::write(std::string_view bytes) {
  if (fd_ < 0) throw Error(fmt::format("cannot write '{}': the file is closed", path_));
  if (bytes.size() >= (1u << 20)) {  // large writes go straight to the file: no copy of a model file
    flush();
    write_all(bytes.data(), bytes.size());
    return;
  }
  buf_.append(bytes);
  if (buf_.size() >= (1u << 20)) flush();
}

void OutputFile::write_all(const char* p, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(fd_, p + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", errno);
    }
    off += static_cast<size_t>(w);
  }
}

void OutputFile::flush() {
  write_all(buf_.data(), buf_.size());
  buf_.clear();
}

void OutputFile::commit() {
  if (committed_) return;
  flush();
  if (!direct_ && ::fsync(fd_) != 0) fail("cannot write", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail("cannot write", errno);
  }
  fd_ = -1;
  if (!direct_ && ::rename(tmp_.c_str(), target_.c_str()) != 0) fail("cannot replace", errno);
  committed_ = true;
}

void atomic_write(const std::string& path, std::string_view content) {
  OutputFile f(path);
  f.write(content);
  f.commit();
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

void BinWriter::save(const std::string& path) {
  // The buffer and its checksum written in place (finish() would copy a file-sized buffer).
  const std::string sum = raw_sha256(buf_);
  OutputFile f(path);
  f.write(buf_);
  f.write(sum);
  f.commit();
}

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
  if (dir_exists(path)) throw Error(fmt::format("{} '{}' is a directory, expected a file", what, path));
  if (!file_exists(path)) throw Error(fmt::format("{} '{}' does not exist", what, path));
  return BinReader(read_file(path), magic, max_version, path, what);
}

void BinReader::truncated() {
  throw Error(fmt::format("{} '{}' is malformed (a section runs past the end of the file)", what_, path_));
}

}  // namespace siamrec
