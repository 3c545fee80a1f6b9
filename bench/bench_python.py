#!/usr/bin/python3
"""siamrec from Python against the siamrec CLI, interleaved in one command (issue 18's targets).

  1. fit: the same config and thread count from `siamrec train --no-eval` and from a Python process
     (import, load the data, Model(config).fit, save): whole-process wall time and the training loop
     alone (the sum of the per-epoch seconds of the JSON-lines log both write). Configs: ml100k-cml.yaml
     (LibTorch engine) and ml1m-ncf-cml-hogwild.yaml (fused engine, per-example Hogwild), fixed epochs
     (no early stopping or refit, so both run the same number of epochs).
  2. recommend for every user (k=10) of an ML-1M model: `siamrec recommend --all-users --out F`
     against a Python process that loads the model and calls recommend(all users) (numpy arrays), and
     one that also writes the same TSV; plus the in-process call alone.
  3. embeddings: the bytes numpy allocates (tracemalloc) for model.item_embeddings against the table.

Usage: bench/bench_python.py [--build build] [--rounds 3]   (needs $SIAMREC_DATA_DIR with ml-100k, ml-1m-ncf)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def epoch_seconds(log):
    with open(log) as f:
        return sum(json.loads(line).get("seconds", 0.0) for line in f if line.strip())


def run(cmd, env):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    return time.perf_counter() - t, r.stdout


PY_FIT = """
import sys, siamrec
cfg, out, log, threads, sets = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
over = dict(s.split("=", 1) for s in sets)
data = siamrec.Dataset.from_config(cfg).split(config=cfg)
m = siamrec.Model(cfg, **over)
m.fit(data.train, progress=False, threads=threads, log=log)
m.save(out)
"""

PY_RECOMMEND = """
import sys, siamrec
m = siamrec.load(sys.argv[1])
users = m.user_ids[:1] if sys.argv[2] == "one" else m.user_ids
items, scores = m.recommend(users, k=10, threads=int(sys.argv[3]))
if len(sys.argv) > 4:
    with open(sys.argv[4], "w") as f:
        for u, row in zip(m.user_ids, items):
            f.write(f"{u}\\t{','.join(map(str, row))}\\n")
