#!/usr/bin/python3
"""Seconds per epoch of the LightGCN configs on 1 thread, before/after, in one command.

"before" is the path until this change, selected by config in the same binary: the CSR kernel's
general loop (tower.spmm csr_general) and negatives gathered row by row before scoring
(train.score_in_place false). "spmm" adds the kernel's fixed-width loop (the default spmm);
"after" is the default: both, with the negatives scored against the propagated table in place.
Each variant trains the example config with validation off; rounds alternate the variants so a
change in the machine's speed hits each. With --issue-build DIR (a build of commit 2b05423, as in
bench_sequence.py) the same configs are timed on that binary too ("at issue", its own copies of
the configs, which are the same).

  /usr/bin/python3 bench/bench_graph.py --build build [--epochs 4] [--rounds 3] [--issue-build /tmp/old/build]
"""
import argparse
import os
import statistics
import sys

from bench_sequence import epoch_seconds

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {"ML-100K ua (ml100k-lightgcn.yaml)": "ml100k-lightgcn.yaml",
           "ML-1M LightGCN split (ml1m-lightgcn.yaml)": "ml1m-lightgcn.yaml"}
VARIANTS = {"before": ["tower.spmm=csr_general", "train.score_in_place=false"],
            "spmm": ["train.score_in_place=false"],
            "after": []}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", ""))
    p.add_argument("--issue-build", default="", help="build dir of commit 2b05423 (its siamrec binary)")
    a = p.parse_args()
    old_root = os.path.dirname(os.path.abspath(a.issue_build)) if a.issue_build else ""
    if not a.data_dir:
        sys.exit("bench_graph: set SIAMREC_DATA_DIR or --data-dir")
    variants = (["at issue"] if a.issue_build else []) + list(VARIANTS)
    rows = {(c, v): [] for c in CONFIGS for v in variants}
    for r in range(a.rounds):
        for c, f in CONFIGS.items():
            if a.issue_build:
                rows[(c, "at issue")].append(
                    epoch_seconds(a.issue_build, ["train.refit=false"], a.epochs, a.data_dir, f, root=old_root))
            for v, sets in VARIANTS.items():
                rows[(c, v)].append(epoch_seconds(a.build, sets + ["train.refit=false"], a.epochs, a.data_dir, f))
        print(f"round {r + 1}: " + ", ".join(f"{c.split(' (')[0]} {v} {t[-1]:.2f}s" for (c, v), t in rows.items()),
              flush=True)
    print(f"\nLightGCN epochs, 1 thread, median of {a.rounds} rounds (each the median epoch of {a.epochs}, first "
          f"left out)")
    print(f"{'':44} {'at issue':>8} {'before':>8} {'spmm':>8} {'after':>8} {'after vs before':>16} {'vs issue':>9}")
    for c in CONFIGS:
        med = {v: statistics.median(rows[(c, v)]) for v in variants}
        issue = med.get("at issue")
        print(f"{c:44} {issue if issue else float('nan'):8.3f} {med['before']:8.3f} {med['spmm']:8.3f} "
              f"{med['after']:8.3f} {med['before'] / med['after']:15.2f}x "
              f"{(issue / med['after']) if issue else float('nan'):8.2f}x")


if __name__ == "__main__":
    main()
