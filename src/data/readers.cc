#include "data/readers.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

LineErrors::LineErrors(std::string path, const ReadOptions& o) : path_(std::move(path)), skip_(o.skip_bad_lines) {}

void LineErrors::bad(int64_t line, std::string_view field, const std::string& problem) {
  std::string msg = field.empty() ? fmt::format("{}:{}: {}", path_, line, problem)
                                  : fmt::format("{}:{}: field '{}': {}", path_, line, field, problem);
  if (!skip_) throw DataError(msg + " (use --skip-bad-lines to skip malformed lines)");
  if (count_++ == 0) first_ = msg;
}

void LineErrors::finish() const {
  if (count_) spdlog::warn("skipped {} malformed line(s) in '{}'; first: {}", count_, path_, first_);
}

bool strip_bom(std::string& text) {
  if (text.compare(0, 3, "\xEF\xBB\xBF") != 0) return false;
  text.erase(0, 3);
  return true;
}

std::string read_data_text(const std::string& path) {
  if (!file_exists(path)) throw DataError(fmt::format("file '{}' does not exist", path));
  std::string s = read_file(path);
  if (strip_bom(s)) spdlog::debug("'{}': dropped the UTF-8 byte-order mark at its start", path);
  if (trim(s).empty()) throw DataError(fmt::format("file '{}' is empty", path));
  return s;
}

std::optional<int64_t> parse_timestamp(std::string_view s) {
  if (auto v = parse_int(s)) return v;
  auto d = parse_double(s);
  // 2^63 is exactly representable; everything strictly inside (-2^63, 2^63) converts defined.
  if (!d || !std::isfinite(*d) || *d <= -9223372036854775808.0 || *d >= 9223372036854775808.0) return std::nullopt;
  return static_cast<int64_t>(*d);
}

namespace {

std::string load_text(const std::string& path) { return read_data_text(path); }

// Ratings are stored as float: larger values would become infinite.
constexpr double kMaxRating = 3.0e38;

// A field as error messages show it: control characters escaped, at most 40 bytes.
std::string shown(std::string_view v) { return printable(v, 40); }

void split_fields(std::string_view line, const DelimitedFormat& f, std::vector<std::string>& out,
                  std::vector<std::string_view>& tmp) {
  if (f.quoted && f.delimiter.size() == 1) {
    split_csv_line(line, f.delimiter[0], out);
    return;
  }
  if (f.delimiter == "ws")
    split_ws(line, tmp);
  else
    split(line, f.delimiter, tmp);
  out.assign(tmp.begin(), tmp.end());
}

std::string show_delim(const std::string& d) {
  if (d == "\t") return "TAB";
  if (d == "ws") return "whitespace";
  return "'" + d + "'";
}

}  // namespace

bool split_csv_line(std::string_view line, char delim, std::vector<std::string>& out) {
  out.clear();
  std::string cur;
  bool inq = false, ok = true;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (inq) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          inq = false;
        }
      } else {
        cur.push_back(c);
      }
    } else if (c == '"' && cur.empty()) {
      inq = true;
    } else if (c == delim) {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (inq) ok = false;  // unterminated quote
  out.push_back(std::move(cur));
  return ok;
}

