#!/usr/bin/python3
"""siamrec quickstart: a DataFrame in, a CML recommender trained, evaluated against Pop, plotted.

    SIAMREC_DATA_DIR=../shared/datasets PYTHONPATH=build/python python3 examples/python/quickstart.py --out /tmp/qs

(after `make install-python`, no PYTHONPATH is needed). Writes OUT/quickstart_metrics.png and
OUT/quickstart_training.png.
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")  # files, no display
import matplotlib.pyplot as plt
import pandas as pd

import siamrec

HERE = os.path.dirname(os.path.abspath(__file__))
CML = os.path.join(HERE, "..", "configs", "ml100k-cml.yaml")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("SIAMREC_DATA_DIR", "../shared/datasets"))
    ap.add_argument("--out", default=".")
    ap.add_argument("--user", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=60, help="at most this many epochs (early stopping)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    # 1. A DataFrame, as you would have it: MovieLens 100K ratings and titles.
    ml = os.path.join(a.data_dir, "ml-100k")
    ratings = pd.read_csv(os.path.join(ml, "u.data"), sep="\t", names=["userId", "movieId", "rating", "ts"])
    movies = pd.read_csv(os.path.join(ml, "u.item"), sep="|", encoding="latin-1", header=None, usecols=[0, 1],
                         names=["movieId", "title"]).set_index("movieId")["title"]
    print(f"ratings: {len(ratings)} rows, {ratings.userId.nunique()} users, {ratings.movieId.nunique()} movies")

    # 2. A siamrec Dataset from it, split per user 80/10/10 (seeded).
    data = siamrec.Dataset.from_pandas(ratings, user="userId", item="movieId", timestamp="ts", name="ml-100k-df")
    split = data.split("ratio", ratios=[0.8, 0.1, 0.1], seed=42)
    print(split)

    # 3. The CML config (a triplet network: users and items in one metric space), early stopping on
    #    the validation part; and the popularity baseline.
    cml = siamrec.Model(CML, **{"train.epochs": a.epochs})
    cml.fit(split.train, split.valid)
    pop = siamrec.Model({"model": {"type": "pop"}})
    pop.fit(split.train, progress=False)

    # 4. Both under one protocol: full ranking, train (and validation) items excluded.
    results = {"CML (siamrec)": cml.evaluate(split.test), "Pop": pop.evaluate(split.test)}
    print("\nprotocol:", results["Pop"].protocol)
    names = ["ndcg@10", "recall@10", "hr@10", "mrr@10", "coverage@10"]
    table = pd.DataFrame({k: [v[n] for n in names] for k, v in results.items()}, index=names)
    print(table.round(4).to_string())

    # 5. Recommendations for one user, with titles.
    items, scores = cml.recommend(a.user, k=10)
    liked = ratings[(ratings.userId == a.user) & (ratings.rating >= 5)].movieId.head(5)
    print(f"\nuser {a.user} rated 5: " + "; ".join(movies[i] for i in liked))
    print(f"top-10 for user {a.user}:")
    for rank, (i, s) in enumerate(zip(items, scores), 1):
        print(f"  {rank:2d}. {movies[i]}  ({s:.3f})")

    # 6. Plots: the metric comparison and the training curve.
    ax = table.plot.bar(figsize=(7, 4), rot=0)
    ax.set_title("ML-100K, per-user 80/10/10 split: full ranking, train + valid items excluded")
    ax.set_ylabel("value")
    plt.tight_layout()
    p1 = os.path.join(a.out, "quickstart_metrics.png")
    plt.savefig(p1, dpi=110)
    plt.close()

    hist = pd.DataFrame([h for h in cml.history if not h["refit"]])
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(hist.epoch, hist.loss, color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("triplet loss", color="tab:blue")
    if "valid" in hist:
        ax2 = ax1.twinx()
        v = hist.dropna(subset=["valid"])
        ax2.plot(v.epoch, v.valid, color="tab:orange", marker="o", ms=3, label=v.valid_metric.iloc[0])
        ax2.set_ylabel(f"validation {v.valid_metric.iloc[0]}", color="tab:orange")
    ax1.set_title("CML on ML-100K: training loss and validation NDCG@10 (early stopping)")
    fig.tight_layout()
    p2 = os.path.join(a.out, "quickstart_training.png")
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    print(f"\nwrote {p1} and {p2}")


if __name__ == "__main__":
    main()
