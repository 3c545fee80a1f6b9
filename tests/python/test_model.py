"""siamrec.Model: configs, fit, recommend / similar / score / embeddings, evaluate, files, bad input."""
import gc
import os

import numpy as np
import pytest

import siamrec
from conftest import CONFIGS, SMALL, needs_ml100k, small_model


def toy():
    # Two taste groups: users 0-99 like items 0-9, users 100-199 items 10-19.
    rng = np.random.default_rng(1)
    users, items = [], []
    for u in range(200):
        base = 0 if u < 100 else 10
        for i in rng.choice(10, 6, replace=False):
            users.append(u)
            items.append(base + i)
    return siamrec.Dataset.from_arrays(users, items, name="toy")


TOY = {
    "model": {"type": "siamese"},
    "tower": {"type": "id", "dim": 4},
    "comparator": {"type": "dot"},
    "loss": {"type": "bpr"},
    "sampler": {"builder": "user_item", "type": "uniform", "negatives": 4},
    "train": {"optimizer": "adagrad", "lr": 0.1, "epochs": 20, "batch_size": 64, "valid_share": 0, "seed": 7},
}


def test_config_as_dict_yaml_text_or_path_resolves_the_same():
    path = os.path.join(CONFIGS, "ml100k-cml.yaml")
    with open(path) as f:
        text = f.read()
    a = siamrec.Model(path, **{"train.lr": 0.003})
    b = siamrec.Model(text, train__lr=0.003)
    assert a.config == b.config and "lr: 0.003" in a.config
    c = siamrec.Model(TOY)
    assert "type: bpr" in c.config and not c.fitted


@pytest.mark.parametrize(
    "config, overrides, error, words",
    [
        (TOY, {"train.lrr": 1}, ValueError, ["train.lrr"]),
        (TOY, {"train.epochs": "many"}, ValueError, ["train.epochs", "many"]),
        ({"model": {"type": "nosuch"}}, {}, ValueError, ["nosuch"]),
        ("does/not/exist.yaml", {}, FileNotFoundError, ["does/not/exist.yaml"]),
        (42, {}, ValueError, ["int"]),
    ],
)
def test_bad_configs_raise_naming_the_key(config, overrides, error, words):
    with pytest.raises(error) as e:
        siamrec.Model(config, **overrides)
    for w in words:
        assert w in str(e.value)


def test_fit_recommend_similar_score_on_toy_data():
    ds = toy()
    m = siamrec.Model(TOY)
    epochs = []
    m.fit(ds, progress=False, threads=1, callback=lambda e: epochs.append(e))
    assert [e["epoch"] for e in epochs] == list(range(1, 21)) and epochs[-1]["loss"] < epochs[0]["loss"]
    assert m.history == epochs
    items, scores = m.recommend([0, 125], k=4)  # each user has 4 unseen items of her group
    assert items.shape == (2, 4) and scores.shape == (2, 4) and items.dtype == np.int64
    assert items[0][0] < 10 and items[1][0] >= 10  # each group's own items first
    every, _ = m.recommend(np.arange(200), k=4)
    assert ((every >= 10) == (np.arange(200) >= 100)[:, None]).mean() >= 0.95  # measured 0.995
    assert np.all(np.diff(scores, axis=1) <= 0)
    seen = set(ds.to_pandas().query("user == 0")["item"])
    assert not seen & set(items[0].tolist())  # exclude_seen
    one_items, one_scores = m.recommend(0, k=4)
    np.testing.assert_array_equal(one_items, items[0])
    # A history of group-B items recommends group-B items.
    h_items, _ = m.recommend_from_history([[10, 11, 12]], k=3)
    assert all(i >= 10 for i in h_items[0]) and not {10, 11, 12} & set(h_items[0].tolist())
    s_items, _ = m.similar_items([3], k=4)
    assert 3 not in s_items[0] and sum(i < 10 for i in s_items[0]) >= 3
    # score equals the recommendation scores for the same pairs.
    np.testing.assert_allclose(m.score([0] * 4, items[0]), scores[0], rtol=1e-5)
    # Padding: more than the unseen items.
    pad_items, pad_scores = m.recommend(0, k=20)
    assert (pad_items == -1).sum() == 6 and np.isneginf(pad_scores[-6:]).all()


def test_embeddings_are_zero_copy_views_that_outlive_the_model():
    m = siamrec.Model(TOY, **{"train.epochs": 2})
    m.fit(toy(), progress=False, threads=1)
    e1, e2 = m.item_embeddings, m.item_embeddings
    assert e1.shape == (20, 4) and e1.dtype == np.float32
    assert np.shares_memory(e1, e2) and not e1.flags.writeable
    u = m.user_embeddings
    np.testing.assert_allclose(m.score([0], [3])[0], float(u[0] @ e1[3]), rtol=1e-4)
    kept = e1.copy()
    m.fit(toy(), progress=False, threads=1)  # new weights; the old view keeps the old ones
    del m
    gc.collect()
    np.testing.assert_array_equal(e1, kept)