std::optional<int64_t> parse_date_days(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto y = parse_int(s.substr(0, 4)), m = parse_int(s.substr(5, 2)), d = parse_int(s.substr(8, 2));
  if (!y || !m || !d || *m < 1 || *m > 12 || *d < 1) return std::nullopt;
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
  if (*d > mdays[*m - 1] + (*m == 2 && leap)) return std::nullopt;
  // Days from civil (H. Hinnant's algorithm).
  int64_t yy = *y - (*m <= 2), era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400, mp = (*m + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + *d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

RawLog read_delimited(const std::string& path, const DelimitedFormat& f, const ReadOptions& o) {
  if (f.delimiter.empty()) throw ConfigError("delimiter must not be empty");
  std::string text = load_text(path);
  LineErrors errs(path, o);
  LineReader lr(text);
  std::string_view line;
  std::vector<std::string> fields;
  std::vector<std::string_view> tmp;

  // Resolve columns, reading the header if there is one.
  int col_user = -1, col_item = -1, col_rating = -1, col_time = -1;
  std::vector<std::string> header;
  auto skip_line = [&](std::string_view l) {
    return trim(l).empty() || (!f.comment.empty() && l.substr(0, f.comment.size()) == f.comment);
  };
  if (f.header) {
    while (lr.next(line) && skip_line(line)) {
    }
    split_fields(line, f, header, tmp);
    for (auto& h : header) h = std::string(trim(h));
  }
  auto resolve = [&](const std::string& spec, const char* role) -> int {
    if (spec.empty()) return -1;
    if (auto idx = parse_int(spec)) {
      if (*idx < 0) throw ConfigError(fmt::format("column '{}' for {}: index must be >= 0", spec, role));
      return static_cast<int>(*idx);
    }
    if (!f.header)
      throw ConfigError(
          fmt::format("column '{}' for {} is a name, but '{}' is read without a header; "
                      "use a 0-based index or set header: true",
                      spec, role, path));
    auto it = std::find(header.begin(), header.end(), spec);
    if (it == header.end()) {
      std::string have;
      for (auto& h : header) have += (have.empty() ? "" : ", ") + h;
      throw ConfigError(fmt::format("{}: unknown column name '{}' for {}; the header has: {}", path, spec, role, have));
    }
    return static_cast<int>(it - header.begin());
  };
  col_user = resolve(f.user, "user");
  col_item = resolve(f.item, "item");
  col_rating = resolve(f.rating, "rating");
  col_time = resolve(f.time, "time");
  const int col_date = resolve(f.date, "date"), col_owner = resolve(f.owner, "session user");
  int need = std::max({col_user, col_item, col_rating, col_time, col_date, col_owner}) + 1;
  const bool timed = col_time >= 0 || col_date >= 0;

  RawLog raw;
  while (lr.next(line)) {
    if (skip_line(line)) continue;
    int64_t ln = lr.lineno();
    split_fields(line, f, fields, tmp);
    if (static_cast<int>(fields.size()) < need) {
      errs.bad(ln, "",
               fmt::format("expected at least {} fields separated by {}, found {} (wrong "
                           "delimiter?)",
                           need, show_delim(f.delimiter), fields.size()));
      continue;
    }
    std::string_view u = trim(fields[col_user]), it = trim(fields[col_item]);
    if (u.empty()) {
      errs.bad(ln, "user", "empty id");
      continue;
    }
    if (it.empty()) {
      errs.bad(ln, "item", "empty id");
      continue;
    }
    if (f.numeric_ids) {
      if (!is_integer_string(u)) {
        errs.bad(ln, "user", fmt::format("'{}' is not an integer id", shown(u)));
        continue;
      }
      if (!is_integer_string(it)) {
        errs.bad(ln, "item", fmt::format("'{}' is not an integer id", shown(it)));
        continue;
      }
    }
    float r = 1.0f;
    if (col_rating >= 0) {
      auto v = parse_double(fields[col_rating]);
      if (!v) {
        errs.bad(ln, "rating", fmt::format("'{}' is not a number", shown(fields[col_rating])));
        continue;
      }
      if (std::isnan(*v) || std::isinf(*v)) {
        errs.bad(ln, "rating", "rating is NaN or infinite");
        continue;
      }
      if (*v < 0) {
        errs.bad(ln, "rating", fmt::format("negative rating {}", *v));
        continue;
      }
      if (*v > kMaxRating) {
        errs.bad(ln, "rating", fmt::format("rating {} is beyond float range", *v));
        continue;
      }
      r = static_cast<float>(*v);
    }
    int64_t t = 0;
    if (col_time >= 0) {
      auto v = parse_timestamp(fields[col_time]);
      if (!v) {
        errs.bad(ln, "time",
                 fmt::format("'{}' is not a timestamp (an integer within 64 bits)", shown(fields[col_time])));
        continue;
      }
      t = *v;
    }
    if (col_date >= 0) {
      auto days = parse_date_days(trim(fields[col_date]));
      if (!days) {
        errs.bad(ln, "date", fmt::format("'{}' is not a YYYY-MM-DD date", shown(fields[col_date])));
        continue;
      }
      t += *days * 86400000LL;
    }
    if (col_owner >= 0) {
      std::string_view ow = trim(fields[col_owner]);
      if (!ow.empty() && ow != "NA") {
        auto [pos, fresh] = raw.owner.emplace(std::string(u), std::string(ow));
        if (!fresh && pos->second != ow) {
          errs.bad(ln, "session user",
                   fmt::format("session '{}' belongs to user '{}' on an earlier line, here to '{}'", shown(u),
                               pos->second, shown(ow)));
          continue;
        }
      }
    }
    raw.users.emplace_back(u);
    raw.items.emplace_back(it);
    if (col_rating >= 0) raw.rating.push_back(r);
    if (timed) raw.time.push_back(t);
  }
  errs.finish();
  if (raw.size() == 0) throw DataError(fmt::format("'{}' holds no valid interaction lines", path));
  return raw;
}

// ---- MovieLens metadata ------------------------------------------------------------------------

ItemMetaMap read_ml100k_items(const std::string& u_item, const std::string& u_genre, const ReadOptions& o) {
  std::vector<std::string> genre_names;
  {
    std::string g = load_text(u_genre);
    LineReader lr(g);
    std::string_view line;
    std::vector<std::string_view> f;
    LineErrors errs(u_genre, o);
    while (lr.next(line)) {
      if (trim(line).empty()) continue;
      split(line, "|", f);
      auto idx = f.size() == 2 ? parse_int(f[1]) : std::nullopt;
      if (!idx || *idx < 0 || *idx > 100) {
        errs.bad(lr.lineno(), "", "expected 'name|index'");
        continue;
      }
      if (genre_names.size() <= static_cast<size_t>(*idx)) genre_names.resize(*idx + 1);
      genre_names[*idx] = std::string(f[0]);
    }
    errs.finish();
  }
  std::string text = load_text(u_item);
  LineReader lr(text);
  LineErrors errs(u_item, o);
  std::string_view line;
  std::vector<std::string_view> f;
  ItemMetaMap out;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    split(line, "|", f);
    if (f.size() != 5 + genre_names.size()) {
      errs.bad(lr.lineno(), "",
               fmt::format("expected {} '|'-separated fields, found {}", 5 + genre_names.size(), f.size()));
      continue;
    }
    if (!is_integer_string(f[0])) {
      errs.bad(lr.lineno(), "movie id", "not an integer");
      continue;
    }
    ItemMeta m;
    m.title = latin1_to_utf8(trim(f[1]));
    bool ok = true;
    for (size_t g = 0; g < genre_names.size(); ++g) {
      auto flag = trim(f[5 + g]);
      if (flag == "1")
        m.genres.push_back(genre_names[g]);
      else if (flag != "0") {
        ok = false;
        errs.bad(lr.lineno(), "genre flag", fmt::format("'{}' is not 0 or 1", shown(flag)));
        break;
      }
    }
    if (ok) out[std::string(trim(f[0]))] = std::move(m);
  }
  errs.finish();
  return out;
}

UserMetaMap read_ml100k_users(const std::string& u_user, const ReadOptions& o) {
  std::string text = load_text(u_user);
  LineReader lr(text);
  LineErrors errs(u_user, o);
  std::string_view line;
  std::vector<std::string_view> f;
  UserMetaMap out;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    split(line, "|", f);
    if (f.size() != 5 || !is_integer_string(f[0])) {
      errs.bad(lr.lineno(), "", "expected 'id|age|gender|occupation|zip'");
      continue;
    }
    out[std::string(trim(f[0]))] = {fmt::format("age={}", trim(f[1])), fmt::format("gender={}", trim(f[2])),
                                    fmt::format("occupation={}", trim(f[3]))};
  }
  errs.finish();
  return out;
}

