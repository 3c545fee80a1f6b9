"""Data-parallel training and sharded evaluation on c10d (Gloo), 2 ranks x 1 thread on loopback,
ML-100K ua: results match one process, deterministic runs are bit-identical, a lost rank is
named and --resume continues exactly, mismatched configs are refused, and siamrec synth's log
reads back with the planted structure."""
import csv
import json
import math
import os
import subprocess
import time
from collections import Counter, defaultdict

import pytest

from conftest import free_port, metrics

# Sanitized builds (about 5x slower) skip the cases that repeat a code path another case covers.
SANITIZED = os.environ.get("SIAMREC_SANITIZED") == "1"
repeats_a_path = pytest.mark.skipif(SANITIZED, reason="same code path as another case; sanitized builds are slow")

CONFIG = """
data: {dataset: ml-100k}
split: {type: fixed, name: ua}
eval: {candidates: full, k: [10]}
model: {type: siamese, shared: true}
tower: {type: id, dim: 32}
comparator: {type: sq_euclidean}
loss: {type: triplet, margin: 0.6}
reg: {max_norm: 1}
sampler: {builder: user_item, type: uniform, negatives: 5}
train: {engine: ENGINE, optimizer: OPTIMIZER, lr: 0.005, batch_size: 1024, epochs: 4, seed: 7, deterministic: true}
"""


def write_config(tmp_path, engine, optimizer):
    p = tmp_path / f"{engine}-{optimizer}.yaml"
    p.write_text(CONFIG.replace("ENGINE", engine).replace("OPTIMIZER", optimizer))
    return str(p)


def train(cli, cfg, out, nproc=1, batch=1024, extra=()):
    args = ["-q", "--threads", "1", "train", "-c", cfg, "-o", out, "--json", out + ".json",
            "--set", f"train.batch_size={batch}", *extra]
    if nproc > 1:
        args = ["-q", "launch", "--nproc", str(nproc), "--"] + args[3:]
    return cli(*args)


@pytest.mark.parametrize("engine,optimizer", [pytest.param("torch", "adam", marks=repeats_a_path),
                                              ("torch", "lazy_adam"), ("fused", "lazy_adam")])
def test_two_ranks_match_one_at_the_same_global_batch(cli, ml100k, tmp_path, engine, optimizer):
    cfg = write_config(tmp_path, engine, optimizer)
    one, two = str(tmp_path / "one.model"), str(tmp_path / "two.model")
    train(cli, cfg, one, nproc=1, batch=1024)
    train(cli, cfg, two, nproc=2, batch=512)  # 2 ranks x 512 = the same global mini-batch
    m1, m2 = metrics(one + ".json"), metrics(two + ".json")
    assert m1["ndcg@10"] > 0.05, m1  # it learned something
    assert abs(m1["ndcg@10"] - m2["ndcg@10"]) < 0.01, (m1["ndcg@10"], m2["ndcg@10"])
    assert abs(m1["recall@10"] - m2["recall@10"]) < 0.015


@repeats_a_path
@pytest.mark.parametrize("engine", ["torch", "fused"])
def test_deterministic_two_rank_runs_are_bit_identical(cli, ml100k, tmp_path, engine):
    cfg = write_config(tmp_path, engine, "lazy_adam")
    a, b = str(tmp_path / "a.model"), str(tmp_path / "b.model")
    train(cli, cfg, a, nproc=2, batch=512, extra=["--no-eval"])
    train(cli, cfg, b, nproc=2, batch=512, extra=["--no-eval"])
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    assert not os.path.exists(a + ".ckpt")  # a finished run removes its checkpoint


def test_sharded_evaluation_equals_one_process(cli, ml100k, tmp_path):
    cfg = write_config(tmp_path, "fused", "lazy_adam")
    model = str(tmp_path / "m.model")
    train(cli, cfg, model, extra=["--no-eval", "--set", "eval.k=[5,10,20]"])
    one, two = str(tmp_path / "one.json"), str(tmp_path / "two.json")
    cli("-q", "--threads", "2", "evaluate", "--model", model, "--json", one)
    r = cli("-q", "launch", "--nproc", "2", "--", "evaluate", "--model", model, "--json", two)
    j1, j2 = json.load(open(one)), json.load(open(two))
    for j in (j1, j2):
        j.pop("seconds", None)
    assert j1["metrics"] == j2["metrics"]
    assert j1["per_user"] == j2["per_user"]
    assert j1 == j2
    assert r.stdout.count("protocol:") == 1  # rank 0 alone prints


