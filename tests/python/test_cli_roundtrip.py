"""The same model from Python and from `siamrec train`; CLI model files in Python; CLI lists exactly."""
import os

import numpy as np
import pytest

import siamrec
from conftest import CONFIGS, SMALL, needs_ml100k

CONFIG = os.path.join(CONFIGS, "ml100k-cml.yaml")


@needs_ml100k
def test_same_config_and_seed_give_the_same_model_from_python_and_the_cli(tmp_path, cli, ml100k):
    sets = [f"{k}={v}" for k, v in SMALL.items()]
    out = tmp_path / "cli.model"
    cli("--threads", "1", "train", "--config", CONFIG, *sum((["--set", s] for s in sets), []), "--out", str(out),
        "--no-eval")
    m = siamrec.Model(CONFIG, **SMALL)
    m.fit(ml100k.train, progress=False, threads=1)
    c = siamrec.load(out)
    assert c.protocol == m.protocol
    np.testing.assert_array_equal(c.item_embeddings, m.item_embeddings)
    np.testing.assert_array_equal(c.user_embeddings, m.user_embeddings)
    users = m.user_ids
    np.testing.assert_array_equal(c.score(users, np.full(len(users), 50)), m.score(users, np.full(len(users), 50)))
    # ... and a model saved by Python evaluates the same from the CLI.
    py_model = tmp_path / "py.model"
    m.save(py_model)
    r = cli("--threads", "1", "evaluate", "--model", str(py_model), "--config", CONFIG)
    ndcg = m.evaluate(ml100k.test, threads=1)["ndcg@10"]
    assert f"{ndcg:.4f}" in r.stdout, r.stdout


@needs_ml100k
def test_a_cli_model_recommends_in_python_exactly_as_the_cli(tmp_path, cli, fitted):
    path = tmp_path / "m.model"
    fitted.save(path)
    lists = tmp_path / "all.tsv"
    cli("recommend", "--model", str(path), "--all-users", "-k", "10", "--out", str(lists))
    expected = {}
    for line in lists.read_text().splitlines():
        user, items = line.split("\t")
        expected[user] = items.split(",")
    m = siamrec.load(path)
    items, _ = m.recommend(m.user_ids, k=10)
    assert len(expected) == len(m.user_ids) == 943
    for u, row in zip(m.user_ids, items):
        assert [str(i) for i in row] == expected[str(u)]
