// Content data layer: tokenizer, IDX files, images (decode, resize, tables, PNG grids) and audio
// (WAV reading, resampling, log-mel). Every fixture is written by the test into a temporary folder.
#include <gtest/gtest.h>
#include <sndfile.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "content/audio.h"
#include "content/idx.h"
#include "content/image.h"
#include "content/tokenizer.h"
#include "util/error.h"
#include "util/io.h"
#include "testutil.h"

namespace siamrec {
namespace {
namespace fs = std::filesystem;

// A fresh temporary directory, removed when the object dies.
class Tmp {
 public:
  Tmp() {
    std::string t = (fs::temp_directory_path() / "siamrec-content-XXXXXX").string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~Tmp() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  // The path of `name` inside the folder (its parent folders are created).
  std::string path(const std::string& name) const {
    std::string p = path_ + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    return p;
  }
  std::string file(const std::string& name, const std::string& content) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::string path_;
};

using test::error_of;

#define EXPECT_HAS(msg, part) EXPECT_NE(std::string(msg).find(part), std::string::npos) << (msg)

// ---- tokenizer ----------------------------------------------------------------------------------

TEST(Tokenizer, WordsLowercaseAndUtf8) {
  auto w = Tokenizer::words("Hello, WORLD! na\xC3\xAFve caf\xC3\xA9-au-lait 42 don't", true);
  std::vector<std::string> want = {"hello", "world", "na\xC3\xAFve", "caf\xC3\xA9", "au", "lait", "42", "don", "t"};
  EXPECT_EQ(w, want);
  EXPECT_EQ(Tokenizer::words("ABC d", false), (std::vector<std::string>{"ABC", "d"}));
  EXPECT_TRUE(Tokenizer::words(" ,.;-- ", true).empty());
}

TEST(Tokenizer, VocabularyOrderMinCountAndUnknown) {
  TokenizerOptions o;
  o.min_count = 2;
  Tokenizer t(o);
  t.fit({"b a c", "C b", "c d d"});  // counts: c 3, b 2, d 2, a 1
  ASSERT_EQ(t.size(), 5);
  EXPECT_EQ(t.token(0), "<pad>");
  EXPECT_EQ(t.token(1), "<unk>");
  EXPECT_EQ(t.token(2), "c");
  EXPECT_EQ(t.token(3), "b");  // tie with d broken by token order
  EXPECT_EQ(t.token(4), "d");
  EXPECT_EQ(t.count(2), 3);
  EXPECT_EQ(t.id("a"), Tokenizer::kUnk);
  EXPECT_EQ(t.id("<pad>"), Tokenizer::kPad);
  EXPECT_EQ(t.encode("A b C zzz d"), (std::vector<int32_t>{1, 3, 2, 1, 4}));
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_HAS(error_of([&] { t.token(5); }), "out of range");

  // Same vocabulary whatever the order of the texts.
  Tokenizer u(o);
  u.fit({"c d d", "b a c", "C b"});
  for (int32_t i = 0; i < t.size(); ++i) EXPECT_EQ(t.token(i), u.token(i));
}

TEST(Tokenizer, CaseKeptWhenNotLowering) {
  TokenizerOptions o;
  o.lower = false;
  Tokenizer t(o);
  t.fit({"Apple apple"});
  EXPECT_EQ(t.size(), 4);
  EXPECT_NE(t.id("Apple"), t.id("apple"));
}

TEST(Tokenizer, CharNgrams) {
  TokenizerOptions o;
  o.char_ngrams = 3;
  Tokenizer t(o);
  EXPECT_EQ(t.tokens("Cat"), (std::vector<std::string>{"cat", "#<ca", "#cat", "#at>"}));
  EXPECT_EQ(t.tokens("a"), (std::vector<std::string>{"a", "#<a>"}));
  o.char_ngrams = 2;  // n-grams never split a UTF-8 sequence
  EXPECT_EQ(Tokenizer(o).tokens("\xC3\xA9t"),
            (std::vector<std::string>{"\xC3\xA9t", "#<\xC3\xA9", "#\xC3\xA9t", "#t>"}));
  t.fit({"cat", "cats"});
  // An unseen word still shares n-grams with the vocabulary.
  auto ids = t.encode("cab");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], Tokenizer::kUnk);
  EXPECT_EQ(ids[1], t.id("#<ca"));
  EXPECT_NE(ids[1], Tokenizer::kUnk);
}

TEST(Tokenizer, MaxVocabAndMaxLen) {
  TokenizerOptions o;
  o.max_vocab = 2;
  o.max_len = 3;
  Tokenizer t(o);
  t.fit({"x x x y y z w"});
  EXPECT_EQ(t.size(), 4);
  EXPECT_EQ(t.token(2), "x");
  EXPECT_EQ(t.token(3), "y");
  EXPECT_EQ(t.encode("z y x x x"), (std::vector<int32_t>{1, 3, 2}));
}

TEST(Tokenizer, BadOptionsAndUnfitted) {
  TokenizerOptions o;
  o.min_count = 0;
  EXPECT_HAS(error_of<ConfigError>([&] { Tokenizer t(o); }), "min_count");
  o = {};
  o.char_ngrams = -1;
  EXPECT_HAS(error_of<ConfigError>([&] { Tokenizer t(o); }), "char_ngrams");
  Tokenizer t;
  EXPECT_HAS(error_of([&] { t.encode("a"); }), "not fitted");
}

TEST(Tokenizer, SaveLoadRoundTrip) {
  TokenizerOptions o;
  o.char_ngrams = 2;
  o.max_len = 7;
  o.lower = false;
  Tokenizer t(o);
  t.fit({"Red shoes", "blue Shoes", "red hat"});
  Tokenizer u = Tokenizer::load(t.save());
  EXPECT_EQ(u.size(), t.size());
  EXPECT_EQ(u.options().char_ngrams, 2);
  EXPECT_EQ(u.options().max_len, 7);
  EXPECT_FALSE(u.options().lower);
  for (int32_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(u.token(i), t.token(i));
    EXPECT_EQ(u.count(i), t.count(i));
  }
  EXPECT_EQ(u.encode("red Shoes hat"), t.encode("red Shoes hat"));
  EXPECT_FALSE(Tokenizer::load(Tokenizer().save()).fitted());
}

TEST(Tokenizer, CorruptBlob) {
  Tokenizer t;
  t.fit({"a b c"});
  std::string blob = t.save();
  std::string flipped = blob;
  flipped[20] ^= 0x55;
  EXPECT_HAS(error_of([&] { Tokenizer::load(flipped, "m.model"); }), "tokenizer 'm.model'");
  EXPECT_HAS(error_of([&] { Tokenizer::load(flipped); }), "checksum");
  EXPECT_HAS(error_of([&] { Tokenizer::load(blob.substr(0, 10), "blob X"); }), "blob X");
  EXPECT_HAS(error_of([&] { Tokenizer::load(std::string(100, 'z'), "blob Y"); }), "wrong magic");
  EXPECT_HAS(error_of([&] { Tokenizer::load(""); }), "truncated");
}

// ---- IDX ----------------------------------------------------------------------------------------

std::string idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s;
  auto be = [&](uint32_t v) {
    for (int k = 3; k >= 0; --k) s.push_back(static_cast<char>(v >> (8 * k) & 0xFF));
  };
  be(magic);
  for (auto d : dims) be(d);
  s.append(data.begin(), data.end());
  return s;
}

