#!/usr/bin/python3
"""Convergence of siamrec's CML against LightFM WARP on the same data, in one command.

Both learn from the same training interactions of the NCF protocol for ML-1M (every ML-1M interaction minus
the NCF test pairs)
and are validated on the same held-out part of it: a seeded 10% of each user's training
interactions (--valid-share), scored by full ranking over every item, the user's training
items excluded, NDCG@10 (binary relevance, ideal DCG over min(|valid|, 10) items). The NCF test
pairs are never read. The metric is computed here, in numpy, from each model's embeddings after
every epoch, for both peers the same way (siamrec's own per-epoch validation is printed beside it
as a check). Training seconds exclude validation.

LightFM is built from its source (--lightfm-src: a checkout of github.com/lyst/lightfm, whose C
file is shipped) with Debian's python3-numpy/scipy; nothing of it is in this project.

  /usr/bin/python3 bench/bench_lightfm.py --build build --lightfm-src /tmp/lightfm [--threads 2]
      [--epochs N] [--lfm-epochs 30] [--config examples/configs/ml1m-ncf-cml-hogwild.yaml] [--set key=value ...]

Prints both curves (epoch, cumulative training seconds, validation NDCG@10), each peer's best
epoch, and the time each needs to reach its own best and LightFM's best.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def load_lightfm(src):
    """Import LightFM from a source checkout, building its extension in place when missing."""
    src = os.path.abspath(src)
    pkg = os.path.join(src, "lightfm")
    if not os.path.isdir(pkg):
        sys.exit(f"bench_lightfm: {src} is not a LightFM checkout (no lightfm/ folder)")
    if not any(f.startswith("_lightfm_fast_openmp") and f.endswith(".so") for f in os.listdir(pkg)):
        print(f"building LightFM's extension in {src} ...", flush=True)
        r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=src,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit("bench_lightfm: building LightFM failed (needs python3-dev, python3-setuptools, "
                     "python3-scipy):\n" + r.stdout[-2000:])
    sys.path.insert(0, src)
    from lightfm import LightFM  # noqa: E402
    return LightFM


def read_ncf_train(data_dir):
    """The NCF training set: every ML-1M interaction (ml-1m-implicit-lightgcn, the same 0-based ids)
    minus the NCF test pairs, as the dataset ml-1m-ncf builds it."""
    lg = os.path.join(data_dir, "ml-1m-implicit-lightgcn")
    test_rating = os.path.join(data_dir, "ncf-ml-1m", "ml-1m.test.rating")
    for f in ("train.txt", "test.txt"):
        if not os.path.exists(os.path.join(lg, f)):
            sys.exit(f"bench_lightfm: {os.path.join(lg, f)} is missing (see the data directory's README)")
    if not os.path.exists(test_rating):
        sys.exit(f"bench_lightfm: {test_rating} is missing (see the data directory's README)")
    test = set()
    with open(test_rating) as f:
        for n, line in enumerate(f, 1):
            parts = line.split("\t")
            if len(parts) < 2:
                sys.exit(f"bench_lightfm: {test_rating}:{n}: expected user<TAB>item<TAB>...")
            test.add((int(parts[0]), int(parts[1])))
    users, items = [], []
    for name in ("train.txt", "test.txt"):
        path = os.path.join(lg, name)
        with open(path) as f:
            for n, line in enumerate(f, 1):
                ids = line.split()
                if not ids:
                    continue
                try:
                    u = int(ids[0])
                    for i in map(int, ids[1:]):
                        if (u, i) not in test:
                            users.append(u)
                            items.append(i)
                except ValueError:
                    sys.exit(f"bench_lightfm: {path}:{n}: expected integer ids")
    return np.array(users, dtype=np.int64), np.array(items, dtype=np.int64)


def carve(users, items, share, seed):
    """A seeded share of each user's interactions (at least one when she has two or more)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    valid = np.zeros(len(users), dtype=bool)
    for grp in np.split(order, bounds):
        n = len(grp)
        if n < 2:
            continue
        k = max(1, int(round(share * n)))
        valid[rng.choice(grp, size=min(k, n - 1), replace=False)] = True
    return valid


