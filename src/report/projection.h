// 2-D maps of embeddings for the report: PCA (top two principal components) and exact t-SNE
// (van der Maaten & Hinton 2008: perplexity-calibrated affinities, Student-t map, early
// exaggeration, momentum and gains). Exact t-SNE is O(n^2) per iteration: meant for the few
// thousand points a readable map holds. Both are deterministic.
#pragma once
#include <cstdint>
#include <vector>

namespace siamrec::report {

// n x dim row-major input; returns n x 2 row-major coordinates.
std::vector<double> pca_2d(const float* x, int64_t n, int dim);

struct TsneOptions {
  double perplexity = 30;  // lowered to (n - 1) / 3 for small n
  int iterations = 750;
  int exaggeration_iters = 250;
  double exaggeration = 12;
  int threads = 1;
};
// Initialised from the PCA map (scaled to standard deviation 1e-4, plus a 1e-6 deterministic
// spread of the second coordinate), so the result depends on the data alone. n < 4 returns the
// PCA map. Memory: three n x n double matrices (1,500 points: 54 MB; 5,000: 600 MB).
inline constexpr int64_t kTsneMaxPoints = 5000;
std::vector<double> tsne_2d(const float* x, int64_t n, int dim, const TsneOptions& o = {});

// Kullback-Leibler divergence KL(P || Q) of a map (the quantity t-SNE minimises; lower is better):
// used by the tests to check t-SNE improves on its PCA start.
double tsne_kl(const float* x, int64_t n, int dim, const std::vector<double>& y, double perplexity);

}  // namespace siamrec::report
