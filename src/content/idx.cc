#include "content/idx.h"

#include "util/error.h"
#include "util/io.h"

namespace siamrec {
namespace {

uint32_t be32(const std::string& s, size_t off) {
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[off + k])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

// Reads `path`, checks the magic for `ndims` unsigned-byte dimensions and the exact size; fills
// `dims` and returns the offset of the data.
size_t read_idx(const std::string& path, int ndims, std::string& bytes, std::vector<uint64_t>& dims) {
  if (!file_exists(path)) throw DataError(fmt::format("IDX file '{}' does not exist", path));
  bytes = read_file(path);
  const size_t header = 4 + 4 * static_cast<size_t>(ndims);
  if (bytes.size() < 4)
    throw DataError(fmt::format("IDX file '{}' is truncated ({} bytes, no header)", path, bytes.size()));
  uint32_t magic = be32(bytes, 0), want = 0x00000800u | static_cast<uint32_t>(ndims);
  if (magic != want) {
    if ((magic & 0xFFFF0000u) != 0)
      throw DataError(fmt::format("'{}' is not an IDX file (magic 0x{:08X}, expected 0x{:08X})", path, magic, want));
    if ((magic >> 8 & 0xFF) != 0x08)
      throw DataError(fmt::format("IDX file '{}' has element type 0x{:02X}; only unsigned bytes (0x08) are supported",
                                  path, magic >> 8 & 0xFF));
    throw DataError(fmt::format("IDX file '{}' has {} dimensions, expected {} (magic 0x{:08X}, expected 0x{:08X})",
                                path, magic & 0xFF, ndims, magic, want));
  }
  if (bytes.size() < header)
    throw DataError(fmt::format("IDX file '{}' is truncated ({} bytes, header needs {})", path, bytes.size(), header));
  uint64_t total = 1;
  dims.resize(ndims);
  for (int d = 0; d < ndims; ++d) {
    dims[d] = be32(bytes, 4 + 4 * d);
    if (d > 0 && dims[d] == 0) throw DataError(fmt::format("IDX file '{}' has a zero size in dimension {}", path, d));
    constexpr uint64_t kLimit = uint64_t{1} << 40;
    if (dims[d] != 0 && total > kLimit / dims[d])
      throw DataError(fmt::format("IDX file '{}' has implausible dimensions (over 2^40 bytes of data)", path));
    total *= dims[d];
  }
  uint64_t have = bytes.size() - header;
  if (have < total)
    throw DataError(fmt::format("IDX file '{}' is truncated: the header announces {} bytes of data, the file holds {}",
                                path, total, have));
  if (have > total)
    throw DataError(fmt::format("IDX file '{}' has {} unexpected trailing bytes after the announced {} bytes of data",
                                path, have - total, total));
  return header;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) {
  std::string bytes;
  std::vector<uint64_t> dims;
  size_t off = read_idx(path, 3, bytes, dims);
  IdxImages im;
  im.n = static_cast<int64_t>(dims[0]);
  im.rows = static_cast<int64_t>(dims[1]);
  im.cols = static_cast<int64_t>(dims[2]);
  im.pixels.assign(bytes.begin() + off, bytes.end());
  return im;
}

IdxLabels read_idx_labels(const std::string& path) {
  std::string bytes;
  std::vector<uint64_t> dims;
  size_t off = read_idx(path, 1, bytes, dims);
  IdxLabels l;
  l.labels.assign(bytes.begin() + off, bytes.end());
  return l;
}

FashionMnist load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  auto locate = [&](const std::string& name) {
    std::string p = dir + "/" + name;
    if (file_exists(p + ".gz")) return p + ".gz";
    if (file_exists(p)) return p;
    throw MissingDataError(fmt::format("Fashion-MNIST file '{}.gz' (or '{}') does not exist", p, p));
  };
  std::string img_path = locate(prefix + "-images-idx3-ubyte");
  std::string lab_path = locate(prefix + "-labels-idx1-ubyte");
  FashionMnist f;
  f.images = read_idx_images(img_path);
  f.labels = read_idx_labels(lab_path);
  if (static_cast<int64_t>(f.labels.labels.size()) != f.images.n)
    throw DataError(fmt::format("'{}' holds {} images but '{}' holds {} labels", img_path, f.images.n, lab_path,
                                f.labels.labels.size()));
  for (size_t i = 0; i < f.labels.labels.size(); ++i)
    if (f.labels.labels[i] > 9)
      throw DataError(fmt::format("'{}': label {} of item {} is not a class 0..9", lab_path, f.labels.labels[i], i));
  return f;
}

}  // namespace siamrec
