// Hot pieces of the sequence towers, written for small CPU batches (issue: SASRec epochs were
// dominated by LibTorch's dropout, whose Bernoulli draws take one Mersenne-Twister call per
// element: 20% of an epoch in `perf`).
#pragma once
#include <torch/nn/modules/activation.h>

namespace siamrec {

// Inverted dropout whose mask comes from a counter-based generator (a 32-bit hash of the element's
// index), seeded by one draw of LibTorch's default generator (torch::manual_seed reproduces it).
// The mask is a constant of the graph: the gradient is the mask times the incoming gradient.
torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training);

// Multi-head self-attention of `m`'s parameters over sequence-first x [L, B, d], with an additive
// float mask [L, L] or one per sequence [B, L, L] (-inf where a query may not look) and fast_dropout on the attention
// weights: LibTorch's MultiheadAttention forward, term for term, but with that dropout.
torch::Tensor self_attention(torch::nn::MultiheadAttention& m, const torch::Tensor& x, const torch::Tensor& mask,
                             double dropout, bool training);

}  // namespace siamrec
