// Approximate nearest-neighbour retrieval over item embeddings (Debian's hnswlib, HNSW graphs),
// for catalogues where exact scoring of every item is too slow. Scores use the model's own
// similarity: inner product (dot), inner product of unit vectors (cosine), -|a-b|^2, -|a-b|.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "scoring/topk.h"

namespace siamrec {

struct AnnOptions {
  int m = 16;  // graph degree
  int ef_construction = 200;
  int ef_search = 100;
  int threads = 2;  // build threads
};

class AnnIndex {
 public:
  // items: n x dim row-major (raw embeddings; cosine rows are normalized internally).
  AnnIndex(const float* items, int64_t n, int dim, Similarity kind, const AnnOptions& o);
  ~AnnIndex();
  // The k best items for a query vector, best first, with exact-comparable scores.
  std::vector<std::pair<int32_t, float>> search(const float* query, int k) const;
  void set_ef(int ef);
  int64_t size() const { return n_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t n_;
  int dim_;
  Similarity kind_;
};

}  // namespace siamrec
