#include "content/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <memory>

#include "util/error.h"
#include "util/io.h"

// The stb implementations (stbi_load*, stbir_resize_float, stbi_write_png*) come from -lstb.

namespace siamrec {
namespace {

constexpr int kMaxSide = 4096;
constexpr int64_t kMaxDecodedPixels = int64_t{1} << 28;  // refuse absurd images before decoding

// Resizes an interleaved float image (row stride in floats) to out_w x out_h.
void resize(const float* in, int w, int h, int stride, float* out, int out_w, int out_h, int channels) {
  if (w == out_w && h == out_h) {
    for (int y = 0; y < h; ++y)
      std::copy(in + int64_t{y} * stride, in + int64_t{y} * stride + int64_t{w} * channels,
                out + int64_t{y} * out_w * channels);
    return;
  }
  if (!stbir_resize_float(in, w, h, stride * static_cast<int>(sizeof(float)), out, out_w, out_h, 0, channels))
    fail("image resize {}x{} -> {}x{} failed (out of memory)", w, h, out_w, out_h);
}

uint8_t to_byte(float v) {
  if (!(v > 0.f)) return 0;  // also NaN
  if (v >= 1.f) return 255;
  return static_cast<uint8_t>(std::lround(v * 255.f));
}

}  // namespace

void check_image_options(const ImageOptions& o) {
  if (o.size < 1 || o.size > kMaxSide)
    throw ConfigError(fmt::format("image size must be 1..{} pixels (got {})", kMaxSide, o.size));
  if (o.channels != 1 && o.channels != 3)
    throw ConfigError(fmt::format("image channels must be 1 (gray) or 3 (RGB) (got {})", o.channels));
  if (o.mean.size() != o.std.size() || (!o.mean.empty() && o.mean.size() != static_cast<size_t>(o.channels)))
    throw ConfigError(fmt::format("image mean and std need one value per channel ({}), or none (got {} and {})",
                                  o.channels, o.mean.size(), o.std.size()));
  for (float s : o.std)
    if (!(s > 0.f) || !std::isfinite(s)) throw ConfigError(fmt::format("image std values must be > 0 (got {})", s));
  for (float m : o.mean)
    if (!std::isfinite(m)) throw ConfigError(fmt::format("image mean values must be finite (got {})", m));
}

std::vector<float> decode_image(const std::string& bytes, const ImageOptions& o, const std::string& source) {
  check_image_options(o);  // the one check on every path (load_image and ImageTable decode through here)
  if (bytes.empty()) throw DataError(fmt::format("image '{}' is empty", source));
  if (bytes.size() > static_cast<size_t>(INT_MAX)) throw DataError(fmt::format("image '{}' is too large", source));
  auto* buf = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(buf, len, &w, &h, &comp))
    throw DataError(fmt::format("cannot decode image '{}': {}", source, stbi_failure_reason()));
  if (w <= 0 || h <= 0 || int64_t{w} * h > kMaxDecodedPixels)
    throw DataError(fmt::format("image '{}' has unsupported dimensions {}x{}", source, w, h));
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(buf, len, &w, &h, &comp, o.channels),
                                               stbi_image_free);
  if (!px) throw DataError(fmt::format("cannot decode image '{}': {}", source, stbi_failure_reason()));

  const int c = o.channels;
  // Centre square crop (or the whole image), as [0,1] floats, interleaved.
  int cw = w, ch = h, x0 = 0, y0 = 0;
  if (o.center_crop) {
    cw = ch = std::min(w, h);
    x0 = (w - cw) / 2;
    y0 = (h - ch) / 2;
  }
  std::vector<float> src(static_cast<size_t>(cw) * ch * c);
  for (int y = 0; y < ch; ++y) {
    const stbi_uc* row = px.get() + (static_cast<int64_t>(y0 + y) * w + x0) * c;
    float* dst = src.data() + static_cast<int64_t>(y) * cw * c;
    for (int k = 0; k < cw * c; ++k) dst[k] = row[k] * (1.f / 255.f);
  }
  px.reset();

  const int s = o.size;
  std::vector<float> hwc(static_cast<size_t>(s) * s * c);
  resize(src.data(), cw, ch, cw * c, hwc.data(), s, s, c);

  std::vector<float> out(hwc.size());  // CHW
  for (int k = 0; k < c; ++k) {
    const float mean = o.mean.empty() ? 0.f : o.mean[k], inv = o.std.empty() ? 1.f : 1.f / o.std[k];
    float* plane = out.data() + static_cast<int64_t>(k) * s * s;
    for (int64_t p = 0; p < int64_t{s} * s; ++p) plane[p] = (std::clamp(hwc[p * c + k], 0.f, 1.f) - mean) * inv;
  }
  return out;
}

std::vector<float> load_image(const std::string& path, const ImageOptions& o) {
  if (!file_exists(path)) throw DataError(fmt::format("image file '{}' does not exist", path));
  return decode_image(read_file(path), o, path);
}

std::vector<float> load_image(const std::string& path, int size, int channels) {
  ImageOptions o;
  o.size = size;
  o.channels = channels;
  return load_image(path, o);
}

