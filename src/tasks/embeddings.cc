#include "tasks/embeddings.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include <fmt/format.h>

#include "util/rng.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

namespace siamrec {

void write_npy(const std::string& path, const float* data, int64_t n, int64_t dim) {
  std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", n, dim);
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  uint16_t hl = static_cast<uint16_t>(header.size());
  out.append(reinterpret_cast<const char*>(&hl), 2);
  out += header;
  out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n * dim) * sizeof(float));
  atomic_write(path, out);
}

void write_embedding_tsv(const std::string& path, const std::vector<std::string>& ids, const float* data, int64_t dim) {
  std::string out;
  for (size_t r = 0; r < ids.size(); ++r) {
    out += printable(ids[r]);  // never a raw tab or newline inside the id column
    for (int64_t d = 0; d < dim; ++d) out += fmt::format("\t{:.7g}", data[r * dim + d]);
    out += '\n';
  }
  atomic_write(path, out);
}

KMeansResult kmeans(const float* x, int64_t n, int64_t dim, int k, int max_iter, uint64_t seed) {
  if (k < 1 || k > n)
    throw ConfigError(fmt::format("k-means: k must be in [1, {}] (the number of rows), got {}", n, k));
  std::mt19937_64 rng(mix64(seed));
  KMeansResult r;
  r.centroids.assign(static_cast<size_t>(k) * dim, 0.0f);
  auto d2 = [&](const float* a, const float* b) {
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) s += (a[j] - b[j]) * static_cast<double>(a[j] - b[j]);
    return s;
  };
  // k-means++ seeding.
  std::vector<double> best(n, std::numeric_limits<double>::max());
  int64_t first = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
  std::copy_n(x + first * dim, dim, r.centroids.data());
  for (int c = 1; c < k; ++c) {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      best[i] = std::min(best[i], d2(x + i * dim, r.centroids.data() + static_cast<size_t>(c - 1) * dim));
      total += best[i];
    }
    double pick = std::uniform_real_distribution<double>(0, total)(rng);
    int64_t chosen = n - 1;
    for (int64_t i = 0; i < n; ++i) {
      pick -= best[i];
      if (pick <= 0) {
        chosen = i;
        break;
      }
    }
    std::copy_n(x + chosen * dim, dim, r.centroids.data() + static_cast<size_t>(c) * dim);
  }
  r.assign.assign(n, -1);
  for (r.iterations = 1; r.iterations <= max_iter; ++r.iterations) {
    bool changed = false;
    double inertia = 0;
#pragma omp parallel for reduction(|| : changed) reduction(+ : inertia)
    for (int64_t i = 0; i < n; ++i) {
      double bd = std::numeric_limits<double>::max();
      int32_t bc = 0;
      for (int c = 0; c < k; ++c) {
        double v = d2(x + i * dim, r.centroids.data() + static_cast<size_t>(c) * dim);
        if (v < bd) bd = v, bc = c;
      }
      if (r.assign[i] != bc) changed = true;
      r.assign[i] = bc;
      inertia += bd;
    }
    r.inertia = inertia;
    if (!changed) break;
    std::vector<double> sum(static_cast<size_t>(k) * dim, 0.0);
    std::vector<int64_t> cnt(k, 0);
    for (int64_t i = 0; i < n; ++i) {
      ++cnt[r.assign[i]];
      for (int64_t j = 0; j < dim; ++j) sum[static_cast<size_t>(r.assign[i]) * dim + j] += x[i * dim + j];
    }
    for (int c = 0; c < k; ++c)
      if (cnt[c])
        for (int64_t j = 0; j < dim; ++j)
          r.centroids[static_cast<size_t>(c) * dim + j] =
              static_cast<float>(sum[static_cast<size_t>(c) * dim + j] / cnt[c]);
  }
  r.iterations = std::min(r.iterations, max_iter);
  return r;
}

}  // namespace siamrec
