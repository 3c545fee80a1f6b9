// Similarities of anchors against rows of a table they index, without gathering the rows:
//   s[n, j] = sim(a[n], table[ids[n, j]])      (dot, or cosine with norms clamped at 1e-8)
// with the gradient into a and into the table (dense). The same values and gradients as gathering
// the rows (table.index_select) and calling the comparator on them, minus the [n, k, d] copies and
// the autograd of their products and norms (docs/towers.md: 30-40% of a LightGCN epoch).
#pragma once
#include <torch/types.h>

namespace siamrec {

// a float [n, d], table float [N, d], ids int64 [n, k] (each in 0..N-1) -> float [n, k].
torch::Tensor gathered_similarity(const torch::Tensor& a, const torch::Tensor& table, const torch::Tensor& ids,
                                  bool cosine);

}  // namespace siamrec
