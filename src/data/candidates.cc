#include "data/candidates.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

std::string CandidateLists::describe(const std::string& path) const {
  auto slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string n = min_negatives == max_negatives ? fmt::format("{}", min_negatives)
                                                 : fmt::format("{}-{}", min_negatives, max_negatives);
  return fmt::format(
      "candidate file '{}' ({} layout: each test item + {} listed negatives per user, {} users{}{})", name, layout, n,
      users, added_positives ? fmt::format("; {} test items added to lists lacking them", added_positives) : "",
      negatives_in_test ? fmt::format("; {} listed negatives are test items of their user, kept", negatives_in_test)
                        : "");
}

// The next line of `text` from `pos` (without its '\r\n'), or false at the end.
static bool next_line(const std::string& text, size_t& pos, std::string_view& line) {
  if (pos >= text.size()) return false;
  size_t end = text.find('\n', pos);
  if (end == std::string::npos) end = text.size();
  line = std::string_view(text.data() + pos, end - pos);
  pos = end + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return true;
}

int64_t candidate_file_list_length(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::exception&) {
    return 0;
  }
  std::vector<std::string_view> fields, items;
  size_t pos = 0;
  std::string_view line;
  while (next_line(text, pos, line)) {
    if (line.empty() || line[0] == '#') continue;
    split(line, "\t", fields);
    if (fields[0].size() > 2 && fields[0].front() == '(') return static_cast<int64_t>(fields.size()) - 1;  // ncf
    if (fields.size() == 3) return split(fields[2], ",", items), static_cast<int64_t>(items.size());       // pos-negs
    if (fields.size() == 2) return split(fields[1], ",", items), static_cast<int64_t>(items.size()) - 1;   // list
    return 0;
  }
  return 0;
}

CandidateLists read_candidate_file(const std::string& path, const Dataset& ds, const Interactions& test,
                                   const ReadOptions& o) {
  const std::string text = read_data_text(path);
  // Each user's test items (sorted) decide what a positive is.
  std::vector<std::vector<int32_t>> tests(ds.n_users());
  for (size_t r = 0; r < test.size(); ++r) tests[test.user[r]].push_back(test.item[r]);
  for (auto& v : tests) std::sort(v.begin(), v.end());
  auto is_test = [&](int32_t u, int32_t i) { return std::binary_search(tests[u].begin(), tests[u].end(), i); };

  CandidateLists out;
  out.negatives.assign(ds.n_users(), {});
  std::vector<char> listed(ds.n_users(), 0);
  LineErrors errors(path, o);
  std::vector<std::string_view> fields, items;
  std::vector<int32_t> seen_mark(ds.n_items(), -1);
  int64_t line_no = 0;
  size_t pos = 0;
  std::string_view line;
  while (next_line(text, pos, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    split(line, "\t", fields);
    std::string layout = fields[0].size() > 2 && fields[0].front() == '(' && fields[0].back() == ')' ? "ncf"
                         : fields.size() == 3                                                        ? "pos-negs"
                         : fields.size() == 2                                                        ? "list"
                                                                                                     : "";
    if (layout.empty()) {
      errors.bad(line_no, "line",
                 fmt::format("{} tab-separated fields; expected '(user,item)<TAB>neg...', "
                             "'user<TAB>pos<TAB>neg,neg,...' or 'user<TAB>cand,cand,...'",
                             fields.size()));
      continue;
    }
    if (out.layout.empty()) out.layout = layout;
    if (layout != out.layout) {
      errors.bad(line_no, "line", fmt::format("a '{}' line in a '{}' file (one layout per file)", layout, out.layout));
      continue;
    }
    std::string_view user_field = fields[0], pos_field;
    if (layout == "ncf") {
      std::string_view inner = fields[0].substr(1, fields[0].size() - 2);
      auto comma = inner.find(',');
      if (comma == std::string_view::npos) {
        errors.bad(line_no, "pair", fmt::format("'{}' is not '(user,item)'", fields[0]));
        continue;
      }
      user_field = inner.substr(0, comma), pos_field = inner.substr(comma + 1);
    } else if (layout == "pos-negs") {
      pos_field = fields[1];
    }
    const int32_t u = ds.users.find(trim(user_field));
    if (u < 0) {
      errors.bad(line_no, "user", fmt::format("unknown user '{}'", user_field));
      continue;
    }
    if (listed[u]) {
      errors.bad(line_no, "user", fmt::format("user '{}' has a second candidate list", user_field));
      continue;
    }
    if (!pos_field.empty()) {
      const int32_t p = ds.items.find(trim(pos_field));
      if (p < 0 || !is_test(u, p)) {
        errors.bad(line_no, "positive",
                   p < 0 ? fmt::format("unknown item '{}'", pos_field)
                         : fmt::format("item '{}' is not a test item of user '{}' (the file lists another part's "
                                       "candidates?)",
                                       pos_field, user_field));
        continue;
      }
    }
    // The candidates: NCF's remaining tab fields, else the comma list of the last field.
    items.clear();
    if (layout == "ncf") {
      items.assign(fields.begin() + 1, fields.end());
    } else {
      split(fields.back(), ",", items);
    }
    std::vector<int32_t> negs;
    negs.reserve(items.size());
    bool bad = false;
    int64_t in_list = 0;
    for (auto f : items) {
      f = trim(f);
      if (f.empty()) continue;
      const int32_t i = ds.items.find(f);
      if (i < 0) {
        errors.bad(line_no, "candidate", fmt::format("unknown item '{}'", f));
        bad = true;
        break;
      }
      if (seen_mark[i] == line_no) {
        errors.bad(line_no, "candidate", fmt::format("item '{}' is listed twice", f));
        bad = true;
        break;
      }
      seen_mark[i] = static_cast<int32_t>(line_no);
      if (is_test(u, i)) {
        if (layout == "list") {  // the list holds the positives too
          ++in_list;
          continue;
        }
        // A listed negative that is a test item (NCF's file has a few): kept as listed, like the
        // reference evaluation (it ties with the positive, and ties are pessimistic), and counted.
        ++out.negatives_in_test;
      }
      negs.push_back(i);
    }
    if (bad) continue;
    if (layout == "list") out.added_positives += static_cast<int64_t>(tests[u].size()) - in_list;
    listed[u] = 1;
    ++out.users;
    const int64_t n = static_cast<int64_t>(negs.size());
    out.min_negatives = out.users == 1 ? n : std::min(out.min_negatives, n);
    out.max_negatives = std::max(out.max_negatives, n);
    out.negatives[u] = std::move(negs);
  }
  errors.finish();
  int64_t missing = 0;
  int32_t example = -1;
  for (int32_t u = 0; u < ds.n_users(); ++u)
    if (!tests[u].empty() && !listed[u]) {
      ++missing;
      if (example < 0) example = u;
    }
  if (missing > 0)
    throw DataError(fmt::format("{}: {} test users have no candidate list (e.g. user '{}')", path, missing,
                                ds.users.original(example)));
  if (out.users == 0) throw DataError(fmt::format("{}: no candidate lists", path));
  if (out.negatives_in_test > 0)
    spdlog::warn("{}: {} listed negatives are test items of their user (kept as listed)", path, out.negatives_in_test);
  if (out.added_positives > 0)
    spdlog::warn("{}: {} test items were not in their user's candidate list and were added", path, out.added_positives);
  return out;
}

}  // namespace siamrec
