"""The report opened in headless Chromium: a screenshot that is not blank, and no console errors."""
import os
import shutil
import subprocess

import pytest


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (scripts/install-deps.sh installs it)")
    pytest.skip("chromium is not installed")


def test_screenshot_is_not_blank_and_console_is_clean(cli, baseline_runs, tmp_path):
    from PIL import Image, ImageStat

    browser = chromium()
    html = tmp_path / "report.html"
    log = tmp_path / "train.jsonl"  # a small log of the format `train --log` writes
    log.write_text("".join(
        f'{{"epoch":{e},"phase":"fit","loss":{1 / e:.4f},"seconds":0.5,"tuples_per_s":{90000 + e},'
        f'"emb_mean_norm":{0.5 + e / 20},"emb_var":0.01,"valid":{{"ndcg@10":{0.2 + e / 100}}}}}\n' for e in range(1, 9)))
    cli("report", str(baseline_runs["ml100k-pop"]), str(baseline_runs["ml100k-itemknn"]), "--log", str(log),
        "--model", str(baseline_runs["dir"] / "ml100k-itemknn.model"), "--bootstrap", "200", "--out", str(html))
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1280,2000", f"--screenshot={shot}", html.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    assert not console, console
    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2000)
    stat = ImageStat.Stat(img)
    assert stat.var[0] > 200, f"the screenshot looks blank (pixel variance {stat.var[0]:.1f})"
    # Dark pixels (text, axes, bars) are a real share of the page, not a stray line.
    hist = img.histogram()
    dark = sum(hist[:128]) / (img.size[0] * img.size[1])
    assert dark > 0.01, dark
