#include "data/formats.h"

#include <map>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/error.h"
#include "util/names.h"
#include "util/registry.h"

namespace siamrec {

bool register_format(FormatSpec f) {
  if (f.name.empty() || !f.read) throw std::logic_error("a data format needs a name and a reader");
  const std::string name = f.name, help = f.help;
  return Registry<FormatSpec>::get().add(name, help, std::move(f)) && register_name("format", name, help);
}

const FormatSpec& data_format(const std::string& name) { return Registry<FormatSpec>::get().find(name, "data.format"); }

}  // namespace siamrec
