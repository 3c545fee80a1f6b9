#!/usr/bin/python3
"""Makes a paper-style protocol from an interaction CSV, as papers ship them: leave-one-out by time
(each user's latest interaction is the test item, the one before it the validation item) and 99
sampled negatives per test user. Writes OUT/train.tsv, OUT/valid.tsv, OUT/test.tsv (user<TAB>item<TAB>time)
and OUT/candidates.tsv (user<TAB>test item<TAB>neg,neg,...). See docs/own-data.md.

    /usr/bin/python3 examples/own-data/paper_split.py ratings.csv OUT --user userId --item movieId --time timestamp
"""
import argparse
import os

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("out")
    ap.add_argument("--user", default="userId")
    ap.add_argument("--item", default="movieId")
    ap.add_argument("--time", default="timestamp")
    ap.add_argument("--negatives", type=int, default=99)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    df = pd.read_csv(a.csv)[[a.user, a.item, a.time]]
    df.columns = ["user", "item", "time"]
    df = df.sort_values(["user", "time"], kind="stable")
    rank = df.groupby("user").cumcount(ascending=False)  # 0 = latest
    n = df.groupby("user")["item"].transform("size")
    test = df[(rank == 0) & (n >= 3)]
    valid = df[(rank == 1) & (n >= 3)]
    train = df[~df.index.isin(test.index) & ~df.index.isin(valid.index)]
    os.makedirs(a.out, exist_ok=True)
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        part.to_csv(os.path.join(a.out, f"{name}.tsv"), sep="\t", header=False, index=False)
    rng = np.random.default_rng(a.seed)
    items = df["item"].unique()
    seen = df.groupby("user")["item"].apply(set)
    with open(os.path.join(a.out, "candidates.tsv"), "w") as f:
        for u, pos in zip(test["user"], test["item"]):
            negs = []
            while len(negs) < a.negatives:
                i = items[rng.integers(len(items))]
                if i not in seen[u] and i not in negs:
                    negs.append(i)
            f.write(f"{u}\t{pos}\t{','.join(map(str, negs))}\n")
    print(f"{a.out}: train {len(train)}, valid {len(valid)}, test {len(test)} interactions; "
          f"{len(test)} candidate lists of 1 + {a.negatives}")


if __name__ == "__main__":
    main()