static std::vector<std::string> split_genres(std::string_view s) {
  std::vector<std::string_view> parts;
  split(s, "|", parts);
  std::vector<std::string> out;
  for (auto p : parts)
    if (!trim(p).empty() && trim(p) != "(no genres listed)") out.emplace_back(trim(p));
  return out;
}

ItemMetaMap read_ml1m_movies(const std::string& movies_dat, const ReadOptions& o) {
  std::string text = load_text(movies_dat);
  LineReader lr(text);
  LineErrors errs(movies_dat, o);
  std::string_view line;
  std::vector<std::string_view> f;
  ItemMetaMap out;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    split(line, "::", f);
    if (f.size() != 3 || !is_integer_string(f[0])) {
      errs.bad(lr.lineno(), "", "expected 'MovieID::Title::Genres'");
      continue;
    }
    ItemMeta m;
    m.title = latin1_to_utf8(trim(f[1]));
    m.genres = split_genres(f[2]);
    out[std::string(trim(f[0]))] = std::move(m);
  }
  errs.finish();
  return out;
}

UserMetaMap read_ml1m_users(const std::string& users_dat, const ReadOptions& o) {
  std::string text = load_text(users_dat);
  LineReader lr(text);
  LineErrors errs(users_dat, o);
  std::string_view line;
  std::vector<std::string_view> f;
  UserMetaMap out;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    split(line, "::", f);
    if (f.size() != 5 || !is_integer_string(f[0])) {
      errs.bad(lr.lineno(), "", "expected 'UserID::Gender::Age::Occupation::Zip-code'");
      continue;
    }
    out[std::string(trim(f[0]))] = {fmt::format("gender={}", trim(f[1])), fmt::format("age={}", trim(f[2])),
                                    fmt::format("occupation={}", trim(f[3]))};
  }
  errs.finish();
  return out;
}

