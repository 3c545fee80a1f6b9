#include "tune/study.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "data/split.h"
#include "eval/evaluator.h"
#include "eval/stats.h"
#include "tasks/pipeline.h"
#include "tune/asha.h"
#include "tune/sampler.h"
#include "util/error.h"
#include "util/io.h"
#include "util/rng.h"

namespace siamrec::tune {

namespace {

nlohmann::json to_json(const TrialRecord& t) {
  nlohmann::json rungs = nlohmann::json::object();
  for (auto& [e, v] : t.rungs) rungs[std::to_string(e)] = v;
  nlohmann::json j = {
      {"trial", t.trial},   {"seed", t.seed},       {"params", t.params},   {"status", t.status},
      {"epochs", t.epochs}, {"seconds", t.seconds}, {"metrics", t.metrics}, {"objectives", t.objectives},
      {"rungs", rungs}};
  if (!t.error.empty()) j["error"] = t.error;
  return j;
}

TrialRecord from_json(const nlohmann::json& j) {
  TrialRecord t;
  t.trial = j.at("trial").get<int>();
  t.seed = j.at("seed").get<uint64_t>();
  t.params = j.at("params").get<Assignment>();
  t.status = j.at("status").get<std::string>();
  t.epochs = j.at("epochs").get<int>();
  t.seconds = j.at("seconds").get<double>();
  t.metrics = j.at("metrics").get<std::map<std::string, double>>();
  t.objectives = j.at("objectives").get<std::vector<double>>();
  for (auto& [e, v] : j.at("rungs").items()) t.rungs[std::stoi(e)] = v.get<double>();
  if (j.contains("error")) t.error = j["error"].get<std::string>();
  return t;
}

// Appends one line and syncs it: a killed study keeps every trial it finished.
void append_line(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(fmt::format("cannot write the study file '{}'", path));
  const std::string s = line + "\n";
  const bool ok = ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw Error(fmt::format("cannot write the study file '{}' (disk full?)", path));
}

std::string fmt_params(const Assignment& a) {
  std::string s;
  for (auto& [k, v] : a) s += (s.empty() ? "" : " ") + k + "=" + v;
  return s;
}

// Runs each trial in its own forked process (the data loaded once, shared copy-on-write) and
// returns the records in the order they end. A child sends its record as one JSON text over a
// pipe; a child that dies without one (a signal, an abort) is recorded as failed. Children die
// with the parent (PR_SET_PDEATHSIG), so a killed study leaves no trial running.
std::vector<TrialRecord> run_forked(const std::vector<int>& trials, const std::function<std::string(int)>& run) {
  struct Child {
    int trial = 0;
    pid_t pid = -1;
    int fd = -1;
    std::string out;
  };
  std::vector<Child> kids;
  std::fflush(nullptr);
  for (int k : trials) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw Error("tune: cannot create a pipe for a parallel trial");
    const pid_t pid = ::fork();
    if (pid < 0) throw Error("tune: cannot fork a process for a parallel trial");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(p[0]);
      int code = 0;
      try {
        const std::string j = run(k);
        for (size_t off = 0; off < j.size();) {
          const ssize_t w = ::write(p[1], j.data() + off, j.size() - off);
          if (w <= 0) break;
          off += static_cast<size_t>(w);
        }
      } catch (...) {
        code = 1;
      }
      ::_exit(code);
    }
    ::close(p[1]);
    kids.push_back({k, pid, p[0], {}});
  }
  std::vector<TrialRecord> ended;
  size_t open = kids.size();
  while (open > 0) {
    std::vector<pollfd> fds;
    std::vector<size_t> who;
    for (size_t q = 0; q < kids.size(); ++q)
      if (kids[q].fd >= 0) fds.push_back({kids[q].fd, POLLIN, 0}), who.push_back(q);
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      throw Error("tune: waiting for parallel trials failed");
    }
    for (size_t q = 0; q < fds.size(); ++q) {
      if (!(fds[q].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Child& c = kids[who[q]];
      char buf[65536];
      const ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        c.out.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      ::close(c.fd);
      c.fd = -1;
      --open;
      int status = 0;
      while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
      }
      TrialRecord t;
      bool ok = false;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !c.out.empty()) {
        try {
          t = from_json(nlohmann::json::parse(c.out));
          ok = t.trial == c.trial;
        } catch (const std::exception&) {
        }
      }
      if (!ok) {
        t = TrialRecord{};
        t.trial = c.trial;
        t.status = "failed";
        t.error = WIFSIGNALED(status) ? fmt::format("the trial's process was killed by signal {} ({})",
                                                    WTERMSIG(status), strsignal(WTERMSIG(status)))
                                      : fmt::format("the trial's process ended with status {} and no result",
                                                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        spdlog::warn("trial {} failed: {}", c.trial, t.error);
      }
      ended.push_back(std::move(t));
    }
  }
  return ended;
}

}  // namespace