std::string write_gz(const std::string& path, const std::string& content) {
  gzFile f = gzopen(path.c_str(), "wb");
  EXPECT_TRUE(f != nullptr);
  EXPECT_EQ(gzwrite(f, content.data(), static_cast<unsigned>(content.size())), static_cast<int>(content.size()));
  gzclose(f);
  return path;
}

TEST(Idx, ReadsPlainAndGzip) {
  Tmp d;
  std::vector<uint8_t> px(2 * 3 * 4);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 10);
  std::string bytes = idx_bytes(0x803, {2, 3, 4}, px);
  for (const std::string& p : {d.file("im-idx3-ubyte", bytes), write_gz(d.path("im-idx3-ubyte.gz"), bytes)}) {
    IdxImages im = read_idx_images(p);
    EXPECT_EQ(im.n, 2);
    EXPECT_EQ(im.rows, 3);
    EXPECT_EQ(im.cols, 4);
    EXPECT_EQ(im.pixels, px);
    EXPECT_EQ(im.image(1)[0], 120);
  }
  IdxLabels l = read_idx_labels(write_gz(d.path("l.gz"), idx_bytes(0x801, {3}, {7, 0, 9})));
  EXPECT_EQ(l.labels, (std::vector<uint8_t>{7, 0, 9}));
  EXPECT_EQ(read_idx_labels(d.file("empty", idx_bytes(0x801, {0}, {}))).labels.size(), 0u);
}

