#!/usr/bin/python3
"""The scale study (docs/scaling.md): how siamrec's costs grow with the interaction log.

For each size: a `siamrec synth` log (power-law popularity and activity, planted clusters), then
`siamrec train` (examples/configs/synth-cml.yaml: fused CML, per-example Hogwild, no validation)
with its load time, training throughput and peak memory; full-ranking evaluation time and memory;
model file size and the time to load it and answer one recommendation. Then, at one size, 1 process
x 2 threads against 2 processes x 1 thread (siamrec launch, loopback) in both distributed modes,
with the bytes each rank exchanged per epoch.

Usage: bench/scale.py [--build build] [--sizes 1,10] [--dist-size 10] [--eval-max 10] [--work DIR]
Sizes are millions of interactions; users = 20,000 x size, items = 10,000 x size (capped at 250k).
Nothing here runs in CI: it takes minutes per size and up to tens of GB of memory.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CFG = os.path.join(SRC, "examples", "configs", "synth-cml.yaml")


def run(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS in MB, stderr)."""
    t0 = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, capture_output=True, text=True, env=env)
    secs = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    rss = max(int(m) for m in re.findall(r"MAXRSS (\d+)", r.stderr)) / 1024
    return secs, rss, r.stderr


def stamp(line):
    h, m, s = map(int, re.match(r"\[(\d+):(\d+):(\d+)\]", line).groups())
    return h * 3600 + m * 60 + s


def epochs(log):
    return [json.loads(l) for l in open(log) if l.strip() and '"epoch"' in l and '"event"' not in l]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--sizes", default="1,10")
    ap.add_argument("--dist-size", type=float, default=10)
    ap.add_argument("--eval-max", type=float, default=10, help="evaluate sizes up to this many millions")
    ap.add_argument("--work", default="/tmp/siamrec-scale")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    cli = os.path.join(a.build, "siamrec")
    os.makedirs(a.work, exist_ok=True)
    rows = []
    logs = {}
    for size in [float(x) for x in a.sizes.split(",")]:
        n = int(size * 1e6)
        users, items = int(20000 * size), min(int(10000 * size), 250000)
        log = os.path.join(a.work, f"synth-{size:g}m.tsv")
        logs[size] = log
        if not os.path.exists(log):
            run([cli, "-q", "synth", "-o", log, "--users", str(users), "--items", str(items), "--interactions", str(n)])
        model, tlog = os.path.join(a.work, f"m-{size:g}.model"), os.path.join(a.work, f"m-{size:g}.jsonl")
        lt = time.localtime()
        t_start = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec
        secs, rss, err = run([cli, "--threads", str(a.threads), "train", "-c", CFG, "--set", f"data.path={log}",
                              "-o", model, "--log", tlog, "--no-eval"])
        t_data = stamp(next(l for l in err.splitlines() if "info data:" in l))  # read, parsed, split
        ep = epochs(tlog)
        row = dict(size=size, users=users, items=items, file_mb=os.path.getsize(log) / 1e6, load_s=t_data - t_start,
                   epoch_s=sum(e["seconds"] for e in ep) / len(ep), tuples_s=ep[-1]["tuples_per_s"],
                   train_wall_s=secs, train_rss_mb=rss, model_mb=os.path.getsize(model) / 1e6)
        s2, r2, _ = run([cli, "--threads", str(a.threads), "recommend", "--model", model, "--user", "0", "-k", "10"])
        row.update(model_load_s=s2, model_load_rss_mb=r2)
        if size <= a.eval_max:
            s3, r3, err3 = run([cli, "--threads", str(a.threads), "evaluate", "--model", model,
                                "--set", f"data.path={log}"])
            row.update(eval_s=s3, eval_rss_mb=r3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| interactions | users | items | log MB | load s | epoch s | tuples/s | train peak MB | bytes/interaction | "
          "model MB | load+recommend s | eval s | eval peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:g}M | {r['users']:,} | {r['items']:,} | {r['file_mb']:.0f} | {r['load_s']} | "
              f"{r['epoch_s']:.1f} | {r['tuples_s'] / 1e6:.2f}M | {r['train_rss_mb']:.0f} | "
              f"{r['train_rss_mb'] * 2**20 / (r['size'] * 1e6):.0f} | {r['model_mb']:.0f} | {r['model_load_s']:.1f} | "
              f"{r.get('eval_s', float('nan')):.1f} | {r.get('eval_rss_mb', float('nan')):.0f} |")
    # 1 process x 2 threads vs 2 processes x 1 thread, both distributed modes.
    size = a.dist_size
    log = logs.get(size) or os.path.join(a.work, f"synth-{size:g}m.tsv")
    if not os.path.exists(log):
        return
    print("\n| mode | layout | epoch s | tuples/s | MB exchanged per epoch per rank | final loss |")
    print("|---|---|---|---|---|---|")
    modes = [("per-example Hogwild / local SGD", []),
             ("mini-batch lazy_adam (sync)", ["--set", "train.update=minibatch", "--set", "train.optimizer=lazy_adam",
                                            "--set", "train.lr=0.005"])]
    for name, extra in modes:
        for layout in ("1x2", "2x1"):
            tlog = os.path.join(a.work, f"d-{layout}.jsonl")
            batch = ["--set", "train.batch_size=4096" if layout == "2x1" else "train.batch_size=8192"]
            args = ["train", "-c", CFG, "--set", f"data.path={log}", "-o", os.path.join(a.work, "d.model"),
                    "--log", tlog, "--no-eval", *extra, *batch]
            cmd = [cli, "--threads", "2", *args] if layout == "1x2" else [cli, "launch", "--nproc", "2", "--", *args]
            run(cmd)
            ep = epochs(tlog)
            mb = sum(e.get("dist_bytes", 0) for e in ep) / len(ep) / 1e6
            print(f"| {name} | {layout} | {sum(e['seconds'] for e in ep) / len(ep):.1f} | "
                  f"{ep[-1]['tuples_per_s'] / 1e6:.2f}M | {mb:.0f} | {ep[-1]['loss']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
