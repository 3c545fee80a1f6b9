"""siamrec.Dataset: loading, pandas / numpy / scipy conversions, ids both ways, splits, bad input."""
import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import siamrec
from conftest import needs_ml100k


def frame():
    # String ids, unsorted rows, a duplicated (user, item) row, ratings and timestamps.
    return pd.DataFrame(
        {
            "user": ["u3", "u1", "u2", "u1", "u3", "u2", "u1"],
            "item": ["b", "a", "c", "c", "a", "b", "a"],
            "stars": [4.0, 5.0, 3.0, 2.0, 1.0, 5.0, 4.0],
            "ts": [30, 10, 20, 15, 35, 25, 40],
        }
    )


def test_pandas_matches_the_delimited_reader_on_the_same_csv(tmp_path):
    df = frame()
    csv = tmp_path / "log.csv"
    df.to_csv(csv, index=False)
    from_file = siamrec.Dataset.from_config(
        {
            "data": {
                "path": str(csv),
                "delimiter": "comma",
                "header": True,
                "user_col": "user",
                "item_col": "item",
                "rating_col": "stars",
                "time_col": "ts",
            }
        }
    )
    from_df = siamrec.Dataset.from_pandas(df, user="user", item="item", rating="stars", timestamp="ts")
    assert (from_df.n_users, from_df.n_items, from_df.size) == (3, 3, 7)
    assert list(from_df.user_ids) == list(from_file.user_ids) == ["u1", "u2", "u3"]
    assert list(from_df.item_ids) == list(from_file.item_ids) == ["a", "b", "c"]
    a, b = from_df.columns(), from_file.columns()
    for col in ("user", "item", "rating", "time"):
        np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    # Original ids come back through to_pandas, row for row.
    back = from_df.to_pandas()
    key = lambda d: sorted(zip(d["user"], d["item"], d["rating"], d["timestamp"]))
    assert key(back) == key(df.rename(columns={"stars": "rating", "ts": "timestamp"}))


def test_integer_ids_stay_integers_and_sort_numerically():
    ds = siamrec.Dataset.from_arrays(np.array([10, 2, 33, 2]), [7, 100, 7, 8])
    assert ds.user_ids.dtype == np.int64 and list(ds.user_ids) == [2, 10, 33]
    assert list(ds.item_ids) == [7, 8, 100]
    # Columns are read-only views (no copy) that outlive the Dataset object.
    cols = ds.columns()
    del ds
    assert not cols["user"].flags.writeable
    assert cols["user"].tolist() == [1, 0, 2, 0]


def test_from_csr_keeps_row_and_column_numbers_as_ids():
    m = sp.csr_matrix(np.array([[0, 3, 0, 0], [5, 0, 0, 1], [0, 0, 0, 0], [0, 2, 0, 0]], dtype=np.float32))
    ds = siamrec.Dataset.from_csr(m)
    assert list(ds.user_ids) == [0, 1, 3]  # row 2 has no entries
    assert list(ds.item_ids) == [0, 1, 3]
    df = ds.to_pandas()
    got = sorted(zip(df["user"], df["item"], df["rating"]))
    assert got == [(0, 1, 3.0), (1, 0, 5.0), (1, 3, 1.0), (3, 1, 2.0)]
    implicit = siamrec.Dataset.from_csr(sp.csr_matrix(np.eye(3)))
    assert "rating" not in implicit.columns()


def test_datetime_timestamps_are_seconds():
    ts = pd.to_datetime(["2020-01-01", "2020-01-02"])
    ds = siamrec.Dataset.from_arrays(["a", "b"], ["x", "y"], timestamps=ts.to_numpy())
    assert list(ds.columns()["time"]) == [1577836800, 1577923200]


