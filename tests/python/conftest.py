"""Fixtures of the Python module's tests (run by ctest: PYTHONPATH=build/python, SIAMREC_CLI, SIAMREC_DATA_DIR)."""
import os
import subprocess

import pytest

import siamrec

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = os.path.join(SOURCE_DIR, "examples", "configs")


def have_dataset(name):
    d = os.environ.get("SIAMREC_DATA_DIR", "")
    return bool(d) and os.path.isdir(os.path.join(d, name))


needs_ml100k = pytest.mark.skipif(not have_dataset("ml-100k"), reason="ml-100k not in $SIAMREC_DATA_DIR")


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("SIAMREC_CLI", os.path.join(SOURCE_DIR, "build", "siamrec"))
    if not os.path.exists(path):
        pytest.skip(f"siamrec CLI not built at {path}")

    def run(*args, check=True):
        r = subprocess.run([path, "-q", *args], capture_output=True, text=True, timeout=600)
        if check and r.returncode != 0:
            raise AssertionError(f"siamrec {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    return run


@pytest.fixture(scope="session")
def ml100k():
    if not have_dataset("ml-100k"):
        pytest.skip("ml-100k not in $SIAMREC_DATA_DIR")
    return siamrec.Dataset.load("ml-100k", split="ua")


# A small CML config: the examples' ml100k-cml.yaml, few epochs, no early stopping or refit.
SMALL = {
    "train.epochs": 2,
    "train.valid_share": 0,
    "train.refit": False,
}


def small_model(**extra):
    return siamrec.Model(os.path.join(CONFIGS, "ml100k-cml.yaml"), **{**SMALL, **extra})


@pytest.fixture(scope="session")
def fitted(ml100k):
    m = small_model()
    m.fit(ml100k.train, progress=False, threads=2)
    return m
