#include "report/projection.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace siamrec::report {

std::vector<double> pca_2d(const float* x, int64_t n, int dim) {
  std::vector<double> out(static_cast<size_t>(n) * 2, 0.0);
  if (n == 0 || dim == 0) return out;
  std::vector<double> mean(dim, 0.0), cov(static_cast<size_t>(dim) * dim, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int d = 0; d < dim; ++d) mean[d] += x[i * dim + d];
  for (auto& m : mean) m /= static_cast<double>(n);
  std::vector<double> r(dim);
  for (int64_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) r[d] = x[i * dim + d] - mean[d];
    for (int a = 0; a < dim; ++a)
      for (int b = a; b < dim; ++b) cov[a * dim + b] += r[a] * r[b];
  }
  for (int a = 0; a < dim; ++a)
    for (int b = 0; b < a; ++b) cov[a * dim + b] = cov[b * dim + a];
  // Power iteration with deflation for the top two eigenvectors (deterministic start).
  std::vector<std::vector<double>> comps;
  for (int c = 0; c < 2 && c < dim; ++c) {
    std::vector<double> v(dim), w(dim);
    for (int d = 0; d < dim; ++d) v[d] = 1.0 + 0.01 * d * (c + 1);
    for (int it = 0; it < 500; ++it) {
      for (int a = 0; a < dim; ++a) {
        double s = 0;
        for (int b = 0; b < dim; ++b) s += cov[a * dim + b] * v[b];
        w[a] = s;
      }
      for (auto& p : comps) {  // stay orthogonal to the components found
        double dot = 0;
        for (int d = 0; d < dim; ++d) dot += w[d] * p[d];
        for (int d = 0; d < dim; ++d) w[d] -= dot * p[d];
      }
      double norm = 0;
      for (double q : w) norm += q * q;
      norm = std::sqrt(norm);
      if (norm < 1e-300) break;
      double change = 0;
      for (int d = 0; d < dim; ++d) {
        const double nv = w[d] / norm;
        change += std::abs(nv - v[d]);
        v[d] = nv;
      }
      if (change < 1e-10) break;
    }
    // Sign convention: the largest-magnitude coordinate is positive (a stable orientation).
    int big = 0;
    for (int d = 1; d < dim; ++d)
      if (std::abs(v[d]) > std::abs(v[big])) big = d;
    if (v[big] < 0)
      for (auto& q : v) q = -q;
    comps.push_back(v);
  }
  for (int64_t i = 0; i < n; ++i)
    for (size_t c = 0; c < comps.size(); ++c) {
      double s = 0;
      for (int d = 0; d < dim; ++d) s += (x[i * dim + d] - mean[d]) * comps[c][d];
      out[i * 2 + c] = s;
    }
  return out;
}

namespace {

std::vector<double> sq_distances(const float* x, int64_t n, int dim, int threads) {
  std::vector<double> D(static_cast<size_t>(n * n), 0.0);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      double s = 0;
      for (int d = 0; d < dim; ++d) {
        const double t = static_cast<double>(x[i * dim + d]) - x[j * dim + d];
        s += t * t;
      }
      D[i * n + j] = s;
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) D[i * n + j] = D[j * n + i];
  return D;
}

// Symmetrised affinities P (n x n, sum 1) at the given perplexity.
std::vector<double> affinities(const float* x, int64_t n, int dim, double perplexity, int threads) {
  perplexity = std::min(perplexity, std::max(1.0, (n - 1) / 3.0));
  const std::vector<double> D = sq_distances(x, n, dim, threads);
  std::vector<double> P(static_cast<size_t>(n * n), 0.0);
  const double target = std::log(perplexity);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    double beta = 1, lo = 0, hi = std::numeric_limits<double>::infinity();
    const double* d = &D[i * n];
    double* p = &P[i * n];
    double dmin = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j)
      if (j != i) dmin = std::min(dmin, d[j]);
    for (int it = 0; it < 100; ++it) {
      double sum = 0, hsum = 0;
      for (int64_t j = 0; j < n; ++j) {
        p[j] = j == i ? 0.0 : std::exp(-(d[j] - dmin) * beta);  // shifted: no underflow of every term
        sum += p[j];
        hsum += (d[j] - dmin) * p[j];
      }
      const double h = std::log(sum) + beta * hsum / sum;  // entropy in nats
      for (int64_t j = 0; j < n; ++j) p[j] /= sum;
      if (std::abs(h - target) < 1e-5) break;
      if (h > target) {
        lo = beta;
        beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = (beta + lo) / 2;
      }
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const double v = std::max((P[i * n + j] + P[j * n + i]) / (2.0 * n), 1e-12);
      P[i * n + j] = P[j * n + i] = v;
    }
  return P;
}

}  // namespace

