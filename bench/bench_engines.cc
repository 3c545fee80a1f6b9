// Training-engine benchmark on the NCF ML-1M train set (994,169 positives): the CML triplet model
// of ../shared/bench/torch_ref.py (1 uniform negative, squared euclidean, margin 1, unit-ball
// clipping, Adagrad lr 0.05) trained by the LibTorch engine, the fused engine (per-example and
// mini-batch updates, 1 and 2 threads, with and without replicas of the hot rows) and, when it is
// there, the PyTorch reference itself, all in one command. Every row trains a fresh model for
// --epochs epochs; the rows are interleaved over --rounds rounds (this VM's clock drifts by up to
// 2x within minutes) and each figure is the median over rounds. Right before each 2-thread row a
// calibration (bench/calibration.h: a compute and a memory loop on 1 and 2 threads, nothing
// shared) measures what the machine gives on 2 threads in that minute: a round whose calibration
// falls short is flagged busy and left out of that row's scaling, and the engine's scaling is set
// against the machine's. Prints triplets/s, the ratios the fused engine is held to, and the
// hardware cache counters of the 2-thread rows where perf can read them.
//
//   bench_engines [--epochs 3] [--rounds 5] [--dims 32,64,128] [--torch-ref PATH | --torch-ref none]
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calibration.h"
#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/io.h"
#include "util/paths.h"
#include "util/strings.h"

using namespace siamrec;

struct Rate {
  double first = 0, mean = 0;  // epoch 1; all epochs (triplets / seconds)
};

