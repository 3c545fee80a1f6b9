// The fused engine's form of a comparator (train/fused.*): its value for two embedding rows and
// the value's gradient with respect to both rows, written without autograd. It lives in the same
// file as the LibTorch form, under the same registry name. A comparator without one (learned,
// manhattan) is trained by the LibTorch engine only. This header does not include torch.
#pragma once
#include <cstdint>
#include <string>

namespace siamrec {

struct FusedComparatorForm {
  // The value of rows a and b (d floats): a distance when want_dist (lower = closer), else a
  // similarity.
  double (*value)(const float* a, const float* b, int64_t d, bool want_dist) = nullptr;
  // Adds up * d value / d a to ga and up * d value / d b to gb; v is value(a, b, d, want_dist).
  void (*back)(const float* a, const float* b, int64_t d, double v, double up, bool want_dist, float* ga,
               float* gb) = nullptr;
  // The fused engine's AVX kernels implement these two by hand (util/vec.h): raw = a.b or |a - b|^2.
  enum Fast { kNone, kDot, kSqEuclidean } fast = kNone;
};

bool register_fused_comparator(const std::string& name, FusedComparatorForm f);
#define SIAMREC_REGISTER_FUSED_COMPARATOR(ID, NAME, ...) \
  static const bool siamrec_fused_comparator_##ID =      \
      ::siamrec::register_fused_comparator(NAME, ::siamrec::FusedComparatorForm{__VA_ARGS__})
// The fused form of a registered comparator, or nullptr when it has none.
const FusedComparatorForm* fused_comparator_form(const std::string& name);

}  // namespace siamrec
