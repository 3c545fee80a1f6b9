// Text tokenizer for text towers: words (ASCII alphanumerics plus any UTF-8 byte >= 0x80), optional
// fastText-style character n-grams, a deterministic count-sorted vocabulary, and a checksummed
// binary blob for model files. Id 0 is padding ("<pad>"), id 1 the unknown token ("<unk>").
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace siamrec {

struct TokenizerOptions {
  bool lower = true;    // ASCII lower-casing (UTF-8 letters are kept as they are)
  int min_count = 1;    // tokens seen fewer times by fit() are unknown
  int char_ngrams = 0;  // 0 = off; n adds "#" + each n-gram (in code points) of "<word>" after the word
  int max_vocab = 0;    // at most this many learned tokens (besides <pad> and <unk>); 0 = unlimited
  int max_len = 0;      // encode() keeps the first max_len tokens; 0 = unlimited
};

class Tokenizer {
 public:
  static constexpr int32_t kPad = 0, kUnk = 1;

  Tokenizer() = default;
  // Throws ConfigError naming the option when a value is out of range.
  explicit Tokenizer(const TokenizerOptions& o);
  const TokenizerOptions& options() const { return opt_; }

  // The words of `text`: maximal runs of [A-Za-z0-9] and bytes >= 0x80 (UTF-8 sequences stay whole).
  static std::vector<std::string> words(std::string_view text, bool lower);
  // The tokens fit() counts and encode() maps: each word followed by its n-grams, not truncated.
  std::vector<std::string> tokens(std::string_view text) const;

  // Builds the vocabulary from scratch: tokens with count >= min_count, sorted by count descending
  // then token ascending (byte order), capped at max_vocab.
  void fit(const std::vector<std::string>& texts);
  bool fitted() const { return fitted_; }
  // Token ids (unknown tokens -> kUnk), truncated to max_len. Throws Error when not fitted.
  std::vector<int32_t> encode(std::string_view text) const;

  int32_t size() const { return static_cast<int32_t>(vocab_.size()); }  // including <pad> and <unk>
  const std::string& token(int32_t id) const;                           // throws Error when out of range
  int32_t id(const std::string& token) const;                           // kUnk when absent
  int64_t count(int32_t id) const;                                      // training count (0 for <pad> and <unk>)

  // Serialized vocabulary and options (siamrec binary container, checksummed).
  std::string save() const;
  // `source` names where the blob came from in errors (e.g. the model file's path); a corrupt or
  // truncated blob throws Error.
  static Tokenizer load(const std::string& blob, const std::string& source = "(in memory)");

 private:
  void append_tokens(std::string_view text, std::vector<std::string>& out) const;
  void index();

  TokenizerOptions opt_;
  bool fitted_ = false;
  std::vector<std::string> vocab_;
  std::vector<int64_t> counts_;
  std::unordered_map<std::string, int32_t> ids_;
};

}  // namespace siamrec