static Rate train_rate(const Prepared& p, const std::string& engine, const std::string& update, int threads, int dim,
                       int batch, int epochs, const std::vector<std::string>& extra) {
  Config c;
  for (const std::string& s : extra) c.set_override(s);
  for (std::string s :
       {"model.type=siamese", "loss.type=triplet", "loss.margin=1", "comparator.type=sq_euclidean", "reg.max_norm=1",
        "sampler.negatives=1", "train.optimizer=adagrad", "train.lr=0.05", "train.valid_share=0"})
    c.set_override(s);
  c.set_override("train.engine=" + engine);
  c.set_override("train.update=" + update);
  c.set_override("train.batch_size=" + std::to_string(batch));
  c.set_override("tower.dim=" + std::to_string(dim));
  c.set_override("train.epochs=" + std::to_string(epochs));
  std::string log = "/tmp/siamrec-bench-engines.jsonl";
  RunOptions ro;
  ro.threads = threads;
  ro.log_path = log;
  fit_model(p, c, ro);
  std::string text = read_file(log);
  std::remove(log.c_str());
  LineReader lr(text);
  std::string_view line;
  Rate r;
  double seen = 0, secs = 0;
  while (lr.next(line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (!j.contains("tuples_per_s") || !j["tuples_per_s"].is_number()) continue;  // event lines (end of a pass)
    double tps = j["tuples_per_s"].get<double>(), s = j["seconds"].get<double>();
    if (r.first == 0) r.first = tps;
    seen += tps * s, secs += s;
  }
  r.mean = seen / std::max(secs, 1e-9);
  return r;
}

// The PyTorch reference, 1 thread: its own mean triplets/s over `epochs` (0 when unavailable).
static double torch_ref_rate(const std::string& ref, int epochs) {
  std::string cmd = "OMP_NUM_THREADS=1 /usr/bin/python3 " + ref + " '" + resolve_data_dir() +
                    "' --loss triplet --dim 64 --batch 4096 --threads 1 --epochs " + std::to_string(epochs) +
                    " 2>/dev/null";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return 0;
  char buf[512];
  double rate = 0;
  while (std::fgets(buf, sizeof buf, f))
    if (const char* q = std::strstr(buf, "triplets_per_s=")) rate = std::atof(q + std::strlen("triplets_per_s="));
  const int status = pclose(f);
  if (rate <= 0)
    std::fprintf(stderr,
                 "bench_engines: %s printed no rate (exit status %d); its row is left out. It needs python3-torch and "
                 "python3-numpy (scripts/install-deps.sh bench)\n",
                 ref.c_str(), status);
  return rate;
}

// Hardware cache counters of this process while a row trains, through `perf stat -p` (where
// the kernel and the VM expose them; this VM exposes none, and says so).
struct Perf {
  bool ok = false;
  std::string why;  // when not ok
  pid_t pid = -1;
  std::string out;
  static Perf probe() {
    Perf p;
    FILE* f = popen("perf stat -x, -e cache-misses,cache-references true 2>&1", "r");
    if (!f) return p.why = "perf not found", p;
    std::string text;
    char buf[256];
    while (std::fgets(buf, sizeof buf, f)) text += buf;
    const int st = pclose(f);
    if (st != 0 || text.find("not supported") != std::string::npos || text.find("cache-misses") == std::string::npos)
      return p.why =
                 "perf stat cannot read cache-misses here (" + std::string(trim(text.substr(0, text.find('\n')))) + ")",
             p;
    p.ok = true;
    return p;
  }
  void start() {
    if (!ok) return;
    out = "/tmp/siamrec-bench-perf-" + std::to_string(getpid()) + ".csv";
    const std::string target = std::to_string(getpid());
    pid = fork();
    if (pid == 0) {
      execlp("perf", "perf", "stat", "-x,", "-e", "cache-misses,cache-references", "-p", target.c_str(), "-o",
             out.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    usleep(200000);  // perf attaches
  }
  // "cache-misses N (M% of references)" over the row, or "".
  std::string stop() {
    if (!ok || pid <= 0) return "";
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    pid = -1;
    double miss = -1, refs = -1;
    LineReader lr(read_file(out));
    std::string_view line;
    while (lr.next(line)) {  // value,unit,event,...
      const std::string l(line);
      const double v = std::atof(l.c_str());
      if (l.find(",cache-misses") != std::string::npos) miss = v;
      if (l.find(",cache-references") != std::string::npos) refs = v;
    }
    std::remove(out.c_str());
    if (miss < 0) return "";
    char buf[128];
    std::snprintf(buf, sizeof buf, "cache-misses %.3g (%.1f%% of references)", miss,
                  refs > 0 ? 100 * miss / refs : 0.0);
    return buf;
  }
};

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  int epochs = 3, rounds = 5;
  std::vector<int> dims = {32, 64, 128};
  std::string ref = "../shared/bench/torch_ref.py";
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--epochs"))
      epochs = std::max(1, std::atoi(argv[a + 1]));
    else if (!std::strcmp(argv[a], "--rounds"))
      rounds = std::max(1, std::atoi(argv[a + 1]));
    else if (!std::strcmp(argv[a], "--torch-ref"))
      ref = argv[a + 1];
    else if (!std::strcmp(argv[a], "--dims")) {
      dims.clear();
      for (auto& d : split_list(argv[a + 1])) dims.push_back(std::stoi(d));
    } else {
      std::fprintf(stderr, "bench_engines: unknown option %s\n", argv[a]);
      return 2;
    }
  }
  if (ref != "none" && !file_exists(ref)) {
    std::fprintf(stderr, "bench_engines: %s not found; the PyTorch reference row is skipped\n", ref.c_str());
    ref = "none";
  }
  try {
    Config c;
    c.set_override("data.dataset=ml-1m-ncf");
    c.set_override("split.type=fixed");
    c.set_override("split.name=ncf");
    Prepared p = prepare(c, RunOptions{});
    struct Row {
      std::string name, engine, update;
      int threads, dim, batch;
      std::vector<std::string> extra;         // more config overrides
      std::vector<double> first, mean;        // per round: epoch 1, all epochs
      std::vector<bench::Calibration> calib;  // 2-thread rows: the machine, right before each round's run
      std::vector<std::string> counters;      // per round, where perf can read them
    };
    std::vector<Row> rows = {
        {"LibTorch engine, batch 1024, 1 thread", "torch", "minibatch", 1, 64, 1024, {}},
        {"LibTorch engine, batch 4096, 1 thread", "torch", "minibatch", 1, 64, 4096, {}},
        {"fused, per-example, 1 thread", "fused", "example", 1, 64, 4096, {}},
        {"fused, per-example, 2 threads", "fused", "example", 2, 64, 4096, {}},
        {"fused, per-example, 2 threads, no replicas", "fused", "example", 2, 64, 4096, {"train.hot_rows=0"}},
        {"fused, mini-batch 4096, 1 thread", "fused", "minibatch", 1, 64, 4096, {}},
        {"fused, mini-batch 4096, 2 threads", "fused", "minibatch", 2, 64, 4096, {}},
        {"fused, mini-batch 4096, 2 threads, no replicas", "fused", "minibatch", 2, 64, 4096, {"train.hot_rows=0"}},
    };
    for (int d : dims)
      if (d != 64)
        rows.push_back({"fused, per-example, 1 thread, d=" + std::to_string(d), "fused", "example", 1, d, 4096, {}});
    Perf perf = Perf::probe();
    std::vector<double> ref_rates;
    for (int r = 0; r < rounds; ++r) {
      std::fprintf(stderr, "round %d/%d\n", r + 1, rounds);
      for (Row& row : rows) {
        if (row.threads > 1) row.calib.push_back(bench::calibrate(row.threads));
        if (row.threads > 1) perf.start();
        Rate x = train_rate(p, row.engine, row.update, row.threads, row.dim, row.batch, epochs, row.extra);
        if (row.threads > 1) row.counters.push_back(perf.stop());
        row.first.push_back(x.first), row.mean.push_back(x.mean);
      }
      if (ref != "none") ref_rates.push_back(torch_ref_rate(ref, epochs));
    }
    const Row &t1k = rows[0], &t4k = rows[1], &ex1 = rows[2], &ex2 = rows[3], &ex2p = rows[4], &mb1 = rows[5],
              &mb2 = rows[6], &mb2p = rows[7];
    auto M = [](const Row& r) { return median(r.mean); };
    auto F = [](const Row& r) { return median(r.first); };
    std::printf(
        "engine benchmark: NCF ML-1M train set (%zu positives), CML triplet as ../shared/bench/torch_ref.py\n"
        "(1 uniform negative, sq_euclidean, margin 1, unit ball, Adagrad lr 0.05, d=64 unless said), triplets/s;\n"
        "each row trains a fresh model for %d epochs; median of %d interleaved rounds\n",
        p.split.train.size(), epochs, rounds);
    std::printf("  %-48s %12s %14s\n", "", "epoch 1", "mean, all epochs");
    for (const Row& row : rows) std::printf("  %-48s %12.0f %14.0f\n", row.name.c_str(), F(row), M(row));
    double tr = median(ref_rates);
    if (tr > 0) std::printf("  %-48s %12s %14.0f\n", "PyTorch reference torch_ref.py, batch 4096, 1 thread", "-", tr);
    std::printf("ratios (means over all epochs):\n");
    std::printf(
        "  fused per-example 1 thread / LibTorch engine 1 thread: %.1fx at batch 4096, %.1fx at batch 1024 (target >= "
        "10x)\n",
        M(ex1) / M(t4k), M(ex1) / M(t1k));
    std::printf("  fused mini-batch 1 thread / LibTorch engine 1 thread at batch 4096: %.1fx\n", M(mb1) / M(t4k));
    if (tr > 0)
      std::printf("  fused per-example 1 thread / PyTorch reference 1 thread: %.1fx (target >= 15x)\n", M(ex1) / tr);
    std::printf("  epoch 1 only: per-example / LibTorch batch 4096 %.1fx\n", F(ex1) / F(t4k));
    // Scaling: each 2-thread row against its 1-thread row of the same round, next to what the
    // machine gave on 2 threads right before it; rounds where the machine fell short are left out.
    std::printf("scaling, 2 threads / 1 thread, per round against the machine's own (bench/calibration.h):\n");
    struct Pair {
      const Row &one, &two;
      const char* what;
      double target;
    };
    for (const Pair& q : {Pair{ex1, ex2, "per-example", 1.8}, Pair{ex1, ex2p, "per-example, no replicas", 0},
                          Pair{mb1, mb2, "mini-batch", 1.9}, Pair{mb1, mb2p, "mini-batch, no replicas", 0}}) {
      std::vector<bench::Round> rs;
      for (int r = 0; r < rounds; ++r) {
        bench::Round x;
        x.machine = q.two.calib[r];
        x.engine_one = q.one.mean[r], x.engine_many = q.two.mean[r];
        rs.push_back(x);
      }
      const bench::Verdict v = bench::judge_scaling(rs, q.what);
      std::printf("  %s", v.text.c_str());
      if (q.target > 0 && v.engine > 0)
        std::printf(" (target >= %.1fx: %s)", q.target, v.engine >= q.target ? "met" : "not met");
      std::printf("\n    rounds (engine / machine: compute, memory, private rows, line transfer):");
      for (int r = 0; r < rounds; ++r)
        std::printf(" %.2f/%.2f,%.2f,%.2f,%.0fns%s", rs[r].engine_ratio(), rs[r].machine.compute.ratio(),
                    rs[r].machine.memory.ratio(), rs[r].machine.rows.ratio(), rs[r].machine.transfer_ns,
                    v.flagged[r] ? " busy" : "");
      std::printf("\n");
    }
    if (!perf.ok) {
      std::printf("hardware counters: none (%s)\n", perf.why.c_str());
    } else {
      std::printf("hardware counters of the 2-thread rows (perf stat, per round):\n");
      for (const Row& row : rows)
        if (row.threads > 1) {
          std::printf("  %s:", row.name.c_str());
          for (const auto& c : row.counters) std::printf(" [%s]", c.c_str());
          std::printf("\n");
        }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_engines: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
