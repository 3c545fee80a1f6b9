#include "sampling/builder.h"

namespace siamrec {

std::unique_ptr<TupleBuilder> make_builder(const std::string& name) {
  return BuilderRegistry::get().find(name, "sampler.builder")();
}
std::unique_ptr<NegativeSampler> make_sampler(const std::string& name) {
  return SamplerRegistry::get().find(name, "sampler.type")();
}

}  // namespace siamrec
