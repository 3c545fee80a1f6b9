"""examples/python/quickstart.py runs from a DataFrame to plots (few epochs) and CML beats Pop."""
import os
import subprocess
import sys

from conftest import SOURCE_DIR, needs_ml100k


@needs_ml100k
def test_quickstart_trains_evaluates_and_plots(tmp_path):
    r = subprocess.run(
        [sys.executable, os.path.join(SOURCE_DIR, "examples", "python", "quickstart.py"), "--out", str(tmp_path),
         "--epochs", "8"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "candidates: full ranking over all 1682 items" in r.stdout
    row = next(line for line in r.stdout.splitlines() if line.startswith("ndcg@10"))
    cml, pop = map(float, row.split()[1:])
    assert cml > pop, row
    assert "top-10 for user 1:" in r.stdout and "(19" in r.stdout  # titles with years
    for png in ("quickstart_metrics.png", "quickstart_training.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000
