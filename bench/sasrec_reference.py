#!/usr/bin/python3
"""Side-by-side reference for siamrec's SASRec: the PyTorch SASRec of pmixer/SASRec.pytorch,
run unchanged (its own main.py, model and sampler) on the same temporal leave-one-out split and
evaluated on the same fixed 100 negatives per user as siamrec.

The reference is never part of siamrec: fetch it yourself (github.com/pmixer/SASRec.pytorch) and
pass its python/ folder with --pmixer. It runs with Debian's python3-torch.

  /usr/bin/python3 bench/sasrec_reference.py prepare --data-dir $SIAMREC_DATA_DIR --dataset ml-100k --out W
      writes W/data/<name>.txt (pmixer's input: "user item" lines in time order, ids 1..n) and
      W/candidates.tsv (siamrec's pos-negs candidate file: user, test item, 100 negatives drawn
      uniformly from the items the user never interacted with; original ids; seeded)
  /usr/bin/python3 bench/sasrec_reference.py train --pmixer P/python --out W [--threads T] [pmixer args...]
      runs pmixer's main.py in W (torch threads = T) and keeps its log
  /usr/bin/python3 bench/sasrec_reference.py evaluate --pmixer P/python --out W --protocol-from RUN.json
                   [--json ref.json]
      loads the checkpoint of pmixer's best validation NDCG@10 and ranks each user's test item
      among her fixed negatives (history = train + validation items, as pmixer's evaluate does);
      writes a run JSON with per-user hr@10 / ndcg@10 that `siamrec compare` pairs with siamrec's
      run on `--set eval.candidates=file:W/candidates.tsv`.

The split: each user's interactions ordered by (timestamp, item id) -- siamrec's `split.type loo,
order time` -- the latest is the test item, the one before it the validation item.
"""
import argparse
import glob
import json
import math
import os
import re
import runpy
import sys
import time

import numpy as np


def read_log(data_dir, dataset):
    rows = []
    if dataset == "ml-100k":
        with open(os.path.join(data_dir, "ml-100k", "u.data")) as f:
            for line in f:
                u, i, _, t = line.split("\t")
                rows.append((int(u), int(i), int(t)))
    elif dataset == "ml-latest-small":
        with open(os.path.join(data_dir, "ml-latest-small", "ratings.csv")) as f:
            next(f)
            for line in f:
                u, i, _, t = line.strip().split(",")
                rows.append((int(u), int(i), int(t)))
    else:
        sys.exit(f"sasrec_reference: unknown dataset '{dataset}' (ml-100k, ml-latest-small)")
    return rows


def sequences(rows):
    by = {}
    for u, i, t in rows:
        by.setdefault(u, []).append((t, i))
    seqs = {}
    for u, v in by.items():
        v.sort()  # time, then item id (siamrec's order)
        seqs[u] = [i for _, i in v]
    return seqs


def prepare(a):
    seqs = sequences(read_log(a.data_dir, a.dataset))
    items = sorted({i for s in seqs.values() for i in s})
    item_ix = {i: k + 1 for k, i in enumerate(items)}
    users = sorted(seqs)
    os.makedirs(os.path.join(a.out, "data"), exist_ok=True)
    with open(os.path.join(a.out, "data", a.name + ".txt"), "w") as f:
        for k, u in enumerate(users):
            for i in seqs[u]:
                f.write(f"{k + 1} {item_ix[i]}\n")
    rng = np.random.default_rng(a.seed)
    arr = np.array(items)
    with open(os.path.join(a.out, "candidates.tsv"), "w") as f:
        for u in users:
            s = seqs[u]
            if len(s) < 3:
                sys.exit(f"sasrec_reference: user {u} has {len(s)} interactions (leave-one-out needs 3)")
            seen = set(s)
            negs = []
            while len(negs) < a.negatives:
                j = int(arr[rng.integers(len(arr))])
                if j not in seen and j not in negs:
                    negs.append(j)
            f.write(f"{u}\t{s[-1]}\t{','.join(map(str, negs))}\n")
    with open(os.path.join(a.out, "maps.json"), "w") as f:
        json.dump({"users": users, "items": items, "dataset": a.dataset, "name": a.name}, f)
    print(f"{a.dataset}: {len(users)} users, {len(items)} items, {sum(map(len, seqs.values()))} interactions -> {a.out}")


def train(a, rest):
    import torch

    torch.set_num_threads(a.threads)
    os.chdir(a.out)
    maps = json.load(open("maps.json"))
    sys.path.insert(0, os.path.abspath(a.pmixer))
    sys.argv = ["main.py", "--dataset", maps["name"], "--train_dir", "ref", "--device", "cpu"] + rest
    t0 = time.time()
    runpy.run_path(os.path.join(os.path.abspath(a.pmixer), "main.py"), run_name="__main__")
    print(f"pmixer main.py finished in {time.time() - t0:.1f} s (torch threads {a.threads})")