TEST(Idx, ErrorsNameTheFile) {
  Tmp d;
  std::string ok = idx_bytes(0x803, {2, 2, 2}, std::vector<uint8_t>(8, 1));
  std::string trunc = d.file("trunc-idx3", ok.substr(0, ok.size() - 3));
  std::string e = error_of<DataError>([&] { read_idx_images(trunc); });
  EXPECT_HAS(e, trunc);
  EXPECT_HAS(e, "truncated");
  std::string gz = write_gz(d.path("trunc.gz"), ok.substr(0, 10));
  EXPECT_HAS(error_of<DataError>([&] { read_idx_images(gz); }), gz);
  std::string header = d.file("hdr", ok.substr(0, 2));
  EXPECT_HAS(error_of<DataError>([&] { read_idx_images(header); }), header);
  std::string junk = d.file("junk", "PK\3\4 this is not an idx file");
  e = error_of<DataError>([&] { read_idx_images(junk); });
  EXPECT_HAS(e, junk);
  EXPECT_HAS(e, "not an IDX file");
  std::string labels = d.file("labels", idx_bytes(0x801, {2}, {1, 2}));
  e = error_of<DataError>([&] { read_idx_images(labels); });
  EXPECT_HAS(e, labels);
  EXPECT_HAS(e, "dimensions");
  std::string floats = d.file("floats", idx_bytes(0x0D01, {1}, {0, 0, 0, 0}));
  EXPECT_HAS(error_of<DataError>([&] { read_idx_labels(floats); }), "element type 0x0D");
  std::string extra = d.file("extra", idx_bytes(0x801, {2}, {1, 2, 3}));
  EXPECT_HAS(error_of<DataError>([&] { read_idx_labels(extra); }), "trailing");
  std::string huge = d.file("huge", idx_bytes(0x803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  EXPECT_HAS(error_of<DataError>([&] { read_idx_images(huge); }), huge);
  EXPECT_HAS(error_of<DataError>([&] { read_idx_images(d.path("absent")); }), "does not exist");
}

TEST(Idx, FashionMnistLayoutChecks) {
  Tmp d;
  write_gz(d.path("train-images-idx3-ubyte.gz"), idx_bytes(0x803, {3, 2, 2}, std::vector<uint8_t>(12, 5)));
  write_gz(d.path("train-labels-idx1-ubyte.gz"), idx_bytes(0x801, {3}, {0, 9, 4}));
  FashionMnist f = load_fashion_mnist(d.path(""), true);
  EXPECT_EQ(f.images.n, 3);
  EXPECT_EQ(f.labels.labels, (std::vector<uint8_t>{0, 9, 4}));

  // Test split missing: MissingDataError naming the file.
  std::string e = error_of<MissingDataError>([&] { load_fashion_mnist(d.path(""), false); });
  EXPECT_HAS(e, "t10k-images-idx3-ubyte");

  // Plain files are accepted; count mismatch and bad labels name the files.
  d.file("t10k-images-idx3-ubyte", idx_bytes(0x803, {2, 1, 1}, {1, 2}));
  d.file("t10k-labels-idx1-ubyte", idx_bytes(0x801, {3}, {1, 2, 3}));
  e = error_of<DataError>([&] { load_fashion_mnist(d.path(""), false); });
  EXPECT_HAS(e, "t10k-images-idx3-ubyte");
  EXPECT_HAS(e, "t10k-labels-idx1-ubyte");
  d.file("t10k-labels-idx1-ubyte", idx_bytes(0x801, {2}, {1, 12}));
  EXPECT_HAS(error_of<DataError>([&] { load_fashion_mnist(d.path(""), false); }), "label 12");
}

TEST(Idx, RealFashionMnistTestSet) {
  if (!dir_exists(kFashionMnistDir)) GTEST_SKIP() << kFashionMnistDir << " is absent";
  FashionMnist f = load_fashion_mnist(kFashionMnistDir, false);
  EXPECT_EQ(f.images.n, 10000);
  EXPECT_EQ(f.images.rows, 28);
  EXPECT_EQ(f.images.cols, 28);
  EXPECT_EQ(f.images.pixels.size(), 10000u * 28 * 28);
  std::vector<int> per_class(10, 0);
  for (auto l : f.labels.labels) ++per_class.at(l);
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << "class " << c;
}

// ---- images -------------------------------------------------------------------------------------

// Writes a w x h RGB PNG from interleaved bytes.
std::string write_png(const std::string& path, int w, int h, int comp, const std::vector<uint8_t>& px) {
  EXPECT_EQ(px.size(), static_cast<size_t>(w * h * comp));
  EXPECT_TRUE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp));
  return path;
}

