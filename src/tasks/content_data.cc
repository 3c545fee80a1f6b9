#include "tasks/content_data.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "config/config.h"
#include "content/audio.h"
#include "content/image.h"
#include "data/readers.h"
#include "util/error.h"

namespace siamrec {

void attach_content_table(const Config& c, Dataset& ds, const ReadOptions& ro, bool known_only) {
  const std::string& csv = c.str("data.content_table");
  const std::string& kind = c.str("data.content");
  if (kind != "image" && kind != "audio")
    throw ConfigError(fmt::format("data.content_table needs data.content image or audio (got '{}')", kind));
  std::unique_ptr<ImageTable> images;
  std::unique_ptr<AudioTable> audio;
  int64_t per = 0;
  std::vector<int64_t> shape;
  const FileTable* files = nullptr;
  FileTableFormat ff;
  ff.label_column = c.str("data.content_label_col");
  if (kind == "image") {
    ImageOptions io;
    io.size = static_cast<int>(c.integer("data.image_size"));
    io.channels = static_cast<int>(c.integer("data.image_channels"));
    images = std::make_unique<ImageTable>(csv, io, ff, ro);
    files = &images->files();
    shape = {io.channels, io.size, io.size};
  } else {
    MelOptions mo;
    mo.sample_rate = static_cast<int>(c.integer("audio.sample_rate"));
    mo.n_fft = static_cast<int>(c.integer("audio.n_fft"));
    mo.hop = static_cast<int>(c.integer("audio.hop"));
    mo.n_mels = static_cast<int>(c.integer("audio.n_mels"));
    mo.frames = static_cast<int>(c.integer("audio.frames"));
    audio = std::make_unique<AudioTable>(csv, mo, ff, ro);
    files = &audio->files();
    shape = {1, mo.frames, mo.n_mels};
  }
  per = shape[0] * shape[1] * shape[2];
  if (ds.n_items() == 0) {  // item-only dataset: the table's items, categories from the labels
    std::vector<std::string> ids;
    for (size_t k = 0; k < files->size(); ++k) ids.push_back(files->id(k));
    ds.items = IdMap::from_ids(ids);
    ds.name = csv;
    ds.description = fmt::format("{} items of content table {}", kind, csv);
    if (files->has_labels()) {
      std::map<std::string, int32_t> vocab;
      for (size_t k = 0; k < files->size(); ++k) vocab.emplace(files->label(k), 0);
      int32_t n = 0;
      for (auto& [l, v] : vocab) v = n++, ds.item_side.genre_vocab.push_back(l);
      ds.item_side.genres.assign(ds.n_items(), {});
      for (size_t k = 0; k < files->size(); ++k)
        ds.item_side.genres[ds.items.find(files->id(k))] = {vocab[files->label(k)]};
    }
    ds.item_side.title.assign(ds.n_items(), "");
    for (int32_t i = 0; i < ds.n_items(); ++i) ds.item_side.title[i] = files->path(files->at(ds.items.original(i)));
  }
  ds.item_side.content.assign(static_cast<size_t>(ds.n_items() * per), 0.0f);
  ds.item_side.content_shape = shape;
  int64_t missing = ds.n_items();
  for (size_t k = 0; k < files->size(); ++k) {
    int32_t i = ds.items.find(files->id(k));
    if (i < 0 && known_only) continue;
    if (i < 0)
      throw DataError(
          fmt::format("{}: item '{}' is not an item of dataset '{}'", files->where(k), files->id(k), ds.name));
    std::vector<float> x = images ? images->load(k) : audio->load(k);
    if (static_cast<int64_t>(x.size()) != per)
      throw DataError(
          fmt::format("{}: content of '{}' has {} values, expected {}", files->where(k), files->id(k), x.size(), per));
    std::copy(x.begin(), x.end(), ds.item_side.content.begin() + static_cast<int64_t>(i) * per);
    --missing;
  }
  if (missing > 0)
    spdlog::warn("{} of {} items have no file in '{}': their content is zeros", missing, ds.n_items(), csv);
  spdlog::info("content: {} {} files from '{}' ({} per item)", files->size(), kind, csv, fmt::join(shape, "x"));
}

}  // namespace siamrec