class Validator:
    """Full-ranking NDCG@10 over every item, training items excluded."""

    def __init__(self, tu, ti, vu, vi, n_users, k=10):
        self.k = k
        self.train = [[] for _ in range(n_users)]
        for u, i in zip(tu, ti):
            self.train[u].append(i)
        self.valid = [set() for _ in range(n_users)]
        for u, i in zip(vu, vi):
            self.valid[u].add(i)
        self.users = np.array([u for u in range(n_users) if self.valid[u]], dtype=np.int64)
        self.disc = 1.0 / np.log2(np.arange(2, k + 2))
        self.idcg = np.cumsum(self.disc)

    def ndcg(self, score_block):
        """score_block(users) -> [len(users), n_items] scores (higher is better)."""
        total = 0.0
        for s in range(0, len(self.users), 1024):
            us = self.users[s:s + 1024]
            sc = score_block(us).astype(np.float64, copy=True)
            for r, u in enumerate(us):
                sc[r, self.train[u]] = -np.inf
            top = np.argpartition(-sc, self.k, axis=1)[:, :self.k]
            top_sc = np.take_along_axis(sc, top, axis=1)
            top = np.take_along_axis(top, np.argsort(-top_sc, axis=1, kind="stable"), axis=1)
            for r, u in enumerate(us):
                v = self.valid[u]
                hits = np.array([i in v for i in top[r]], dtype=np.float64)
                total += float(hits @ self.disc) / self.idcg[min(len(v), self.k) - 1]
        return total / len(self.users)


def read_embeddings(siamrec, model, what, index, tmp):
    out = os.path.join(tmp, f"{what}.npy")
    subprocess.run([siamrec, "-q", "embed", "-m", model, "--out", out, "--what", what], check=True)
    emb = np.load(out)
    with open(out[:-4] + ".ids") as f:
        ids = [int(x) for x in f.read().split()]
    table = np.zeros((len(index), emb.shape[1]), dtype=np.float32)
    for row, raw in enumerate(ids):
        table[index[raw]] = emb[row]
    return table


def run_siamrec(a, files, val, user_index, item_index, tmp):
    siamrec = os.path.join(a.build, "siamrec")
    model = os.path.join(tmp, "cml.model")
    log = os.path.join(tmp, "cml.log")
    sets = ["data.dataset=", "split.type=files", f"split.train_file={files['train']}",
            f"split.valid_file={files['valid']}", f"split.test_file={files['valid']}", "split.name=",
            "eval.candidates=full", "train.refit=false", "train.eval_every=1", "train.patience=1000000",
            f"train.seed={a.seed}"] + ([f"train.epochs={a.epochs}"] if a.epochs else []) + a.set
    curve = []
    cumulative = 0.0
    # The curve is the trainer's own per-epoch validation (its log); the numpy metric of the last
    # epoch's embeddings checks that it measures what the LightFM curve measures.
    cmd = [siamrec, "-q", "--threads", str(a.threads), "train", "-c", a.config, "-o", model, "--no-eval",
           "--log", log] + [x for s in sets for x in ("--set", s)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=dict(os.environ, SIAMREC_DATA_DIR=a.data_dir))
    if r.returncode != 0:
        sys.exit("bench_lightfm: siamrec train failed:\n" + r.stdout[-3000:])
    with open(log) as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("phase") != "fit" or "epoch" not in rec:
                continue
            cumulative += rec["seconds"]
            curve.append((rec["epoch"], cumulative, rec["valid"]["ndcg@10"]))
    users = read_embeddings(siamrec, model, "users", user_index, tmp)
    items = read_embeddings(siamrec, model, "items", item_index, tmp)
    comparator = cfg_value(a, "comparator.type")

    def scores(us):
        u = users[us]
        if comparator == "dot":
            return u @ items.T
        if comparator == "cosine":
            un = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
            it = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
            return un @ it.T
        d2 = (u * u).sum(1)[:, None] + (items * items).sum(1)[None, :] - 2.0 * (u @ items.T)
        return -np.sqrt(np.maximum(d2, 0.0)) if comparator == "euclidean" else -d2

    check = val.ndcg(scores)
    return curve, check


def cfg_value(a, key):
    """A config key as the run sees it: the last --set of it, else the config file's value."""
    for item in reversed(a.set):
        if item.startswith(key + "="):
            return item.split("=", 1)[1]
    sect, name = key.split(".")
    with open(a.config) as f:
        value = (yaml.safe_load(f) or {}).get(sect, {}).get(name, "")
    return str(value)


def run_lightfm(LightFM, a, tu, ti, n_users, n_items, val):
    import scipy.sparse as sp
    x = sp.coo_matrix((np.ones(len(tu), dtype=np.float32), (tu, ti)), shape=(n_users, n_items))
    m = LightFM(no_components=a.dim, loss="warp", learning_rate=a.lfm_lr, max_sampled=a.lfm_max_sampled,
                random_state=a.seed)
    curve = []
    cumulative = 0.0
    for e in range(1, a.lfm_epochs + 1):
        t = time.perf_counter()
        m.fit_partial(x, epochs=1, num_threads=a.threads)
        cumulative += time.perf_counter() - t
        ub, ue = m.get_user_representations()
        ib, ie = m.get_item_representations()
        nd = val.ndcg(lambda us: ue[us] @ ie.T + ib[None, :] + ub[us][:, None])
        curve.append((e, cumulative, nd))
        print(f"  lightfm epoch {e}: {cumulative:7.2f}s  ndcg@10 {nd:.4f}", flush=True)
    return curve


