// What a Siamese model keeps of its training data's side data (model file format 7), so that an
// update can rebuild the features of the entities it knows and read new entities' with the token,
// genre, tag and feature ids the model was trained on. Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

class BinWriter;
class BinReader;
class Config;

struct SideSource {
  bool present = false;   // false for files older than format 7
  ItemSide items;         // titles, genres (and their vocabulary), tags; content stays in the layout
  UserSide users;         // user features
  std::string tokenizer;  // the text towers' vocabulary (Tokenizer::save); empty without text towers

  // The side data of `ds` (its content left out) with the layout's text vocabulary.
  static SideSource of(const Dataset& ds, const std::string& tokenizer);
  void save(BinWriter& w) const;
  // Throws Error naming the section when it does not fit n_items x n_users.
  void load(BinReader& r, int32_t n_items, int32_t n_users);
};

// Does the configured network read side data beyond ids and interactions (genres, tags, item
// text, user features)? Those models need a SideSource to be updated.
bool reads_side_data(const Config& c);

// What grow_side did with the new entities' side data.
struct GrownSide {
  int64_t new_items = 0, new_items_without_side = 0;  // ... with no title, genre, tag or content at all
  int64_t dropped_genres = 0, dropped_tags = 0, dropped_features = 0;  // outside the model's vocabularies
  std::string describe() const;
};

// Fills grown.item_side (titles, genres, tags and, when content_shape is not empty, content) and
// grown.user_side for grown's id space. Entities the model knew (item_map / user_map: old dense id
// -> grown dense id) take theirs from `kept` (content: `old_content`, the layout's rows, items
// first); new ones from `fresh` (matched by original id). Genres, tags and user features outside
// the kept vocabularies are dropped and counted, so every id the model was trained on keeps its
// meaning. New content of another shape is refused (DataError naming `source`).
GrownSide grow_side(const SideSource& kept, const std::vector<float>& old_content,
                    const std::vector<int64_t>& content_shape, const std::vector<int32_t>& item_map,
                    const std::vector<int32_t>& user_map, const Dataset& fresh, const std::string& source,
                    Dataset& grown);

}  // namespace siamrec
