#!/usr/bin/python3
"""Seconds per epoch of the sequence towers on 1 thread, before/after, in one command.

"before" is the code path the towers had until format 6, selected by config in the same binary:
post-LayerNorm blocks with LibTorch's MultiheadAttention and dropout, positions from the oldest
item (user_tower.norm post, user_tower.positions oldest). "padded" is the SASRec path
(pre-LayerNorm blocks with siamrec's own attention and counter-based dropout) with every window
padded to its batch's longest (train.pack_windows false); "packed" is the default: the same
batches with short windows packed back to back into rows behind a block-diagonal causal mask.
GRU "before" is LibTorch's GRU with padded windows (user_tower.rnn_kernel torch, train.pack_windows
false: the path until this change); "own padded" is siamrec's GRU kernel (towers/gru_kernel.cc)
with padded windows, "own packed" the default: the kernel restarting from h0 at each packed
window. "+buckets" adds length bucketing to the default (train.length_buckets 16, off by default:
with SASRec it cost quality on ML-100K). Rounds alternate the variants so a change in the
machine's speed hits each.

With --issue-build DIR (a build of commit 2b05423, the code the sequence-tower issue measured:
`git worktree add /tmp/old 2b05423`, then a Release build of its `siamrec` target) the same sizes
are timed on that binary too, with its own example config: the ratios against "today's build" as
the issue asked, where "before" is the old path selected by config in this binary (which also
carries this binary's shared changes, e.g. negatives and positives scored in place).

With --pmixer DIR (pmixer/SASRec.pytorch's python/ folder, see bench/sasrec_reference.py) the
PyTorch SASRec is timed too, on the same data prepared by `sasrec_reference.py prepare`, with the
same sizes (d 50, 2 blocks, 1 head, max_len 200, batch 128) and torch on 1 thread.

  /usr/bin/python3 bench/bench_sequence.py --build build [--epochs 4] [--rounds 3] [--issue-build /tmp/old/build]
      [--pmixer DIR --ref-dir W]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SASREC = [
    "user_tower.type=transformer", "tower.dim=50", "user_tower.max_len=200", "user_tower.layers=2",
    "user_tower.heads=1", "user_tower.dropout=0.2", "train.batch_size=128", "train.adam_beta2=0.98",
]
GRU = ["user_tower.type=gru", "tower.dim=64", "user_tower.max_len=50", "user_tower.layers=1", "train.batch_size=128"]
BEFORE = ["user_tower.norm=post", "user_tower.positions=oldest", "train.length_buckets=1", "train.pack_windows=false"]
PADDED = ["train.pack_windows=false"]
BUCKETS = ["train.length_buckets=16"]
GRU_BEFORE = ["user_tower.rnn_kernel=torch", "train.pack_windows=false"]


def epoch_seconds(build, sets, epochs, data_dir, config="ml100k-sasrec.yaml", root=ROOT):
    """The median training epoch (the first left out) of `siamrec train` on 1 thread, validation off."""
    cmd = [os.path.join(build, "siamrec"), "train", "--config", os.path.join(root, "examples/configs", config),
           "--threads", "1", "--no-eval", "--set", f"train.epochs={epochs}", "--set", "train.eval_every=1000000"]
    for s in sets:
        cmd += ["--set", s]
    with tempfile.TemporaryDirectory() as d:
        cmd += ["-o", os.path.join(d, "m.model"), "--log", os.path.join(d, "log.jsonl")]
        env = dict(os.environ, SIAMREC_DATA_DIR=data_dir, OPENBLAS_NUM_THREADS="1")
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench_sequence: {' '.join(cmd)} failed:\n{out.stderr}")
        with open(os.path.join(d, "log.jsonl")) as f:  # the epoch's training seconds, validation apart
            secs = [r["seconds"] for r in map(json.loads, f) if "epoch" in r and "seconds" in r]
    return statistics.median(secs[1:] if len(secs) > 1 else secs)  # the first epoch warms up


def pmixer_epoch_seconds(pmixer, ref_dir, epochs):
    with tempfile.TemporaryDirectory() as d:
        # a copy of the prepared data: pmixer writes its run folder beside it
        os.makedirs(os.path.join(d, "data"))
        for f in os.listdir(os.path.join(ref_dir, "data")):
            os.symlink(os.path.join(ref_dir, "data", f), os.path.join(d, "data", f))
        os.symlink(os.path.join(ref_dir, "maps.json"), os.path.join(d, "maps.json"))
        cmd = ["/usr/bin/python3", os.path.join(HERE, "sasrec_reference.py"), "train", "--pmixer", pmixer, "--out", d,
               "--threads", "1", "--maxlen", "200", "--hidden_units", "50", "--dropout_rate", "0.2",
               "--num_epochs", str(epochs), "--norm_first"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        m = re.search(r"epoch:(\d+), time: (\S+)\(s\)", out.stdout)
        if out.returncode != 0 or not m:
            sys.exit(f"bench_sequence: pmixer run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        return float(m.group(2)) / int(m.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", ""))
    p.add_argument("--issue-build", default="", help="build dir of commit 2b05423 (its siamrec binary)")
    p.add_argument("--pmixer", default="")
    p.add_argument("--ref-dir", default="")
    a = p.parse_args()
    if not a.data_dir:
        sys.exit("bench_sequence: set SIAMREC_DATA_DIR or --data-dir")
    rows = {"SASRec at issue": [], "SASRec before": [], "SASRec padded": [], "SASRec packed": [], "GRU at issue": [],
            "GRU before": [], "GRU own padded": [], "GRU own packed": [], "GRU +buckets": [], "pmixer SASRec": []}
    # The issue's build reads its own example config (it predates train.adam_beta2 and the new keys).
    old_root = os.path.dirname(os.path.abspath(a.issue_build)) if a.issue_build else ""
    old_sasrec = [x for x in SASREC if not x.startswith("train.adam_beta2")]
    for r in range(a.rounds):
        if a.issue_build:
            rows["SASRec at issue"].append(epoch_seconds(a.issue_build, old_sasrec, a.epochs, a.data_dir, root=old_root))
            rows["GRU at issue"].append(epoch_seconds(a.issue_build, GRU, a.epochs, a.data_dir, root=old_root))
        rows["SASRec before"].append(epoch_seconds(a.build, SASREC + BEFORE, a.epochs, a.data_dir))
        rows["SASRec padded"].append(epoch_seconds(a.build, SASREC + PADDED, a.epochs, a.data_dir))
        rows["SASRec packed"].append(epoch_seconds(a.build, SASREC, a.epochs, a.data_dir))
        rows["GRU before"].append(epoch_seconds(a.build, GRU + GRU_BEFORE, a.epochs, a.data_dir))
        rows["GRU own padded"].append(epoch_seconds(a.build, GRU + PADDED, a.epochs, a.data_dir))
        rows["GRU own packed"].append(epoch_seconds(a.build, GRU, a.epochs, a.data_dir))
        rows["GRU +buckets"].append(epoch_seconds(a.build, GRU + BUCKETS, a.epochs, a.data_dir))
        if a.pmixer:
            rows["pmixer SASRec"].append(pmixer_epoch_seconds(a.pmixer, a.ref_dir, 20))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in rows.items() if v), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print("\nML-100K, temporal leave-one-out train part (98,114 interactions, 943 users), 1 thread, "
          f"median of {a.rounds} rounds (each the median epoch of {a.epochs}, first epoch left out); "
          f"OpenBLAS kernels: {os.environ.get('OPENBLAS_CORETYPE') or 'auto-detected'} (OPENBLAS_CORETYPE)")
    print(f"{'':16} {'s/epoch':>8}")
    for k, v in med.items():
        print(f"{k:16} {v:8.3f}")
    print(f"SASRec speed-up over before: {med['SASRec before'] / med['SASRec packed']:.2f}x packed, "
          f"{med['SASRec before'] / med['SASRec padded']:.2f}x padded")
    print(f"GRU speed-up over before:    {med['GRU before'] / med['GRU own packed']:.2f}x own packed, "
          f"{med['GRU before'] / med['GRU own padded']:.2f}x own padded; with buckets "
          f"{med['GRU before'] / med['GRU +buckets']:.2f}x")
    if "SASRec at issue" in med:
        print(f"against the issue's build (2b05423): SASRec {med['SASRec at issue'] / med['SASRec packed']:.2f}x, "
              f"GRU {med['GRU at issue'] / med['GRU own packed']:.2f}x")
    if "pmixer SASRec" in med:
        print(f"siamrec SASRec vs pmixer (per epoch, same windows per epoch +-8%): "
              f"{med['pmixer SASRec'] / med['SASRec packed']:.2f}x faster packed, "
              f"{med['pmixer SASRec'] / med['SASRec padded']:.2f}x padded")


if __name__ == "__main__":
    main()