ItemMetaMap read_mlsmall_movies(const std::string& movies_csv, const ReadOptions& o) {
  std::string text = load_text(movies_csv);
  LineReader lr(text);
  LineErrors errs(movies_csv, o);
  std::string_view line;
  std::vector<std::string> f;
  ItemMetaMap out;
  bool first = true;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    if (first) {
      first = false;
      if (line.substr(0, 7) == "movieId") continue;
    }
    if (!split_csv_line(line, ',', f)) {
      errs.bad(lr.lineno(), "", "unterminated quote");
      continue;
    }
    if (f.size() != 3 || !is_integer_string(f[0])) {
      errs.bad(lr.lineno(), "", "expected 'movieId,title,genres'");
      continue;
    }
    ItemMeta m;
    m.title = std::string(trim(f[1]));
    m.genres = split_genres(f[2]);
    out[std::string(trim(f[0]))] = std::move(m);
  }
  errs.finish();
  return out;
}

void read_mlsmall_tags(const std::string& tags_csv, ItemMetaMap& meta, const ReadOptions& o) {
  std::string text = load_text(tags_csv);
  LineReader lr(text);
  LineErrors errs(tags_csv, o);
  std::string_view line;
  std::vector<std::string> f;
  bool first = true;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    if (first) {
      first = false;
      if (line.substr(0, 6) == "userId") continue;
    }
    if (!split_csv_line(line, ',', f)) {
      errs.bad(lr.lineno(), "", "unterminated quote");
      continue;
    }
    if (f.size() != 4 || !is_integer_string(f[1])) {
      errs.bad(lr.lineno(), "", "expected 'userId,movieId,tag,timestamp'");
      continue;
    }
    std::string tag = lower(trim(f[2]));
    if (tag.empty()) continue;
    auto& tags = meta[std::string(trim(f[1]))].tags;
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(std::move(tag));
  }
  errs.finish();
}

void attach_item_meta(Dataset& ds, const ItemMetaMap& meta) {
  auto& side = ds.item_side;
  std::set<std::string> vocab;
  for (auto& [id, m] : meta)
    if (ds.items.find(id) >= 0) vocab.insert(m.genres.begin(), m.genres.end());
  side.genre_vocab.assign(vocab.begin(), vocab.end());
  side.title.assign(ds.n_items(), "");
  side.genres.assign(ds.n_items(), {});
  side.tags.assign(ds.n_items(), {});
  bool any_tags = false;
  for (auto& [id, m] : meta) {
    int32_t i = ds.items.find(id);
    if (i < 0) continue;
    side.title[i] = m.title;
    for (auto& g : m.genres) {
      auto gi = std::lower_bound(side.genre_vocab.begin(), side.genre_vocab.end(), g) - side.genre_vocab.begin();
      side.genres[i].push_back(static_cast<int32_t>(gi));
    }
    side.tags[i] = m.tags;
    any_tags |= !m.tags.empty();
  }
  if (!any_tags) side.tags.clear();
}

