#include "content/item_text.h"

#include "config/config.h"
#include "data/dataset.h"
#include "util/error.h"

namespace siamrec {

ItemText item_text(const Dataset& ds, const std::vector<std::string>& sources, const TokenizerOptions& opt,
                   const Tokenizer* fitted) {
  const auto& side = ds.item_side;
  for (auto& s : sources)
    if (s != "title" && s != "genres" && s != "tags")
      throw ConfigError(fmt::format("tower.text: '{}' is not a text source; allowed: title, genres, tags", s));
  std::vector<std::string> docs(static_cast<size_t>(ds.n_items()));
  bool any = false;
  for (int32_t i = 0; i < ds.n_items(); ++i) {
    std::string& d = docs[i];
    for (auto& s : sources) {
      if (s == "title" && static_cast<size_t>(i) < side.title.size() && !side.title[i].empty())
        d += side.title[i] + " ";
      if (s == "genres" && static_cast<size_t>(i) < side.genres.size())
        for (auto g : side.genres[i]) d += side.genre_vocab[g] + " ";
      if (s == "tags" && static_cast<size_t>(i) < side.tags.size())
        for (auto& t : side.tags[i]) d += t + " ";
    }
    any = any || !d.empty();
  }
  if (!any)
    throw ConfigError(
        fmt::format("tower.text [{}]: dataset '{}' has no such item text", fmt::join(sources, ", "), ds.name));
  ItemText out;
  if (fitted) {
    out.tokenizer = *fitted;
  } else {
    out.tokenizer = Tokenizer(opt);
    out.tokenizer.fit(docs);
  }
  for (auto& d : docs) {
    for (auto t : out.tokenizer.encode(d)) out.tok.push_back(t);
    out.ptr.push_back(static_cast<int64_t>(out.tok.size()));
  }
  return out;
}

ItemText item_text(const Dataset& ds, const Config& c, const Tokenizer* fitted) {
  TokenizerOptions to;
  to.lower = c.flag("text.lower");
  to.min_count = static_cast<int>(c.integer("text.min_count"));
  to.char_ngrams = static_cast<int>(c.integer("text.char_ngrams"));
  to.max_vocab = static_cast<int>(c.integer("text.max_vocab"));
  return item_text(ds, c.strs("tower.text"), to, fitted);
}

}  // namespace siamrec
