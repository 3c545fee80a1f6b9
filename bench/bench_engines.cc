// Training-engine benchmark on the NCF ML-1M train set (994,169 positives): one epoch of the CML
// triplet model (uniform negative, squared euclidean, unit-ball clipping, Adagrad, batch 4096)
// with the LibTorch engine and the fused engine, in the same process; prints triplets/s and ratios.
//
//   bench_engines [--epochs 1] [--dims 32,64,128]
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tasks/pipeline.h"
#include "util/error.h"
#include "util/io.h"
#include "util/strings.h"

using namespace siamrec;

static double tuples_per_s(const Prepared& p, const std::string& engine, int threads, int dim, int epochs, int batch = 4096,
                           const std::string& update = "minibatch") {
  Config c;
  for (std::string s : {"model.type=siamese", "loss.type=triplet", "loss.margin=1", "comparator.type=sq_euclidean",
                        "reg.max_norm=1", "sampler.negatives=1", "train.optimizer=adagrad", "train.lr=0.05",
                        "train.valid_share=0"})
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
  double best = 0;
  std::string text = read_file(log);
  LineReader lr(text);
  std::string_view line;
  while (lr.next(line))
    if (!line.empty()) best = std::max(best, nlohmann::json::parse(line)["tuples_per_s"].get<double>());
  std::remove(log.c_str());
  return best;
}

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  int epochs = 1;
  std::vector<int> dims = {32, 64, 128};
  for (int a = 1; a + 1 < argc; a += 2) {
    if (!std::strcmp(argv[a], "--epochs")) epochs = std::atoi(argv[a + 1]);
    if (!std::strcmp(argv[a], "--dims")) {
      dims.clear();
      for (auto& d : split_list(argv[a + 1])) dims.push_back(std::stoi(d));
    }
  }
  try {
    Config c;
    c.set_override("data.dataset=ml-1m-ncf");
    c.set_override("split.type=fixed");
    c.set_override("split.name=ncf");
    Prepared p = prepare(c, RunOptions{});
    std::printf("engine benchmark: NCF ML-1M train set (%zu positives), CML triplet as ../shared/bench/torch_ref.py\n"
                "(1 uniform negative, sq_euclidean, margin 1, unit ball, Adagrad lr 0.05), best epoch of %d, triplets/s\n",
                p.split.train.size(), epochs);
    double torch1 = tuples_per_s(p, "torch", 1, 64, epochs);
    double fused1 = tuples_per_s(p, "fused", 1, 64, epochs);
    double fused2 = tuples_per_s(p, "fused", 2, 64, epochs);
    double torch1k = tuples_per_s(p, "torch", 1, 64, epochs, 1024);
    double fused1k = tuples_per_s(p, "fused", 1, 64, epochs, 1024);
    std::printf("  batch 1024: d=64 torch engine 1 thread %10.0f, fused 1 thread %10.0f (%.1fx)\n", torch1k, fused1k, fused1k / torch1k);
    std::printf("  batch 4096:\n");
    std::printf("  d=64 torch engine, 1 thread : %10.0f\n", torch1);
    std::printf("  d=64 fused engine, 1 thread : %10.0f   (%.1fx torch; target >= 10x)\n", fused1, fused1 / torch1);
    std::printf("  d=64 fused engine, 2 threads: %10.0f   (%.2fx 1 thread; target >= 1.7x)\n", fused2, fused2 / fused1);
    double ex1 = tuples_per_s(p, "fused", 1, 64, epochs, 4096, "example");
    double ex2 = tuples_per_s(p, "fused", 2, 64, epochs, 4096, "example");
    std::printf("  per-example Hogwild updates (train.update example, as StarSpace/LightFM):\n");
    std::printf("  d=64 fused per-example, 1 thread : %10.0f   (%.1fx torch engine at batch 4096, %.1fx at batch 1024)\n", ex1,
                ex1 / torch1, ex1 / torch1k);
    std::printf("  d=64 fused per-example, 2 threads: %10.0f   (%.2fx 1 thread)\n", ex2, ex2 / ex1);
    for (int d : dims)
      if (d != 64) std::printf("  d=%-3d fused engine, 1 thread: %10.0f\n", d, tuples_per_s(p, "fused", 1, d, epochs));
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_engines: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
