// Feature extraction tasks: embedding export (TSV, .npy) and k-means clustering of item embeddings.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace siamrec {

// Writes an n x dim float32 matrix as NumPy .npy (format 1.0), atomically.
void write_npy(const std::string& path, const float* data, int64_t n, int64_t dim);
// Writes "id<TAB>v1<TAB>...<TAB>vd" lines, atomically.
void write_embedding_tsv(const std::string& path, const std::vector<std::string>& ids, const float* data, int64_t dim);

struct KMeansResult {
  std::vector<int32_t> assign;   // cluster of each row
  std::vector<float> centroids;  // k x dim
  double inertia = 0;            // sum of squared distances to the assigned centroid
  int iterations = 0;
};
// Lloyd's k-means with k-means++ seeding; deterministic for a seed.
KMeansResult kmeans(const float* data, int64_t n, int64_t dim, int k, int max_iter, uint64_t seed);

}  // namespace siamrec
