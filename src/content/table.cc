#include "content/table.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {
namespace fs = std::filesystem;

std::string FileTable::where(size_t i) const { return fmt::format("{}:{}", csv_, line(i)); }

int64_t FileTable::find(std::string_view id) const {
  auto it = index_.find(std::string(id));
  return it == index_.end() ? -1 : static_cast<int64_t>(it->second);
}

size_t FileTable::at(std::string_view id) const {
  int64_t i = find(id);
  if (i < 0) throw DataError(fmt::format("item '{}' is not listed in '{}'", id, csv_));
  return static_cast<size_t>(i);
}

FileTable FileTable::read(const std::string& csv_path, const FileTableFormat& f, const ReadOptions& o) {
  if (!file_exists(csv_path)) throw DataError(fmt::format("file table '{}' does not exist", csv_path));
  std::string text = read_file(csv_path);
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // UTF-8 byte-order mark
  FileTable t;
  t.csv_ = csv_path;
  const fs::path base = fs::path(csv_path).parent_path();

  int64_t skipped = 0;
  std::string first_problem;
  auto bad = [&](int64_t ln, const std::string& problem) {
    std::string msg = fmt::format("{}:{}: {}", csv_path, ln, problem);
    if (!o.skip_bad_lines) throw DataError(msg + " (use --skip-bad-lines to skip malformed lines)");
    if (skipped++ == 0) first_problem = msg;
  };

  LineReader lr(text);
  std::string_view line;
  std::vector<std::string> fields;
  int id_col = -1, path_col = -1, label_col = -1;
  size_t n_cols = 0;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    bool ok = split_csv_line(line, f.delimiter, fields);
    const int64_t ln = lr.lineno();
    if (id_col < 0) {  // header
      if (!ok) throw DataError(fmt::format("{}:{}: unterminated quote in the header", csv_path, ln));
      for (size_t c = 0; c < fields.size(); ++c) {
        std::string_view name = trim(fields[c]);
        if (name == f.id_column && id_col < 0) id_col = static_cast<int>(c);
        if (name == f.path_column && path_col < 0) path_col = static_cast<int>(c);
        if (!f.label_column.empty() && name == f.label_column && label_col < 0) label_col = static_cast<int>(c);
      }
      if (id_col < 0 || path_col < 0)
        throw DataError(fmt::format("{}:{}: the header needs columns '{}' and '{}' (found: {})", csv_path, ln,
                                    f.id_column, f.path_column, fmt::join(fields, ", ")));
      n_cols = fields.size();
      continue;
    }
    if (!ok) {
      bad(ln, "unterminated quote");
      continue;
    }
    if (fields.size() != n_cols) {
      bad(ln, fmt::format("{} fields, the header has {}", fields.size(), n_cols));
      continue;
    }
    std::string id(trim(fields[id_col])), rel(trim(fields[path_col]));
    if (id.empty()) {
      bad(ln, fmt::format("field '{}' is empty", f.id_column));
      continue;
    }
    if (rel.empty()) {
      bad(ln, fmt::format("field '{}' is empty", f.path_column));
      continue;
    }
    fs::path p(rel);
    std::string resolved = p.is_absolute() || base.empty() ? rel : (base / p).string();
    if (f.check_files && !file_exists(resolved)) {
      bad(ln, fmt::format("file '{}' does not exist", resolved));
      continue;
    }
    auto [it, fresh] = t.index_.emplace(id, t.ids_.size());
    if (!fresh) {
      bad(ln, fmt::format("item '{}' is listed twice (first on line {})", id, t.lines_[it->second]));
      continue;
    }
    t.ids_.push_back(std::move(id));
    t.paths_.push_back(std::move(resolved));
    if (label_col >= 0) t.labels_.emplace_back(trim(fields[label_col]));
    t.lines_.push_back(ln);
  }
  if (id_col < 0) throw DataError(fmt::format("file table '{}' is empty (no header)", csv_path));
  if (skipped) spdlog::warn("skipped {} malformed line(s) in '{}'; first: {}", skipped, csv_path, first_problem);
  return t;
}

}  // namespace siamrec
