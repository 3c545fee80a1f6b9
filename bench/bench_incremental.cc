// The incremental-update protocol (docs/incremental.md): a time-ordered log cut into a base period
// and K later periods. After each period the model is (a) updated incrementally (siamrec update:
// the new period's interactions + a replay sample), (b) retrained from scratch on everything so
// far, (c) left as the base model (fold-in only: unknown users are folded in from their history,
// unknown items cannot be recommended). Each is evaluated on the NEXT period, full ranking over
// the catalogue seen so far, each user's earlier items excluded, users seen before only.
//
//   bench_incremental [--data FILE] --config CFG [--set key=value ...] [--base 0.6] [--periods 4]
//                     [--threads 2]
//
// CFG maps the file's columns (data.*) and configures the model (train.epochs for the full fits,
// update.* for the updates); the file needs a time column. When CFG names a registered dataset
// (data.dataset), its side data (titles, genres, tags) describe the items, for content towers.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "data/registry.h"
#include "eval/evaluator.h"
#include "eval/stats.h"
#include "models/model.h"
#include "models/model_file.h"
#include "tasks/pipeline.h"
#include "tasks/update.h"
#include "util/error.h"

using namespace siamrec;
using Clock = std::chrono::steady_clock;

namespace {

double secs_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double mean(const std::vector<double>& v) {
  double s = 0;
  size_t n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / n : NAN;
}

struct Row {
  std::string u, i;
  int64_t t;
};

RawLog raw_of(const std::vector<Row>& rows, size_t lo, size_t hi) {
  RawLog r;
  for (size_t k = lo; k < hi; ++k) {
    r.users.push_back(rows[k].u);
    r.items.push_back(rows[k].i);
    r.time.push_back(rows[k].t);
  }
  return r;
}

TrainedModel copy_of(const TrainedModel& m) {
  TrainedModel c = m;
  c.model = clone_model(*m.model);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  std::string data, config;
  std::vector<std::string> sets;
  double base = 0.6;
  int periods = 4, threads = 2;
  for (int a = 1; a < argc; ++a) {
    auto next = [&]() -> std::string {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[a]);
        std::exit(2);
      }
      return argv[++a];
    };
    if (!std::strcmp(argv[a], "--data"))
      data = next();
    else if (!std::strcmp(argv[a], "--config"))
      config = next();
    else if (!std::strcmp(argv[a], "--set"))
      sets.push_back(next());
    else if (!std::strcmp(argv[a], "--base"))
      base = std::stod(next());
    else if (!std::strcmp(argv[a], "--periods"))
      periods = std::stoi(next());
    else if (!std::strcmp(argv[a], "--threads"))
      threads = std::stoi(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[a]);
      return 2;
    }
  }
  if (config.empty()) {
    std::fprintf(stderr,
                 "usage: bench_incremental [--data FILE] --config CFG [--set k=v] [--base 0.6] [--periods 4]\n");
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  try {
    Config cfg = load_config(config, sets);
    RunOptions ro;
    ro.threads = threads;
    // Content towers: side data (titles, genres, tags, user features) from the registered dataset
    // the config names, for every period's items by id; without --data, its interactions too.
    Dataset meta;
    const bool side = !cfg.str("data.dataset").empty();
    if (side) meta = load_dataset(cfg.str("data.dataset"), LoadOptions{});
    if (data.empty()) data = cfg.str("data.dataset");
    Dataset full = side && data == cfg.str("data.dataset") ? meta : read_data_file(cfg, data, ro);
    if (!full.log.has_time()) throw ConfigError("the data needs a time column (data.time_col)");
    std::vector<size_t> order(full.log.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return full.log.time[a] < full.log.time[b]; });
    std::vector<Row> rows;
    for (size_t r : order)
      rows.push_back({full.users.original(full.log.user[r]), full.items.original(full.log.item[r]), full.log.time[r]});
    const size_t n = rows.size();
    std::vector<size_t> cut = {0, static_cast<size_t>(n * base)};
    for (int k = 1; k <= periods; ++k) cut.push_back(cut[1] + (n - cut[1]) * k / periods);
    std::printf("incremental protocol: %s, %zu interactions by time; base = first %.0f%%, then %d periods of %zu\n",
                data.c_str(), n, base * 100, periods, (n - cut[1]) / periods);
    std::printf("model: %s (%s), full fits %lld epochs, updates %lld epochs, replay share %.2f, init %s; %d threads\n",
                cfg.str("model.type").c_str(), config.c_str(), static_cast<long long>(cfg.integer("train.epochs")),
                static_cast<long long>(cfg.integer("update.epochs")), cfg.real("update.replay_share"),
                cfg.str("update.init").c_str(), threads);
    std::printf(
        "evaluation: the next period, users seen before, full ranking over the items seen so far, earlier "
        "items excluded, K = 10\n\n");
    std::printf(
        "| after | eval users | retrain NDCG@10 | update NDCG@10 | no update NDCG@10 | retrain R@10 | update R@10 "
        "| no update R@10 | retrain s | update s | new-item R@10 update / retrain / none (users) | "
        "absent users NDCG@10 update vs retrain (p) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    TrainedModel inc, none;
    std::vector<double> new_inc, new_none;  // new-item Recall@10 per (user, period), pooled over periods
    for (int k = 0; k < periods; ++k) {
      const size_t end = cut[static_cast<size_t>(k) + 1];
      Dataset dk = dataset_from_raw(raw_of(rows, 0, end), data);
      if (side) attach_side_data(dk, meta);
      Prepared p;
      p.ds = dk;
      p.split.train = p.ds.log;
      p.split.protocol = fmt::format("{} | first {} interactions by time", data, end);
      p.train_by_user = Csr::from_interactions(p.split.train, p.ds.n_users(), false);
      auto t0 = Clock::now();
      TrainedModel fk = fit_model(p, cfg, ro);
      const double t_full = secs_since(t0);
      double t_inc = t_full;
      if (k == 0) {
        inc = copy_of(fk);
        none = copy_of(fk);
      } else {
        Dataset fresh = dataset_from_raw(raw_of(rows, cut[static_cast<size_t>(k)], end), "period");
        if (side) attach_side_data(fresh, meta);
        t0 = Clock::now();
        update_model(inc, fresh, cfg, ro, fmt::format("period {}", k));
        t_inc = secs_since(t0);
      }
      if (inc.users.ids() != p.ds.users.ids() || inc.items.ids() != p.ds.items.ids())
        throw Error("internal: the updated model's ids differ from the retrained model's");
      // The next period, in this period's id space: users and items seen so far.
      const size_t lo = end, hi = cut[static_cast<size_t>(k) + 2];
      Interactions test, test_new;
      std::set<std::string> latest_items, earlier_items, latest_users;
      for (size_t r = cut[static_cast<size_t>(k)]; r < end; ++r)
        latest_items.insert(rows[r].i), latest_users.insert(rows[r].u);
      for (size_t r = 0; r < cut[static_cast<size_t>(k)]; ++r) earlier_items.insert(rows[r].i);
      for (size_t r = lo; r < hi; ++r) {
        const int32_t u = p.ds.users.find(rows[r].u), i = p.ds.items.find(rows[r].i);
        if (u < 0 || i < 0) continue;
        test.user.push_back(u), test.item.push_back(i);
        if (k > 0 && latest_items.count(rows[r].i) && !earlier_items.count(rows[r].i))
          test_new.user.push_back(u), test_new.item.push_back(i);
      }
      EvalSpec spec;
      spec.ks = {10};
      EvalContext ctx;
      ctx.n_users = p.ds.n_users(), ctx.n_items = p.ds.n_items();
      ctx.train = &p.train_by_user;
      ctx.test = &test;
      ctx.threads = threads;
      ctx.data_protocol = p.split.protocol;
      BlockScorer s_full = [&](const int32_t* u, int m, float* out) { fk.model->score(u, m, out); };
      BlockScorer s_inc = [&](const int32_t* u, int m, float* out) { inc.model->score(u, m, out); };
      std::vector<int32_t> imap(static_cast<size_t>(p.ds.n_items()));
      for (int32_t i = 0; i < p.ds.n_items(); ++i) imap[i] = none.items.find(p.ds.items.original(i));
      BlockScorer s_none = [&](const int32_t* u, int m, float* out) {
        std::vector<float> row(static_cast<size_t>(none.items.size()));
        for (int b = 0; b < m; ++b) {
          const int32_t nu = none.users.find(p.ds.users.original(u[b]));
          if (nu >= 0) {
            none.model->score(&nu, 1, row.data());
          } else {  // fold-in: the user's items so far that the base model knows
            std::vector<int32_t> h;
            for (int64_t q = p.train_by_user.begin(u[b]); q < p.train_by_user.end(u[b]); ++q)
              if (imap[p.train_by_user.indices[q]] >= 0) h.push_back(imap[p.train_by_user.indices[q]]);
            none.model->score_history(h, row.data());
          }
          float* o = out + static_cast<size_t>(b) * p.ds.n_items();
          for (int32_t i = 0; i < p.ds.n_items(); ++i) o[i] = imap[i] >= 0 ? row[imap[i]] : -INFINITY;
        }
      };
      EvalResult rf = evaluate_ranking(s_full, ctx, spec), ri = evaluate_ranking(s_inc, ctx, spec),
                 rn = evaluate_ranking(s_none, ctx, spec);
      std::string new_items = "–";
      if (test_new.size() > 0) {
        EvalContext cn = ctx;
        cn.test = &test_new;
        EvalResult nf = evaluate_ranking(s_full, cn, spec), ni = evaluate_ranking(s_inc, cn, spec),
                   nn = evaluate_ranking(s_none, cn, spec);
        auto t = stats::paired_t_test(ni.per_user["recall@10"], nn.per_user["recall@10"]);
        new_inc.insert(new_inc.end(), ni.per_user["recall@10"].begin(), ni.per_user["recall@10"].end());
        new_none.insert(new_none.end(), nn.per_user["recall@10"].begin(), nn.per_user["recall@10"].end());
        new_items = fmt::format("{:.4f} / {:.4f} / {:.4f} ({} users; update vs none p = {:.2g})", ni.get("recall@10"),
                                nf.get("recall@10"), nn.get("recall@10"), ni.users.size(), t.p_value);
      }
      // Forgetting: next-period users who were absent from the latest period.
      std::vector<double> ai, af;
      for (size_t q = 0; q < ri.users.size(); ++q)
        if (!latest_users.count(p.ds.users.original(ri.users[q])))
          ai.push_back(ri.per_user["ndcg@10"][q]), af.push_back(rf.per_user["ndcg@10"][q]);
      auto tf = stats::paired_t_test(ai, af);
      std::printf(
          "| P%d | %zu | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.1f | %.1f | %s | %.4f vs %.4f (%zu users, p = "
          "%.2g) |\n",
          k, ri.users.size(), rf.get("ndcg@10"), ri.get("ndcg@10"), rn.get("ndcg@10"), rf.get("recall@10"),
          ri.get("recall@10"), rn.get("recall@10"), t_full, t_inc, new_items.c_str(), mean(ai), mean(af), ai.size(),
          tf.p_value);
      std::fflush(stdout);
    }
    if (!new_inc.empty()) {  // too few users per period for a test alone: every (user, period) pair
      auto t = stats::paired_t_test(new_inc, new_none);
      auto w = stats::wilcoxon_signed_rank(new_inc, new_none);
      size_t better = 0, worse = 0;
      for (size_t q = 0; q < new_inc.size(); ++q) better += new_inc[q] > new_none[q], worse += new_inc[q] < new_none[q];
      std::printf(
          "\nnew items, pooled over the periods: Recall@10 of the update %.4f vs no update %.4f over %zu (user, "
          "period) "
          "pairs; update better for %zu, worse for %zu; paired t-test p = %.2g, Wilcoxon p = %.2g\n",
          mean(new_inc), mean(new_none), new_inc.size(), better, worse, t.p_value, w.p_value);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_incremental: %s\n", e.what());
    return 1;
  }
  return 0;
}
