// Amazon review data (McAuley et al.): JSON lines with reviewerID (user), asin (item), overall
// (rating 1-5) and unixReviewTime (seconds). Other fields are ignored; a line without one of the
// four, or with a wrong type, is a DataError naming file, line and field (or skipped and counted
// with --skip-bad-lines).
#include <cmath>

#include <nlohmann/json.hpp>

#include "data/formats.h"
#include "util/io.h"

namespace siamrec {

static Dataset read_amazon_json(const std::string& path, const Config&, const ReadOptions& o) {
  const std::string text = read_data_text(path);
  LineErrors errors(path, o);
  RawLog raw;
  LineReader lines(text);
  std::string_view line;
  int64_t n = 0;
  while (lines.next(line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      errors.bad(n, "", "not a JSON object");
      continue;
    }
    auto field = [&](const char* name, auto ok) -> const nlohmann::json* {
      auto it = j.find(name);
      if (it == j.end()) return errors.bad(n, name, "missing"), nullptr;
      if (!ok(*it)) return errors.bad(n, name, "wrong type: " + it->dump().substr(0, 40)), nullptr;
      return &*it;
    };
    auto is_id = [](const nlohmann::json& v) { return v.is_string() && !v.get_ref<const std::string&>().empty(); };
    auto is_num = [](const nlohmann::json& v) { return v.is_number() && std::isfinite(v.get<double>()); };
    auto is_time = [](const nlohmann::json& v) {
      return v.is_number_integer() ? !v.is_number_unsigned() || v.get<uint64_t>() <= INT64_MAX
                                   : v.is_number() && v.get<double>() > -9.2e18 && v.get<double>() < 9.2e18;
    };
    const nlohmann::json *u = field("reviewerID", is_id), *i = u ? field("asin", is_id) : nullptr;
    const nlohmann::json *r = i ? field("overall", is_num) : nullptr,
                         *t = r ? field("unixReviewTime", is_time) : nullptr;
    if (!t) continue;
    raw.users.push_back(u->get<std::string>());
    raw.items.push_back(i->get<std::string>());
    raw.rating.push_back(r->get<float>());
    raw.time.push_back(t->get<int64_t>());
  }
  errors.finish();
  Dataset ds = dataset_from_raw(std::move(raw), path);
  ds.description = "Amazon reviews (JSON lines) " + path;
  return ds;
}

SIAMREC_REGISTER_FORMAT(amazon_json, "amazon_json",
                        "Amazon review JSON lines: reviewerID, asin, overall (rating), unixReviewTime",
                        read_amazon_json);

}  // namespace siamrec
