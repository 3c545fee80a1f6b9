// Delimited interaction logs (CSV, TSV, any delimiter; columns by header name or index) and
// delimited session logs (each session is a sequence and takes the place of a user), plus RecBole
// atomic files. Options come from the data section (data.delimiter, data.user_col, ...).
#include "config/config.h"
#include "data/formats.h"

namespace siamrec {
namespace {

std::string delimiter_of(const std::string& d) {
  if (d == "tab" || d == "\\t") return "\t";
  if (d == "comma") return ",";
  if (d == "space") return " ";
  return d;
}

Dataset read_delimited_log(const std::string& path, const Config& c, const ReadOptions& ro, bool sessions) {
  DelimitedFormat f;
  f.delimiter = delimiter_of(c.str("data.delimiter"));
  f.header = c.flag("data.header");
  f.comment = c.str("data.comment");
  f.quoted = f.delimiter == ",";
  f.user = c.str("data.user_col");
  f.item = c.str("data.item_col");
  f.rating = c.str("data.rating_col");
  f.time = c.str("data.time_col");
  f.numeric_ids = c.flag("data.numeric_ids");
  if (sessions) {  // a session is the sequence: it takes the place of the user
    f.user = c.str("data.session_col");
    f.owner = c.str("data.session_user_col");
  }
  f.date = c.str("data.date_col");
  RawLog raw = read_delimited(path, f, ro);
  UserMetaMap owners;
  for (auto& [session, user] : raw.owner) owners[session] = {"user=" + user};
  Dataset ds = dataset_from_raw(std::move(raw), path);
  ds.description = (sessions ? "session log " : "delimited file ") + path;
  if (sessions) attach_user_meta(ds, owners);
  return ds;
}

}  // namespace

SIAMREC_REGISTER_FORMAT(delimited, "delimited", "a delimited log (data.delimiter, data.header, data.*_col)",
                        [](const std::string& p, const Config& c, const ReadOptions& o) {
                          return read_delimited_log(p, c, o, false);
                        });
SIAMREC_REGISTER_FORMAT(sessions, "sessions",
                        "a delimited session log; each session is a sequence and takes the place of a user "
                        "(data.session_col, data.session_user_col, data.date_col)",
                        [](const std::string& p, const Config& c, const ReadOptions& o) {
                          return read_delimited_log(p, c, o, true);
                        });
SIAMREC_REGISTER_FORMAT(recbole, "recbole",
                        "RecBole atomic files: data.path is the prefix of PREFIX.inter (.item, .user)",
                        [](const std::string& p, const Config&, const ReadOptions& o) {
                          return read_recbole(p, {}, o);
                        });

}  // namespace siamrec
