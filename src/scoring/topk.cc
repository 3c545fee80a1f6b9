#include "scoring/topk.h"

#include <atomic>

#include "util/parallel.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "data/dataset.h"

namespace siamrec {

int topk_row(const float* s, int32_t n, int k, int32_t* out) {
  if (k <= 0) return 0;
  // Min-heap (worst on top) of at most k (score, item); scanning in ascending item order, a later
  // item only enters with a strictly greater score, which realizes "ties: smaller id first".
  std::vector<std::pair<float, int32_t>> heap;
  heap.reserve(k);
  auto worse = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const float ninf = -std::numeric_limits<float>::infinity();
  int32_t i = 0;
  for (; i < n && static_cast<int>(heap.size()) < k; ++i) {
    float v = s[i];
    if (!(v > ninf)) continue;  // -inf and NaN never enter
    heap.emplace_back(v, i);
    std::push_heap(heap.begin(), heap.end(), worse);
  }
  // The heap is full: only a score strictly above its worst enters. Blocks of 16 scores are tested
  // at once (a vectorized compare) and skipped whole when none beats the worst; NaN never does.
  constexpr int32_t kBlock = 16;
  float worst = heap.empty() ? ninf : heap.front().first;
  auto consider = [&](int32_t j) {
    const float v = s[j];
    if (!(v > worst)) return;
    std::pop_heap(heap.begin(), heap.end(), worse);
    heap.back() = {v, j};
    std::push_heap(heap.begin(), heap.end(), worse);
    worst = heap.front().first;
  };
  for (; i + kBlock <= n; i += kBlock) {
#if defined(__AVX2__)
    const __m256 w = _mm256_set1_ps(worst);
    const __m256 gt = _mm256_or_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + i), w, _CMP_GT_OQ),
                                   _mm256_cmp_ps(_mm256_loadu_ps(s + i + 8), w, _CMP_GT_OQ));
    const bool any = _mm256_movemask_ps(gt) != 0;
#else
    int any = 0;
    for (int32_t j = 0; j < kBlock; ++j) any |= s[i + j] > worst;
#endif
    if (any)
      for (int32_t j = i; j < i + kBlock; ++j) consider(j);
  }
  for (; i < n; ++i) consider(i);
  std::sort(heap.begin(), heap.end(),
            [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (size_t j = 0; j < heap.size(); ++j) out[j] = heap[j].second;
  return static_cast<int>(heap.size());
}

void rank_users(const std::vector<int32_t>& users, int32_t n_items, const BlockScorer& scorer, const RankOptions& o,
                const RankVisitor& visit) {
  const int64_t n = static_cast<int64_t>(users.size());
  // A block never exceeds the users asked for: one user (a server request) scores into one row,
  // not into a zeroed buffer of o.block rows.
  const int B = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(o.block, n)));
  const int64_t nblocks = (n + B - 1) / B;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(o.threads, nblocks)));
  const float ninf = -std::numeric_limits<float>::infinity();
  // Blocks are handed out one at a time (dynamic: a block's cost varies with its exclusions).
  std::atomic<int64_t> next{0};
  parallel_region(threads, [&](int) {
    std::vector<float> buf(static_cast<size_t>(B) * n_items);
    std::vector<int32_t> top(std::max(1, o.k));
    for (int64_t b; (b = next.fetch_add(1)) < nblocks;) {
      int64_t lo = b * B, hi = std::min(n, lo + B);
      int cnt = static_cast<int>(hi - lo);
      scorer(users.data() + lo, cnt, buf.data());
      for (int r = 0; r < cnt; ++r) {
        int32_t u = users[lo + r];
        float* row = buf.data() + static_cast<size_t>(r) * n_items;
        for (const Csr* ex : {o.exclude, o.exclude_extra})
          if (ex && u < ex->rows())
            for (int64_t p = ex->begin(u); p < ex->end(u); ++p) row[ex->indices[p]] = ninf;
        int nt = topk_row(row, n_items, o.k, top.data());
        visit(lo + r, u, row, top.data(), nt);
      }
    }
  });
}

void gemm_scores(const float* U, const int32_t* users, int n, const float* I, int32_t n_items, int dim, Similarity sim,
                 const float* item_sq_norms, float* out) {
  // Gather the block's user rows, then one GEMM: out = Ub * I^T.
  std::vector<float> ub(static_cast<size_t>(n) * dim);
  for (int r = 0; r < n; ++r)
    std::copy_n(U + static_cast<size_t>(users[r]) * dim, dim, ub.data() + static_cast<size_t>(r) * dim);
  if (n == 1)  // one user (a server request): GEMV reads the items once, GEMM would first pack them all
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n_items, dim, 1.0f, I, dim, ub.data(), 1, 0.0f, out, 1);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n_items, dim, 1.0f, ub.data(), dim, I, dim, 0.0f, out,
                n_items);
  if (sim == Similarity::NegSqEuclidean || sim == Similarity::NegEuclidean) {
    // -|u - i|^2 = 2 u.i - |i|^2 - |u|^2
    for (int r = 0; r < n; ++r) {
      const float* u = ub.data() + static_cast<size_t>(r) * dim;
      float un = 0;
      for (int d = 0; d < dim; ++d) un += u[d] * u[d];
      float* row = out + static_cast<size_t>(r) * n_items;
      for (int32_t i = 0; i < n_items; ++i) {
        float d2 = std::max(0.0f, un + item_sq_norms[i] - 2 * row[i]);
        row[i] = sim == Similarity::NegSqEuclidean ? -d2 : -std::sqrt(d2);
      }
    }
  }
}

void normalize_rows(float* m, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = m + r * dim;
    double s = 0;
    for (int64_t k = 0; k < dim; ++k) s += x[k] * x[k];
    float inv = s > 0 ? static_cast<float>(1 / std::sqrt(s)) : 0.0f;
    for (int64_t k = 0; k < dim; ++k) x[k] *= inv;
  }
}

BlockScorer restrict_to(BlockScorer inner, const std::vector<char>& candidates) {
  return [inner = std::move(inner), &candidates](const int32_t* users, int n, float* out) {
    inner(users, n, out);
    const size_t I = candidates.size();
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < I; ++i)
        if (!candidates[i]) out[static_cast<size_t>(r) * I + i] = -std::numeric_limits<float>::infinity();
  };
}

}  // namespace siamrec
