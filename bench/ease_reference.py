#!/usr/bin/env python3
"""EASE (Steck, WWW 2019) on the protocols of issue 21's open quality targets: a strong,
closed-form, non-neural reference for what a ranking model reaches on the same data.

EASE's item-item weights are B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1, so a user's
scores are her history row times B. Its one hyper-parameter, lambda, is chosen two ways and both
are printed:
  - on validation: 10% of each user's training interactions held out (seeded); NCF: one held-out
    training interaction per user ranked among 99 unseen items drawn per user (seeded). The
    chosen lambda is refit on all training data and tested once;
  - on the test part itself ("oracle"): every lambda of the grid tested. It is an upper bound of
    what EASE reaches, not a fair number.

Protocols (the ones siamrec states on each run):
  ml100k   ML-100K ua.base / ua.test, full ranking over the 1,682 items, train items excluded,
           NDCG@10 (every rating a positive; binary relevance); issue 21 target 0.33.
  lightgcn ml-1m-implicit-lightgcn train.txt / test.txt, full ranking, train items excluded,
           Recall@20 and NDCG@20; targets 0.13 and 0.165.
  ncf      ncf-ml-1m: train = every interaction of ml-1m-implicit-lightgcn minus the 6,040 test
           pairs of ml-1m.test.rating; each test item ranked among its 99 listed negatives, ties
           pessimistic; HR@10 and NDCG@10; targets 0.730 and 0.447 (NeuMF).

Usage: /usr/bin/python3 bench/ease_reference.py [--data-dir DIR] [--protocols ml100k,lightgcn,ncf]
Needs Debian's python3-numpy only. Reads $SIAMREC_DATA_DIR (or --data-dir); writes nothing.
"""
import argparse
import os
import sys
import time

import numpy as np

GRID = {"ml100k": [100, 200, 400, 800, 1200, 1600],
        "lightgcn": [200, 500, 1000, 2000, 3000],
        "ncf": [200, 500, 1000, 2000, 3000]}


def ease(X, lam):
    G = X.T @ X
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = -P / np.diag(P)
    np.fill_diagonal(B, 0.0)
    return X @ B


def dense(pairs, n_users, n_items):
    X = np.zeros((n_users, n_items), dtype=np.float64)
    X[pairs[:, 0], pairs[:, 1]] = 1.0
    return X