def test_lost_rank_is_named_and_resume_continues_exactly(cli, ml100k, ranks, tmp_path):
    cfg = write_config(tmp_path, "fused", "lazy_adam")
    ref = str(tmp_path / "ref.model")
    extra = ["--set", "train.epochs=6", "--set", "train.batch_size=256", "--set", "dist.timeout=5"]
    train(cli, cfg, ref, nproc=2, batch=256, extra=extra)
    out = str(tmp_path / "run.model")
    args = lambda r: ["-q", "train", "-c", cfg, "-o", out, "--json", out + ".json", *extra]
    p0, p1 = ranks.start(2, args, env_style="torchrun")
    deadline = time.time() + 120
    while not os.path.exists(out + ".ckpt") and time.time() < deadline and p0.poll() is None:
        time.sleep(0.02)
    assert os.path.exists(out + ".ckpt"), "no checkpoint was written"
    p1.kill()  # SIGKILL mid-training
    p1.wait()
    t0 = time.time()
    _, err0 = p0.communicate(timeout=60)
    assert p0.returncode != 0
    assert time.time() - t0 < 15, "the surviving rank took longer than the timeout to stop"
    assert "rank 1" in err0 and "distributed" in err0, err0
    assert not os.path.exists(out), "a lost rank must leave no model file"
    # --resume on 2 ranks from rank 0's checkpoint ends exactly as the uninterrupted run.
    cli("-q", "launch", "--nproc", "2", "--", "-q", "train", "-c", cfg, "-o", out, "--json", out + ".json",
        *extra, "--resume")
    assert metrics(out + ".json") == metrics(ref + ".json")
    with open(out, "rb") as fa, open(ref, "rb") as fb:
        assert fa.read() == fb.read()


def test_a_rank_that_stops_with_an_error_is_quoted(ranks, tmp_path, ml100k):
    cfg = write_config(tmp_path, "fused", "lazy_adam")
    out = str(tmp_path / "m.model")
    # Rank 1 reads a split file that does not exist: it stops with a data error; rank 0 names it.
    args = lambda r: ["train", "-c", cfg, "-o", out, "--set", "dist.timeout=20"] + (
        ["--set", "split.type=files", "--set", "split.train_file=/nonexistent/train.tsv"] if r == 1 else [])
    p0, p1 = ranks.start(2, args)
    _, err0 = p0.communicate(timeout=60)
    _, err1 = p1.communicate(timeout=60)
    assert p0.returncode != 0 and p1.returncode != 0
    assert "rank(s) 1" in err0 or "rank 1" in err0, err0


def test_mismatched_configs_are_refused(ranks, tmp_path, ml100k):
    cfg = write_config(tmp_path, "fused", "lazy_adam")
    args = lambda r: ["train", "-c", cfg, "-o", str(tmp_path / f"m{r}.model"), "--set", f"train.epochs={3 + r}"]
    procs = ranks.start(2, args, env_style="mpirun")  # OpenMPI's variables, as mpirun sets them
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 2, err
        assert "the config of rank(s) 1 differ(s) from rank 0's" in err, err
    assert not any(os.path.exists(tmp_path / f"m{r}.model") for r in range(2))