def first_reaching(curve, target):
    for e, s, v in curve:
        if v >= target:
            return e, s
    return None, None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--lightfm-src", required=True, help="a LightFM source checkout (built in place if needed)")
    p.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", ""))
    p.add_argument("--config", default=os.path.join(ROOT, "examples/configs/ml1m-ncf-cml-hogwild.yaml"))
    p.add_argument("--set", action="append", default=[], help="siamrec config override key=value")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=0, help="siamrec epochs (0: the config's train.epochs)")
    p.add_argument("--lfm-epochs", type=int, default=30)
    p.add_argument("--lfm-lr", type=float, default=0.05, help="LightFM learning_rate (its default)")
    p.add_argument("--lfm-max-sampled", type=int, default=10, help="LightFM max_sampled (its default)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--valid-share", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    if not a.data_dir:
        sys.exit("bench_lightfm: set SIAMREC_DATA_DIR or --data-dir")
    LightFM = load_lightfm(a.lightfm_src)
    users, items = read_ncf_train(a.data_dir)
    is_valid = carve(users, items, a.valid_share, a.seed)
    user_index = {u: n for n, u in enumerate(np.unique(users))}
    item_index = {i: n for n, i in enumerate(np.unique(items))}
    uu = np.array([user_index[u] for u in users])
    ii = np.array([item_index[i] for i in items])
    n_users, n_items = len(user_index), len(item_index)
    tu, ti, vu, vi = uu[~is_valid], ii[~is_valid], uu[is_valid], ii[is_valid]
    val = Validator(tu, ti, vu, vi, n_users)
    print(f"data: NCF ML-1M training set, {len(users)} interactions, {n_users} users, {n_items} items; "
          f"validation: a seeded {a.valid_share:.0%} of each user's ({len(vu)} interactions, "
          f"{len(val.users)} users), full ranking, train items excluded, NDCG@10; {a.threads} threads",
          flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_lightfm.") as tmp:
        files = {"train": os.path.join(tmp, "train.tsv"), "valid": os.path.join(tmp, "valid.tsv")}
        for name, (us, its) in {"train": (users[~is_valid], items[~is_valid]),
                                "valid": (users[is_valid], items[is_valid])}.items():
            with open(files[name], "w") as f:
                f.writelines(f"{u}\t{i}\n" for u, i in zip(us, its))
        print(f"siamrec: {os.path.relpath(a.config, ROOT)} {' '.join(a.set)}", flush=True)
        s_curve, s_check = run_siamrec(a, files, val, user_index, item_index, tmp)
        print(f"LightFM WARP: {a.dim} components, learning_rate {a.lfm_lr}, max_sampled {a.lfm_max_sampled}",
              flush=True)
        l_curve = run_lightfm(LightFM, a, tu, ti, n_users, n_items, val)

    print("\n epoch | siamrec s  ndcg@10 | lightfm s  ndcg@10")
    for e in range(max(len(s_curve), len(l_curve))):
        left = f"{s_curve[e][1]:9.2f}  {s_curve[e][2]:.4f}" if e < len(s_curve) else " " * 17
        right = f"{l_curve[e][1]:9.2f}  {l_curve[e][2]:.4f}" if e < len(l_curve) else ""
        print(f" {e + 1:5d} | {left} | {right}")
    s_best = max(s_curve, key=lambda r: r[2])
    l_best = max(l_curve, key=lambda r: r[2])
    print(f"\nsiamrec: best {s_best[2]:.4f} at epoch {s_best[0]} after {s_best[1]:.2f}s "
          f"(numpy check of the saved model, the best epoch's weights: {s_check:.4f})")
    print(f"LightFM: best {l_best[2]:.4f} at epoch {l_best[0]} after {l_best[1]:.2f}s")
    s_per = s_curve[-1][1] / len(s_curve)
    l_per = l_curve[-1][1] / len(l_curve)
    print(f"seconds per epoch: siamrec {s_per:.3f}, LightFM {l_per:.3f} ({l_per / s_per:.1f}x)")
    e, s = first_reaching(s_curve, l_best[2])
    if e:
        print(f"siamrec reaches LightFM's best ({l_best[2]:.4f}) at epoch {e} after {s:.2f}s: "
              f"{l_best[1] / s:.1f}x LightFM's time to its best")
    else:
        print(f"siamrec never reaches LightFM's best ({l_best[2]:.4f}) in {len(s_curve)} epochs")
    print(f"time to each one's own best: siamrec {s_best[1]:.2f}s, LightFM {l_best[1]:.2f}s "
          f"({l_best[1] / s_best[1]:.1f}x)")


if __name__ == "__main__":
    main()
