// File formats of own data (`data.format` with `data.path`), registered by name: a format reads
// one path into a Dataset, taking its options (columns, delimiter, ...) from the config's data
// section. A new format is one file in data/formats/ plus one SIAMREC_REGISTER_FORMAT line
// (data/formats/amazon_json.cc is one).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/readers.h"

namespace siamrec {

class Config;

struct FormatSpec {
  std::string name;  // the value of data.format
  std::string help;  // one line for `siamrec params` and docs/parameters.md
  std::function<Dataset(const std::string& path, const Config& c, const ReadOptions& o)> read;
};

bool register_format(FormatSpec f);
#define SIAMREC_REGISTER_FORMAT(ID, ...) \
  static const bool siamrec_format_##ID = ::siamrec::register_format(::siamrec::FormatSpec{__VA_ARGS__})

// Throws ConfigError naming data.format and the registered formats when unknown.
const FormatSpec& data_format(const std::string& name);

}  // namespace siamrec