// 2x2 RGB: red, green / blue, white.
std::vector<uint8_t> quad() { return {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255}; }

TEST(Image, LoadsExactAtNativeSize) {
  Tmp d;
  std::string p = write_png(d.path("q.png"), 2, 2, 3, quad());
  auto v = load_image(p, 2, 3);  // CHW
  ASSERT_EQ(v.size(), 12u);
  std::vector<float> r(v.begin(), v.begin() + 4), g(v.begin() + 4, v.begin() + 8), b(v.begin() + 8, v.end());
  EXPECT_EQ(r, (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(g, (std::vector<float>{0, 1, 0, 1}));
  EXPECT_EQ(b, (std::vector<float>{0, 0, 1, 1}));

  ImageOptions o;
  o.size = 2;
  o.channels = 3;
  o.mean = {0.5f, 0.5f, 0.5f};
  o.std = {0.5f, 0.25f, 1.f};
  auto n = load_image(p, o);
  EXPECT_FLOAT_EQ(n[0], 1.f);    // (1 - .5) / .5
  EXPECT_FLOAT_EQ(n[4], -2.f);   // (0 - .5) / .25
  EXPECT_FLOAT_EQ(n[11], 0.5f);  // (1 - .5) / 1
}

TEST(Image, GrayConversionAndResize) {
  Tmp d;
  std::vector<uint8_t> gray(8 * 8, 128);
  std::string p = write_png(d.path("g.png"), 8, 8, 1, gray);
  auto one = load_image(p, 4, 1);
  ASSERT_EQ(one.size(), 16u);
  for (float x : one) EXPECT_NEAR(x, 128 / 255.f, 1e-4);
  auto rgb = load_image(p, 3, 3);  // gray file as RGB: three equal planes
  ASSERT_EQ(rgb.size(), 27u);
  for (float x : rgb) EXPECT_NEAR(x, 128 / 255.f, 1e-4);

  // Down to one pixel: the mean colour; up to 4x4: values stay in [0,1], corners keep their colour.
  std::string q = write_png(d.path("q.png"), 2, 2, 3, quad());
  auto m = load_image(q, 1, 3);
  EXPECT_NEAR(m[0], 0.5f, 0.02);
  EXPECT_NEAR(m[1], 0.5f, 0.02);
  EXPECT_NEAR(m[2], 0.5f, 0.02);
  auto up = load_image(q, 4, 3);
  ASSERT_EQ(up.size(), 48u);
  for (float x : up) EXPECT_TRUE(x >= 0.f && x <= 1.f);
  EXPECT_GT(up[0], 0.8f);        // red plane, top-left
  EXPECT_LT(up[16 + 0], 0.2f);   // green plane, top-left
  EXPECT_GT(up[32 + 12], 0.8f);  // blue plane, bottom-left
}

TEST(Image, CenterCrop) {
  Tmp d;
  // 4x2: columns black, red, red, black -> the centred 2x2 square is all red.
  std::vector<uint8_t> px;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 4; ++x) {
      bool red = x == 1 || x == 2;
      px.insert(px.end(), {static_cast<uint8_t>(red ? 255 : 0), 0, 0});
    }
  std::string p = write_png(d.path("wide.png"), 4, 2, 3, px);
  ImageOptions o;
  o.size = 2;
  o.center_crop = true;
  auto v = load_image(p, o);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(v[i], 1.f);
  o.center_crop = false;  // stretched: the black columns survive at the edges
  v = load_image(p, o);
  EXPECT_LT(v[0], 0.9f);
}

TEST(Image, ErrorsNameTheFile) {
  Tmp d;
  std::string bad = d.file("bad.png", "\x89PNG\r\n\x1a\n this is not really a png");
  std::string e = error_of<DataError>([&] { load_image(bad, 4, 3); });
  EXPECT_HAS(e, bad);
  EXPECT_HAS(e, "cannot decode");
  std::string empty = d.file("empty.jpg", "");
  EXPECT_HAS(error_of<DataError>([&] { load_image(empty, 4, 3); }), empty);
  EXPECT_HAS(error_of<DataError>([&] { load_image(d.path("none.png"), 4, 3); }), "does not exist");
  // A valid PNG cut in half.
  std::string q = write_png(d.path("q.png"), 2, 2, 3, quad());
  std::string half = read_file(q);
  half.resize(half.size() / 2);
  std::string cut = d.file("cut.png", half);
  EXPECT_HAS(error_of<DataError>([&] { load_image(cut, 2, 3); }), cut);
  EXPECT_HAS(error_of<ConfigError>([&] { load_image(q, 2, 4); }), "channels");
  EXPECT_HAS(error_of<ConfigError>([&] { load_image(q, 0, 3); }), "size");
}

TEST(Image, Table) {
  Tmp d;
  write_png(d.path("img/a.png"), 2, 2, 3, quad());
  write_png(d.path("img/b.png"), 2, 2, 3, std::vector<uint8_t>(12, 0));
  d.file("img/c.png", "garbage");
  std::string csv = d.file("items.csv",
                           "item_id,title,path\n"
                           "10,first,img/a.png\n"
                           "\n"
                           "\"20\",\"second, with comma\",img/b.png\n"
                           "30,third,img/c.png\n");
  ImageOptions o;
  o.size = 2;
  ImageTable t(csv, o);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.feature_size(), 12);
  EXPECT_EQ(t.files().id(1), "20");
  EXPECT_EQ(t.files().line(1), 4);
  EXPECT_EQ(t.load("10")[0], 1.f);
  EXPECT_EQ(t.load("20")[0], 0.f);
  std::string e = error_of<DataError>([&] { t.load("30"); });
  EXPECT_HAS(e, csv + ":5");
  EXPECT_HAS(e, "img/c.png");
  EXPECT_HAS(error_of<DataError>([&] { t.load("99"); }), "'99' is not listed");

  // Malformed tables name the CSV line.
  std::string missing = d.file("m.csv", "item_id,path\n1,img/a.png\n2,img/nope.png\n");
  e = error_of<DataError>([&] { ImageTable x(missing, o); });
  EXPECT_HAS(e, missing + ":3");
  EXPECT_HAS(e, "nope.png");
  std::string dup = d.file("dup.csv", "item_id,path\n1,img/a.png\n1,img/b.png\n");
  EXPECT_HAS(error_of<DataError>([&] { ImageTable x(dup, o); }), "listed twice (first on line 2)");
  std::string cols = d.file("cols.csv", "id,file\n1,img/a.png\n");
  EXPECT_HAS(error_of<DataError>([&] { ImageTable x(cols, o); }), "needs columns 'item_id' and 'path'");
  std::string fields = d.file("fields.csv", "item_id,path\n1,img/a.png,extra\n");
  EXPECT_HAS(error_of<DataError>([&] { ImageTable x(fields, o); }), fields + ":2: 3 fields");

  // Column names are configurable; bad lines can be skipped.
  FileTableFormat f;
  f.id_column = "id";
  f.path_column = "file";
  EXPECT_EQ(ImageTable(cols, o, f).size(), 1u);
  ReadOptions skip;
  skip.skip_bad_lines = true;
  EXPECT_EQ(ImageTable(missing, o, {}, skip).size(), 1u);
}

