// Small string helpers: splitting, trimming and strict number parsing (no silent garbage).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace siamrec {

std::string_view trim(std::string_view s);
// Split on a single-character or multi-character delimiter; keeps empty fields.
void split(std::string_view s, std::string_view delim, std::vector<std::string_view>& out);
// Split on runs of spaces and tabs.
void split_ws(std::string_view s, std::vector<std::string_view>& out);
std::vector<std::string> split_list(const std::string& s, char delim = ',');  // trims, drops empties

// Strict parsers: the whole field (after trimming) must be a number.
std::optional<int64_t> parse_int(std::string_view s);
std::optional<double> parse_double(std::string_view s);
bool is_integer_string(std::string_view s);

// Latin-1 (ISO-8859-1) bytes to UTF-8 (MovieLens 100K/1M metadata is Latin-1).
std::string latin1_to_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);
std::string lower(std::string_view s);

// Text safe for a terminal, a log line or a TSV field: control characters (C0 including tab and
// newline, DEL, and UTF-8-encoded C1) become \xNN, so a crafted id can neither move the cursor,
// retitle the terminal nor break a column; other bytes are kept. Text longer than `max` bytes is
// cut with "...".
std::string printable(std::string_view s, size_t max = std::string_view::npos);

// Human-readable counts and sizes.
std::string with_commas(int64_t v);

}  // namespace siamrec