"""


def fit_rows(build, env, config, sets, threads, rounds, tmp):
    cli = os.path.join(build, "siamrec")
    rows = {"cli wall": [], "python wall": [], "cli epochs": [], "python epochs": []}
    for r in range(rounds):
        for side in ("cli", "python"):  # interleaved: drift hits both
            out = os.path.join(tmp, f"{side}.model")
            log = os.path.join(tmp, f"{side}.log")
            if os.path.exists(log):
                os.remove(log)
            if side == "cli":
                cmd = [cli, "-q", "--threads", str(threads), "train", "--config", config, "--no-eval", "--out", out,
                       "--log", log]
                for s in sets:
                    cmd += ["--set", s]
            else:
                cmd = ["/usr/bin/python3", "-c", PY_FIT, config, out, log, str(threads), *sets]
            wall, _ = run(cmd, env)
            rows[f"{side} wall"].append(wall)
            rows[f"{side} epochs"].append(epoch_seconds(log))
    return {k: statistics.median(v) for k, v in rows.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="an ML-1M model file: skip the fit rows and use it for the others")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"), OPENBLAS_NUM_THREADS="1")
    sys.path.insert(0, os.path.join(build, "python"))
    import numpy as np

    import siamrec

    tmp = tempfile.mkdtemp(prefix="bench_python.")
    fixed = ["train.valid_share=0", "train.refit=false"]
    cases = [
        ("ml100k-cml.yaml (LibTorch, Adam), 20 epochs", "ml100k-cml.yaml", fixed + ["train.epochs=20"]),
        ("ml1m-ncf-cml-hogwild.yaml (fused, Hogwild), 10 epochs", "ml1m-ncf-cml-hogwild.yaml",
         fixed + ["train.epochs=10"]),
    ]
    if not a.model:
        print(f"## fit: Python vs CLI ({a.threads} threads, median of {a.rounds} interleaved rounds)")
        print("| config | CLI wall s | Python wall s | ratio | CLI epochs s | Python epochs s | ratio |")
        print("|---|---|---|---|---|---|---|")
    for title, cfg, sets in [] if a.model else cases:
        m = fit_rows(build, env, os.path.join(ROOT, "examples", "configs", cfg), sets, a.threads, a.rounds, tmp)
        print(f"| {title} | {m['cli wall']:.2f} | {m['python wall']:.2f} | {m['python wall'] / m['cli wall']:.3f} "
              f"| {m['cli epochs']:.2f} | {m['python epochs']:.2f} | {m['python epochs'] / m['cli epochs']:.3f} |")
    model = a.model or os.path.join(tmp, "python.model")  # the NCF model of the last fit

    print(f"\n## recommend, every user, k=10 (ML-1M NCF model; median of {a.rounds} interleaved rounds)")
    cli = os.path.join(build, "siamrec")
    rows = {"cli": [], "py": [], "py+tsv": [], "cli one": [], "py one": []}
    for r in range(a.rounds):
        rows["cli one"].append(run([cli, "-q", "--threads", str(a.threads), "recommend", "--model", model, "--user",
                                    str(siamrec.load(model).user_ids[0]), "-k", "10"], env)[0])
        rows["py one"].append(run(["/usr/bin/python3", "-c", PY_RECOMMEND, model, "one", str(a.threads)], env)[0])
        rows["cli"].append(run([cli, "-q", "--threads", str(a.threads), "recommend", "--model", model, "--all-users",
                                "-k", "10", "--out", os.path.join(tmp, "cli.tsv")], env)[0])
        rows["py"].append(run(["/usr/bin/python3", "-c", PY_RECOMMEND, model, "all", str(a.threads)], env)[0])
        rows["py+tsv"].append(run(["/usr/bin/python3", "-c", PY_RECOMMEND, model, "all", str(a.threads),
                                   os.path.join(tmp, "py.tsv")], env)[0])
    same = open(os.path.join(tmp, "cli.tsv")).read() == open(os.path.join(tmp, "py.tsv")).read()
    med = {k: statistics.median(v) for k, v in rows.items()}
    m = siamrec.load(model)
    ins, core = [], []
    idx = np.arange(m.n_users, dtype=np.int64)
    for r in range(a.rounds):
        t = time.perf_counter()
        m.recommend(m.user_ids, k=10, threads=a.threads)
        ins.append(time.perf_counter() - t)
        t = time.perf_counter()
        m._core.recommend(idx, 10, True, a.threads)  # the C++ call alone: indices in, indices out
        core.append(time.perf_counter() - t)
    print("| run | wall s | ratio to CLI |")
    print("|---|---|---|")
    print(f"| CLI `recommend --all-users --out F` | {med['cli']:.3f} | 1.000 |")
    print(f"| Python process: load + recommend (arrays) | {med['py']:.3f} | {med['py'] / med['cli']:.3f} |")
    print(f"| Python process: load + recommend + same TSV | {med['py+tsv']:.3f} | {med['py+tsv'] / med['cli']:.3f} |")
    print(f"| in process: recommend({m.n_users} users) alone | {statistics.median(ins):.3f} | |")
    print(f"| in process: the C++ call alone (dense indices in and out) | {statistics.median(core):.3f} | "
          f"Python layer: {statistics.median(ins) / statistics.median(core):.3f}x |")
    # Start-up and model load are the same work on both sides, but an interpreter and numpy add to
    # them: the recommendation's own cost is the difference to the same process for one user.
    print(f"| one user instead (start-up + load): CLI `--user` / Python | {med['cli one']:.3f} / "
          f"{med['py one']:.3f} | {med['py one'] / med['cli one']:.3f} |")
    net_cli = med["cli"] - med["cli one"]
    print(f"| every user minus one user: CLI (+TSV) / Python arrays | {net_cli:.3f} / "
          f"{med['py'] - med['py one']:.3f} | {(med['py'] - med['py one']) / net_cli:.3f} |")
    print(f"| every user minus one user: CLI (+TSV) / Python + same TSV | {net_cli:.3f} / "
          f"{med['py+tsv'] - med['py one']:.3f} | {(med['py+tsv'] - med['py one']) / net_cli:.3f} |")
    print(f"TSV from Python identical to the CLI's: {same}")

    print("\n## embeddings: bytes allocated by numpy per access (tracemalloc)")
    table = m.n_items * m.item_embeddings.shape[1] * 4
    tracemalloc.start()
    views = [m.item_embeddings for _ in range(100)]
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"100 x model.item_embeddings ({m.n_items} x {views[0].shape[1]} float32 = {table / 1e6:.2f} MB): "
          f"{peak} bytes peak traced ({peak / 100:.0f} per view); shares memory: "
          f"{np.shares_memory(views[0], views[-1])}")
    copies = [np.array(m.item_embeddings) for _ in range(3)]
    print(f"for contrast, 3 copies: {sum(c.nbytes for c in copies) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
