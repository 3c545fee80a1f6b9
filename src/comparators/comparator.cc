#include "comparators/comparator.h"

namespace siamrec {

std::shared_ptr<Comparator> make_comparator(const ComparatorSpec& spec) {
  return ComparatorRegistry::get().find(spec.type, "comparator.type")(spec);
}

}  // namespace siamrec