void attach_user_meta(Dataset& ds, const UserMetaMap& meta) {
  ds.user_side.features.assign(ds.n_users(), {});
  for (auto& [id, f] : meta) {
    int32_t u = ds.users.find(id);
    if (u >= 0) ds.user_side.features[u] = f;
  }
}

// ---- LightGCN and NCF -------------------------------------------------------------------------

IdPairs read_lightgcn(const std::string& path, const ReadOptions& o) {
  std::string text = load_text(path);
  LineReader lr(text);
  LineErrors errs(path, o);
  std::string_view line;
  std::vector<std::string_view> f;
  IdPairs out;
  while (lr.next(line)) {
    split_ws(line, f);
    if (f.empty()) continue;
    auto u = parse_int(f[0]);
    if (!u || *u < 0) {
      errs.bad(lr.lineno(), "user", fmt::format("'{}' is not a non-negative integer id", shown(f[0])));
      continue;
    }
    size_t start = out.item.size();
    bool ok = true;
    for (size_t k = 1; k < f.size(); ++k) {
      auto i = parse_int(f[k]);
      if (!i || *i < 0) {
        ok = false;
        errs.bad(lr.lineno(), fmt::format("item #{}", k),
                 fmt::format("'{}' is not a non-negative integer id", shown(f[k])));
        break;
      }
      out.user.push_back(*u);
      out.item.push_back(*i);
    }
    if (!ok) {
      out.user.resize(start);
      out.item.resize(start);
    }
  }
  errs.finish();
  return out;
}

std::vector<std::string> read_remap_list(const std::string& path, const ReadOptions& o) {
  std::string text = load_text(path);
  LineReader lr(text);
  LineErrors errs(path, o);
  std::string_view line;
  std::vector<std::string_view> f;
  std::vector<std::string> out;
  std::vector<char> seen;
  while (lr.next(line)) {
    split_ws(line, f);
    if (f.empty()) continue;
    if (lr.lineno() == 1 && f.size() == 2 && !is_integer_string(f[1])) continue;  // header
    auto r = f.size() == 2 ? parse_int(f[1]) : std::nullopt;
    if (!r || *r < 0 || *r > 100000000) {
      errs.bad(lr.lineno(), "", "expected 'original_id remapped_id'");
      continue;
    }
    if (out.size() <= static_cast<size_t>(*r)) {
      out.resize(*r + 1);
      seen.resize(*r + 1, 0);
    }
    if (seen[*r]) {
      errs.bad(lr.lineno(), "remapped_id", fmt::format("{} appears twice", *r));
      continue;
    }
    seen[*r] = 1;
    out[*r] = std::string(f[0]);
  }
  errs.finish();
  for (size_t k = 0; k < out.size(); ++k)
    if (!seen[k])
      throw DataError(fmt::format("{}: remapped id {} is missing (ids must be 0..{})", path, k, out.size() - 1));
  return out;
}