def test_bad_ids_and_arguments_raise_value_errors():
    m = siamrec.Model(TOY, **{"train.epochs": 1})
    with pytest.raises(siamrec.Error, match="not fitted"):
        m.recommend(0)
    m.fit(toy(), progress=False, threads=1)
    for bad, word in [(999, "'999'"), (-5, "'-5'"), ("u0", "'u0'")]:
        with pytest.raises(ValueError, match=word):
            m.recommend(bad)
    with pytest.raises(ValueError, match="users\\[1\\]"):
        m.recommend([0, 4000])
    with pytest.raises(ValueError, match="k must be >= 1"):
        m.recommend(0, k=0)
    with pytest.raises(ValueError, match="3 users but 2 items"):
        m._core.score(np.array([0, 1, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="item '77'"):
        m.score([0], [77])
    with pytest.raises(siamrec.DataError, match="users\\[0\\]"):
        m.recommend(np.array([1.5]))
    with pytest.raises(ValueError, match="histories\\[0\\]"):
        m.recommend_from_history([5], k=3)
    with pytest.raises(ValueError, match="train must be a siamrec.Dataset"):
        m.fit([1, 2, 3])
    items, scores = m.recommend([], k=3)
    assert items.shape == (0, 3)


def test_save_and_load_give_identical_scores(tmp_path):
    m = siamrec.Model(TOY, **{"train.epochs": 3})
    m.fit(toy(), progress=False, threads=1)
    path = tmp_path / "toy.model"
    m.save(path)
    back = siamrec.load(path)
    assert back.type == "siamese" and back.config == m.config
    a, sa = m.recommend(list(range(200)), k=7)
    b, sb = back.recommend(list(range(200)), k=7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    with pytest.raises(FileNotFoundError, match="nope.model"):
        siamrec.load(tmp_path / "nope.model")
    corrupt = tmp_path / "corrupt.model"
    data = path.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    with pytest.raises(siamrec.Error, match="corrupt.model"):
        siamrec.load(corrupt)


@needs_ml100k
def test_evaluate_returns_metrics_with_protocol_and_per_user_arrays(fitted, ml100k):
    ev = fitted.evaluate(ml100k.test)
    assert isinstance(ev, dict) and ev.kind == "ranking"
    assert "candidates: full ranking over all 1682 items" in ev.protocol and "exclusions: train items" in ev.protocol
    assert 0 < ev["ndcg@10"] < 1 and len(ev.users) == 943
    assert ev.per_user["ndcg@10"].shape == (943,)
    assert abs(ev.per_user["ndcg@10"].mean() - ev["ndcg@10"]) < 1e-9
    sampled = fitted.evaluate(ml100k.test, candidates="uniform:100", k=[10])
    assert "100" in sampled.protocol and set(k for k in sampled if "@" in k and "@10" not in k) == set()
    assert sampled["hr@10"] > ev["hr@10"]  # 101 candidates are easier than 1682
    with pytest.raises(ValueError, match="training part"):
        fitted.evaluate(ml100k.train)
    with pytest.raises(ValueError, match="eval.nosuch"):
        fitted.evaluate(ml100k.test, nosuch=1)
    other = siamrec.Dataset.from_arrays([1, 2], [3, 4])
    with pytest.raises(ValueError, match="other data"):
        fitted.evaluate(other)


@needs_ml100k
def test_pop_baseline_and_titles(ml100k):
    pop = siamrec.Model({"model": {"type": "pop"}})
    pop.fit(ml100k.train, progress=False)
    items, _ = pop.recommend(1, k=3)
    assert pop.item_title(items[0]) != ""
    ev = pop.evaluate(ml100k.test)
    assert 0 < ev["ndcg@10"] < 0.2


def test_type_stubs_cover_the_public_api():
    import ast
    import inspect

    stub = ast.parse(open(os.path.join(os.path.dirname(siamrec.__file__), "__init__.pyi")).read())
    names = {n.name for n in stub.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    assert set(siamrec.__all__) <= names, set(siamrec.__all__) - names
    for cls in (siamrec.Dataset, siamrec.Model):
        node = next(n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
        stubbed = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        public = {k for k, v in vars(cls).items() if not k.startswith("_") and (callable(v) or isinstance(v, (property, staticmethod)))}
        assert public <= stubbed, f"{cls.__name__}: not in the stub: {public - stubbed}"
        for k in public:  # and every public member has a docstring or is a plain property
            assert inspect.getdoc(getattr(cls, k)) is not None or isinstance(vars(cls)[k], property), k


def test_recommendations_exclude_what_the_evaluation_excludes():
    # A split with a validation part: the default leaves validation items out, as the evaluation does.
    rng = np.random.default_rng(5)
    users = np.repeat(np.arange(60), 10)
    items = rng.integers(0, 30, users.size)
    ds = siamrec.Dataset.from_arrays(users, items, name="toy")
    s = ds.split("ratio", ratios=[0.6, 0.2, 0.2], seed=1)
    m = siamrec.Model({"model": {"type": "pop"}})
    m.fit(s.train, s.valid, progress=False)
    assert m.exclude == "train+valid"
    valid = s.valid.to_pandas()
    with_valid = {(u, i) for u, i in zip(valid["user"], valid["item"])}
    top, _ = m.recommend(np.arange(60), k=5)
    assert not any((u, i) in with_valid for u in range(60) for i in top[u])
    m.exclude = "train"
    top2, _ = m.recommend(np.arange(60), k=5)
    assert any((u, i) in with_valid for u in range(60) for i in top2[u])
    with pytest.raises(ValueError, match="train\\+valid, train, none"):
        m.exclude = "everything"
