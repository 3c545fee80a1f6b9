#!/usr/bin/python3
"""Wall time of a `siamrec tune` study with trials one after another (tune.parallel 1, each trial
on every thread) against trials run at once (tune.parallel N, each in its own process on
threads / N), in one command.

Every trial is a random start-up trial (tune.startup >= trials), so both studies run the very same
trials and differ only in how they are scheduled; the script checks that their params agree. The
variants alternate over rounds so a change in the machine's speed hits both.

  /usr/bin/python3 bench/bench_tune.py --build build [--config examples/configs/ml100k-cml.yaml]
      [--space examples/tuning/ml100k-cml-space.yaml] [--trials 8] [--epochs 10] [--threads 2] [--rounds 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def study(a, parallel, tmp, tag):
    path = os.path.join(tmp, f"{tag}.jsonl")
    if os.path.exists(path):
        os.remove(path)
    cmd = [os.path.join(a.build, "siamrec"), "-q", "--threads", str(a.threads), "tune", "-c", a.config,
           "--space", a.space, "--trials", str(a.trials), "--study", path,
           "--set", f"train.epochs={a.epochs}", "--set", f"tune.startup={a.trials}",
           "--set", f"tune.parallel={parallel}"]
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(os.environ, SIAMREC_DATA_DIR=a.data_dir))
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"bench_tune: tune failed:\n{r.stdout[-3000:]}")
    trials = [json.loads(line) for line in open(path)][1:]
    return wall, sorted(trials, key=lambda x: x["trial"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--config", default=os.path.join(ROOT, "examples/configs/ml100k-cml.yaml"))
    p.add_argument("--space", default=os.path.join(ROOT, "examples/tuning/ml100k-cml-space.yaml"))
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parallel", type=int, default=0, help="trials at once (0: --threads)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", ""))
    a = p.parse_args()
    if not a.data_dir:
        sys.exit("bench_tune: set SIAMREC_DATA_DIR or --data-dir")
    par = a.parallel or a.threads
    walls = {1: [], par: []}
    with tempfile.TemporaryDirectory(prefix="bench_tune.") as tmp:
        for r in range(a.rounds):
            order = (1, par) if r % 2 == 0 else (par, 1)
            got = {}
            for v in order:
                wall, got[v] = study(a, v, tmp, f"p{v}")
                walls[v].append(wall)
            if [t["params"] for t in got[1]] != [t["params"] for t in got[par]]:
                sys.exit("bench_tune: the two studies ran different trials")
            print(f"round {r + 1}: one at a time {walls[1][-1]:.1f}s, {par} at once {walls[par][-1]:.1f}s", flush=True)
        obj = {v: [t["objectives"][0] for t in got[v] if t["objectives"]] for v in got}
    m1, mp = statistics.median(walls[1]), statistics.median(walls[par])
    print(f"\n{os.path.relpath(a.config, ROOT)}, {a.trials} trials of {a.epochs} epochs, {a.threads} threads, "
          f"median of {a.rounds} rounds (wall clock of the whole study, data loaded once per study)")
    print(f"  tune.parallel 1 (each trial on {a.threads} threads): {m1:7.1f} s")
    print(f"  tune.parallel {par} (each on {max(1, a.threads // par)}):      {mp:7.1f} s   {m1 / mp:.2f}x")
    best1, bestp = max(obj[1]), max(obj[par])
    print(f"  best validation objective: {best1:.4f} / {bestp:.4f} (same trials; a trial on fewer threads can "
          f"differ where the engine's result depends on its thread count)")


if __name__ == "__main__":
    main()
