#include "eval/evaluator.h"

#include "dist/group.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include "config/config.h"
#include "util/rng.h"
#include "eval/beyond.h"
#include "eval/metric.h"
#include "eval/metrics.h"
#include "models/model.h"
#include "util/error.h"
#include "util/strings.h"

namespace siamrec {

EvalSpec EvalSpec::from_config(const Config& c) {
  EvalSpec s;
  s.candidates = c.str("eval.candidates");
  s.ks.clear();
  for (auto k : c.ints("eval.k")) s.ks.push_back(static_cast<int>(k));
  if (s.ks.empty()) throw ConfigError("config key 'eval.k' must list at least one cut-off");
  std::sort(s.ks.begin(), s.ks.end());
  s.ks.erase(std::unique(s.ks.begin(), s.ks.end()), s.ks.end());
  s.exclude_train = c.flag("eval.exclude_train");
  s.seed = static_cast<uint64_t>(c.integer("eval.seed"));
  s.head_share = c.real("eval.head_share");
  return s;
}

int EvalSpec::max_k() const { return ks.empty() ? 10 : *std::max_element(ks.begin(), ks.end()); }

double EvalResult::get(const std::string& name) const {
  for (auto& [k, v] : metrics)
    if (k == name) return v;
  return std::numeric_limits<double>::quiet_NaN();
}

static const char* kBeyond[] = {"coverage",  "gini",      "entropy", "novelty", "arp",
                                "long_tail", "ild_genre", "ild_emb", "pop_lift"};

std::string EvalResult::table() const {
  if (kind != "ranking") {
    std::string o = "protocol: " + protocol + "\n";
    for (auto& [k, v] : metrics) o += fmt::format("  {:<10} {:.4f}\n", k, v);
    o += fmt::format("{} evaluated: {}; {:.2f} s\n",
                     kind == "retrieval" ? "queries"
                     : kind == "rating"  ? "ratings"
                                         : "pairs",
                     users.size(), seconds);
    return o;
  }
  std::set<int> ks;
  for (auto& [k, v] : metrics) {
    auto at = k.find('@');
    if (at != std::string::npos) ks.insert(std::stoi(k.substr(at + 1)));
  }
  auto fmtv = [](double v) { return std::isnan(v) ? std::string("      -") : fmt::format("{:>7.4f}", v); };
  std::string o = "protocol: " + protocol + "\n";
  // The registered ranking metrics this result has, in registration order.
  std::vector<std::string> acols;
  for (auto* m : ranking_metrics())
    if (!ks.empty() && !std::isnan(get(fmt::format("{}@{}", m->name, *ks.begin())))) acols.push_back(m->name);
  o += fmt::format("{:>5}", "K");
  for (auto& m : acols) o += fmt::format(" {:>9}", m.size() > 9 ? m.substr(0, 9) : m);
  o += "\n";
  for (int k : ks) {
    o += fmt::format("{:>5}", k);
    for (auto& m : acols) o += "   " + fmtv(get(fmt::format("{}@{}", m, k)));
    o += "\n";
  }
  o += fmt::format("  auc {}   gauc {}\n", fmtv(get("auc")), fmtv(get("gauc")));
  std::vector<std::string> bcols;
  for (auto* m : kBeyond)
    if (!std::isnan(get(fmt::format("{}@{}", m, ks.empty() ? 10 : *ks.begin())))) bcols.push_back(m);
  if (!bcols.empty()) {
    o += "beyond accuracy (each user's top-K, full catalogue, train items excluded):\n";
    o += fmt::format("{:>5}", "K");
    for (auto& m : bcols) o += fmt::format(" {:>9}", m);
    o += "\n";
    for (int k : ks) {
      o += fmt::format("{:>5}", k);
      for (auto& m : bcols) {
        double v = get(fmt::format("{}@{}", m, k));
        o += (m == "arp" || m == "entropy" || m == "novelty") ? fmt::format("   {:>7.2f}", v) : "   " + fmtv(v);
      }
      o += "\n";
    }
  }
  o += fmt::format("users evaluated: {}", users.size());
  if (test_items_dropped) o += fmt::format(" ({} test items that were train items dropped)", test_items_dropped);
  o += fmt::format("; {:.2f} s\n", seconds);
  return o;
}

static nlohmann::json num(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

nlohmann::json EvalResult::to_json(const IdMap& user_ids) const {
  nlohmann::json m = nlohmann::json::object();
  for (auto& [k, v] : metrics) m[k] = num(v);
  nlohmann::json pu = nlohmann::json::object();
  std::vector<std::string> ids;
  for (auto u : users) ids.push_back(user_ids.original(u));
  pu["user"] = ids;
  for (auto& [k, v] : per_user) {
    nlohmann::json arr = nlohmann::json::array();
    for (double x : v) arr.push_back(num(x));
    pu[k] = arr;
  }
  nlohmann::json j = {{"protocol", protocol},    {"kind", kind},       {"metrics", m},
                      {"n_users", users.size()}, {"seconds", seconds}, {"per_user", pu}};
  if (!item_pop.empty()) {  // dense item indices; the report needs ranks and counts, not ids
    nlohmann::json ex = nlohmann::json::object();
    for (auto& [k, v] : exposure) ex[std::to_string(k)] = v;
    j["items"] = {{"popularity", item_pop}, {"exposure", ex}};
  }
  return j;
}

namespace {

// Sorted test items per user, minus items the user cannot be recommended (train items).
struct TestSets {
  Csr csr;
  int64_t dropped = 0;
};

TestSets test_sets(const EvalContext& ctx, bool drop_train) {
  TestSets t;
  Csr raw = Csr::from_interactions(*ctx.test, ctx.n_users, false);
  t.csr.indptr.assign(static_cast<size_t>(ctx.n_users) + 1, 0);
  for (int32_t u = 0; u < ctx.n_users; ++u) {
    int32_t last = -1;
    for (int64_t p = raw.begin(u); p < raw.end(u); ++p) {
      int32_t i = raw.indices[p];
      if (i == last) continue;  // duplicates count once
      last = i;
      if (drop_train && ctx.train && u < ctx.train->rows() && ctx.train->contains(u, i)) {
        ++t.dropped;
        continue;
      }
      t.csr.indices.push_back(i);
    }
    t.csr.indptr[u + 1] = static_cast<int64_t>(t.csr.indices.size());
  }
  return t;
}

}  // namespace

namespace {

// The candidate protocol of eval.candidates: full ranking, the split's fixed lists, or N sampled
// unseen negatives per user (uniformly or by popularity, seeded per user).
struct Candidates {
  bool full = false, fixed = false;
  std::string sampler;  // uniform | popularity (sampled protocols)
  int64_t n = 0;

  static Candidates parse(const EvalSpec& spec, const EvalContext& ctx) {
    Candidates c;
    c.full = spec.candidates == "full";
    c.fixed = spec.candidates == "fixed";
    if (!c.full && !c.fixed) {
      auto colon = spec.candidates.find(':');
      c.sampler = spec.candidates.substr(0, colon);
      c.n = colon == std::string::npos ? 0 : parse_int(spec.candidates.substr(colon + 1)).value_or(0);
      if ((c.sampler != "uniform" && c.sampler != "popularity") || c.n <= 0)
        throw ConfigError(
            fmt::format("eval.candidates '{}': allowed full, uniform:N, popularity:N, fixed", spec.candidates));
    }
    if (c.fixed && (!ctx.fixed_negatives || ctx.fixed_negatives->empty()))
      throw ConfigError(
          "eval.candidates 'fixed' needs a split with fixed candidate lists (e.g. dataset ml-1m-ncf, split ncf)");
    return c;
  }

  std::string describe(const EvalContext& ctx, uint64_t seed) const {
    if (full) return fmt::format("full ranking over all {} items", ctx.n_items);
    if (fixed)
      return ctx.fixed_description.empty()
                 ? "fixed candidate lists (each test item + the split's negatives, e.g. NCF's 99)"
                 : ctx.fixed_description;
    return fmt::format("test items + {} {} sampled unseen negatives per user (seed {})", n,
                       sampler == "uniform" ? "uniformly" : "popularity-proportionally", seed);
  }
};

// Train popularity and what the samplers and beyond-accuracy metrics derive from it.
struct Popularity {
  std::vector<int64_t> pop, item_users;  // interactions and distinct users per item
  int64_t train_users = 0;
  std::vector<double> profile_arp;  // per evaluated user: mean popularity of her train items
  std::vector<double> cdf;          // popularity sampling

  Popularity(const EvalContext& ctx, const std::vector<int32_t>& users, bool need_cdf)
      : pop(ctx.n_items, 0), item_users(ctx.n_items, 0), profile_arp(users.size(), 0) {
    if (ctx.train) {
      for (int32_t u = 0; u < ctx.train->rows(); ++u) {
        train_users += ctx.train->degree(u) > 0;
        int32_t last = -1;
        for (int64_t p = ctx.train->begin(u); p < ctx.train->end(u); ++p) {
          int32_t i = ctx.train->indices[p];
          ++pop[i];
          if (i != last) ++item_users[i];
          last = i;
        }
      }
      for (size_t k = 0; k < users.size(); ++k) {
        int32_t u = users[k];
        if (u >= ctx.train->rows() || ctx.train->degree(u) == 0) continue;
        double s = 0;
        for (int64_t p = ctx.train->begin(u); p < ctx.train->end(u); ++p) s += pop[ctx.train->indices[p]];
        profile_arp[k] = s / ctx.train->degree(u);
      }
    }
    if (need_cdf) {
      cdf.resize(ctx.n_items);
      double s = 0;
      for (int32_t i = 0; i < ctx.n_items; ++i) cdf[i] = (s += pop[i]);
      if (s <= 0) throw Error("popularity sampling needs training interactions");
    }
  }
};

// The sampled unseen negatives of user u (never a test, train or validation item of hers), seeded
// by (seed, u) so every model meets the same candidates.
std::vector<int32_t> sample_negatives(const Candidates& c, const EvalContext& ctx, const Popularity& pop,
                                      const Csr& valid, uint64_t seed, int32_t u, const int32_t* tb,
                                      const int32_t* te) {
  std::mt19937_64 rng(mix64(seed ^ mix64(static_cast<uint64_t>(u) + 7)));
  std::set<int32_t> chosen;
  auto seen = [&](int32_t i) {
    return std::binary_search(tb, te, i) || (ctx.train && u < ctx.train->rows() && ctx.train->contains(u, i)) ||
           (valid.rows() > 0 && valid.contains(u, i));
  };
  const int64_t n_rel = te - tb;
  int64_t avail = ctx.n_items - n_rel - (ctx.train && u < ctx.train->rows() ? ctx.train->degree(u) : 0);
  int64_t want = std::min<int64_t>(c.n, std::max<int64_t>(0, avail));
  int64_t tries = 0;
  while (static_cast<int64_t>(chosen.size()) < want && tries++ < want * 200 + 1000) {
    int32_t i;
    if (c.sampler == "uniform") {
      i = static_cast<int32_t>(rng() % static_cast<uint64_t>(ctx.n_items));
    } else {
      double x = std::uniform_real_distribution<double>(0, pop.cdf.back())(rng);
      i = static_cast<int32_t>(std::upper_bound(pop.cdf.begin(), pop.cdf.end(), x) - pop.cdf.begin());
      i = std::min(i, ctx.n_items - 1);
    }
    if (!seen(i)) chosen.insert(i);
  }
  return {chosen.begin(), chosen.end()};
}

// Each evaluated user's test items with their rating (the highest when an item repeats), sorted by
// item: the gains of graded metrics.
std::vector<std::vector<std::pair<int32_t, float>>> test_grades(const EvalContext& ctx, const Csr& T,
                                                                const std::vector<int32_t>& users) {
  std::vector<std::vector<std::pair<int32_t, float>>> grades(users.size());
  std::vector<int64_t> pos_of(static_cast<size_t>(ctx.n_users), -1);
  for (size_t k = 0; k < users.size(); ++k) pos_of[users[k]] = static_cast<int64_t>(k);
  const Interactions& t = *ctx.test;
  for (size_t r = 0; r < t.size(); ++r) {
    const int32_t u = t.user[r];
    int64_t k = pos_of[u];
    if (k < 0 || !std::binary_search(T.indices.data() + T.begin(u), T.indices.data() + T.end(u), t.item[r])) continue;
    grades[k].emplace_back(t.item[r], t.rating[r]);
  }
  for (auto& g : grades) {
    std::sort(g.begin(), g.end(),
              [](auto& a, auto& b) { return a.first < b.first || (a.first == b.first && a.second > b.second); });
    g.erase(std::unique(g.begin(), g.end(), [](auto& a, auto& b) { return a.first == b.first; }), g.end());
  }
  return grades;
}

// One user's ranked list under the protocol: hits and items at ranks 0..K-1, and her AUC.
struct UserList {
  std::vector<char> hits;
  std::vector<int32_t> ranked;
  double auc = 0;
  int32_t masked = 0;  // sampled / fixed negatives the exclusions had scored -inf
};

UserList rank_full(const float* row, int32_t n_items, const int32_t* top, int ntop, const int32_t* tb,
                   const int32_t* te) {
  const float ninf = -std::numeric_limits<float>::infinity();
  UserList l;
  l.ranked.assign(top, top + ntop);
  l.hits.resize(ntop);
  for (int r = 0; r < ntop; ++r) l.hits[r] = std::binary_search(tb, te, top[r]);
  // AUC: the test items' scores against the rest of the row; excluded (-inf) or undefined (NaN)
  // scores count nowhere.
  std::vector<float> pos;
  for (const int32_t* p = tb; p < te; ++p)
    if (row[*p] > ninf && (p == tb || p[-1] != *p)) pos.push_back(row[*p]);
  l.auc = metric::auc_in_row(row, n_items, pos.data(), static_cast<int>(pos.size()));
  return l;
}

// Candidates = test items + negatives, pessimistic ties (a tied negative ranks above).
UserList rank_candidates(const float* row, const std::vector<int32_t>& negs, int K, const int32_t* tb,
                         const int32_t* te) {
  const float ninf = -std::numeric_limits<float>::infinity();
  struct Cand {
    float score;
    char rel;
    int32_t item;
  };
  UserList l;
  std::vector<Cand> cand;
  for (const int32_t* p = tb; p < te; ++p) cand.push_back({row[*p], 1, *p});
  for (auto i : negs) {
    if (row[i] == ninf) ++l.masked;
    cand.push_back({row[i], 0, i});
  }
  std::stable_sort(cand.begin(), cand.end(),
                   [](auto& a, auto& b) { return a.score > b.score || (a.score == b.score && a.rel < b.rel); });
  l.hits.resize(std::min<size_t>(cand.size(), K));
  l.ranked.resize(l.hits.size());
  for (size_t r = 0; r < l.hits.size(); ++r) l.hits[r] = cand[r].rel, l.ranked[r] = cand[r].item;
  std::vector<float> pos, neg;
  for (auto& c : cand) (c.rel ? pos : neg).push_back(c.score);
  l.auc = metric::auc(std::move(pos), std::move(neg));
  return l;
}

std::string protocol_text(const EvalContext& ctx, const EvalSpec& spec, const Candidates& c, bool valid_excluded,
                          size_t n_users) {
  std::string excl = spec.exclude_train ? "train items" : "none";
  if (valid_excluded) excl += " + validation items";
  std::vector<std::string> kstr;
  for (int k : spec.ks) kstr.push_back(std::to_string(k));
  return fmt::format("{} | candidates: {} | exclusions: {} | ties: {} | K: {} | users: {} with >=1 test item",
                     ctx.data_protocol, c.describe(ctx, spec.seed), excl,
                     c.full ? "smaller item id first" : "pessimistic (a tied negative ranks above)",
                     fmt::join(kstr, ","), n_users);
}

}  // namespace

EvalResult evaluate_ranking(const BlockScorer& scorer, const EvalContext& ctx, const EvalSpec& spec) {
  auto t0 = std::chrono::steady_clock::now();
  if (!ctx.test || ctx.test->size() == 0) throw Error("evaluation needs test interactions, but the split has none");
  const Candidates cands = Candidates::parse(spec, ctx);

  // Who is evaluated: users with a rankable test item.
  TestSets ts = test_sets(ctx, cands.full && spec.exclude_train);
  const Csr& T = ts.csr;
  Csr valid_csr;
  if (ctx.valid && ctx.valid->size()) valid_csr = Csr::from_interactions(*ctx.valid, ctx.n_users, false);
  EvalResult res;
  for (int32_t u = 0; u < ctx.n_users; ++u)
    if (T.degree(u) > 0) res.users.push_back(u);
  res.test_items_dropped = ts.dropped;
  const size_t U = res.users.size();
  if (U == 0) throw Error("no user has a test item that can be ranked");
  const Popularity pop(ctx, res.users, cands.sampler == "popularity");

  // What is measured: every registered metric at every K (graded ones when the test has ratings).
  const int K = spec.max_k();
  const auto& ks = spec.ks;
  std::vector<const RankingMetric*> rms;
  bool need_grades = false;
  for (auto* m : ranking_metrics())
    if (!m->needs_grades || ctx.test->has_rating()) {
      rms.push_back(m);
      need_grades |= m->needs_grades;
    }
  const auto grades =
      need_grades ? test_grades(ctx, T, res.users) : std::vector<std::vector<std::pair<int32_t, float>>>{};

  // Rank every user (rank_users calls visit from worker threads; each writes only its user's slots).
  std::vector<std::vector<double>> acc(rms.size() * ks.size(), std::vector<double>(U, 0));
  std::vector<double> auc(U, 0), weight(U, 0);
  std::vector<std::vector<int32_t>> lists(U);
  std::vector<int32_t> masked(U, 0);
  RankOptions ro;
  ro.k = K;
  ro.threads = ctx.threads;
  ro.exclude = spec.exclude_train ? ctx.train : nullptr;
  ro.exclude_extra = valid_csr.rows() > 0 ? &valid_csr : nullptr;
  // A process group (docs/distributed.md) shares the users out (rank r ranks users r, r + W, ...);
  // every per-user value is then summed across ranks (exact: one rank holds each, the others 0),
  // so every rank aggregates the very numbers one process computes.
  dist::Group* G = dist::active();
  std::vector<int32_t> my_users;
  std::vector<int64_t> my_index;
  if (G)
    for (size_t k = static_cast<size_t>(G->rank()); k < U; k += static_cast<size_t>(G->size()))
      my_users.push_back(res.users[k]), my_index.push_back(static_cast<int64_t>(k));
  auto visit = [&](int64_t idx, int32_t u, const float* row, const int32_t* top, int ntop) {
    if (G) idx = my_index[idx];
    const int32_t* tb = T.indices.data() + T.begin(u);
    const int32_t* te = T.indices.data() + T.end(u);
    lists[idx].assign(top, top + ntop);
    UserList l;
    if (cands.full) {
      l = rank_full(row, ctx.n_items, top, ntop, tb, te);
    } else {
      auto negs =
          cands.fixed ? (*ctx.fixed_negatives)[u] : sample_negatives(cands, ctx, pop, valid_csr, spec.seed, u, tb, te);
      l = rank_candidates(row, negs, K, tb, te);
    }
    auc[idx] = l.auc;
    masked[idx] = l.masked;
    UserRanking ur;
    ur.hits = &l.hits;
    ur.ranked = l.ranked.data();
    ur.n_rel = static_cast<int>(te - tb);
    ur.grades = need_grades ? &grades[idx] : nullptr;
    for (size_t kk = 0; kk < ks.size(); ++kk)
      for (size_t m = 0; m < rms.size(); ++m) acc[kk * rms.size() + m][idx] = rms[m]->at_k(ur, ks[kk]);
    weight[idx] = ur.n_rel;
  };
  rank_users(G ? my_users : res.users, ctx.n_items, scorer, ro, visit);
  if (G) {
    std::vector<double> buf;
    buf.reserve((acc.size() + 3 + K) * U);
    for (auto& v : acc) buf.insert(buf.end(), v.begin(), v.end());
    buf.insert(buf.end(), auc.begin(), auc.end());
    buf.insert(buf.end(), weight.begin(), weight.end());
    buf.insert(buf.end(), masked.begin(), masked.end());
    const size_t lo = buf.size();
    buf.resize(lo + U * K, 0.0);  // item + 1 at each rank of a user's list (0: none)
    for (size_t k = 0; k < U; ++k)
      for (size_t r = 0; r < lists[k].size(); ++r) buf[lo + k * K + r] = lists[k][r] + 1.0;
    G->sum(buf.data(), buf.size(), "the sharded evaluation");
    size_t o = 0;
    for (auto& v : acc)
      for (auto& x : v) x = buf[o++];
    for (auto& x : auc) x = buf[o++];
    for (auto& x : weight) x = buf[o++];
    for (auto& x : masked) x = static_cast<int32_t>(buf[o++]);
    for (size_t k = 0; k < U; ++k) {
      lists[k].clear();
      for (int r = 0; r < K && buf[lo + k * K + r] > 0; ++r)
        lists[k].push_back(static_cast<int32_t>(buf[lo + k * K + r] - 1));
    }
  }
  const int64_t masked_candidates = std::accumulate(masked.begin(), masked.end(), int64_t{0});
  if (masked_candidates)
    spdlog::warn("{} candidate negatives were the user's own train/validation items and ranked last",
                 masked_candidates);

  // Aggregate: averages over users with at least one test item.
  auto mean = [&](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); };
  for (size_t kk = 0; kk < ks.size(); ++kk)
    for (size_t m = 0; m < rms.size(); ++m) {
      std::string name = fmt::format("{}@{}", rms[m]->name, ks[kk]);
      auto& v = acc[kk * rms.size() + m];
      res.metrics.emplace_back(name, mean(v));
      res.per_user[name] = std::move(v);
    }
  res.metrics.emplace_back("auc", mean(auc));
  double wsum = std::accumulate(weight.begin(), weight.end(), 0.0), gauc = 0;
  for (size_t k = 0; k < U; ++k) gauc += auc[k] * weight[k];
  res.metrics.emplace_back("gauc", gauc / wsum);
  res.per_user["auc"] = auc;

  // Beyond accuracy over each user's full-catalogue top-K.
  BeyondInputs bi;
  bi.n_items = ctx.n_items;
  bi.n_train_users = pop.train_users;
  bi.item_pop = pop.pop;
  bi.item_users = pop.item_users;
  bi.genres = ctx.genres;
  bi.emb = ctx.item_emb;
  bi.dim = ctx.emb_dim;
  bi.head_share = spec.head_share;
  for (int k : ks) {
    std::vector<std::vector<int32_t>> lk(U);
    for (size_t u = 0; u < U; ++u)
      lk[u].assign(lists[u].begin(), lists[u].begin() + std::min<size_t>(k, lists[u].size()));
    BeyondResult br = beyond_accuracy(lk, pop.profile_arp, bi);
    for (auto* m : kBeyond) {
      auto it = br.aggregate.find(m);
      if (it == br.aggregate.end()) continue;
      std::string name = fmt::format("{}@{}", m, k);
      res.metrics.emplace_back(name, it->second);
      if (auto pu = br.per_user.find(m); pu != br.per_user.end()) res.per_user[name] = pu->second;
    }
    res.exposure[k] = std::move(br.exposure);
  }
  res.item_pop = pop.pop;
  res.protocol = protocol_text(ctx, spec, cands, ro.exclude_extra != nullptr, U);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (spec.keep_tops) res.tops = std::move(lists);
  return res;
}

EvalResult evaluate_ranking(const Model& model, const EvalContext& ctx, const EvalSpec& spec) {
  EvalContext c = ctx;
  int dim = 0;
  if (!c.item_emb) {
    c.item_emb = model.item_embeddings(&dim);
    c.emb_dim = dim;
  }
  return evaluate_ranking([&](const int32_t* u, int n, float* out) { model.score(u, n, out); }, c, spec);
}

}  // namespace siamrec
