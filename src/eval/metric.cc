#include "eval/metric.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "eval/metrics.h"
#include "util/error.h"
#include "util/names.h"
#include "util/registry.h"
#include "util/strings.h"

namespace siamrec {

float UserRanking::grade(int32_t item) const {
  if (!grades) return 0;
  auto it = std::lower_bound(grades->begin(), grades->end(), std::make_pair(item, -1e30f));
  return it != grades->end() && it->first == item ? it->second : 0.0f;
}

bool register_ranking_metric(RankingMetric m) {
  if (m.name.empty() || !m.at_k) throw std::logic_error("a ranking metric needs a name and a function");
  if (m.name.find('@') != std::string::npos) throw std::logic_error("metric name '" + m.name + "' contains '@'");
  const std::string name = m.name, help = m.help;
  const int order = m.order;
  return Registry<RankingMetric>::get().add(name, help, std::move(m), order) && register_name("metric", name, help);
}

std::vector<const RankingMetric*> ranking_metrics() { return Registry<RankingMetric>::get().values(); }

std::pair<std::string, int> parse_metric(const std::string& text, const std::string& key, int default_k) {
  auto at = text.find('@');
  std::string name = text.substr(0, at);
  int k = default_k;
  if (at != std::string::npos) {
    auto v = parse_int(text.substr(at + 1));
    if (!v || *v < 1 || *v > 100000)
      throw ConfigError(
          fmt::format("config key '{}': '{}' has no valid cut-off after '@' (METRIC@K, K >= 1)", key, text));
    k = static_cast<int>(*v);
  }
  if (!Registry<RankingMetric>::get().has(name))
    throw ConfigError(fmt::format("config key '{}': unknown metric '{}'; registered: {}", key, name,
                                  fmt::join(Registry<RankingMetric>::get().names(), ", ")));
  return {name, k};
}

// The standard accuracy metrics (formulas in eval/metrics.cc and docs/metrics.md).
SIAMREC_REGISTER_METRIC(precision, "precision", "hits@K / K", false, 10,
                        [](const UserRanking& u, int K) { return metric::precision(*u.hits, K); });
SIAMREC_REGISTER_METRIC(recall, "recall", "hits@K / n_rel", false, 20,
                        [](const UserRanking& u, int K) { return metric::recall(*u.hits, u.n_rel, K); });
SIAMREC_REGISTER_METRIC(hr, "hr", "1 when a relevant item is in the top K (hit rate)", false, 30,
                        [](const UserRanking& u, int K) { return metric::hit_rate(*u.hits, K); });
SIAMREC_REGISTER_METRIC(ndcg, "ndcg", "DCG@K / IDCG@K, binary relevance, log2(rank + 1) discount", false, 40,
                        [](const UserRanking& u, int K) { return metric::ndcg(*u.hits, u.n_rel, K); });
SIAMREC_REGISTER_METRIC(mrr, "mrr", "1 / rank of the first relevant item (0 beyond K)", false, 50,
                        [](const UserRanking& u, int K) { return metric::mrr(*u.hits, K); });
SIAMREC_REGISTER_METRIC(map, "map", "average precision at K, normalised by min(n_rel, K)", false, 60,
                        [](const UserRanking& u, int K) { return metric::average_precision(*u.hits, u.n_rel, K); });
SIAMREC_REGISTER_METRIC(f1, "f1", "2 P R / (P + R) at K", false, 70,
                        [](const UserRanking& u, int K) { return metric::f1(*u.hits, u.n_rel, K); });

}  // namespace siamrec