// ---- tables -------------------------------------------------------------------------------------

ImageTable::ImageTable(const std::string& csv_path, const ImageOptions& o, const FileTableFormat& f,
                       const ReadOptions& r)
    : files_((check_image_options(o), FileTable::read(csv_path, f, r))), opt_(o) {}

std::vector<float> ImageTable::load(size_t i) const {
  try {
    return load_image(files_.path(i), opt_);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", files_.where(i), e.what()));
  }
}

std::vector<float> ImageTable::load(const std::string& item_id) const { return load(files_.at(item_id)); }

// ---- grids --------------------------------------------------------------------------------------

void write_png_grid(const std::string& path, const std::vector<GridRow>& rows, int channels, int size,
                    const GridOptions& o) {
  if (channels != 1 && channels != 3) fail("write_png_grid '{}': channels must be 1 or 3 (got {})", path, channels);
  if (size < 1 || size > kMaxSide) fail("write_png_grid '{}': image size must be 1..{} (got {})", path, kMaxSide, size);
  const int cell = o.cell == 0 ? size : o.cell;
  if (cell < 1 || cell > kMaxSide)
    fail("write_png_grid '{}': cell must be 0 or 1..{} (got {})", path, kMaxSide, o.cell);
  if (o.padding < 0 || o.padding > 256 || o.border < 0 || o.border > 256)
    fail("write_png_grid '{}': padding and border must be 0..256 (got {} and {})", path, o.padding, o.border);
  size_t cols = 0;
  for (auto& r : rows) cols = std::max(cols, r.images.size());
  if (rows.empty() || cols == 0) fail("write_png_grid '{}': no images to draw", path);

  const int64_t box = cell + 2 * int64_t{o.border};
  const int64_t W = static_cast<int64_t>(cols) * box + (static_cast<int64_t>(cols) + 1) * o.padding;
  const int64_t H = static_cast<int64_t>(rows.size()) * box + (static_cast<int64_t>(rows.size()) + 1) * o.padding;
  if (W > 32768 || H > 32768) fail("write_png_grid '{}': the grid would be {}x{} pixels (limit 32768)", path, W, H);

  std::vector<uint8_t> img(static_cast<size_t>(W * H * 3));
  for (int64_t p = 0; p < W * H; ++p) {
    img[3 * p] = o.background.r;
    img[3 * p + 1] = o.background.g;
    img[3 * p + 2] = o.background.b;
  }
  auto fill = [&](int64_t x0, int64_t y0, int64_t w, int64_t h, Rgb c) {
    for (int64_t y = y0; y < y0 + h; ++y)
      for (int64_t x = x0; x < x0 + w; ++x) {
        uint8_t* q = &img[3 * (y * W + x)];
        q[0] = c.r;
        q[1] = c.g;
        q[2] = c.b;
      }
  };

  const int64_t plane = int64_t{size} * size;
  std::vector<float> hwc(static_cast<size_t>(plane) * channels), cellbuf(static_cast<size_t>(cell) * cell * channels);
  for (size_t r = 0; r < rows.size(); ++r) {
    const GridRow& row = rows[r];
    for (size_t k = 0; k < row.images.size(); ++k) {
      const auto& im = row.images[k];
      if (static_cast<int64_t>(im.size()) != plane * channels)
        fail("write_png_grid '{}': row {} image {} has {} values, expected {} ({}x{}x{})", path, r, k, im.size(),
             plane * channels, channels, size, size);
      const int64_t bx = static_cast<int64_t>(k) * (box + o.padding) + o.padding;
      const int64_t by = static_cast<int64_t>(r) * (box + o.padding) + o.padding;
      std::optional<Rgb> frame = k < row.cell_borders.size() && row.cell_borders[k] ? row.cell_borders[k] : row.border;
      if (frame && o.border > 0) fill(bx, by, box, box, *frame);
      // CHW -> HWC, clamped to [0,1] (NaN -> 0) before any resizing spreads it.
      for (int c = 0; c < channels; ++c)
        for (int64_t p = 0; p < plane; ++p) {
          float v = im[c * plane + p];
          hwc[p * channels + c] = std::isnan(v) ? 0.f : std::clamp(v, 0.f, 1.f);
        }
      resize(hwc.data(), size, size, size * channels, cellbuf.data(), cell, cell, channels);
      for (int y = 0; y < cell; ++y)
        for (int x = 0; x < cell; ++x) {
          const float* v = &cellbuf[(static_cast<int64_t>(y) * cell + x) * channels];
          uint8_t* q = &img[3 * ((by + o.border + y) * W + bx + o.border + x)];
          for (int c = 0; c < 3; ++c) q[c] = to_byte(v[channels == 3 ? c : 0]);
        }
    }
  }

  std::string png;
  auto sink = [](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), n); };
  if (!stbi_write_png_to_func(sink, &png, static_cast<int>(W), static_cast<int>(H), 3, img.data(),
                              static_cast<int>(W * 3)))
    fail("cannot encode PNG '{}' ({}x{})", path, W, H);
  atomic_write(path, png);
}

}  // namespace siamrec
