// Fashion-MNIST as a registered dataset (content/ registers it: it reads IDX image files, which
// data/ does not know). Items only, no users; split `fashion` holds the 10,000 test images out.
#include <cstdlib>

#include <fmt/format.h>

#include "content/idx.h"
#include "data/registry.h"
#include "data/split.h"
#include "util/error.h"

namespace siamrec {
namespace {

// Fashion-MNIST as an item-only dataset: item ids 0..59999 are the train images, 60000..69999 the
// test images (split `fashion`); the category is the item's genre; pixels / 255 are the content.
Dataset parse_fashion_mnist(const DatasetSpec&, const std::string&, const ReadOptions&) {
  const char* env = std::getenv("SIAMREC_FASHION_MNIST_DIR");
  std::string dir = env && *env ? env : kFashionMnistDir;
  FashionMnist tr = load_fashion_mnist(dir, true), te = load_fashion_mnist(dir, false);
  if (tr.images.rows != te.images.rows || tr.images.cols != te.images.cols)
    throw DataError(fmt::format("Fashion-MNIST in '{}': train and test images differ in size", dir));
  Dataset ds;
  const int64_t n = tr.images.n + te.images.n, px = tr.images.rows * tr.images.cols;
  std::vector<std::string> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(std::to_string(i));
  ds.items = IdMap::from_ids(ids);
  ds.item_side.genre_vocab = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  ds.item_side.genres.resize(n);
  ds.item_side.title.resize(n);
  ds.item_side.content.resize(static_cast<size_t>(n * px));
  ds.item_side.content_shape = {1, tr.images.rows, tr.images.cols};
  for (int64_t i = 0; i < n; ++i) {
    bool train = i < tr.images.n;
    int64_t k = train ? i : i - tr.images.n;
    const FashionMnist& f = train ? tr : te;
    int32_t dense = ds.items.find(std::to_string(i));
    uint8_t label = f.labels.labels[k];
    ds.item_side.genres[dense] = {label};
    ds.item_side.title[dense] =
        fmt::format("{} image {} ({})", train ? "train" : "test", k, ds.item_side.genre_vocab[label]);
    const uint8_t* img = f.images.image(k);
    float* out = ds.item_side.content.data() + static_cast<int64_t>(dense) * px;
    for (int64_t q = 0; q < px; ++q) out[q] = img[q] / 255.0f;
  }
  return ds;
}

// Items 0..59999 are the train images, 60000..69999 the test images (held out).
void fashion_split(const Dataset& ds, const std::string&, SplitData& out) {
  for (int32_t i = 0; i < ds.n_items(); ++i)
    if (std::stoll(ds.items.original(i)) >= 60000) out.heldout_items.push_back(i);
}

DatasetSpec fashion_mnist() {
  DatasetSpec s;
  s.name = "fashion-mnist";
  s.description =
      "Fashion-MNIST: 70,000 28x28 grey product images in 10 categories (60,000 train, 10,000 test), "
      "read from the Debian package dataset-fashion-mnist ($SIAMREC_FASHION_MNIST_DIR or "
      "/usr/share/datasets/fashion-mnist); items only, no users";
  s.fixed_splits = {"fashion"};
  s.how_to_get = "apt-get install dataset-fashion-mnist (scripts/install-deps.sh does)";
  s.parse = parse_fashion_mnist;
  s.fixed_split = fashion_split;
  s.order = 60;
  return s;
}

}  // namespace

SIAMREC_REGISTER_DATASET(fashion_mnist, fashion_mnist());

}  // namespace siamrec
