#include "baselines/knn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"
#include "util/io.h"

namespace siamrec {

Csr binary_csr(const Csr& m) {
  Csr o;
  o.indptr.assign(m.indptr.size(), 0);
  for (int32_t r = 0; r < m.rows(); ++r) {
    int32_t last = -1;
    for (int64_t p = m.begin(r); p < m.end(r); ++p)
      if (m.indices[p] != last) o.indices.push_back(last = m.indices[p]);
    o.indptr[r + 1] = static_cast<int64_t>(o.indices.size());
  }
  return o;
}

Csr transpose(const Csr& m, int32_t n_cols) {
  Csr t;
  t.indptr.assign(static_cast<size_t>(n_cols) + 1, 0);
  for (auto c : m.indices) ++t.indptr[c + 1];
  for (int32_t c = 0; c < n_cols; ++c) t.indptr[c + 1] += t.indptr[c];
  t.indices.resize(m.indices.size());
  std::vector<int64_t> fill(t.indptr.begin(), t.indptr.end() - 1);
  for (int32_t r = 0; r < m.rows(); ++r)  // rows ascending -> each column's rows come out sorted
    for (int64_t p = m.begin(r); p < m.end(r); ++p) t.indices[fill[m.indices[p]]++] = r;
  return t;
}

Csr cosine_neighbors(const Csr& a, const Csr& a_t, int k, double shrink, int threads) {
  const int32_t R = a.rows();
  std::vector<std::vector<std::pair<float, int32_t>>> best(R);
#pragma omp parallel num_threads(std::max(1, threads))
  {
    std::vector<int32_t> co(R, 0);
    std::vector<int32_t> touched;
#pragma omp for schedule(dynamic, 16)
    for (int32_t r = 0; r < R; ++r) {
      touched.clear();
      for (int64_t p = a.begin(r); p < a.end(r); ++p) {
        int32_t c = a.indices[p];
        for (int64_t q = a_t.begin(c); q < a_t.end(c); ++q) {
          int32_t s = a_t.indices[q];
          if (s == r) continue;
          if (co[s]++ == 0) touched.push_back(s);
        }
      }
      auto& b = best[r];
      double nr = static_cast<double>(a.degree(r));
      for (int32_t s : touched) {
        float sim = static_cast<float>(co[s] / (std::sqrt(nr * a.degree(s)) + shrink));
        b.emplace_back(sim, s);
        co[s] = 0;
      }
      auto cmp = [](auto& x, auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); };
      if (static_cast<int>(b.size()) > k) {
        std::nth_element(b.begin(), b.begin() + k, b.end(), cmp);
        b.resize(k);
      }
      std::sort(b.begin(), b.end(), cmp);
    }
  }
  Csr out;
  out.indptr.assign(static_cast<size_t>(R) + 1, 0);
  for (int32_t r = 0; r < R; ++r) {
    for (auto& [s, j] : best[r]) {
      out.indices.push_back(j);
      out.values.push_back(s);
    }
    out.indptr[r + 1] = static_cast<int64_t>(out.indices.size());
  }
  return out;
}

void cosine_row(const std::vector<int32_t>& row, const Csr& a, const Csr& a_t, double shrink, std::vector<float>& out) {
  out.assign(a.rows(), 0.0f);
  std::vector<int32_t> co(a.rows(), 0);
  for (int32_t c : row)
    if (c >= 0 && c < a_t.rows())
      for (int64_t q = a_t.begin(c); q < a_t.end(c); ++q) ++co[a_t.indices[q]];
  double nr = static_cast<double>(row.size());
  for (int32_t s = 0; s < a.rows(); ++s)
    if (co[s]) out[s] = static_cast<float>(co[s] / (std::sqrt(nr * a.degree(s)) + shrink));
}

void write_csr(BinWriter& w, const Csr& m) {
  w.put_vec(m.indptr);
  w.put_vec(m.indices);
  w.put_vec(m.values);
}

Csr read_csr(BinReader& r, int32_t rows, int32_t cols, const char* what) {
  Csr m;
  r.get_vec(m.indptr);
  r.get_vec(m.indices);
  r.get_vec(m.values);
  check_csr(m, rows, cols, what);
  return m;
}

void check_csr(const Csr& m, int32_t rows, int32_t cols, const char* what) {
  bool ok = m.indptr.size() == static_cast<size_t>(rows) + 1 && m.indptr.front() == 0 &&
            m.indptr.back() == static_cast<int64_t>(m.indices.size()) &&
            (m.values.empty() || m.values.size() == m.indices.size());
  for (size_t k = 1; ok && k < m.indptr.size(); ++k) ok = m.indptr[k] >= m.indptr[k - 1];
  for (size_t k = 0; ok && k < m.indices.size(); ++k) ok = m.indices[k] >= 0 && m.indices[k] < cols;
  if (!ok) throw Error(fmt::format("model file is malformed ({} section is inconsistent)", what));
}

}  // namespace siamrec
