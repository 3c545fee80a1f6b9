#include "comparators/comparator.h"

#include <map>
#include <stdexcept>

#include "comparators/fused_form.h"

namespace siamrec {

std::shared_ptr<Comparator> make_comparator(const ComparatorSpec& spec) {
  return ComparatorRegistry::get().find(spec.type, "comparator.type")(spec);
}

bool register_fused_comparator(const std::string& name, FusedComparatorForm f) {
  if (!f.value || !f.back) throw std::logic_error("fused form of comparator '" + name + "' without its functions");
  return Registry<FusedComparatorForm>::get().add(name, "", f) && register_name("fused:comparator", name, "");
}

const FusedComparatorForm* fused_comparator_form(const std::string& name) {
  return Registry<FusedComparatorForm>::get().get(name);
}

}  // namespace siamrec
