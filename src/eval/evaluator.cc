#include "eval/evaluator.h"

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

static const char* kAccuracy[] = {"precision", "recall", "hr", "ndcg", "mrr", "map", "f1"};
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
  o += fmt::format("{:>5}", "K");
  for (auto* m : kAccuracy) o += fmt::format(" {:>9}", m);
  o += "\n";
  for (int k : ks) {
    o += fmt::format("{:>5}", k);
    for (auto* m : kAccuracy) o += "   " + fmtv(get(fmt::format("{}@{}", m, k)));
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
  return {{"protocol", protocol},    {"kind", kind},       {"metrics", m},
          {"n_users", users.size()}, {"seconds", seconds}, {"per_user", pu}};
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

EvalResult evaluate_ranking(const BlockScorer& scorer, const EvalContext& ctx, const EvalSpec& spec) {
  auto t0 = std::chrono::steady_clock::now();
  if (!ctx.test || ctx.test->size() == 0) throw Error("evaluation needs test interactions, but the split has none");
  const bool full = spec.candidates == "full";
  const bool fixed = spec.candidates == "fixed";
  std::string sampler;
  int64_t n_samples = 0;
  if (!full && !fixed) {
    auto c = spec.candidates.find(':');
    sampler = spec.candidates.substr(0, c);
    n_samples = parse_int(spec.candidates.substr(c + 1)).value_or(0);
    if ((sampler != "uniform" && sampler != "popularity") || n_samples <= 0)
      throw ConfigError(
          fmt::format("eval.candidates '{}': allowed full, uniform:N, popularity:N, fixed", spec.candidates));
  }
  if (fixed && (!ctx.fixed_negatives || ctx.fixed_negatives->empty()))
    throw ConfigError(
        "eval.candidates 'fixed' needs a split with fixed candidate lists (e.g. dataset ml-1m-ncf, split ncf)");

  TestSets ts = test_sets(ctx, full && spec.exclude_train);
  const Csr& T = ts.csr;
  Csr valid_csr;
  if (ctx.valid && ctx.valid->size()) valid_csr = Csr::from_interactions(*ctx.valid, ctx.n_users, false);

  EvalResult res;
  for (int32_t u = 0; u < ctx.n_users; ++u)
    if (T.degree(u) > 0) res.users.push_back(u);
  res.test_items_dropped = ts.dropped;
  const size_t U = res.users.size();
  if (U == 0) throw Error("no user has a test item that can be ranked");

  // Popularity (train) for samplers and beyond-accuracy metrics.
  std::vector<int64_t> pop(ctx.n_items, 0), item_users(ctx.n_items, 0);
  int64_t train_users = 0;
  std::vector<double> profile_arp(U, 0);
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
    for (size_t k = 0; k < U; ++k) {
      int32_t u = res.users[k];
      if (u >= ctx.train->rows() || ctx.train->degree(u) == 0) continue;
      double s = 0;
      for (int64_t p = ctx.train->begin(u); p < ctx.train->end(u); ++p) s += pop[ctx.train->indices[p]];
      profile_arp[k] = s / ctx.train->degree(u);
    }
  }
  std::vector<double> pop_cdf;
  if (sampler == "popularity") {
    pop_cdf.resize(ctx.n_items);
    double s = 0;
    for (int32_t i = 0; i < ctx.n_items; ++i) pop_cdf[i] = (s += pop[i]);
    if (s <= 0) throw Error("popularity sampling needs training interactions");
  }

  const int K = spec.max_k();
  const auto& ks = spec.ks;
  std::vector<std::vector<double>> acc(std::size(kAccuracy) * ks.size(), std::vector<double>(U, 0));
  std::vector<double> auc(U, 0), weight(U, 0);
  std::vector<std::vector<int32_t>> lists(U);
  const float ninf = -std::numeric_limits<float>::infinity();
  // Per user, written by the worker thread that ranks her (rank_users calls visit from several
  // threads): summed after the ranking, no shared counter.
  std::vector<int32_t> masked(U, 0);

  RankOptions ro;
  ro.k = K;
  ro.threads = ctx.threads;
  ro.exclude = spec.exclude_train ? ctx.train : nullptr;
  ro.exclude_extra = valid_csr.rows() > 0 ? &valid_csr : nullptr;

  auto visit = [&](int64_t idx, int32_t u, const float* row, const int32_t* top, int ntop) {
    const int32_t* tb = T.indices.data() + T.begin(u);
    const int32_t* te = T.indices.data() + T.end(u);
    int n_rel = static_cast<int>(te - tb);
    auto is_rel = [&](int32_t i) { return std::binary_search(tb, te, i); };
    lists[idx].assign(top, top + ntop);
    std::vector<char> hits;
    std::vector<float> pos, neg;
    if (full) {
      hits.resize(ntop);
      for (int r = 0; r < ntop; ++r) hits[r] = is_rel(top[r]);
      // AUC: the test items' scores against the rest of the row; excluded (-inf) or undefined
      // (NaN) scores count nowhere.
      for (const int32_t* p = tb; p < te; ++p)
        if (row[*p] > ninf && (p == tb || p[-1] != *p)) pos.push_back(row[*p]);
      auc[idx] = metric::auc_in_row(row, ctx.n_items, pos.data(), static_cast<int>(pos.size()));
    } else {
      // Candidates: test items + negatives; pessimistic ties (a tied negative ranks above).
      std::vector<int32_t> negs;
      if (fixed) {
        negs = (*ctx.fixed_negatives)[u];
      } else {
        std::mt19937_64 rng(mix64(spec.seed ^ mix64(static_cast<uint64_t>(u) + 7)));
        std::set<int32_t> chosen;
        auto seen = [&](int32_t i) {
          return is_rel(i) || (ctx.train && u < ctx.train->rows() && ctx.train->contains(u, i)) ||
                 (valid_csr.rows() > 0 && valid_csr.contains(u, i));
        };
        int64_t avail = ctx.n_items - n_rel - (ctx.train && u < ctx.train->rows() ? ctx.train->degree(u) : 0);
        int64_t want = std::min<int64_t>(n_samples, std::max<int64_t>(0, avail));
        int64_t tries = 0;
        while (static_cast<int64_t>(chosen.size()) < want && tries++ < want * 200 + 1000) {
          int32_t i;
          if (sampler == "uniform") {
            i = static_cast<int32_t>(rng() % static_cast<uint64_t>(ctx.n_items));
          } else {
            double x = std::uniform_real_distribution<double>(0, pop_cdf.back())(rng);
            i = static_cast<int32_t>(std::upper_bound(pop_cdf.begin(), pop_cdf.end(), x) - pop_cdf.begin());
            i = std::min(i, ctx.n_items - 1);
          }
          if (!seen(i)) chosen.insert(i);
        }
        negs.assign(chosen.begin(), chosen.end());
      }
      std::vector<std::pair<float, char>> cand;
      for (const int32_t* p = tb; p < te; ++p) cand.emplace_back(row[*p], 1);
      for (auto i : negs) {
        if (row[i] == ninf) ++masked[idx];
        cand.emplace_back(row[i], 0);
      }
      std::stable_sort(cand.begin(), cand.end(), [](auto& a, auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      });
      hits.resize(std::min<size_t>(cand.size(), K));
      for (size_t r = 0; r < hits.size(); ++r) hits[r] = cand[r].second;
      for (auto& [s, rel] : cand) (rel ? pos : neg).push_back(s);
      auc[idx] = metric::auc(std::move(pos), std::move(neg));
    }
    for (size_t kk = 0; kk < ks.size(); ++kk) {
      int k = ks[kk];
      size_t base = kk * std::size(kAccuracy);
      acc[base + 0][idx] = metric::precision(hits, k);
      acc[base + 1][idx] = metric::recall(hits, n_rel, k);
      acc[base + 2][idx] = metric::hit_rate(hits, k);
      acc[base + 3][idx] = metric::ndcg(hits, n_rel, k);
      acc[base + 4][idx] = metric::mrr(hits, k);
      acc[base + 5][idx] = metric::average_precision(hits, n_rel, k);
      acc[base + 6][idx] = metric::f1(hits, n_rel, k);
    }
    weight[idx] = n_rel;
  };
  rank_users(res.users, ctx.n_items, scorer, ro, visit);
  const int64_t masked_candidates = std::accumulate(masked.begin(), masked.end(), int64_t{0});
  if (masked_candidates)
    spdlog::warn("{} candidate negatives were the user's own train/validation items and ranked last",
                 masked_candidates);

  // Aggregate: averages over users with at least one test item.
  auto mean = [&](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); };
  for (size_t kk = 0; kk < ks.size(); ++kk)
    for (size_t m = 0; m < std::size(kAccuracy); ++m) {
      std::string name = fmt::format("{}@{}", kAccuracy[m], ks[kk]);
      auto& v = acc[kk * std::size(kAccuracy) + m];
      res.metrics.emplace_back(name, mean(v));
      res.per_user[name] = std::move(v);
    }
  res.metrics.emplace_back("auc", mean(auc));
  double wsum = std::accumulate(weight.begin(), weight.end(), 0.0), gauc = 0;
  for (size_t k = 0; k < U; ++k) gauc += auc[k] * weight[k];
  res.metrics.emplace_back("gauc", gauc / wsum);
  res.per_user["auc"] = auc;

  BeyondInputs bi;
  bi.n_items = ctx.n_items;
  bi.n_train_users = train_users;
  bi.item_pop = pop;
  bi.item_users = item_users;
  bi.genres = ctx.genres;
  bi.emb = ctx.item_emb;
  bi.dim = ctx.emb_dim;
  bi.head_share = spec.head_share;
  for (int k : ks) {
    std::vector<std::vector<int32_t>> lk(U);
    for (size_t u = 0; u < U; ++u)
      lk[u].assign(lists[u].begin(), lists[u].begin() + std::min<size_t>(k, lists[u].size()));
    BeyondResult br = beyond_accuracy(lk, profile_arp, bi);
    for (auto* m : kBeyond) {
      auto it = br.aggregate.find(m);
      if (it == br.aggregate.end()) continue;
      std::string name = fmt::format("{}@{}", m, k);
      res.metrics.emplace_back(name, it->second);
      if (auto pu = br.per_user.find(m); pu != br.per_user.end()) res.per_user[name] = pu->second;
    }
  }

  std::string cand;
  if (full)
    cand = fmt::format("full ranking over all {} items", ctx.n_items);
  else if (fixed)
    cand = "fixed candidate lists (each test item + the split's negatives, e.g. NCF's 99)";
  else
    cand = fmt::format("test items + {} {} sampled unseen negatives per user (seed {})", n_samples,
                       sampler == "uniform" ? "uniformly" : "popularity-proportionally", spec.seed);
  std::string excl = spec.exclude_train ? "train items" : "none";
  if (ro.exclude_extra) excl += " + validation items";
  std::vector<std::string> kstr;
  for (int k : ks) kstr.push_back(std::to_string(k));
  res.protocol = fmt::format(
      "{} | candidates: {} | exclusions: {} | ties: {} | K: {} | users: {} with >=1 test item", ctx.data_protocol, cand,
      excl, full ? "smaller item id first" : "pessimistic (a tied negative ranks above)", fmt::join(kstr, ","), U);
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