@pytest.mark.parametrize(
    "users, items, ratings, error, words",
    [
        ([1, 2, 3], [1, 2], None, siamrec.DataError, ["3 user ids but 2 item ids"]),
        ([], [], None, siamrec.DataError, ["no interactions"]),
        ([1, 2, 3], [1, 2, 3], [1.0, float("nan"), 2.0], siamrec.DataError, ["row 1", "rating"]),
        (np.array(["a", None, "c"], dtype=object), ["x", "y", "z"], None, siamrec.DataError, ["users[1]", "None"]),
        (np.array([1.0, 1.5]), [1, 2], None, siamrec.DataError, ["users[1]", "not an id"]),
        (np.array([1.0, np.nan]), [1, 2], None, siamrec.DataError, ["users[1]", "missing value"]),
        (np.array([True, False]), [1, 2], None, siamrec.DataError, ["booleans are not ids"]),
        (np.zeros((2, 2), dtype=np.int64), [1, 2], None, siamrec.DataError, ["one-dimensional"]),
        (["a", ""], ["x", "y"], None, siamrec.DataError, ["users[1]", "empty id"]),
        ([1, 2], [1, 2], ["good", "bad"], siamrec.DataError, ["ratings must be numbers"]),
        ([1, 2], [1, 2], [1.0], siamrec.DataError, ["1 ratings for 2 interactions"]),
    ],
)
def test_bad_arrays_raise_naming_the_field(users, items, ratings, error, words):
    with pytest.raises(error) as e:
        siamrec.Dataset.from_arrays(users, items, ratings)
    for w in words:
        assert w in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)  # DataError is a ValueError too


def test_bad_frames_and_files():
    with pytest.raises(ValueError, match="'itemId'"):
        siamrec.Dataset.from_pandas(frame(), user="user", item="itemId")
    with pytest.raises(siamrec.DataError, match="scipy.sparse"):
        siamrec.Dataset.from_csr(np.eye(2))
    with pytest.raises(siamrec.DataError, match="timestamps"):
        siamrec.Dataset.from_arrays([1], [2], timestamps=["yesterday"])


def test_missing_dataset_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        siamrec.Dataset.load("ml-100k", data_dir=str(tmp_path), use_cache=False)
    assert isinstance(e.value, siamrec.MissingDataError)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(ValueError, match="ml-nonexistent"):
        siamrec.Dataset.load("ml-nonexistent")


def test_malformed_file_is_a_data_error_naming_the_line(tmp_path):
    f = tmp_path / "bad.tsv"
    f.write_text("1\t2\t5\n1\tx\n")
    with pytest.raises(siamrec.DataError, match=r"bad.tsv:2"):
        siamrec.Dataset.from_config({"data": {"path": str(f), "rating_col": "2"}})


def test_splits_by_type_and_by_name():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 3000)
    items = rng.integers(0, 200, 3000)
    ds = siamrec.Dataset.from_arrays(users, items)
    s = ds.split("ratio", ratios=[0.8, 0.1, 0.1], seed=3)
    assert s.train.size + s.valid.size + s.test.size == ds.size
    assert s.test.size > 0 and s.valid.size > 0 and s.train.size > s.test.size
    assert "ratio" in s.protocol and "seed 3" in s.protocol
    again = ds.split("ratio", ratios=[0.8, 0.1, 0.1], seed=3)
    np.testing.assert_array_equal(s.test.columns()["item"], again.test.columns()["item"])
    loo = ds.split("loo")
    assert loo.test.size == ds.n_users
    with pytest.raises(ValueError, match="split.name 'halves': dataset 'arrays' ships no fixed splits"):
        ds.split("halves")
    with pytest.raises(ValueError, match="split.ratios must sum to 1"):
        ds.split("ratio", ratios=[0.5, 0.1, 0.1])


@needs_ml100k
def test_registered_dataset_with_its_shipped_split(ml100k):
    assert (ml100k.train.size, ml100k.test.size) == (90570, 9430)
    assert ml100k.train.n_users == 943 and ml100k.train.n_items == 1682
    assert "fixed 'ua'" in ml100k.protocol
    assert ml100k.train.item_titles()[0].startswith("Toy Story")
