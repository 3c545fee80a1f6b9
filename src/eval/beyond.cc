#include "eval/beyond.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace siamrec {

static double mean_defined(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / n : std::numeric_limits<double>::quiet_NaN();
}

BeyondResult beyond_accuracy(const std::vector<std::vector<int32_t>>& lists, const std::vector<double>& profile_arp,
                             const BeyondInputs& in) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const size_t U = lists.size();
  BeyondResult r;
  std::vector<int64_t> exposure(in.n_items, 0);
  for (auto& l : lists)
    for (auto i : l) ++exposure[i];
  int64_t total = std::accumulate(exposure.begin(), exposure.end(), int64_t{0});
  int64_t covered = std::count_if(exposure.begin(), exposure.end(), [](int64_t c) { return c > 0; });
  r.aggregate["coverage"] = in.n_items ? static_cast<double>(covered) / in.n_items : 0;
  // Gini of exposure over the whole catalogue: sum_i (2i - n - 1) c_(i) / (n sum c), c ascending.
  std::vector<int64_t> sorted = exposure;
  std::sort(sorted.begin(), sorted.end());
  double g = 0;
  const double n = in.n_items;
  for (int32_t i = 0; i < in.n_items; ++i) g += (2.0 * (i + 1) - n - 1) * sorted[i];
  r.aggregate["gini"] = total > 0 ? g / (n * total) : 0;
  double ent = 0;
  for (auto c : exposure)
    if (c > 0) {
      double p = static_cast<double>(c) / total;
      ent -= p * std::log2(p);
    }
  r.aggregate["entropy"] = ent;

  // Short head: the ceil(head_share * n_items) most popular items (ties: smaller id).
  std::vector<int32_t> order(in.n_items);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return in.item_pop[a] > in.item_pop[b]; });
  std::vector<char> head(in.n_items, 0);
  int32_t nhead = static_cast<int32_t>(std::ceil(in.head_share * in.n_items));
  for (int32_t k = 0; k < nhead && k < in.n_items; ++k) head[order[k]] = 1;

  auto& nov = r.per_user["novelty"];
  auto& arp = r.per_user["arp"];
  auto& tail = r.per_user["long_tail"];
  auto& lift = r.per_user["pop_lift"];
  nov.assign(U, nan), arp.assign(U, nan), tail.assign(U, nan), lift.assign(U, nan);
  std::vector<double>* ildg = nullptr;
  std::vector<double>* ilde = nullptr;
  bool has_genres = in.genres && !in.genres->empty();
  if (has_genres) (ildg = &r.per_user["ild_genre"])->assign(U, nan);
  if (in.emb) (ilde = &r.per_user["ild_emb"])->assign(U, nan);
  std::vector<float> norms;
  if (in.emb) {
    norms.resize(in.n_items);
    for (int32_t i = 0; i < in.n_items; ++i) {
      double s = 0;
      for (int d = 0; d < in.dim; ++d)
        s += in.emb[static_cast<size_t>(i) * in.dim + d] * in.emb[static_cast<size_t>(i) * in.dim + d];
      norms[i] = static_cast<float>(std::sqrt(s));
    }
  }
  const double users = std::max<int64_t>(1, in.n_train_users);
  for (size_t u = 0; u < U; ++u) {
    const auto& l = lists[u];
    if (l.empty()) continue;
    double sn = 0, sa = 0, st = 0;
    for (auto i : l) {
      double pu = std::max<int64_t>(1, in.item_users[i]);  // unseen items count as seen by one user
      sn += -std::log2(pu / users);
      sa += in.item_pop[i];
      st += head[i] ? 0 : 1;
    }
    nov[u] = sn / l.size(), arp[u] = sa / l.size(), tail[u] = st / l.size();
    if (u < profile_arp.size() && profile_arp[u] > 0) lift[u] = arp[u] / profile_arp[u] - 1;
    if (l.size() >= 2) {
      double dg = 0, de = 0;
      int pairs = 0;
      for (size_t a = 0; a < l.size(); ++a)
        for (size_t b = a + 1; b < l.size(); ++b, ++pairs) {
          if (ildg) {  // Jaccard distance of genre sets (two empty sets: distance 0)
            const auto& ga = (*in.genres)[l[a]];
            const auto& gb = (*in.genres)[l[b]];
            int inter = 0;
            for (auto x : ga) inter += std::find(gb.begin(), gb.end(), x) != gb.end();
            int uni = static_cast<int>(ga.size() + gb.size()) - inter;
            dg += uni ? 1.0 - static_cast<double>(inter) / uni : 0.0;
          }
          if (ilde) {  // cosine distance of embeddings
            const float* ea = in.emb + static_cast<size_t>(l[a]) * in.dim;
            const float* eb = in.emb + static_cast<size_t>(l[b]) * in.dim;
            double dot = 0;
            for (int d = 0; d < in.dim; ++d) dot += ea[d] * eb[d];
            double den = static_cast<double>(norms[l[a]]) * norms[l[b]];
            de += 1.0 - (den > 0 ? dot / den : 0.0);
          }
        }
      if (ildg) (*ildg)[u] = dg / pairs;
      if (ilde) (*ilde)[u] = de / pairs;
    }
  }
  for (auto& [name, v] : r.per_user) r.aggregate[name] = mean_defined(v);
  r.exposure = std::move(exposure);
  return r;
}

}  // namespace siamrec