NcfTest read_ncf(const std::string& test_rating, const std::string& test_negative, const ReadOptions& o) {
  NcfTest t;
  {
    std::string text = load_text(test_rating);
    LineReader lr(text);
    LineErrors errs(test_rating, o);
    std::string_view line;
    std::vector<std::string_view> f;
    while (lr.next(line)) {
      if (trim(line).empty()) continue;
      split(line, "\t", f);
      if (f.size() < 2) {
        errs.bad(lr.lineno(), "", "expected 'user<TAB>item<TAB>rating<TAB>timestamp'");
        continue;
      }
      auto u = parse_int(f[0]), i = parse_int(f[1]);
      if (!u || *u < 0) {
        errs.bad(lr.lineno(), "user", "not a non-negative integer");
        continue;
      }
      if (!i || *i < 0) {
        errs.bad(lr.lineno(), "item", "not a non-negative integer");
        continue;
      }
      auto rating = f.size() > 2 ? parse_double(f[2]) : std::optional<double>(1.0);
      if (!rating || !std::isfinite(*rating) || std::fabs(*rating) > kMaxRating) {
        errs.bad(lr.lineno(), "rating", fmt::format("'{}' is not a number", shown(f[2])));
        continue;
      }
      auto time = f.size() > 3 ? parse_timestamp(f[3]) : std::optional<int64_t>(0);
      if (!time) {
        errs.bad(lr.lineno(), "time", fmt::format("'{}' is not a timestamp", shown(f[3])));
        continue;
      }
      t.user.push_back(*u);
      t.item.push_back(*i);
      t.rating.push_back(static_cast<float>(*rating));
      t.time.push_back(*time);
    }
    errs.finish();
  }
  std::map<std::pair<int64_t, int64_t>, size_t> row_of;
  for (size_t k = 0; k < t.user.size(); ++k) row_of[{t.user[k], t.item[k]}] = k;
  t.negatives.assign(t.user.size(), {});
  std::vector<char> has(t.user.size(), 0);
  std::string text = load_text(test_negative);
  LineReader lr(text);
  LineErrors errs(test_negative, o);
  std::string_view line;
  std::vector<std::string_view> f, pair;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    split(line, "\t", f);
    auto head = trim(f[0]);
    if (head.size() < 5 || head.front() != '(' || head.back() != ')') {
      errs.bad(lr.lineno(), "(user,item)", "expected '(user,item)' first");
      continue;
    }
    split(head.substr(1, head.size() - 2), ",", pair);
    auto u = pair.size() == 2 ? parse_int(pair[0]) : std::nullopt;
    auto i = pair.size() == 2 ? parse_int(pair[1]) : std::nullopt;
    if (!u || !i) {
      errs.bad(lr.lineno(), "(user,item)", "not two integers");
      continue;
    }
    auto it = row_of.find({*u, *i});
    if (it == row_of.end()) {
      errs.bad(lr.lineno(), "(user,item)", fmt::format("({},{}) is not in {}", *u, *i, test_rating));
      continue;
    }
    std::vector<int64_t> negs;
    bool ok = true;
    for (size_t k = 1; k < f.size(); ++k) {
      if (trim(f[k]).empty()) continue;
      auto n = parse_int(f[k]);
      if (!n || *n < 0) {
        ok = false;
        errs.bad(lr.lineno(), fmt::format("negative #{}", k),
                 fmt::format("'{}' is not a non-negative integer", shown(f[k])));
        break;
      }
      negs.push_back(*n);
    }
    if (!ok) continue;
    t.negatives[it->second] = std::move(negs);
    has[it->second] = 1;
  }
  errs.finish();
  for (size_t k = 0; k < has.size(); ++k)
    if (!has[k])
      throw DataError(fmt::format("{}: no negatives for test pair ({},{}) of {}", test_negative, t.user[k], t.item[k],
                                  test_rating));
  return t;
}

// ---- RecBole atomic files ---------------------------------------------------------------------

namespace {
struct AtomicTable {
  std::vector<std::string> names, types;
  std::vector<std::vector<std::string>> rows;
  int col(const std::string& n) const {
    auto it = std::find(names.begin(), names.end(), n);
    return it == names.end() ? -1 : static_cast<int>(it - names.begin());
  }
};
AtomicTable read_atomic(const std::string& path, const ReadOptions& o) {
  std::string text = load_text(path);
  LineReader lr(text);
  LineErrors errs(path, o);
  std::string_view line;
  std::vector<std::string_view> f;
  AtomicTable t;
  while (lr.next(line)) {
    if (trim(line).empty()) continue;
    split(line, "\t", f);
    if (t.names.empty()) {
      for (auto h : f) {
        auto c = h.find(':');
        if (c == std::string_view::npos)
          throw DataError(fmt::format("{}:{}: header field '{}' is not 'name:type'", path, lr.lineno(), shown(h)));
        std::string type(trim(h.substr(c + 1)));
        if (type != "token" && type != "token_seq" && type != "float" && type != "float_seq")
          throw DataError(
              fmt::format("{}:{}: header field '{}' has unknown type '{}' (token, token_seq, float, float_seq)", path,
                          lr.lineno(), shown(h), type));
        t.names.emplace_back(trim(h.substr(0, c)));
        t.types.push_back(type);
      }
      continue;
    }
    if (f.size() != t.names.size()) {
      errs.bad(lr.lineno(), "", fmt::format("expected {} TAB-separated fields, found {}", t.names.size(), f.size()));
      continue;
    }
    t.rows.emplace_back(f.begin(), f.end());
  }
  errs.finish();
  return t;
}
}  // namespace

