// The fused engine's form of a loss (train/fused.*): the loss of one example, computed from its
// comparator values, and the loss's derivatives with respect to them. It is written without
// autograd, in the same file as the LibTorch form and under the same registry name. The
// engine's tests hold the two forms to the same values and gradients (fused_test). A loss
// without a fused form is trained by the LibTorch engine only; FusedEngine::unsupported() says so.
// This header does not include torch.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

namespace siamrec {

struct FusedLossArgs {
  double margin = 1, temperature = 0.1, neg_weight = 1, pos_margin = 0;
  int64_t n_items = 0;     // catalogue size (WARP's rank estimate)
  float label_offset = 0;  // rating tasks: the training mean, subtracted from labels
  double inv_k = 1;        // 1 / negatives per example
};

// vpv: the anchor-positive value; vnv[0..k): anchor-negative values (distances when the form wants
// them, else similarities); y: the label (rating tasks). Returns the loss; sets up_p = dL/dvpv and
// upn[j] = dL/dvnv[j] (every upn[j] is written).
using FusedLossFn = double (*)(const FusedLossArgs& a, double vpv, const double* vnv, float y, double& up_p,
                               double* upn, int k);

struct FusedLossForm {
  FusedLossFn coefs = nullptr;
  bool wants_distance = false;  // the values are distances (lower = closer), else similarities
  bool triplet_hinge = false;   // mean of max(0, vpv - vnv + margin): the fast kernels' inlined case
};

// Registers the fused form of the loss `name` (one SIAMREC_REGISTER_FUSED_LOSS line beside its
// SIAMREC_REGISTER_LOSS); returns true so it can initialize a static.
bool register_fused_loss(const std::string& name, FusedLossForm f);
#define SIAMREC_REGISTER_FUSED_LOSS(ID, NAME, ...) \
  static const bool siamrec_fused_loss_##ID =      \
      ::siamrec::register_fused_loss(NAME, ::siamrec::FusedLossForm{__VA_ARGS__})
// The fused form of a registered loss, or nullptr when it has none.
const FusedLossForm* fused_loss_form(const std::string& name);

inline double fused_softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
inline double fused_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace siamrec
