// NDCG with graded relevance: the user's test ratings are the gains (Järvelin & Kekäläinen's
// exponential gain 2^rating - 1), so ranking her 5-star test item above her 3-star one counts.
//   DCG@K  = sum over ranks r < K of (2^grade(item_r) - 1) / log2(r + 2)
//   IDCG@K = the same over her test ratings sorted from high to low (the best possible order)
// Computed when the test data has ratings (MovieLens); binary ndcg@K is the same with every grade 1.
#include <algorithm>
#include <cmath>

#include "eval/metric.h"

namespace siamrec {

static double ndcg_graded(const UserRanking& u, int K) {
  if (!u.grades || u.grades->empty()) return 0;
  auto gain = [](double g) { return std::exp2(g) - 1.0; };
  double dcg = 0, idcg = 0;
  const int e = std::min<int>(K, static_cast<int>(u.hits->size()));
  for (int r = 0; r < e; ++r)
    if ((*u.hits)[r]) dcg += gain(u.grade(u.ranked[r])) / std::log2(r + 2.0);
  std::vector<float> best;
  for (auto& [_, g] : *u.grades) best.push_back(g);
  std::sort(best.begin(), best.end(), std::greater<float>());
  for (int r = 0; r < std::min<int>(K, static_cast<int>(best.size())); ++r) idcg += gain(best[r]) / std::log2(r + 2.0);
  return idcg > 0 ? dcg / idcg : 0;
}

SIAMREC_REGISTER_METRIC(ndcg_graded, "ndcg_graded", "NDCG with the test ratings as gains 2^rating - 1", true, 45,
                        ndcg_graded);

}  // namespace siamrec
