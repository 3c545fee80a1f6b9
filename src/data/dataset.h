// The in-memory dataset: dense ids <-> original ids, the interaction log, CSR views, side data.
//
// Dense ids are assigned in sorted order of the original ids (numerically when every id is an
// integer, else lexicographically), so "ties broken by smaller original id" equals "smaller dense
// id" everywhere, and the same input always yields the same ids.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace siamrec {

class IdMap {
 public:
  IdMap() = default;
  // Builds a map from distinct original ids (any order, duplicates allowed).
  static IdMap from_ids(std::vector<std::string> ids);
  int32_t size() const { return static_cast<int32_t>(ids_.size()); }
  const std::string& original(int32_t dense) const { return ids_[dense]; }
  // Dense id of an original id, or -1.
  int32_t find(std::string_view original) const;
  const std::vector<std::string>& ids() const { return ids_; }
  bool numeric() const { return numeric_; }

 private:
  void index();
  std::vector<std::string> ids_;
  std::unordered_map<std::string_view, int32_t> pos_;
  bool numeric_ = true;

 public:
  IdMap(const IdMap& o) : ids_(o.ids_), numeric_(o.numeric_) { index(); }
  IdMap& operator=(const IdMap& o) {
    ids_ = o.ids_;
    numeric_ = o.numeric_;
    index();
    return *this;
  }
  IdMap(IdMap&&) = default;
  IdMap& operator=(IdMap&&) = default;
};

// An interaction log in coordinate form. `rating` and `time` are empty when the source lacks them.
struct Interactions {
  std::vector<int32_t> user, item;
  std::vector<float> rating;
  std::vector<int64_t> time;

  size_t size() const { return user.size(); }
  bool has_rating() const { return !rating.empty(); }
  bool has_time() const { return !time.empty(); }
  // Keeps rows where keep[r] is true.
  Interactions select(const std::vector<char>& keep) const;
  Interactions rows(const std::vector<int64_t>& idx) const;
  void append_row(const Interactions& src, size_t r);
};

// Compressed sparse rows: for each row, its columns (sorted ascending) with value and time.
struct Csr {
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<float> values;   // empty when unweighted
  std::vector<int64_t> times;  // empty when untimed

  int32_t rows() const { return static_cast<int32_t>(indptr.size()) - 1; }
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
  int64_t begin(int32_t r) const { return indptr[r]; }
  int64_t end(int32_t r) const { return indptr[r + 1]; }
  int64_t degree(int32_t r) const { return indptr[r + 1] - indptr[r]; }
  bool contains(int32_t r, int32_t c) const;
  // Builds from (row, col) pairs of a log; `by_item` transposes (item -> users).
  static Csr from_interactions(const Interactions& log, int32_t n_rows, bool by_item);
};

// Each user's items in time order (ties and untimed logs keep log order): the histories that
// sequence towers read.
Csr sequences_by_user(const Interactions& log, int32_t n_users);

// Item side data: titles and categorical token lists (genres, tags), aligned with dense item ids.
struct ItemSide {
  std::vector<std::string> title;            // "" when unknown
  std::vector<std::vector<int32_t>> genres;  // ids into genre_vocab
  std::vector<std::string> genre_vocab;
  std::vector<std::vector<std::string>> tags;  // free-text tags (ml-latest-small)
  // Raw content for content towers (images, spectrograms): n_items x prod(content_shape) floats,
  // e.g. shape {1, 28, 28} for Fashion-MNIST; empty when the dataset has none.
  std::vector<float> content;
  std::vector<int64_t> content_shape;
  bool empty() const { return title.empty() && genres.empty() && tags.empty() && content.empty(); }
};

// User side data: "name=value" features (age, gender, occupation, ...), aligned with dense user ids.
struct UserSide {
  std::vector<std::vector<std::string>> features;
};

struct Dataset {
  std::string name;         // registry name, or the path it was read from
  std::string description;  // where the data came from, one line
  std::string root;         // data directory it was read from (fixed splits are read from here)
  IdMap users, items;
  Interactions log;  // every interaction of the source
  ItemSide item_side;
  UserSide user_side;
  // split.type files: the log is the train, valid and test files in this order, with these row
  // counts (empty otherwise).
  std::vector<int64_t> file_parts;

  int32_t n_users() const { return users.size(); }
  int32_t n_items() const { return items.size(); }
  double density() const {
    return n_users() && n_items() ? static_cast<double>(log.size()) / n_users() / n_items() : 0.0;
  }
  const std::string& item_title(int32_t i) const;
  // Rough memory held by the dataset, bytes.
  size_t memory_bytes() const;
};

// Builds a Dataset from raw original-id columns. Row r is (users[r], items[r]); ratings/times may
// be empty. Dense ids follow the sorted-original-id rule above.
struct RawLog {
  std::vector<std::string> users, items;
  std::vector<float> rating;
  std::vector<int64_t> time;
  std::map<std::string, std::string> owner;  // session logs: session -> user
  size_t size() const { return users.size(); }
};
Dataset dataset_from_raw(RawLog raw, const std::string& name);

// Maps a raw log onto an existing dataset's ids. Unknown ids are an error naming `where`.
Interactions map_onto(const Dataset& ds, const RawLog& raw, const std::string& where);

}  // namespace siamrec
