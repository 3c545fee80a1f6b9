// File I/O: whole-file reads (plain or gzip), line iteration with line numbers, SHA-256,
// atomic writes (temporary file + fsync + rename), and a checksummed binary container used by
// dataset caches and model files.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "util/error.h"

namespace siamrec {

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
int64_t file_size(const std::string& path);
// Reads a whole file; `.gz` files are decompressed. Throws Error naming the path.
std::string read_file(const std::string& path);
// Creates a directory and its parents; throws Error naming the path on failure.
void make_dirs(const std::string& path);

// An output file written atomically: a temporary file beside the target, every write checked,
// fsync and rename on commit(); destroyed without commit() (an error, a crash) it leaves the old file
// untouched and removes the temporary. Targets that are not regular files are handled explicitly: a
// symbolic link is followed (its target is replaced, the link kept), a character device or FIFO
// (/dev/null, /dev/full, a pipe) is written straight through without rename, and a directory,
// socket or block device is refused. Errors name the target path and the system's reason.
class OutputFile {
 public:
  explicit OutputFile(const std::string& path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  void write(std::string_view bytes);  // buffered; throws Error naming the path
  void commit();
  bool direct() const { return direct_; }  // written straight through (a device or FIFO)

 private:
  void flush();
  void write_all(const char* p, size_t n);
  [[noreturn]] void fail(const char* what, int err);
  std::string path_, target_, tmp_, buf_;
  int fd_ = -1;
  bool direct_ = false, committed_ = false;
};

// Writes `content` to `path` atomically (OutputFile): a crash or error leaves the old file, if any,
// untouched.
void atomic_write(const std::string& path, std::string_view content);

std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::string& path);

// Iterates the lines of a buffer, tracking 1-based line numbers; strips a trailing '\r'.
class LineReader {
 public:
  explicit LineReader(std::string_view buf) : buf_(buf) {}
  bool next(std::string_view& line) {
    if (pos_ >= buf_.size()) return false;
    size_t e = buf_.find('\n', pos_);
    if (e == std::string_view::npos) e = buf_.size();
    line = buf_.substr(pos_, e - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = e + 1;
    ++lineno_;
    return true;
  }
  int64_t lineno() const { return lineno_; }

 private:
  std::string_view buf_;
  size_t pos_ = 0;
  int64_t lineno_ = 0;
};

// Binary container: MAGIC(8) VERSION(u32) then a payload, then SHA-256 of everything before it.
// Writers append POD values, vectors and strings; readers verify the checksum before parsing and
// throw a clear Error on truncation, wrong magic, newer version or checksum mismatch.
class BinWriter {
 public:
  BinWriter(const char magic[8], uint32_t version);
  template <typename T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    buf_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  template <typename T>
  void put_vec(const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<uint64_t>(v.size());
    buf_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void put_str(std::string_view s) {
    put<uint64_t>(s.size());
    buf_.append(s.data(), s.size());
  }
  void put_strs(const std::vector<std::string>& v) {
    put<uint64_t>(v.size());
    for (auto& s : v) put_str(s);
  }
  // Appends the checksum and writes the file atomically.
  void save(const std::string& path);
  std::string finish();  // the bytes with checksum (for tests)

 private:
  std::string buf_;
};

class BinReader {
 public:
  // `what` names the file kind in error messages ("model file", "dataset cache").
  BinReader(std::string bytes, const char magic[8], uint32_t max_version, const std::string& path,
            const std::string& what);
  static BinReader open(const std::string& path, const char magic[8], uint32_t max_version, const std::string& what);
  uint32_t version() const { return version_; }
  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  template <typename T>
  void get_vec(std::vector<T>& v) {
    uint64_t n = get<uint64_t>();
    if (n > (end_ - pos_) / sizeof(T)) truncated();
    v.resize(n);
    if (n) std::memcpy(v.data(), data_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
  }
  std::string get_str() {
    uint64_t n = get<uint64_t>();
    need(n);
    std::string s(data_.data() + pos_, n);
    pos_ += n;
    return s;
  }
  void get_strs(std::vector<std::string>& v) {
    uint64_t n = get<uint64_t>();
    if (n > end_ - pos_) truncated();
    v.resize(n);
    for (auto& s : v) s = get_str();
  }
  bool at_end() const { return pos_ == end_; }

 private:
  void need(uint64_t n) {
    if (n > end_ - pos_) truncated();
  }
  [[noreturn]] void truncated();
  std::string data_;
  size_t pos_ = 0, end_ = 0;
  uint32_t version_ = 0;
  std::string path_, what_;
};

}  // namespace siamrec
