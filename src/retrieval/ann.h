// Approximate nearest-neighbour retrieval over item embeddings, for catalogues where exact scoring
// of every item is too slow: HNSW graphs (Debian's hnswlib) or an inverted file of k-means lists
// (faiss IndexIVFFlat, Debian's libfaiss), the second for very large catalogues (a smaller index,
// built in seconds, memory-mapped at load). Scores use the model's own similarity: inner product
// (dot), inner product of unit vectors (cosine), -|a-b|^2, -|a-b|.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "scoring/topk.h"

namespace siamrec {

struct AnnOptions {
  std::string type = "hnsw";  // hnsw | ivf
  int m = 16;                 // hnsw: graph degree
  int ef_construction = 200;
  int ef_search = 100;  // hnsw: search breadth
  int nlist = 0;        // ivf: lists (k-means centroids); 0: sqrt(items)
  int nprobe = 16;      // ivf: lists scanned per query
  int threads = 2;      // build threads
};

class AnnIndex {
 public:
  // items: n x dim row-major (raw embeddings; cosine rows are normalized internally).
  AnnIndex(const float* items, int64_t n, int dim, Similarity kind, const AnnOptions& o);
  ~AnnIndex();
  // Writes the graph to `path` (hnswlib's format; a temporary file renamed into place) and returns
  // the SHA-256 of the bytes written.
  std::string save(const std::string& path) const;
  // Reads a graph written by save(). The caller checks the file first (load_or_build does): hnswlib
  // trusts the bytes it reads. Throws Error when the graph's size or dimension differ.
  static std::unique_ptr<AnnIndex> load(const std::string& path, int64_t n, int dim, Similarity kind, int ef_search);
  // Either kind of index (o.type), written by save(): an HNSW graph or a faiss inverted file,
  // both memory-mapped.
  static std::unique_ptr<AnnIndex> load(const std::string& path, int64_t n, int dim, Similarity kind,
                                        const AnnOptions& o);
  // The k best items for a query vector, best first, with exact-comparable scores.
  std::vector<std::pair<int32_t, float>> search(const float* query, int k) const;
  void set_ef(int ef);  // hnsw: ef; ivf: nprobe
  const std::string& type() const;
  int64_t size() const { return n_; }

 private:
  AnnIndex(int64_t n, int dim, Similarity kind);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t n_;
  int dim_;
  Similarity kind_;
};

// The index of a model's item embeddings, cached beside the model: `path` (the graph or inverted
// file) and `path`.json (what it was built from: the model file's SHA-256, similarity, size,
// dimension, M and efConstruction or the index type and its lists, and the index's SHA-256). A cache that matches is
// loaded (checksum verified before hnswlib reads it); a missing, stale or corrupt one is rebuilt and rewritten (when
// `write` and the directory allows; otherwise served from memory with a warning). *how says which happened.
std::unique_ptr<AnnIndex> load_or_build_ann(const std::string& path, const std::string& model_sha256,
                                            const float* items, int64_t n, int dim, Similarity kind,
                                            const AnnOptions& o, bool write, std::string* how);

}  // namespace siamrec
