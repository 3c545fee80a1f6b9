// IDX files (the MNIST / Fashion-MNIST format): a big-endian header (magic 0x00000803 = unsigned
// bytes in 3 dimensions, 0x00000801 = 1 dimension), the dimension sizes, then the bytes. Plain or
// gzip-compressed (by the ".gz" suffix). Every problem is a DataError naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace siamrec {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct IdxImages {
  int64_t n = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [n, rows, cols] row-major, 0 = background
  const uint8_t* image(int64_t i) const { return pixels.data() + i * rows * cols; }
};

struct IdxLabels {
  std::vector<uint8_t> labels;
};

// Reads a 0x00000803 file; the size must match the header exactly.
IdxImages read_idx_images(const std::string& path);
// Reads a 0x00000801 file; the size must match the header exactly.
IdxLabels read_idx_labels(const std::string& path);

struct FashionMnist {
  IdxImages images;
  IdxLabels labels;  // 0..9, aligned with images
};

// Fashion-MNIST (or MNIST) from `dir`: train-{images-idx3,labels-idx1}-ubyte[.gz] when `train`,
// else t10k-...; the ".gz" file is preferred when both exist. Throws MissingDataError naming the
// file when absent, DataError when image and label counts differ or a label exceeds 9.
FashionMnist load_fashion_mnist(const std::string& dir = kFashionMnistDir, bool train = true);

}  // namespace siamrec