TEST(Image, PngGrid) {
  Tmp d;
  const int s = 3;
  std::vector<float> white(3 * s * s, 1.f), black(3 * s * s, 0.f), gray(s * s, 0.5f);
  std::vector<float> red(3 * s * s, 0.f);
  std::fill(red.begin(), red.begin() + s * s, 1.f);
  GridRow r0;
  r0.images = {red, black};
  r0.cell_borders = {kGreen};
  GridRow r1;
  r1.images = {white};
  r1.border = kRed;
  GridOptions o;
  o.padding = 1;
  o.border = 2;
  o.background = {10, 20, 30};
  std::string p = d.path("out/grid.png");
  write_png_grid(p, {r0, r1}, 3, s, o);
  EXPECT_TRUE(file_exists(p));

  int w = 0, h = 0, c = 0;
  stbi_uc* px = stbi_load(p.c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr);
  const int box = s + 2 * o.border;
  EXPECT_EQ(w, 2 * box + 3 * o.padding);
  EXPECT_EQ(h, 2 * box + 3 * o.padding);
  auto at = [&](int x, int y) {
    return std::vector<int>{px[3 * (y * w + x)], px[3 * (y * w + x) + 1], px[3 * (y * w + x) + 2]};
  };
  const int in0 = o.padding + o.border;                                  // first image pixel, row/col 0
  const int in1 = o.padding + box + o.padding + o.border;                // row/col 1
  EXPECT_EQ(at(0, 0), (std::vector<int>{10, 20, 30}));                   // background
  EXPECT_EQ(at(o.padding, o.padding), (std::vector<int>{0, 170, 0}));    // green frame of (0,0)
  EXPECT_EQ(at(in0, in0), (std::vector<int>{255, 0, 0}));                // red image
  EXPECT_EQ(at(in1 - o.border, in0), (std::vector<int>{10, 20, 30}));    // (0,1) has no frame
  EXPECT_EQ(at(in1 + s - 1, in0 + s - 1), (std::vector<int>{0, 0, 0}));  // black image
  EXPECT_EQ(at(in0 - 1, in1), (std::vector<int>{220, 0, 0}));            // red frame of (1,0)
  EXPECT_EQ(at(in0 + 1, in1 + 1), (std::vector<int>{255, 255, 255}));    // white image
  EXPECT_EQ(at(in1, in1), (std::vector<int>{10, 20, 30}));               // empty cell
  stbi_image_free(px);

  // Gray input, resized cells.
  GridOptions big;
  big.cell = 6;
  big.border = 0;
  big.padding = 0;
  write_png_grid(p, {GridRow{{gray, gray}, {}, {}}}, 1, s, big);
  px = stbi_load(p.c_str(), &w, &h, &c, 3);
  ASSERT_NE(px, nullptr);
  EXPECT_EQ(w, 12);
  EXPECT_EQ(h, 6);
  EXPECT_EQ(at(7, 3), (std::vector<int>{128, 128, 128}));
  stbi_image_free(px);

  EXPECT_HAS(error_of([&] { write_png_grid(p, {GridRow{{gray}, {}, {}}}, 3, s); }), "row 0 image 0 has 9 values");
  EXPECT_HAS(error_of([&] { write_png_grid(p, {}, 3, s); }), "no images");
}

