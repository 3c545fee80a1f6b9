"""Fixtures of the report tests: real runs on ML-100K written by the siamrec CLI (SIAMREC_CLI), once per session."""
import json
import os
import subprocess

import pytest

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = os.path.join(SOURCE_DIR, "examples", "configs")


def have_ml100k():
    d = os.environ.get("SIAMREC_DATA_DIR", "")
    return bool(d) and os.path.isdir(os.path.join(d, "ml-100k"))


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("SIAMREC_CLI", os.path.join(SOURCE_DIR, "build", "siamrec"))
    if not os.path.exists(path):
        pytest.skip(f"siamrec CLI not built at {path}")

    def run(*args, check=True):
        r = subprocess.run([path, "-q", "--threads", "2", *args], capture_output=True, text=True, timeout=900)
        if check and r.returncode != 0:
            raise AssertionError(f"siamrec {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    return run


@pytest.fixture(scope="session")
def baseline_runs(cli, tmp_path_factory):
    """Pop and ItemKNN on ML-100K ua (a few seconds)."""
    if not have_ml100k():
        if os.environ.get("CI") == "true":
            pytest.fail("ml-100k not in $SIAMREC_DATA_DIR")
        pytest.skip("ml-100k not in $SIAMREC_DATA_DIR")
    d = tmp_path_factory.mktemp("runs")
    out = {"dir": d}
    for name in ("ml100k-pop", "ml100k-itemknn"):
        cli("train", "--config", os.path.join(CONFIGS, name + ".yaml"), "--out", str(d / (name + ".model")),
            "--json", str(d / (name + ".json")))
        out[name] = d / (name + ".json")
    return out


@pytest.fixture(scope="session")
def runs(cli, baseline_runs):
    """The baselines and a short CML run (with its training log, refit pass and report) on ML-100K ua."""
    out = dict(baseline_runs)
    d = out["dir"]
    cli("train", "--config", os.path.join(CONFIGS, "ml100k-cml.yaml"), "--set", "train.epochs=4",
        "--set", "train.patience=4", "--out", str(d / "cml.model"), "--json", str(d / "cml.json"),
        "--log", str(d / "cml.jsonl"), "--report", str(d / "train-report.html"))
    out["cml"] = d / "cml.json"
    out["log"] = d / "cml.jsonl"
    out["model"] = d / "cml.model"
    out["train_report"] = d / "train-report.html"
    out["json"] = {k: json.loads(v.read_text()) for k, v in out.items() if str(v).endswith(".json")}
    return out