def carve(pairs, share, seed):
    """Holds out ceil(share * n_u) of each user's interactions (at least 1 when n_u >= 2)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    pairs = pairs[order]
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    users, start, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    held = np.zeros(len(pairs), dtype=bool)
    for s, c in zip(start, counts):
        if c >= 2:
            held[s:s + max(1, int(np.ceil(share * c)))] = True
    return pairs[~held], pairs[held]


def full_ranking(S, X_train, test_pairs, K):
    """Recall@K and NDCG@K (binary), full ranking, train items excluded, users with a test item."""
    T = np.zeros_like(X_train, dtype=bool)
    T[test_pairs[:, 0], test_pairs[:, 1]] = True
    S = np.where(X_train > 0, -np.inf, S)
    top = np.argpartition(-S, K, axis=1)[:, :K]
    order = np.argsort(-np.take_along_axis(S, top, 1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, 1)
    hits = np.take_along_axis(T, top, 1)
    n = T.sum(1)
    ok = n > 0
    disc = 1.0 / np.log2(np.arange(2, K + 2))
    idcg = np.cumsum(disc)[np.minimum(n, K) - 1]
    recall = hits.sum(1)[ok] / n[ok]
    ndcg = (hits * disc).sum(1)[ok] / idcg[ok]
    return {f"recall@{K}": recall.mean(), f"ndcg@{K}": ndcg.mean()}


def sampled_ranking(S, lists, K=10):
    """HR@K and NDCG@K of one positive among its negatives; ties pessimistic."""
    hr = nd = 0.0
    for u, pos, negs in lists:
        rank = int((S[u, negs] >= S[u, pos]).sum())
        if rank < K:
            hr += 1.0
            nd += 1.0 / np.log2(rank + 2)
    return {f"hr@{K}": hr / len(lists), f"ndcg@{K}": nd / len(lists)}


def read_lgcn(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 2:
                u = int(p[0])
                rows.extend((u, int(i)) for i in p[1:])
    return np.array(rows, dtype=np.int64)


def need(path):
    if not os.path.exists(path):
        sys.exit(f"ease_reference: missing {path} (set SIAMREC_DATA_DIR or --data-dir)")
    return path


def study(name, fit, valid_score, train, test_score, n_users, n_items, key):
    """Chooses lambda by valid_score on EASE fitted to `fit`, refits on `train` and tests the
    chosen lambda; then tests every lambda (the oracle sweep). A score maps (S, X) to metrics."""
    t0 = time.time()
    X_fit = dense(fit, n_users, n_items)
    rows = [(lam, valid_score(ease(X_fit, lam), X_fit)) for lam in GRID[name]]
    best_lam = max(rows, key=lambda r: r[1][key])[0]
    X = dense(train, n_users, n_items)
    sweep = [(lam, test_score(ease(X, lam), X)) for lam in GRID[name]]
    fmt = lambda m: "  ".join(f"{k} {v:.4f}" for k, v in m.items())
    print(f"  validation ({len(train) - len(fit)} held-out interactions):")
    for lam, m in rows:
        print(f"    lambda {lam:>5}: {fmt(m)}{'   <- chosen' if lam == best_lam else ''}")
    print(f"  test, lambda {best_lam} chosen on validation: {fmt(dict(sweep)[best_lam])}")
    print("  test, every lambda (oracle sweep, an upper bound):")
    for lam, m in sweep:
        print(f"    lambda {lam:>5}: {fmt(m)}")
    print(f"  ({time.time() - t0:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", ""))
    ap.add_argument("--protocols", default="ml100k,lightgcn,ncf")
    a = ap.parse_args()
    if not a.data_dir:
        sys.exit("ease_reference: set SIAMREC_DATA_DIR or --data-dir")
    wanted = [p.strip() for p in a.protocols.split(",") if p.strip()]
    for p in wanted:
        if p not in GRID:
            sys.exit(f"ease_reference: unknown protocol '{p}' (ml100k, lightgcn, ncf)")
    d = a.data_dir

    if "ml100k" in wanted:
        print("ml100k: ML-100K ua.base/ua.test, full ranking over 1,682 items, train items excluded, K 10")
        tr = np.loadtxt(need(f"{d}/ml-100k/ua.base"), dtype=np.int64)[:, :2] - 1
        te = np.loadtxt(need(f"{d}/ml-100k/ua.test"), dtype=np.int64)[:, :2] - 1
        fit, valid = carve(tr, 0.1, 42)
        ndcg = lambda t: lambda S, X: {"ndcg@10": full_ranking(S, X, t, 10)["ndcg@10"]}
        study("ml100k", fit, ndcg(valid), tr, ndcg(te), 943, 1682, "ndcg@10")

    if "lightgcn" in wanted or "ncf" in wanted:
        tr = read_lgcn(need(f"{d}/ml-1m-implicit-lightgcn/train.txt"))
        te = read_lgcn(need(f"{d}/ml-1m-implicit-lightgcn/test.txt"))
        n_users = int(max(tr[:, 0].max(), te[:, 0].max())) + 1
        n_items = int(max(tr[:, 1].max(), te[:, 1].max())) + 1

    if "lightgcn" in wanted:
        print(f"lightgcn: ML-1M LightGCN split ({n_users} users, {n_items} items), full ranking, "
              "train items excluded, K 20")
        fit, valid = carve(tr, 0.1, 42)
        at20 = lambda t: lambda S, X: full_ranking(S, X, t, 20)
        study("lightgcn", fit, at20(valid), tr, at20(te), n_users, n_items, "ndcg@20")

    if "ncf" in wanted:
        print("ncf: ML-1M NCF leave-one-out, each test item among its 99 listed negatives, ties pessimistic, K 10")
        pos = np.loadtxt(need(f"{d}/ncf-ml-1m/ml-1m.test.rating"), dtype=np.int64)[:, :2]
        lists = []
        with open(need(f"{d}/ncf-ml-1m/ml-1m.test.negative")) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                u, i = (int(x) for x in p[0].strip("()").split(","))
                lists.append((u, i, np.array([int(x) for x in p[1:] if x.strip()], dtype=np.int64)))
        allp = np.unique(np.concatenate([tr, te]), axis=0)
        key = allp[:, 0] * n_items + allp[:, 1]
        train = allp[~np.isin(key, pos[:, 0] * n_items + pos[:, 1])]
        # validation: one random training interaction per user among 99 unseen items (seeded)
        rng = np.random.default_rng(42)
        fit, held = carve(train, 0.0, 42)  # share 0 holds out exactly 1 per user with >= 2
        seen = dense(train, n_users, n_items) > 0
        vlists = []
        for u, i in held:
            cand = np.flatnonzero(~seen[u])
            vlists.append((u, i, rng.choice(cand, 99, replace=False)))
        study("ncf", fit, lambda S, X: sampled_ranking(S, vlists), train,
              lambda S, X: sampled_ranking(S, lists), n_users, n_items, "ndcg@10")


if __name__ == "__main__":
    main()
