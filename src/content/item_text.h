// Item text for text towers and content baselines: one document per item from the sources asked
// for (title, genres, tags, in that order), tokenized by the Tokenizer into a token-id sequence.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "content/tokenizer.h"

namespace siamrec {

struct Dataset;
class Config;

struct ItemText {
  std::vector<int64_t> ptr{0};  // CSR: item -> token ids (in document order)
  std::vector<int64_t> tok;
  Tokenizer tokenizer;  // vocabulary: id 0 <pad>, 1 <unk>
  int64_t vocab() const { return tokenizer.size(); }
};

// sources: any of "title", "genres", "tags". Throws ConfigError on an unknown source and when the
// dataset has none of the asked text. `fitted`: encode with this vocabulary instead of fitting one
// (an update reads new items with the token ids the model was trained on; unknown words -> <unk>).
ItemText item_text(const Dataset& ds, const std::vector<std::string>& sources, const TokenizerOptions& opt,
                   const Tokenizer* fitted = nullptr);
// The same from the config: sources tower.text, tokenizer text.* (text towers and the tfidf baseline).
ItemText item_text(const Dataset& ds, const Config& c, const Tokenizer* fitted = nullptr);

}  // namespace siamrec