StudyResult run_study(const StudyOptions& o) {
  if (o.study.empty()) throw ConfigError("tune needs a study file (--study study.jsonl)");
  if (o.trials < 1) throw ConfigError("tune: --trials must be at least 1");
  Config base = load_config(o.config, o.sets);
  const std::string space_text = read_file(o.space);
  SearchSpace space = SearchSpace::from_yaml(space_text, o.space, base);
  std::vector<std::string> objectives = base.strs("tune.objectives");
  objectives.erase(std::remove(objectives.begin(), objectives.end(), ""), objectives.end());
  // A retrieval model (sampler.builder label) learns from categories: its trials are validated by
  // the trainer's retrieval among held-out labelled training items (train.valid_share), the
  // objective being train.valid_metric (recall@K, recall@1 unless set) at the best epoch.
  const bool retrieval = base.str("sampler.builder") == "label";
  if (retrieval) {
    const std::string vm = base.is_set("train.valid_metric") ? base.str("train.valid_metric") : "recall@1";
    if (objectives.empty()) objectives = {vm};
    if (objectives.size() != 1 || objectives[0] != vm || vm.rfind("recall@", 0) != 0)
      throw ConfigError(fmt::format(
          "tune.objectives: a retrieval model (sampler.builder label) is tuned on the retrieval Recall@K its "
          "trainer validates with (train.valid_metric, now '{}'): set train.valid_metric recall@K and leave "
          "tune.objectives unset or equal to it",
          vm));
    base.set("train.valid_metric", vm, "tune (retrieval validation)");
  }
  if (objectives.empty()) objectives = {base.str("train.valid_metric")};
  if (!retrieval) {
    const auto ks = base.ints("eval.k");
    for (auto& ob : objectives) {
      const std::string name = !ob.empty() && ob[0] == '-' ? ob.substr(1) : ob;
      const auto at = name.find('@');
      const bool aggregate = name == "auc" || name == "gauc" || name == "rmse" || name == "mae";
      const bool at_k = at != std::string::npos && at > 0 &&
                        std::find(ks.begin(), ks.end(), std::atoll(name.c_str() + at + 1)) != ks.end();
      if (!aggregate && !at_k)
        throw ConfigError(fmt::format(
            "tune.objectives: '{}' is not a validation metric of this config: use METRIC@K with K in eval.k, or "
            "auc / gauc (rating tasks: rmse, mae)",
            ob));
    }
  }

  // The data, once for every trial; the validation part: the split's, else carved from train.
  RunOptions ro;
  ro.data_dir_flag = o.data_dir;
  ro.skip_bad_lines = o.skip_bad_lines;
  ro.threads = o.threads;
  Prepared fit = prepare(base, ro);
  // Resolved while the test part is still known (its fixed lists' length), before it is dropped;
  // every ranking trial validates on it (retrieval trials: empty, their trainer's own validation).
  const std::string vc = retrieval ? std::string() : resolved_valid_candidates(fit, base);
  std::string validation;
  Interactions valid;
  if (retrieval) {
    if (base.real("train.valid_share") <= 0)
      throw ConfigError(
          "tune evaluates a retrieval model (sampler.builder label) by retrieval among held-out labelled training "
          "items, and train.valid_share is 0: set it (e.g. 0.1). tune never evaluates on the test items");
    validation = fmt::format(
        "retrieval {} among {:g} of the labelled training items, held out by the trainer (train.valid_share, seed "
        "{}); the split's held-out items ({}) are never read",
        base.str("train.valid_metric"), base.real("train.valid_share"), base.integer("train.seed"),
        fit.split.heldout_items.size());
  } else if (fit.split.valid.size() > 0) {
    valid = fit.split.valid;
    validation = "the split's validation part";
  } else if (base.real("train.valid_share") > 0) {
    Interactions rest;
    carve_per_user(fit.split.train, fit.ds.n_users(), base.real("train.valid_share"),
                   static_cast<uint64_t>(base.integer("train.seed")), rest, valid);
    fit.split.train = std::move(rest);
    fit.train_by_user = Csr::from_interactions(fit.split.train, fit.ds.n_users(), false);
    validation = fmt::format("{:g} of each user's train interactions (train.valid_share, seed {})",
                             base.real("train.valid_share"), base.integer("train.seed"));
  } else {
    throw ConfigError(
        "tune evaluates trials on validation data only, and this config has none: its split has no validation "
        "part and train.valid_share is 0. Set train.valid_share (e.g. 0.1) or a split with a validation part; "
        "tune never evaluates on the test part");
  }
  fit.split.test = Interactions{};  // the test part is never read
  fit.split.test_negatives.clear();
  ro.valid_is_evaluated = true;
  // A ranking trial is evaluated on the validation part, the "test" of that evaluation (a copy of
  // the data). A retrieval trial's objective is its trainer's own validation: no copy, no evaluation.
  Prepared eval;
  Config eval_cfg = base;
  if (!retrieval) {
    fit.split.valid = valid;
    eval = fit;
    eval.split.test = valid;
    eval.split.valid = Interactions{};
    eval.split.heldout_items = fit.split.valid_items;  // cold-item splits: rank within the validation items
    // Trials validate as a plain `siamrec train` of this config would (train.valid_candidates
    // resolved while the test part is still known: fixed lists and candidate files become
    // uniform:N with their length), and the objective ranks the validation part the same way, so
    // a trial's early stopping and its score read one protocol. Never the test lists themselves.
    if (sampled_candidates(vc)) {
      eval_cfg.set("eval.candidates", vc, "tune (train.valid_candidates)");
      validation += fmt::format("; candidates {} ({}: unseen items drawn per user, seeded)", vc,
                                base.str("train.valid_candidates") == "auto"
                                    ? "the test protocol's sampled form, as train.valid_candidates auto"
                                    : "train.valid_candidates");
    } else {
      eval_cfg.set("eval.candidates", "full", "tune (validation by full ranking)");
      validation += "; full ranking";
    }
    validation = fmt::format("{} ({} interactions)", validation, valid.size());
  }

  // The study file: a header, then one line per ended trial.
  const std::string config_hash = sha256_hex(base.to_yaml()).substr(0, 16);
  const std::string space_hash = sha256_hex(space_text).substr(0, 16);
  nlohmann::json header = {{"study", 1},
                           {"config", o.config},
                           {"config_sha256", config_hash},
                           {"space", o.space},
                           {"space_sha256", space_hash},
                           {"sampler", base.str("tune.sampler")},
                           {"pruner", base.str("tune.pruner")},
                           {"objectives", objectives},
                           {"seed", base.integer("tune.seed")},
                           {"validation", validation}};
  StudyResult res;
  res.objectives = objectives;
  res.validation = validation;
  if (file_exists(o.study)) {
    if (!o.resume)
      throw ConfigError(
          fmt::format("study file '{}' exists: --resume continues it, or remove it to start over", o.study));
    {  // a line cut by a kill has no newline: drop it, so the next trial starts a fresh line
      std::string text = read_file(o.study);
      if (!text.empty() && text.back() != '\n') {
        text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
        atomic_write(o.study, text);
        spdlog::warn("{}: its last line was cut (a killed trial): dropped", o.study);
      }
    }
    std::ifstream in(o.study);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      nlohmann::json j;
      if (n == 1) {
        try {
          j = nlohmann::json::parse(line);
          for (const char* k : {"config_sha256", "space_sha256", "sampler", "pruner", "objectives", "seed"})
            (void)j.at(k);
        } catch (const nlohmann::json::exception&) {
          throw ConfigError(fmt::format("'{}' is not a study file of siamrec tune (no header line)", o.study));
        }
      }
      try {
        j = nlohmann::json::parse(line);
        if (n == 1) {
          for (const char* k : {"config_sha256", "space_sha256", "sampler", "pruner", "objectives", "seed"})
            if (j.at(k) != header[k])
              throw ConfigError(fmt::format(
                  "study '{}' was run with another {} ({} there, {} now): resume it with the same config and "
                  "space, or start a new study file",
                  o.study, k, j.at(k).dump(), header[k].dump()));
          continue;
        }
        res.trials.push_back(from_json(j));
      } catch (const nlohmann::json::exception& e) {
        // A line cut by a kill: the trials before it stand, that trial runs again.
        spdlog::warn("{}:{}: unreadable trial line ignored ({})", o.study, n, e.what());
      }
    }
    spdlog::info("resuming study '{}' after {} trials", o.study, res.trials.size());
  } else {
    append_line(o.study, header.dump());
  }

  auto sampler = make_sampler(base.str("tune.sampler"), static_cast<int>(base.integer("tune.startup")));
  const bool asha_on = base.str("tune.pruner") == "asha";
  const int parallel = static_cast<int>(base.integer("tune.parallel"));
  if (parallel > std::max(1, o.threads))
    throw ConfigError(
        fmt::format("tune.parallel {} is more than the thread budget (--threads {}): each running trial needs a thread",
                    parallel, std::max(1, o.threads)));
  const int trial_threads = std::max(1, o.threads / parallel);
  // res.trials stays ordered by trial number (a resumed file, or a batch, may hold them in the order they ended).
  auto by_trial = [&] {
    std::sort(res.trials.begin(), res.trials.end(),
              [](const TrialRecord& a, const TrialRecord& b) { return a.trial < b.trial; });
  };
  by_trial();
  const uint64_t seed = static_cast<uint64_t>(base.integer("tune.seed"));

  // Trial k runs in batch (k-1)/parallel, and draws its params and meets ASHA knowing only the
  // trials of earlier batches: what a trial sees never depends on which sibling ends first, so a
  // study is the same however its batches are timed, killed and resumed.
  auto run_trial = [&](int k, const std::vector<Observation>& done, Asha asha, int threads) {
    TrialRecord t;
    t.trial = k;
    t.seed = mix64(seed ^ static_cast<uint64_t>(k));
    t.params = sampler->suggest(space, base, done, t.seed);
    RunOptions tr = ro;
    tr.threads = threads;
    bool pruned = false;
    double best_valid = -1;  // retrieval: the trainer's validation at its best epoch
    tr.on_epoch = [&](const EpochInfo& e) {
      t.epochs = e.epoch;
      if (e.has_valid && !e.refit) best_valid = std::max(best_valid, e.valid);
      if (!e.has_valid || !asha_on) return true;  // ASHA ranks train.valid_metric at the rungs
      if (asha.rung_of(e.epoch) >= 0) t.rungs[e.epoch] = e.valid;
      if (!asha.report(e.epoch, e.valid)) {
        pruned = true;
        return false;
      }
      return true;
    };
    const auto t0 = std::chrono::steady_clock::now();
    try {
      Config c = base;
      for (auto& [key, v] : t.params) c.set(key, v, fmt::format("tune trial {}", k));
      c.set("train.refit", "false", "tune (a refit would train on the validation data)");
      if (!vc.empty()) c.set("train.valid_candidates", vc, "tune (resolved before the test part is dropped)");
      TrainedModel m = fit_model(fit, c, tr);
      if (retrieval) {
        if (best_valid < 0)
          throw Error(
              "the trial ran no retrieval validation (train.valid_share > 0 and a dot, cosine or "
              "euclidean comparator are needed)");
        t.metrics[c.str("train.valid_metric")] = best_valid;
      } else {
        Config ec = c;
        if (eval_cfg.str("eval.candidates") != c.str("eval.candidates"))
          ec.set("eval.candidates", eval_cfg.str("eval.candidates"), "tune");
        EvalResult r = evaluate_model(m, eval, ec, tr);
        for (auto& [name, v] : r.metrics)
          if (std::isfinite(v)) t.metrics[name] = v;
      }
      for (auto& ob : objectives) {
        const bool minimise = !ob.empty() && ob[0] == '-';
        const std::string name = minimise ? ob.substr(1) : ob;
        auto it = t.metrics.find(name);
        if (it == t.metrics.end()) {
          std::string have;
          for (auto& [n2, v2] : t.metrics) have += (have.empty() ? "" : ", ") + n2;
          throw ConfigError(
              fmt::format("tune.objectives: '{}' is not a metric of this evaluation (it has: {})", name, have));
        }
        t.objectives.push_back(minimise ? -it->second : it->second);
      }
      t.status = pruned ? "pruned" : "complete";
    } catch (const std::exception& e) {  // a combination the config refuses, divergence, ...: recorded
      t.status = "failed";
      t.error = e.what();
      spdlog::warn("trial {} failed: {}", k, e.what());
    }
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return t;
  };
  auto record = [&](TrialRecord t) {
    append_line(o.study, to_json(t).dump());
    spdlog::info("trial {}/{} {}: {} {}", t.trial, o.trials, t.status, fmt_params(t.params),
                 t.objectives.empty() ? std::string("-") : fmt::format("{:.4f}", t.objectives[0]));
    res.trials.push_back(std::move(t));
  };

  const auto t_start = std::chrono::steady_clock::now();
  for (int b = 1; b <= o.trials; b += parallel) {
    std::vector<int> todo;
    for (int k = b; k < b + parallel && k <= o.trials; ++k)
      if (std::none_of(res.trials.begin(), res.trials.end(), [k](const TrialRecord& t) { return t.trial == k; }))
        todo.push_back(k);
    if (todo.empty()) continue;
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() / 60.0;
    if (o.budget_minutes > 0 && minutes >= o.budget_minutes) {
      spdlog::info("budget of {:g} minutes used: no more trials", o.budget_minutes);
      break;
    }
    std::vector<Observation> done;
    Asha asha(static_cast<int>(base.integer("tune.asha_min_epochs")), static_cast<int>(base.integer("tune.asha_eta")));
    for (auto& t : res.trials) {  // ordered: the earlier batches come first
      if (t.trial >= b) break;
      for (auto& [e, v] : t.rungs) asha.report(e, v);
      if (t.status != "failed" && !t.objectives.empty()) done.push_back({t.params, t.objectives[0]});
    }
    if (parallel == 1) {
      record(run_trial(todo[0], done, asha, trial_threads));
      continue;
    }
    for (TrialRecord& t :
         run_forked(todo, [&](int k) { return to_json(run_trial(k, done, asha, trial_threads)).dump(); }))
      record(std::move(t));
    by_trial();
  }

  // Leaderboard, best trial and Pareto front (complete trials).
  std::vector<int> complete;
  for (size_t k = 0; k < res.trials.size(); ++k)
    if (res.trials[k].status == "complete") complete.push_back(static_cast<int>(k));
  std::vector<std::vector<double>> pts;
  for (int k : complete) pts.push_back(res.trials[k].objectives);
  for (int f : stats::pareto_front(pts)) res.pareto.push_back(complete[f]);
  for (int k : complete)
    if (res.best < 0 || res.trials[k].objectives[0] > res.trials[res.best].objectives[0]) res.best = k;
  std::vector<int> order(res.trials.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int>(k);
  auto key = [&](int k) {
    const auto& t = res.trials[k];
    return std::make_pair(t.status == "complete" ? 0
                          : t.status == "pruned" ? 1
                                                 : 2,
                          t.objectives.empty() ? 1e300 : -t.objectives[0]);
  };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key(a) < key(b); });
  std::string tbl = fmt::format("study {}: {} trials, sampler {}, pruner {}; validation: {}\n", o.study,
                                res.trials.size(), base.str("tune.sampler"), base.str("tune.pruner"), validation);
  tbl += fmt::format("{:>5} {:>9}", "trial", "status");
  for (auto& ob : objectives) tbl += fmt::format(" {:>13}", ob[0] == '-' ? ob.substr(1) + " min" : ob + " max");
  tbl += fmt::format(" {:>6} {:>8}  {}\n", "epochs", "seconds", "params");
  for (int k : order) {
    const auto& t = res.trials[k];
    const bool front = std::find(res.pareto.begin(), res.pareto.end(), k) != res.pareto.end();
    tbl += fmt::format("{:>5} {:>9}", t.trial, t.status + (objectives.size() > 1 && front ? "*" : ""));
    for (size_t q = 0; q < objectives.size(); ++q) {
      const bool minimise = objectives[q][0] == '-';
      tbl += q < t.objectives.size() ? fmt::format(" {:>13.4f}", minimise ? -t.objectives[q] : t.objectives[q])
                                     : fmt::format(" {:>13}", "-");
    }
    tbl += fmt::format(" {:>6} {:>8.1f}  {}\n", t.epochs, t.seconds, fmt_params(t.params));
  }
  if (objectives.size() > 1) tbl += "* = on the Pareto front of the objectives\n";
  res.table = tbl;
  if (res.best >= 0) {
    const auto& b = res.trials[res.best];
    Config c = base;
    for (auto& [k2, v] : b.params) c.set(k2, v, "tune");
    std::string head = fmt::format(
        "# Tuned by `siamrec tune` (study {}, {} trials, sampler {}, pruner {}): trial {} was best on\n# {}.\n",
        o.study, res.trials.size(), base.str("tune.sampler"), base.str("tune.pruner"), b.trial, validation);
    head += "# Validation:";
    for (auto& [name, v] : b.metrics)
      if (name.find("@10") != std::string::npos || name == "auc" || retrieval)
        head += fmt::format(" {} {:.4f}", name, v);
    head += fmt::format("\n# Chosen: {}\n", fmt_params(b.params));
    res.best_yaml = head + c.to_yaml();
    if (!o.out.empty()) atomic_write(o.out, res.best_yaml);
  }
  return res;
}

}  // namespace siamrec::tune