// ---- audio --------------------------------------------------------------------------------------

void write_sound(const std::string& path, int rate, int channels, const std::vector<float>& interleaved,
                 int format = SF_FORMAT_WAV | SF_FORMAT_PCM_16) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  EXPECT_EQ(sf_writef_float(f, interleaved.data(), interleaved.size() / channels),
            static_cast<sf_count_t>(interleaved.size() / channels));
  sf_close(f);
}

std::vector<float> sine(double hz, int rate, double seconds, float amp = 0.5f) {
  std::vector<float> x(static_cast<size_t>(rate * seconds));
  for (size_t i = 0; i < x.size(); ++i) x[i] = amp * static_cast<float>(std::sin(2 * M_PI * hz * i / rate));
  return x;
}

// Band with the most energy in the middle frame.
int peak_band(const std::vector<float>& feat, int n_mels) {
  const size_t frames = feat.size() / n_mels, t = frames / 2;
  auto row = feat.begin() + t * n_mels;
  return static_cast<int>(std::max_element(row, row + n_mels) - row);
}

void expect_band_contains(const LogMel& mel, int band, double hz) {
  const auto& e = mel.band_edges_hz();
  EXPECT_LE(e[band], hz) << "band " << band;
  EXPECT_GE(e[band + 2], hz) << "band " << band;
}

