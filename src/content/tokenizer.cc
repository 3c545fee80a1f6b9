#include "content/tokenizer.h"

#include <algorithm>

#include "util/error.h"
#include "util/io.h"

namespace siamrec {
namespace {

const char kMagic[8] = {'S', 'R', 'T', 'O', 'K', 'E', 'N', '\1'};
constexpr uint32_t kVersion = 1;
constexpr int kMaxNgram = 16;

bool word_byte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

void check_options(const TokenizerOptions& o) {
  if (o.min_count < 1) throw ConfigError(fmt::format("tokenizer min_count must be >= 1 (got {})", o.min_count));
  if (o.char_ngrams < 0 || o.char_ngrams > kMaxNgram)
    throw ConfigError(fmt::format("tokenizer char_ngrams must be 0 (off) or 1..{} (got {})", kMaxNgram, o.char_ngrams));
  if (o.max_vocab < 0) throw ConfigError(fmt::format("tokenizer max_vocab must be >= 0 (got {})", o.max_vocab));
  if (o.max_len < 0) throw ConfigError(fmt::format("tokenizer max_len must be >= 0 (got {})", o.max_len));
}

}  // namespace

Tokenizer::Tokenizer(const TokenizerOptions& o) : opt_(o) { check_options(o); }

std::vector<std::string> Tokenizer::words(std::string_view text, bool lower) {
  std::vector<std::string> out;
  size_t i = 0, n = text.size();
  while (i < n) {
    while (i < n && !word_byte(static_cast<unsigned char>(text[i]))) ++i;
    size_t b = i;
    while (i < n && word_byte(static_cast<unsigned char>(text[i]))) ++i;
    if (i == b) continue;
    std::string w(text.substr(b, i - b));
    if (lower)
      for (char& c : w)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.push_back(std::move(w));
  }
  return out;
}

void Tokenizer::append_tokens(std::string_view text, std::vector<std::string>& out) const {
  const int n = opt_.char_ngrams;
  std::vector<size_t> starts;  // code-point starts of "<word>", plus the end
  for (auto& w : words(text, opt_.lower)) {
    if (n > 0) {
      std::string b = "<" + w + ">";
      starts.clear();
      for (size_t k = 0; k < b.size(); ++k)
        if ((static_cast<unsigned char>(b[k]) & 0xC0) != 0x80) starts.push_back(k);
      starts.push_back(b.size());
      out.push_back(std::move(w));
      for (size_t k = 0; k + n < starts.size(); ++k)
        out.push_back("#" + b.substr(starts[k], starts[k + n] - starts[k]));
    } else {
      out.push_back(std::move(w));
    }
  }
}

std::vector<std::string> Tokenizer::tokens(std::string_view text) const {
  std::vector<std::string> out;
  append_tokens(text, out);
  return out;
}

void Tokenizer::fit(const std::vector<std::string>& texts) {
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::string> toks;
  for (auto& t : texts) {
    toks.clear();
    append_tokens(t, toks);
    for (auto& s : toks) ++counts[s];
  }
  std::vector<std::pair<std::string, int64_t>> v;
  v.reserve(counts.size());
  for (auto& [tok, c] : counts)
    if (c >= opt_.min_count) v.emplace_back(tok, c);
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (opt_.max_vocab > 0 && v.size() > static_cast<size_t>(opt_.max_vocab)) v.resize(opt_.max_vocab);
  if (v.size() > static_cast<size_t>(INT32_MAX - 2)) fail("tokenizer vocabulary too large ({} tokens)", v.size());
  vocab_ = {"<pad>", "<unk>"};
  counts_ = {0, 0};
  for (auto& [tok, c] : v) {
    vocab_.push_back(tok);
    counts_.push_back(c);
  }
  index();
  fitted_ = true;
}

void Tokenizer::index() {
  ids_.clear();
  ids_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<int32_t>(i));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  if (!fitted_) fail("tokenizer is not fitted: call fit() or load() before encode()");
  std::vector<std::string> toks;
  append_tokens(text, toks);
  if (opt_.max_len > 0 && toks.size() > static_cast<size_t>(opt_.max_len)) toks.resize(opt_.max_len);
  std::vector<int32_t> ids(toks.size());
  for (size_t i = 0; i < toks.size(); ++i) ids[i] = id(toks[i]);
  return ids;
}

const std::string& Tokenizer::token(int32_t id) const {
  if (id < 0 || id >= size()) fail("token id {} is out of range (vocabulary size {})", id, size());
  return vocab_[id];
}

int32_t Tokenizer::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? kUnk : it->second;
}

int64_t Tokenizer::count(int32_t id) const {
  if (id < 0 || id >= size()) fail("token id {} is out of range (vocabulary size {})", id, size());
  return counts_[id];
}

std::string Tokenizer::save() const {
  BinWriter w(kMagic, kVersion);
  w.put<uint8_t>(opt_.lower ? 1 : 0);
  w.put<int32_t>(opt_.min_count);
  w.put<int32_t>(opt_.char_ngrams);
  w.put<int32_t>(opt_.max_vocab);
  w.put<int32_t>(opt_.max_len);
  w.put<uint8_t>(fitted_ ? 1 : 0);
  w.put_strs(vocab_);
  w.put_vec(counts_);
  return w.finish();
}

Tokenizer Tokenizer::load(const std::string& blob, const std::string& source) {
  BinReader r(blob, kMagic, kVersion, source, "tokenizer");
  auto bad = [&](const std::string& why) {
    return Error(fmt::format("tokenizer '{}' is malformed ({})", source, why));
  };
  TokenizerOptions o;
  uint8_t lower = r.get<uint8_t>();
  if (lower > 1) throw bad("bad lower-case flag");
  o.lower = lower == 1;
  o.min_count = r.get<int32_t>();
  o.char_ngrams = r.get<int32_t>();
  o.max_vocab = r.get<int32_t>();
  o.max_len = r.get<int32_t>();
  try {
    check_options(o);
  } catch (const ConfigError& e) {
    throw bad(e.what());
  }
  Tokenizer t(o);
  uint8_t fitted = r.get<uint8_t>();
  if (fitted > 1) throw bad("bad fitted flag");
  t.fitted_ = fitted == 1;
  r.get_strs(t.vocab_);
  r.get_vec(t.counts_);
  if (!r.at_end()) throw bad("trailing bytes");
  if (t.fitted_) {
    if (t.vocab_.size() < 2 || t.vocab_[0] != "<pad>" || t.vocab_[1] != "<unk>")
      throw bad("vocabulary does not start with <pad>, <unk>");
    if (t.vocab_.size() > static_cast<size_t>(INT32_MAX)) throw bad("vocabulary too large");
  } else if (!t.vocab_.empty()) {
    throw bad("unfitted tokenizer with a vocabulary");
  }
  if (t.counts_.size() != t.vocab_.size()) throw bad("counts do not match the vocabulary");
  t.index();
  if (t.ids_.size() != t.vocab_.size()) throw bad("duplicate tokens in the vocabulary");
  return t;
}

}  // namespace siamrec