Dataset read_recbole(const std::string& prefix, const RecBoleFormat& fm, const ReadOptions& o) {
  std::string inter_path = prefix + ".inter";
  AtomicTable inter = read_atomic(inter_path, o);
  int cu = inter.col(fm.user_field), ci = inter.col(fm.item_field);
  int cr = inter.col(fm.rating_field), ct = inter.col(fm.time_field);
  if (cu < 0 || ci < 0)
    throw DataError(fmt::format("{}: header needs '{}' and '{}' fields (found: {})", inter_path, fm.user_field,
                                fm.item_field, fmt::join(inter.names, ", ")));
  LineErrors errs(inter_path, o);
  RawLog raw;
  for (size_t r = 0; r < inter.rows.size(); ++r) {
    auto& row = inter.rows[r];
    if (trim(row[cu]).empty() || trim(row[ci]).empty()) {
      errs.bad(static_cast<int64_t>(r) + 2, "", "empty user or item id");
      continue;
    }
    float rating = 1.0f;
    if (cr >= 0) {
      auto v = parse_double(row[cr]);
      if (!v || !std::isfinite(*v) || *v < 0 || *v > kMaxRating) {
        errs.bad(static_cast<int64_t>(r) + 2, fm.rating_field,
                 fmt::format("'{}' is not a non-negative number", shown(row[cr])));
        continue;
      }
      rating = static_cast<float>(*v);
    }
    int64_t time = 0;
    if (ct >= 0) {
      auto v = parse_timestamp(row[ct]);
      if (!v) {
        errs.bad(static_cast<int64_t>(r) + 2, fm.time_field,
                 fmt::format("'{}' is not a timestamp (an integer within 64 bits)", shown(row[ct])));
        continue;
      }
      time = *v;
    }
    raw.users.emplace_back(trim(row[cu]));
    raw.items.emplace_back(trim(row[ci]));
    if (cr >= 0) raw.rating.push_back(rating);
    if (ct >= 0) raw.time.push_back(time);
  }
  errs.finish();
  if (raw.size() == 0) throw DataError(fmt::format("'{}' holds no valid interactions", inter_path));
  Dataset ds = dataset_from_raw(std::move(raw), prefix);
  ds.description = "RecBole atomic files " + prefix + ".{inter,item,user}";
  if (file_exists(prefix + ".item")) {
    AtomicTable it = read_atomic(prefix + ".item", o);
    int cid = it.col(fm.item_field);
    if (cid < 0) throw DataError(fmt::format("{}.item: header needs '{}'", prefix, fm.item_field));
    ItemMetaMap meta;
    for (auto& row : it.rows) {
      ItemMeta m;
      for (size_t c = 0; c < row.size(); ++c) {
        if (static_cast<int>(c) == cid) continue;
        const auto& n = it.names[c];
        if (n.find("title") != std::string::npos)
          m.title = std::string(trim(row[c]));
        else if (it.types[c] == "token_seq")
          for (auto& tok : split_list(row[c], ' ')) m.genres.push_back(tok);
      }
      meta[std::string(trim(row[cid]))] = std::move(m);
    }
    attach_item_meta(ds, meta);
  }
  if (file_exists(prefix + ".user")) {
    AtomicTable ut = read_atomic(prefix + ".user", o);
    int cid = ut.col(fm.user_field);
    if (cid < 0) throw DataError(fmt::format("{}.user: header needs '{}'", prefix, fm.user_field));
    UserMetaMap meta;
    for (auto& row : ut.rows) {
      std::vector<std::string> feats;
      for (size_t c = 0; c < row.size(); ++c)
        if (static_cast<int>(c) != cid && ut.types[c] == "token" && !trim(row[c]).empty())
          feats.push_back(ut.names[c] + "=" + std::string(trim(row[c])));
      meta[std::string(trim(row[cid]))] = std::move(feats);
    }
    attach_user_meta(ds, meta);
  }
  return ds;
}

}  // namespace siamrec