def evaluate(a):
    import torch

    torch.set_num_threads(a.threads)
    maps = json.load(open(os.path.join(a.out, "maps.json")))
    folder = os.path.join(a.out, maps["name"] + "_ref")
    args = dict(l.strip().split(",", 1) for l in open(os.path.join(folder, "args.txt")))
    # pmixer's log: "epoch (val_ndcg, val_hr) (test_ndcg, test_hr)"; choose by validation NDCG@10.
    best = None
    for line in open(os.path.join(folder, "log.txt")).readlines()[1:]:
        m = re.match(r"(\d+) \(([^,]+), ([^)]+)\)", line)
        if m and (best is None or float(m.group(2)) > best[1]):
            best = (int(m.group(1)), float(m.group(2)))
    if best is None:
        sys.exit(f"sasrec_reference: no evaluated epoch in {folder}/log.txt")
    ckpt = glob.glob(os.path.join(folder, f"SASRec.epoch={best[0]}.*.pth"))
    if not ckpt:
        sys.exit(f"sasrec_reference: no checkpoint of epoch {best[0]} in {folder}")
    sys.path.insert(0, os.path.abspath(a.pmixer))
    from model import SASRec

    ns = argparse.Namespace(
        device="cpu",
        hidden_units=int(args["hidden_units"]),
        maxlen=int(args["maxlen"]),
        num_blocks=int(args["num_blocks"]),
        num_heads=int(args["num_heads"]),
        dropout_rate=float(args["dropout_rate"]),
        norm_first=args["norm_first"] == "True",
    )
    users, items = maps["users"], maps["items"]
    item_ix = {i: k + 1 for k, i in enumerate(items)}
    user_ix = {u: k + 1 for k, u in enumerate(users)}
    seqs = {}
    for line in open(os.path.join(a.out, "data", maps["name"] + ".txt")):
        u, i = map(int, line.split())
        seqs.setdefault(u, []).append(i)
    model = SASRec(len(users), len(items), ns)
    model.load_state_dict(torch.load(ckpt[0], map_location="cpu"))
    model.eval()
    hr, ndcg, out_users = [], [], []
    with torch.no_grad():
        for line in open(os.path.join(a.out, "candidates.tsv")):
            u, pos, negs = line.rstrip("\n").split("\t")
            uk = user_ix[int(u)]
            s = seqs[uk]
            hist = s[:-1][-ns.maxlen:]  # train + validation items, as pmixer's evaluate
            seq = np.zeros([ns.maxlen], dtype=np.int64)
            seq[ns.maxlen - len(hist):] = hist
            cand = [item_ix[int(pos)]] + [item_ix[int(j)] for j in negs.split(",")]
            sc = model.predict(np.array([uk]), np.array([seq]), np.array(cand))[0].numpy()
            # rank of the test item; ties pessimistic, as siamrec ranks candidate lists
            rank = sum(1 for k in range(1, len(cand)) if sc[k] >= sc[0])
            out_users.append(u)
            hr.append(1.0 if rank < 10 else 0.0)
            ndcg.append(1.0 / math.log2(rank + 2) if rank < 10 else 0.0)
    run = json.load(open(a.protocol_from))
    res = {
        "protocol": run["protocol"],
        "kind": "ranking",
        "model": f"pmixer/SASRec.pytorch (epoch {best[0]} by validation NDCG@10 {best[1]:.4f}; {ckpt[0]})",
        "metrics": {"hr@10": float(np.mean(hr)), "ndcg@10": float(np.mean(ndcg))},
        "n_users": len(out_users),
        "seconds": 0,
        "per_user": {"user": out_users, "hr@10": hr, "ndcg@10": ndcg},
    }
    with open(a.json, "w") as f:
        json.dump(res, f)
    print(f"reference: epoch {best[0]} (valid NDCG@10 {best[1]:.4f}); test over {len(out_users)} users: "
          f"HR@10 {np.mean(hr):.4f} NDCG@10 {np.mean(ndcg):.4f} -> {a.json}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("prepare")
    q.add_argument("--data-dir", required=True)
    q.add_argument("--dataset", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--name", default="data")
    q.add_argument("--negatives", type=int, default=100)
    q.add_argument("--seed", type=int, default=2024)
    t = sub.add_parser("train")
    t.add_argument("--pmixer", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("evaluate")
    e.add_argument("--pmixer", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--protocol-from", required=True)
    e.add_argument("--json", default="ref.json")
    e.add_argument("--threads", type=int, default=1)
    a, rest = p.parse_known_args()
    if a.cmd == "prepare":
        prepare(a)
    elif a.cmd == "train":
        train(a, rest)
    else:
        evaluate(a)


if __name__ == "__main__":
    main()
