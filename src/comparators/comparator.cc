#include "comparators/comparator.h"

#include <map>
#include <stdexcept>

#include "comparators/fused_form.h"

namespace siamrec {

std::shared_ptr<Comparator> make_comparator(const ComparatorSpec& spec) {
  return ComparatorRegistry::get().find(spec.type, "comparator.type")(spec);
}

namespace {
std::map<std::string, FusedComparatorForm>& fused_forms() {
  static std::map<std::string, FusedComparatorForm> r;
  return r;
}
}  // namespace

bool register_fused_comparator(const std::string& name, FusedComparatorForm f) {
  if (!f.value || !f.back) throw std::logic_error("fused form of comparator '" + name + "' without its functions");
  if (!fused_forms().emplace(name, f).second)
    throw std::logic_error("fused form of comparator '" + name + "' registered twice");
  return register_name("fused:comparator", name, "");
}

const FusedComparatorForm* fused_comparator_form(const std::string& name) {
  auto it = fused_forms().find(name);
  return it == fused_forms().end() ? nullptr : &it->second;
}

}  // namespace siamrec
