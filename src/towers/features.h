// What a tower may read about the entities it encodes (torch-free): per entity, a bag of token ids
// (items of a history, genres, tags, the entity's own id) and a dense feature vector.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace siamrec {

class BinWriter;
class BinReader;

struct EntityFeatures {
  int64_t n = 0;                    // entities in this space
  std::vector<int64_t> bag_ptr{0};  // CSR: entity -> bag tokens
  std::vector<int64_t> bag_tok;
  int64_t bag_vocab = 0;     // token ids are in [0, bag_vocab)
  std::vector<float> dense;  // n x dense_dim, row-major
  int64_t dense_dim = 0;
  std::vector<int64_t> text_ptr;  // CSR: entity -> text token ids (text towers); empty = none
  std::vector<int64_t> text_tok;
  int64_t text_vocab = 0;
  std::vector<uint8_t> warm;           // 1 = the entity has training interactions (empty: all warm)
  std::vector<float> content;          // n x prod(content_shape): raw content (images, spectrograms)
  std::vector<int64_t> content_shape;  // e.g. {1, 28, 28}; empty when no tower reads content
  std::vector<int64_t> graph_ptr;      // CSR adjacency between entities of this space (graph towers;
  std::vector<int64_t> graph_idx;      // empty when no tower needs it)
  std::string description;             // e.g. "items: own id + genres"

  void save(BinWriter& w) const;
  void load(BinReader& r);
};

// Bags (tokens t, offsets o of B bags, T tokens in all) as a right-padded B x L matrix for text and
// sequence towers: each bag's first (or, `latest`, last) up to max_len tokens, token 0 after them;
// L = the longest kept bag, at least min_len. len[b] = tokens kept of bag b.
struct PaddedBags {
  std::vector<int64_t> seq, len;
  int64_t L = 0;
};
PaddedBags pad_bags(const int64_t* t, const int64_t* o, int64_t B, int64_t T, int64_t max_len, int64_t min_len,
                    bool latest);

}  // namespace siamrec