def test_bad_environment_and_backend_are_refused(cli, tmp_path, ml100k):
    cfg = write_config(tmp_path, "fused", "lazy_adam")
    env = dict(os.environ, WORLD_SIZE="2", RANK="5", MASTER_PORT=str(free_port()))
    r = subprocess.run([os.environ.get("SIAMREC_CLI", "siamrec"), "train", "-c", cfg, "-o", str(tmp_path / "x")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "RANK='5'" in r.stderr, r.stderr
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", MASTER_PORT=str(free_port()))
    r = subprocess.run([os.environ.get("SIAMREC_CLI", "siamrec"), "train", "-c", cfg, "-o", str(tmp_path / "x"),
                        "--set", "dist.backend=mpi"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "built without MPI" in r.stderr, r.stderr


def test_synth_log_reads_back_with_its_planted_structure(cli, tmp_path):
    log, clusters = str(tmp_path / "s.tsv"), str(tmp_path / "c.tsv")
    users, items, n, k = 1000, 1000, 20000, 5
    cli("-q", "synth", "-o", log, "--users", str(users), "--items", str(items), "--interactions", str(n),
        "--clusters", str(k), "--item-alpha", "0.8", "--in-cluster", "0.8", "--seed", "5", "--clusters-out", clusters)
    rows = [r for r in csv.reader(open(log), delimiter="\t")]
    assert len(rows) == n
    by_user = defaultdict(list)
    for u, i, t in rows:
        by_user[int(u)].append((int(t), int(i)))
    assert sorted(by_user) == list(range(users))  # every user, at least one interaction
    for u, h in by_user.items():
        assert len({i for _, i in h}) == len(h)  # distinct items
        assert [t for t, _ in h] == sorted(t for t, _ in h)  # time order = line order
    # Zipf popularity (a log without clusters, sparse enough that the head is not saturated): the
    # log-log slope over the top 100 ranks is about -item_alpha (0.8).
    zipf = str(tmp_path / "z.tsv")
    cli("-q", "synth", "-o", zipf, "--users", "3000", "--items", "3000", "--interactions", "30000",
        "--item-alpha", "0.8", "--in-cluster", "0", "--seed", "5")
    counts = sorted(Counter(r[1] for r in csv.reader(open(zipf), delimiter="\t")).values(), reverse=True)[:100]
    xs = [math.log(r + 1) for r in range(len(counts))]
    ys = [math.log(c) for c in counts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert -0.95 < slope < -0.6, slope
    # Planted clusters: most draws stay in the user's cluster (0.8 + 0.2 / k for light users).
    cl = dict(r for r in csv.reader(open(clusters), delimiter="\t"))
    inside = sum(cl[f"i{r[1]}"] == cl[f"u{r[0]}"] for r in rows) / n
    assert 0.7 < inside < 0.9, inside
    # The same flags give the same file.
    again = str(tmp_path / "s2.tsv")
    cli("-q", "synth", "-o", again, "--users", str(users), "--items", str(items), "--interactions", str(n),
        "--clusters", str(k), "--item-alpha", "0.8", "--in-cluster", "0.8", "--seed", "5")
    assert open(log).read() == open(again).read()
    # siamrec reads it, and a CML model finds the planted clusters (far above popularity).
    if SANITIZED:
        return  # training is covered by the other cases; sanitized builds are slow
    common = ["--set", f"data.path={log}", "--set", "data.time_col=2", "--set", "split.type=ratio",
              "--set", "eval.k=[10]", "--set", "data.dataset="]
    cli("-q", "--threads", "2", "train", "-o", str(tmp_path / "pop.model"), "--json", str(tmp_path / "pop.json"),
        "--set", "model.type=pop", *common)
    cli("-q", "--threads", "2", "train", "-o", str(tmp_path / "cml.model"), "--json", str(tmp_path / "cml.json"),
        "--set", "model.type=siamese", "--set", "tower.type=id", "--set", "comparator.type=sq_euclidean",
        "--set", "loss.type=triplet", "--set", "reg.max_norm=1", "--set", "train.optimizer=adagrad",
        "--set", "train.lr=0.05", "--set", "train.epochs=10", *common)
    pop, cml = metrics(str(tmp_path / "pop.json")), metrics(str(tmp_path / "cml.json"))
    assert cml["ndcg@10"] > pop["ndcg@10"] + 0.02, (cml["ndcg@10"], pop["ndcg@10"])


def test_launch_runs_only_commands_that_join_a_group(cli, tmp_path):
    r = cli("launch", "--nproc", "2", "--", "-q", "tune", "--config", "x.yaml", check=False)
    assert r.returncode == 2 and "'tune' does not join a group" in r.stderr, r.stderr


def test_synth_refuses_impossible_sizes(cli, tmp_path):
    r = cli("synth", "-o", str(tmp_path / "x.tsv"), "--users", "100", "--interactions", "50", check=False)
    assert r.returncode == 2 and "--interactions (50) must be >= --users (100)" in r.stderr
    assert not os.path.exists(tmp_path / "x.tsv")
