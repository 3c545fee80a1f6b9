"""Model.partial_fit: incremental updates from Python (new users and items, history, refusals)."""
import numpy as np
import pytest

import siamrec
from test_model import TOY, toy


def test_partial_fit_grows_the_model_and_recommends_new_ids():
    m = siamrec.Model(TOY)
    m.fit(toy(), progress=False, threads=1)
    before_users, before_items = m.n_users, m.n_items
    # A new user with group B's taste, and a new item taken by group-A users.
    users = [1000] * 5 + list(range(30))
    items = list(range(10, 15)) + [99] * 30
    new = siamrec.Dataset.from_arrays(users, items, name="day2")
    r = m.partial_fit(new, epochs=10, threads=1)
    assert r["new_users"] == 1 and r["new_items"] == 1 and r["new_interactions"] == 35
    assert m.n_users == before_users + 1 and m.n_items == before_items + 1
    assert len(m.updates) == 1 and m.updates[0]["source"].startswith("day2")
    recs, _ = m.recommend(1000, k=4)
    assert sum(10 <= i < 20 for i in recs) >= 3  # her group (B) items
    # The new item: group A users who did not take it rank it above group B's items on average.
    s_new, s_b = m.score([50] * 11, [99] + list(range(10, 20)))[:1], m.score([50] * 10, list(range(10, 20)))
    assert s_new[0] > s_b.mean()
    # Ids of another type than the model's are refused.
    with pytest.raises(siamrec.DataError, match="not an integer"):
        m.partial_fit(siamrec.Dataset.from_arrays(["x"], ["y"], name="words"))


def test_partial_fit_of_a_model_that_cannot_grow_raises_and_keeps_the_model():
    cfg = dict(TOY)
    cfg["sampler"] = dict(TOY.get("sampler", {}), builder="item_item")  # no time order in a model file
    cfg["train"] = dict(TOY["train"], engine="torch", epochs=2)
    m = siamrec.Model(cfg)
    m.fit(toy(), progress=False, threads=1)
    n = m.n_users
    new = siamrec.Dataset.from_arrays([7], [3], name="more")
    with pytest.raises(siamrec.ConfigError, match="sampler.builder is 'item_item'"):
        m.partial_fit(new)
    assert m.n_users == n and m.updates == []
