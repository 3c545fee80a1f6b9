// Item id -> content file tables, shared by ImageTable and AudioTable: a CSV whose header names an
// id column and a path column ("item_id,path" by default); relative paths are resolved against the
// CSV's folder. Problems are DataErrors naming "CSV:LINE" (or skipped with skip_bad_lines).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/readers.h"

namespace siamrec {

struct FileTableFormat {
  std::string id_column = "item_id";
  std::string path_column = "path";
  std::string label_column;  // optional category column ("" or absent from the header: none)
  char delimiter = ',';      // fields may be double-quoted (RFC 4180 within a line)
  bool check_files = true;   // a listed file that does not exist is a malformed line
};

class FileTable {
 public:
  // Reads and validates the CSV: header with both columns, field counts, empty fields, duplicate
  // ids and (with check_files) files that do not exist.
  static FileTable read(const std::string& csv_path, const FileTableFormat& f = {}, const ReadOptions& o = {});

  const std::string& csv_path() const { return csv_; }
  size_t size() const { return ids_.size(); }
  const std::string& id(size_t i) const { return ids_.at(i); }
  const std::string& path(size_t i) const { return paths_.at(i); }  // resolved
  bool has_labels() const { return !labels_.empty(); }
  const std::string& label(size_t i) const { return labels_.at(i); }  // needs has_labels()
  int64_t line(size_t i) const { return lines_.at(i); }
  std::string where(size_t i) const;        // "CSV:LINE" of entry i, for messages
  int64_t find(std::string_view id) const;  // entry of an item id, or -1
  size_t at(std::string_view id) const;     // entry of an item id; throws DataError when absent

 private:
  std::string csv_;
  std::vector<std::string> ids_, paths_, labels_;
  std::vector<int64_t> lines_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace siamrec
