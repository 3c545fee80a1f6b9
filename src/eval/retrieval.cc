#include "eval/retrieval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "util/error.h"

namespace siamrec {

EvalResult evaluate_retrieval(const float* emb, int dim, Similarity sim, const std::vector<int32_t>& set,
                              const std::vector<int32_t>& label, const RetrievalSpec& spec,
                              std::vector<std::vector<int32_t>>* tops) {
  auto t0 = std::chrono::steady_clock::now();
  const int64_t n = static_cast<int64_t>(set.size());
  if (n < 2) throw Error("retrieval evaluation needs at least 2 items");
  // Compact copy of the set's embeddings; relevant counts per label.
  std::vector<float> E(static_cast<size_t>(n * dim)), sq(n, 0.0f);
  std::map<int32_t, int64_t> count;
  for (int64_t q = 0; q < n; ++q) {
    std::copy_n(emb + static_cast<int64_t>(set[q]) * dim, dim, E.data() + q * dim);
    for (int k = 0; k < dim; ++k) sq[q] += E[q * dim + k] * E[q * dim + k];
    count[label[q]]++;
  }
  std::vector<int64_t> relevant(n);  // per query: the other items of its label
  for (int64_t q = 0; q < n; ++q) relevant[q] = count[label[q]] - 1;
  const int kmax = *std::max_element(spec.ks.begin(), spec.ks.end());
  std::vector<std::vector<double>> rec(spec.ks.size(), std::vector<double>(n, 0.0));
  std::vector<double> mapr(n, 0.0);
  if (tops) tops->assign(std::min<int64_t>(spec.keep_queries, n), {});
  const int64_t block = 256;
  const int64_t nblocks = (n + block - 1) / block;
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(1, spec.threads))
  for (int64_t b = 0; b < nblocks; ++b) {
    int64_t lo = b * block, hi = std::min(n, lo + block);
    std::vector<int32_t> rows(hi - lo);
    std::iota(rows.begin(), rows.end(), static_cast<int32_t>(lo));
    std::vector<float> S(static_cast<size_t>((hi - lo) * n));
    gemm_scores(E.data(), rows.data(), static_cast<int>(hi - lo), E.data(), static_cast<int32_t>(n), dim, sim,
                sq.data(), S.data());
    std::vector<int32_t> order(n);
    for (int64_t q = lo; q < hi; ++q) {
      float* s = S.data() + (q - lo) * n;
      s[q] = -std::numeric_limits<float>::infinity();  // the query itself
      const int64_t R = relevant[q];
      const int64_t need = std::min<int64_t>(n - 1, std::max<int64_t>(R, std::max(kmax, spec.keep_top)));
      const int got =
          topk_row(s, static_cast<int32_t>(n), static_cast<int>(need), order.data());  // ties: smaller index
      for (size_t ki = 0; ki < spec.ks.size(); ++ki)
        for (int j = 0; j < spec.ks[ki] && j < got; ++j)
          if (label[order[j]] == label[q]) {
            rec[ki][q] = 1.0;
            break;
          }
      if (R > 0) {
        double hits = 0, ap = 0;
        for (int64_t j = 0; j < std::min<int64_t>(R, got); ++j)
          if (label[order[j]] == label[q]) hits += 1, ap += hits / static_cast<double>(j + 1);
        mapr[q] = ap / static_cast<double>(R);
      }
      if (tops && q < static_cast<int64_t>(tops->size()))
        (*tops)[q].assign(order.begin(), order.begin() + std::min<int64_t>(spec.keep_top, got));
    }
  }
  EvalResult r;
  r.kind = "retrieval";
  for (int64_t q = 0; q < n; ++q) r.users.push_back(set[q]);
  for (size_t ki = 0; ki < spec.ks.size(); ++ki) {
    std::string name = fmt::format("recall@{}", spec.ks[ki]);
    r.metrics.emplace_back(name, std::accumulate(rec[ki].begin(), rec[ki].end(), 0.0) / n);
    r.per_user[name] = rec[ki];
  }
  r.metrics.emplace_back("map@r", std::accumulate(mapr.begin(), mapr.end(), 0.0) / n);
  r.per_user["map@r"] = mapr;
  if (tops)
    for (auto& t : *tops)
      for (auto& x : t) x = set[x];
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace siamrec
