#!/usr/bin/python3
"""Contention model of the fused engine's Hogwild threads beyond the cores we have
(docs/benchmarks.md, "Scaling across cores").

Each example of the CML loop updates its user's row (one writer: users are split between
threads), its positive item's row (drawn by popularity) and k uniform negatives' rows (when their
hinge is active; taken as always here, the worst case). From a real popularity distribution
(ML-1M, every interaction: ml-1m-implicit-lightgcn) and a synthetic power-law catalogue, this
prints:

  1. the update rate of the hottest item rows (updates per second per row) when T threads each
     train R examples per second;
  2. the share of item-row updates that find the row's cache line last written by another core
     (it has to move between cores: ~230 ns on this VM, far more than the update itself), under
     three designs:
       - plain Hogwild: every thread writes the shared rows;
       - replicas of the H hottest rows per thread (train.hot_rows), merged every M examples;
       - row ownership: each row written by one thread only, updates for it queued to that
         thread (no line moves, but (T-1)/T of the updates cross a queue);
  3. the merge traffic replicas add, in row transfers per example.

Model: a line stays in the cache of the core that last wrote it for that core's last L row
updates (the rows its L2 holds: 1 MB / (256 B row + 256 B Adagrad state) = 2,048 at d = 64). An
update of row r by thread t moves the line when another thread wrote r within its own last L
updates: probability 1 - (1 - p_r)^((T - 1) L), p_r the chance an item-row update is to r.

    bench/contention.py [--data-dir DIR] [--negatives 1,10] [--rate 8e6]
"""
import argparse
import os
import sys

import numpy as np


def ml1m_popularity(data_dir):
    base = os.path.join(data_dir, "ml-1m-implicit-lightgcn")
    counts = {}
    for name in ("train.txt", "test.txt"):
        path = os.path.join(base, name)
        if not os.path.exists(path):
            sys.exit(f"contention.py: {path} not found (set SIAMREC_DATA_DIR or --data-dir)")
        with open(path) as f:
            for line in f:
                for tok in line.split()[1:]:
                    counts[int(tok)] = counts.get(int(tok), 0) + 1
    n = max(counts) + 1
    pop = np.zeros(n)
    for i, c in counts.items():
        pop[i] = c
    return pop


def power_law(n_items, alpha):
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    return ranks ** (-alpha)


def update_probs(pop, k):
    """p_r: the chance one item-row update is to row r (1 positive by popularity + k uniform)."""
    n = len(pop)
    return (pop / pop.sum() + k * np.full(n, 1.0 / n)) / (1 + k)


def moved_share(p, threads, lines, private=None):
    """Share of item-row updates whose line was last written by another core."""
    q = 1.0 - np.power(1.0 - p, (threads - 1) * lines)
    if private is not None:
        q = np.where(private, 0.0, q)
    return float((p * q).sum())


def report(name, pop, ks, rate, lines, budget_rows, merge_every):
    n = len(pop)
    order = np.argsort(-pop, kind="stable")
    print(f"\n{name}: {n:,} items; the top 1% of items take {pop[order[: max(1, n // 100)]].sum() / pop.sum():.1%} "
          f"of the positives")
    for k in ks:
        p = update_probs(pop, k)
        ps = np.sort(p)[::-1]
        print(f"  k = {k} negatives: item-row updates per example {1 + k}; hottest rows' share of updates: "
              f"top 1 {ps[0]:.2e}, top 10 {ps[:10].sum():.2e}, top 100 {ps[:100].sum():.2e}")
        H = min(n, budget_rows)
        hot = np.zeros(n, dtype=bool)
        hot[np.argsort(-p, kind="stable")[:H]] = True
        auto = merge_every <= 0
        print(f"    {'threads':>7} {'top row upd/s':>14} {'plain Hogwild':>14} {'replicas H=' + format(H, ','):>18} "
              f"{'merge rows/ex':>14} {'ownership':>10}")
        for T in (2, 8, 32, 64):
            upd = T * rate * (1 + k) * ps[0]  # updates per second of the hottest row
            plain = moved_share(p, T, lines)
            rep = moved_share(p, T, lines, hot)
            # A merge reads every replica's H rows and writes them back (2 H row moves per thread).
            m = max(262144 // (T - 1), 64 * H // (k + 2)) if auto else merge_every
            merge = 2.0 * H / m
            own = (T - 1) / T
            print(f"    {T:>7} {upd:>14.3g} {plain:>14.1%} {rep:>18.1%} {merge:>14.3f} {own:>9.0%}q")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", "../shared/datasets"))
    ap.add_argument("--negatives", default="1,10")
    ap.add_argument("--rate", type=float, default=8e6, help="examples per second per thread")
    ap.add_argument("--l2-rows", type=int, default=2048, help="rows (with their state) a core's L2 holds")
    ap.add_argument("--merge-every", type=int, default=0, help="0: the engine's auto rule")
    a = ap.parse_args()
    ks = [int(x) for x in a.negatives.split(",")]
    # train.hot_rows auto: 4 MB per thread of rows + Adagrad state at d = 64.
    budget = (4 << 20) // (64 * 4 * 2)
    print(f"contention model: {a.rate:.3g} examples/s per thread; a line stays in its writer's cache for "
          f"{a.l2_rows:,} of that core's row updates; replicas: train.hot_rows auto ({budget:,} rows at d 64, "
          f"Adagrad), merge every {a.merge_every or 'auto'} examples")
    print("columns: threads; updates per second of the hottest item row; share of item-row updates whose line "
          "moves between cores (plain / with replicas); merge row transfers per example; ownership: share of "
          "updates queued to another thread (q)")
    report("ML-1M (every interaction, ml-1m-implicit-lightgcn)", ml1m_popularity(a.data_dir), ks, a.rate, a.l2_rows,
           budget, a.merge_every)
    report("synthetic power law, alpha 1.0", power_law(1_000_000, 1.0), ks, a.rate, a.l2_rows, budget, a.merge_every)
    report("synthetic power law, alpha 0.8", power_law(1_000_000, 0.8), ks, a.rate, a.l2_rows, budget, a.merge_every)


if __name__ == "__main__":
    main()
