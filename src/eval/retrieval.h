// Retrieval evaluation (visual similar items, metric learning): every query item ranks the other
// items of the set by embedding similarity; relevant = same category. Recall@K (the share of
// queries with at least one relevant item in the top K, as in the metric-learning literature) and
// MAP@R (R = number of relevant items for the query; Musgrave et al. 2020).
#pragma once
#include <cstdint>
#include <vector>

#include "eval/evaluator.h"
#include "scoring/topk.h"

namespace siamrec {

struct RetrievalSpec {
  std::vector<int> ks = {1, 10};
  int threads = 1;
  int keep_top = 0;  // also return the top `keep_top` of the first queries (for image grids)
  int keep_queries = 0;
};

// emb: n_items x dim (cosine: pass unit rows); set: the items that query and are ranked; label[i]
// for every item of the set. Returns metrics recall@K, map@r and per-query vectors.
EvalResult evaluate_retrieval(const float* emb, int dim, Similarity sim, const std::vector<int32_t>& set,
                              const std::vector<int32_t>& label, const RetrievalSpec& spec,
                              std::vector<std::vector<int32_t>>* tops = nullptr);

}  // namespace siamrec