TEST(Audio, SinePeakInTheRightMelBand) {
  Tmp d;
  std::string p = d.path("a440.wav");
  write_sound(p, 16000, 1, sine(440, 16000, 1.0));
  Audio a = read_wav(p);
  EXPECT_EQ(a.sample_rate, 16000);
  EXPECT_EQ(a.channels, 1);
  ASSERT_EQ(a.samples.size(), 16000u);
  EXPECT_NEAR(*std::max_element(a.samples.begin(), a.samples.end()), 0.5f, 1e-3);

  LogMel mel(MelOptions{});
  EXPECT_EQ(mel.n_frames(16000), 63);
  auto f = mel.compute(a.samples);
  ASSERT_EQ(f.size(), 63u * 64);
  int band = peak_band(f, 64);
  expect_band_contains(mel, band, 440);
  // Far bands are much quieter.
  EXPECT_GT(f[31 * 64 + band] - f[31 * 64 + 50], 5.f);

  // The filterbank has one triangle per band.
  ASSERT_EQ(mel.filterbank().size(), 64u * 257);
  EXPECT_EQ(mel.band_edges_hz().size(), 66u);
  EXPECT_NEAR(mel.band_edges_hz().back(), 8000, 1e-6);
}

TEST(Audio, StereoIsAveraged) {
  Tmp d;
  std::vector<float> left = sine(440, 8000, 0.1), st;
  for (float x : left) st.insert(st.end(), {x, 0.25f});
  std::string p = d.path("st.wav");
  write_sound(p, 8000, 2, st, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
  Audio a = read_wav(p);
  EXPECT_EQ(a.channels, 2);
  ASSERT_EQ(a.samples.size(), left.size());
  for (size_t i = 0; i < left.size(); ++i) EXPECT_FLOAT_EQ(a.samples[i], (left[i] + 0.25f) / 2);
}

TEST(Audio, ResamplingKeepsThePeakBand) {
  std::vector<float> x = {0, 1, 2, 3};
  EXPECT_EQ(resample_linear(x, 1, 2), (std::vector<float>{0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3}));
  EXPECT_EQ(resample_linear(x, 2, 1), (std::vector<float>{0, 2}));
  EXPECT_EQ(resample_linear(x, 5, 5), x);
  EXPECT_TRUE(resample_linear({}, 8000, 16000).empty());
  EXPECT_HAS(error_of([&] { resample_linear(x, 0, 1); }), "rates");

  Tmp d;
  std::string p = d.path("a440-8k.wav");
  write_sound(p, 8000, 1, sine(440, 8000, 1.0));
  LogMel mel(MelOptions{});
  auto f = mel.compute_file(p);
  ASSERT_EQ(f.size() % 64, 0u);
  EXPECT_EQ(f.size() / 64, 63u);  // 16000 samples after resampling
  expect_band_contains(mel, peak_band(f, 64), 440);
}

TEST(Audio, FixedFramesPadAndCrop) {
  MelOptions o;
  o.frames = 10;
  LogMel crop(o);
  auto x = sine(1000, 16000, 0.5);
  auto f = crop.compute(x);
  ASSERT_EQ(f.size(), 10u * 64);
  LogMel full(MelOptions{});
  auto g = full.compute(x);
  EXPECT_TRUE(std::equal(f.begin(), f.end(), g.begin()));
  o.frames = 100;
  LogMel pad(o);
  auto h = pad.compute(x);
  ASSERT_EQ(h.size(), 100u * 64);
  EXPECT_TRUE(std::equal(g.begin(), g.end(), h.begin()));
  EXPECT_FLOAT_EQ(h.back(), std::log(1e-6f));
  // Empty and very short inputs give finite features.
  for (auto& v : {std::vector<float>{}, std::vector<float>{0.3f}, std::vector<float>(5, 0.1f)}) {
    auto e = full.compute(v);
    ASSERT_EQ(e.size(), 64u);
    for (float y : e) EXPECT_TRUE(std::isfinite(y));
  }
}

TEST(Audio, ThreadsGiveIdenticalResults) {
  auto x = sine(300, 16000, 0.5);
  LogMel mel(MelOptions{});
  auto want = mel.compute(x);
  std::vector<std::vector<float>> got(2);
  std::vector<std::thread> ts;
  for (int k = 0; k < 2; ++k)
    ts.emplace_back([&, k] {
      LogMel own(MelOptions{});  // plan creation under the planner lock
      got[k] = k == 0 ? mel.compute(x) : own.compute(x);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(got[0], want);
  EXPECT_EQ(got[1], want);
}

TEST(Audio, ErrorsNameTheFile) {
  Tmp d;
  std::string txt = d.file("notes.wav", "this is not a sound file, just text\n");
  std::string e = error_of<DataError>([&] { read_wav(txt); });
  EXPECT_HAS(e, txt);
  EXPECT_HAS(e, "cannot read audio file");
  std::string riff = d.file("riff.wav", std::string("RIFF\x10\0\0\0WAVEfmt ", 16));
  EXPECT_HAS(error_of<DataError>([&] { read_wav(riff); }), riff);
  EXPECT_HAS(error_of<DataError>([&] { read_wav(d.path("absent.wav")); }), "does not exist");

  MelOptions o;
  o.fmax = 9000;
  EXPECT_HAS(error_of<ConfigError>([&] { LogMel m(o); }), "fmax");
  o = {};
  o.n_fft = 1;
  EXPECT_HAS(error_of<ConfigError>([&] { LogMel m(o); }), "n_fft");
  o = {};
  o.hop = 0;
  EXPECT_HAS(error_of<ConfigError>([&] { LogMel m(o); }), "hop");
}

TEST(Audio, Table) {
  Tmp d;
  write_sound(d.path("snd/a.wav"), 16000, 1, sine(440, 16000, 0.25));
  d.file("snd/b.wav", "junk");
  std::string csv = d.file("sounds.csv", "item_id,path\nx,snd/a.wav\ny,snd/b.wav\n");
  MelOptions o;
  o.frames = 20;
  o.n_mels = 32;
  AudioTable t(csv, o);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t.load("x").size(), 20u * 32);
  std::string e = error_of<DataError>([&] { t.load("y"); });
  EXPECT_HAS(e, csv + ":3");
  EXPECT_HAS(e, "snd/b.wav");
}

}  // namespace
}  // namespace siamrec
