#include "data/synth.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_set>

#include <fmt/format.h>

#include "util/error.h"
#include "util/io.h"
#include "util/rng.h"

namespace siamrec {

int synth_user_cluster(const SynthSpec& s, int64_t u) {
  return static_cast<int>(mix64(s.seed ^ mix64(0x75736572ULL + static_cast<uint64_t>(u))) % s.clusters);
}
int synth_item_cluster(const SynthSpec& s, int64_t i) {
  return static_cast<int>(mix64(s.seed ^ mix64(0x6974656dULL + static_cast<uint64_t>(i) * 31)) % s.clusters);
}

namespace {

// Draws an index by weight: a cumulative table and a binary search.
struct Cdf {
  std::vector<double> c;
  std::vector<int64_t> ids;
  void add(int64_t id, double w) {
    ids.push_back(id);
    c.push_back((c.empty() ? 0.0 : c.back()) + w);
  }
  int64_t draw(uint64_t r) const {
    double x = (static_cast<double>(r >> 11) * 0x1.0p-53) * c.back();
    size_t k = static_cast<size_t>(std::upper_bound(c.begin(), c.end(), x) - c.begin());
    return ids[std::min(k, ids.size() - 1)];
  }
};

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

}  // namespace

SynthSummary write_synthetic(const SynthSpec& s, const std::string& path, const std::string& clusters_path) {
  auto t0 = std::chrono::steady_clock::now();
  if (s.users < 1) throw ConfigError("synth: --users must be >= 1");
  if (s.items < 2) throw ConfigError("synth: --items must be >= 2");
  if (s.clusters < 1 || s.clusters > s.items) throw ConfigError("synth: --clusters must be in 1..items");
  if (s.interactions < s.users)
    throw ConfigError(fmt::format("synth: --interactions ({}) must be >= --users ({}): every user has one at least",
                                  s.interactions, s.users));
  if (s.interactions > s.users * (s.items / 2))
    throw ConfigError(
        fmt::format("synth: --interactions ({}) must be <= users x items / 2 ({}) (distinct items "
                    "per user)",
                    s.interactions, s.users * (s.items / 2)));
  if (!(s.item_alpha >= 0 && s.item_alpha <= 3)) throw ConfigError("synth: --item-alpha must be in 0..3");
  if (!(s.user_alpha >= 0 && s.user_alpha <= 3)) throw ConfigError("synth: --user-alpha must be in 0..3");
  if (!(s.in_cluster >= 0 && s.in_cluster <= 1)) throw ConfigError("synth: --in-cluster must be in 0..1");

  // Items: Zipf weights by id (item 0 the most popular), each in its cluster's table too.
  Cdf all;
  std::vector<Cdf> by_cluster(s.clusters);
  all.c.reserve(s.items), all.ids.reserve(s.items);
  for (int64_t i = 0; i < s.items; ++i) {
    double w = std::pow(static_cast<double>(i + 1), -s.item_alpha);
    all.add(i, w);
    by_cluster[synth_item_cluster(s, i)].add(i, w);
  }
  // Users: degrees by Zipf weights over a seeded order of the users (so user ids do not sort
  // activity), every user at least 1 and at most items / 2, summing to exactly `interactions`.
  std::vector<int64_t> order(s.users);
  for (int64_t u = 0; u < s.users; ++u) order[u] = u;
  Rng shuf{mix64(s.seed ^ 0x5348554646ULL)};
  for (int64_t k = s.users; k > 1; --k) std::swap(order[k - 1], order[shuf.next() % k]);
  std::vector<int64_t> deg(s.users, 1);
  {
    const int64_t cap = s.items / 2;
    double wsum = 0;
    for (int64_t r = 0; r < s.users; ++r) wsum += std::pow(static_cast<double>(r + 1), -s.user_alpha);
    const double extra = static_cast<double>(s.interactions - s.users);
    int64_t total = s.users;
    for (int64_t r = 0; r < s.users; ++r) {
      int64_t add =
          static_cast<int64_t>(std::floor(extra * std::pow(static_cast<double>(r + 1), -s.user_alpha) / wsum));
      add = std::min(add, cap - 1);
      deg[order[r]] += add;
      total += add;
    }
    // The remainder, one at a time from the most active users down (skipping full ones).
    for (int64_t r = 0; total < s.interactions; r = (r + 1) % s.users)
      if (deg[order[r]] < cap) ++deg[order[r]], ++total;
  }

  OutputFile out(path);
  SynthSummary sum;
  std::vector<int64_t> item_deg(s.items, 0);
  std::unordered_set<int64_t> seen;
  std::string buf;
  buf.reserve(1 << 20);
  int64_t in_cluster = 0;
  const int64_t t_base = 1600000000;
  for (int64_t u = 0; u < s.users; ++u) {
    Rng rng{mix64(s.seed ^ mix64(0x44524157ULL + static_cast<uint64_t>(u)))};
    const int cu = synth_user_cluster(s, u);
    const Cdf& own = by_cluster[cu].ids.empty() ? all : by_cluster[cu];
    seen.clear();
    int64_t t = t_base + static_cast<int64_t>(rng.next() % 86400);
    for (int64_t k = 0; k < deg[u]; ++k) {
      int64_t item = -1;
      for (int tries = 0; tries < 64 && item < 0; ++tries) {
        const bool mine = static_cast<double>(rng.next() >> 11) * 0x1.0p-53 < s.in_cluster;
        int64_t x = (mine ? own : all).draw(rng.next());
        if (!seen.count(x)) item = x;
      }
      while (item < 0) {  // a heavy user exhausted her popular items: any unseen item
        int64_t x = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(s.items));
        if (!seen.count(x)) item = x;
      }
      seen.insert(item);
      ++item_deg[item];
      in_cluster += synth_item_cluster(s, item) == cu;
      t += 1 + static_cast<int64_t>(rng.next() % 3600);
      fmt::format_to(std::back_inserter(buf), "{}\t{}\t{}\n", u, item, t);
      if (buf.size() > (1 << 20) - 64) {
        out.write(buf);
        sum.bytes += static_cast<int64_t>(buf.size());
        buf.clear();
      }
    }
    sum.max_user_degree = std::max(sum.max_user_degree, deg[u]);
    sum.interactions += deg[u];
  }
  out.write(buf);
  sum.bytes += static_cast<int64_t>(buf.size());
  out.commit();
  sum.users = s.users;
  for (int64_t i = 0; i < s.items; ++i) {
    sum.items_used += item_deg[i] > 0;
    sum.max_item_degree = std::max(sum.max_item_degree, item_deg[i]);
  }
  sum.in_cluster_share = static_cast<double>(in_cluster) / static_cast<double>(sum.interactions);
  if (!clusters_path.empty()) {
    std::string c;
    for (int64_t i = 0; i < s.items; ++i)
      fmt::format_to(std::back_inserter(c), "i{}\t{}\n", i, synth_item_cluster(s, i));
    for (int64_t u = 0; u < s.users; ++u)
      fmt::format_to(std::back_inserter(c), "u{}\t{}\n", u, synth_user_cluster(s, u));
    atomic_write(clusters_path, c);
  }
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace siamrec