std::vector<double> tsne_2d(const float* x, int64_t n, int dim, const TsneOptions& o) {
  std::vector<double> y = pca_2d(x, n, dim);
  if (n < 4) return y;
  {  // scale the PCA start to standard deviation 1e-4 (the usual t-SNE initial scale)
    double s = 0, m0 = 0, m1 = 0;
    for (int64_t i = 0; i < n; ++i) m0 += y[i * 2], m1 += y[i * 2 + 1];
    m0 /= n, m1 /= n;
    for (int64_t i = 0; i < n; ++i) s += (y[i * 2] - m0) * (y[i * 2] - m0);
    const double sd = std::sqrt(s / n);
    const double f = sd > 0 ? 1e-4 / sd : 1.0;
    for (int64_t i = 0; i < n; ++i) y[i * 2] = (y[i * 2] - m0) * f, y[i * 2 + 1] = (y[i * 2 + 1] - m1) * f;
    // A flat start (rank-1 or 1-dimensional embeddings) would keep the map on a line: a tiny
    // deterministic spread of the second coordinate lets the gradient act on it.
    for (int64_t i = 0; i < n; ++i) y[i * 2 + 1] += 1e-6 * std::sin(static_cast<double>(i) * 12.9898);
  }
  const std::vector<double> P = affinities(x, n, dim, o.perplexity, std::max(1, o.threads));
  std::vector<double> num(static_cast<size_t>(n * n)), grad(static_cast<size_t>(n) * 2),
      upd(static_cast<size_t>(n) * 2, 0.0), gains(static_cast<size_t>(n) * 2, 1.0), rowsum(n);
  const double lr = std::max(n / o.exaggeration / 4.0, 50.0);
  for (int it = 0; it < o.iterations; ++it) {
    const double ex = it < o.exaggeration_iters ? o.exaggeration : 1.0;
    const double momentum = it < o.exaggeration_iters ? 0.5 : 0.8;
#pragma omp parallel for schedule(static) num_threads(o.threads)
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) {
          num[i * n + j] = 0;
          continue;
        }
        const double a = y[i * 2] - y[j * 2], b = y[i * 2 + 1] - y[j * 2 + 1];
        const double q = 1.0 / (1.0 + a * a + b * b);
        num[i * n + j] = q;
        s += q;
      }
      rowsum[i] = s;
    }
    double Z = 0;
    for (double s : rowsum) Z += s;
#pragma omp parallel for schedule(static) num_threads(o.threads)
    for (int64_t i = 0; i < n; ++i) {
      double g0 = 0, g1 = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const double q = num[i * n + j];
        const double m = (ex * P[i * n + j] - q / Z) * q;
        g0 += m * (y[i * 2] - y[j * 2]);
        g1 += m * (y[i * 2 + 1] - y[j * 2 + 1]);
      }
      grad[i * 2] = 4 * g0, grad[i * 2 + 1] = 4 * g1;
    }
    for (size_t k = 0; k < y.size(); ++k) {
      gains[k] = (grad[k] > 0) != (upd[k] > 0) ? gains[k] + 0.2 : std::max(gains[k] * 0.8, 0.01);
      upd[k] = momentum * upd[k] - lr * gains[k] * grad[k];
      y[k] += upd[k];
    }
    double m0 = 0, m1 = 0;
    for (int64_t i = 0; i < n; ++i) m0 += y[i * 2], m1 += y[i * 2 + 1];
    m0 /= n, m1 /= n;
    for (int64_t i = 0; i < n; ++i) y[i * 2] -= m0, y[i * 2 + 1] -= m1;
  }
  return y;
}

double tsne_kl(const float* x, int64_t n, int dim, const std::vector<double>& y, double perplexity) {
  const std::vector<double> P = affinities(x, n, dim, perplexity, 1);
  double Z = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) {
        const double a = y[i * 2] - y[j * 2], b = y[i * 2 + 1] - y[j * 2 + 1];
        Z += 1.0 / (1.0 + a * a + b * b);
      }
  double kl = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) {
        const double a = y[i * 2] - y[j * 2], b = y[i * 2 + 1] - y[j * 2 + 1];
        const double q = std::max(1.0 / (1.0 + a * a + b * b) / Z, 1e-300);
        kl += P[i * n + j] * std::log(P[i * n + j] / q);
      }
  return kl;
}

}  // namespace siamrec::report
