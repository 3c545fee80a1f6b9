// Readers for interaction logs and side data. Every reader reports a malformed line as
// "FILE:LINE: field F: problem"; with ReadOptions::skip_bad_lines it skips such lines instead and
// logs one warning with the count and the first problem.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace siamrec {

struct ReadOptions {
  bool skip_bad_lines = false;
};

// Collects malformed lines of one file: throws DataError (file:line: field 'F': problem) on the
// first unless skipping, else counts them and warns once at finish().
class LineErrors {
 public:
  LineErrors(std::string path, const ReadOptions& o);
  void bad(int64_t line, std::string_view field, const std::string& problem);
  void finish() const;
  int64_t count() const { return count_; }

 private:
  std::string path_;
  bool skip_;
  int64_t count_ = 0;
  std::string first_;
};

// A data file's text; DataError naming the path when it is missing or empty. A UTF-8 byte-order
// mark at the start is dropped (it would otherwise become part of the first id or header name).
std::string read_data_text(const std::string& path);
// Drops a leading UTF-8 byte-order mark; true when there was one.
bool strip_bom(std::string& text);

// A timestamp field: an integer, or a finite number that fits int64 (fraction dropped); nullopt for
// anything else (1e23 would be undefined behaviour as a cast and would reorder a history).
std::optional<int64_t> parse_timestamp(std::string_view s);

// Generic delimited interaction log.
struct DelimitedFormat {
  std::string delimiter = "\t";  // any string; "ws" = runs of spaces/tabs
  bool header = false;           // first non-comment line names the columns
  std::string comment = "#";     // lines starting with this are skipped ("" = none)
  bool quoted = false;           // CSV-style double quotes around fields
  // Columns: a name from the header, or a 0-based index. rating/time may be "" (absent).
  std::string user = "0", item = "1", rating, time;
  bool numeric_ids = false;  // ids must be integers (MovieLens, LightGCN, NCF)
  // Session logs (session_id;user_id;item_id;timeframe;eventdate): `date` (YYYY-MM-DD) orders
  // events across days, time = days since 1970-01-01 x 86,400,000 + the time column (ms within
  // the day or session); `owner` is the user a row's "user" (the session) belongs to ("" / NA /
  // empty fields: anonymous), returned in RawLog::owner.
  std::string date, owner;
};
// Days since 1970-01-01 of a "YYYY-MM-DD" date, or nullopt when malformed.
std::optional<int64_t> parse_date_days(std::string_view s);
RawLog read_delimited(const std::string& path, const DelimitedFormat& f, const ReadOptions& o = {});

// Splits one CSV line with double-quote handling (RFC 4180 within a line).
bool split_csv_line(std::string_view line, char delim, std::vector<std::string>& out);

// Item metadata keyed by original item id.
struct ItemMeta {
  std::string title;
  std::vector<std::string> genres;
  std::vector<std::string> tags;
};
using ItemMetaMap = std::map<std::string, ItemMeta>;
using UserMetaMap = std::map<std::string, std::vector<std::string>>;

ItemMetaMap read_ml100k_items(const std::string& u_item, const std::string& u_genre, const ReadOptions& o = {});
UserMetaMap read_ml100k_users(const std::string& u_user, const ReadOptions& o = {});
ItemMetaMap read_ml1m_movies(const std::string& movies_dat, const ReadOptions& o = {});
UserMetaMap read_ml1m_users(const std::string& users_dat, const ReadOptions& o = {});
ItemMetaMap read_mlsmall_movies(const std::string& movies_csv, const ReadOptions& o = {});
// Adds tags (lower-cased, de-duplicated per item) to `meta`.
void read_mlsmall_tags(const std::string& tags_csv, ItemMetaMap& meta, const ReadOptions& o = {});

// Attaches metadata to a dataset's dense ids (items without metadata get empty fields).
void attach_item_meta(Dataset& ds, const ItemMetaMap& meta);
void attach_user_meta(Dataset& ds, const UserMetaMap& meta);

// LightGCN-style "user item item ..." file, as (user, item) pairs of the file's own integer ids.
struct IdPairs {
  std::vector<int64_t> user, item;
};
IdPairs read_lightgcn(const std::string& path, const ReadOptions& o = {});
// "original_id remapped_id" list (optional header) -> original id of each remapped id.
std::vector<std::string> read_remap_list(const std::string& path, const ReadOptions& o = {});

// NCF leave-one-out files: test.rating "user\titem\trating\tts"; test.negative "(u,i)\tneg\tneg...".
struct NcfTest {
  std::vector<int64_t> user, item;
  std::vector<float> rating;
  std::vector<int64_t> time;
  std::vector<std::vector<int64_t>> negatives;  // aligned with user/item after merging
};
NcfTest read_ncf(const std::string& test_rating, const std::string& test_negative, const ReadOptions& o = {});

// RecBole atomic files: PREFIX.inter (required), PREFIX.item and PREFIX.user (optional), with
// "name:type" headers (token, token_seq, float, float_seq). Fields are matched by name:
// user_id, item_id, rating, timestamp (override with the *_field arguments).
struct RecBoleFormat {
  std::string user_field = "user_id", item_field = "item_id", rating_field = "rating", time_field = "timestamp";
};
Dataset read_recbole(const std::string& prefix, const RecBoleFormat& f = {}, const ReadOptions& o = {});

}  // namespace siamrec
