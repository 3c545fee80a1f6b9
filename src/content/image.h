// Images for image towers: decoding (PNG, JPEG, BMP, GIF, ... via stb_image), resizing to a square
// float tensor [channels, size, size] in [0,1] (optionally normalized per channel), an item id ->
// image file table, and a PNG grid writer for looking at retrievals (rows of images, optional
// coloured frames). Errors are DataErrors naming the image file (and the CSV line for tables).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "content/table.h"

namespace siamrec {

struct ImageOptions {
  int size = 64;             // output side in pixels (1..4096)
  int channels = 3;          // 1 = gray (luma), 3 = RGB; alpha is dropped
  bool center_crop = false;  // crop the centred square before resizing; else the image is stretched
  std::vector<float> mean;   // per channel: (x - mean) / std after scaling to [0,1];
  std::vector<float> std;    // both empty = no normalization
};
// Throws ConfigError naming the bad option.
void check_image_options(const ImageOptions& o);

// [channels * size * size] floats, CHW. Resampling uses stb_image_resize's default filters (on the
// [0,1] values, no sRGB conversion); results are clamped to [0,1] before normalization.
std::vector<float> load_image(const std::string& path, const ImageOptions& o);
std::vector<float> load_image(const std::string& path, int size, int channels);
// The same from encoded bytes; `source` names them in errors.
std::vector<float> decode_image(const std::string& bytes, const ImageOptions& o, const std::string& source);

// Images of the items listed in a CSV (see FileTable).
class ImageTable {
 public:
  ImageTable(const std::string& csv_path, const ImageOptions& o, const FileTableFormat& f = {},
             const ReadOptions& r = {});
  const FileTable& files() const { return files_; }
  const ImageOptions& options() const { return opt_; }
  size_t size() const { return files_.size(); }
  int64_t feature_size() const { return int64_t{opt_.channels} * opt_.size * opt_.size; }
  std::vector<float> load(size_t i) const;                    // errors name the CSV line and the file
  std::vector<float> load(const std::string& item_id) const;  // DataError when the id is not listed

 private:
  FileTable files_;
  ImageOptions opt_;
};

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};
inline constexpr Rgb kGreen{0, 170, 0}, kRed{220, 0, 0};

struct GridRow {
  std::vector<std::vector<float>> images;        // each [channels * size * size], CHW, in [0,1]
  std::optional<Rgb> border;                     // frame around every image of the row
  std::vector<std::optional<Rgb>> cell_borders;  // per image (may be shorter); overrides `border`
};

struct GridOptions {
  int cell = 0;     // cell side in pixels; 0 = the image size, else images are resized
  int padding = 2;  // background pixels between and around the framed cells
  int border = 2;   // frame width; the frame is background-coloured where no colour is set
  Rgb background{255, 255, 255};
};

// Writes an RGB PNG: one grid row per GridRow (rows may differ in length), atomically. Values
// outside [0,1] are clamped, NaN is drawn as 0. Throws Error on bad sizes or a failed write.
void write_png_grid(const std::string& path, const std::vector<GridRow>& rows, int channels, int size,
                    const GridOptions& o = {});

}  // namespace siamrec
