"""siamrec report: the HTML of real runs parsed and checked (well-formed, sections, chart element
counts, table numbers equal to the JSON's, no URL), and its errors."""
import json
import os

import html5lib
import lxml.html
import pytest

SECTIONS = ["protocol", "metrics", "charts", "per-user", "training", "beyond", "embeddings"]


def parse(path):
    text = open(path, encoding="utf-8").read()
    # Well-formed HTML5: the strict parser raises on any parse error.
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
    return text, lxml.html.fromstring(text)


@pytest.fixture(scope="module")
def report(cli, runs):
    out = runs["dir"] / "report.html"
    cli("report", str(runs["ml100k-pop"]), str(runs["ml100k-itemknn"]), str(runs["cml"]), "--labels",
        "Pop,ItemKNN,CML", "--log", str(runs["log"]), "--log-labels", "CML", "--model", str(runs["model"]),
        "--max-points", "600", "--out", str(out))
    return parse(out)


def svgs(doc, section):
    return doc.xpath(f'//section[@id="{section}"]//svg')


def count(svg, cls):
    return len(svg.xpath(f'.//*[@class="{cls}"]'))


def test_sections_present_and_no_url_or_script(report):
    text, doc = report
    for s in SECTIONS:
        assert doc.xpath(f'//section[@id="{s}"]/h2'), s
    assert "http://" not in text and "https://" not in text
    assert not doc.xpath("//script") and not doc.xpath("//link") and not doc.xpath("//img")


def test_table_numbers_equal_the_json(report, runs):
    _, doc = report
    labels = {"Pop": "ml100k-pop", "ItemKNN": "ml100k-itemknn", "CML": "cml"}
    cells = doc.xpath('//table[@class="metrics"]//td[@data-metric]')
    metrics = runs["json"]["cml"]["metrics"]
    assert len(cells) == 3 * len(metrics)
    for td in cells:
        j = runs["json"][labels[td.get("data-run")]]["metrics"].get(td.get("data-metric"))
        shown = td.xpath('./span[@class="v"]')[0].text
        if j is None:
            assert shown == "–"
        else:
            assert shown == f"{j:.4f}", (td.get("data-metric"), td.get("data-run"))
    # Best per row: the highest NDCG@10, the lowest pop_lift@10 (popularity bias).
    for metric, pick in (("ndcg@10", max), ("pop_lift@10", min)):
        values = {lab: runs["json"][key]["metrics"][metric] for lab, key in labels.items()}
        best = doc.xpath(f'//td[@data-metric="{metric}"][@class="best"]')
        assert [b.get("data-run") for b in best] == [pick(values, key=values.get)]
    # Paired tests against the first run (Pop) for each later run and per-user metric.
    ps = doc.xpath('//td[@data-metric="ndcg@10"]//span[@class="p"]')
    assert len(ps) == 2 and all("p" in p.text_content() for p in ps)


def test_chart_element_counts(report, runs):
    _, doc = report
    metrics = runs["json"]["cml"]["metrics"]
    ks = sorted({int(m.split("@")[1]) for m in metrics if m.startswith("ndcg@")})
    charts = svgs(doc, "charts")
    assert len(charts) == len(ks)
    for svg, k in zip(charts, ks):
        n_cat = sum(1 for b in ("precision", "recall", "ndcg", "hr", "mrr", "map", "f1") if f"{b}@{k}" in metrics)
        assert count(svg, "bar") == 3 * n_cat
        assert count(svg, "whisker") == 3 * n_cat  # every accuracy metric has per-user values
    per_user = svgs(doc, "per-user")
    assert len(per_user) == 3  # a box plot and two scatters against Pop
    assert count(per_user[0], "box") == 3
    n_users = runs["json"]["cml"]["n_users"]
    for svg in per_user[1:]:
        assert count(svg, "point") == min(n_users, 600)
        assert count(svg, "diagonal") == 1
    training = svgs(doc, "training")
    assert len(training) == 5  # loss, validation, throughput, norm, variance
    assert count(training[0], "series-line") == 2  # the fit pass and its refit
    assert count(training[1], "series-line") == 1 and count(training[1], "marker") == 1
    beyond = svgs(doc, "beyond")
    assert len(beyond) == 5  # long tail, Lorenz, coverage, novelty, pop_lift
    assert count(beyond[0], "series-line") == 4  # catalogue + 3 runs
    assert count(beyond[1], "series-line") == 3
    assert count(beyond[2], "series-line") == 3
    emb = svgs(doc, "embeddings")
    assert len(emb) == 2  # PCA and t-SNE
    for svg in emb:
        assert count(svg, "point") == 600
    titles = emb[0].xpath('.//*[@class="point"]/title/text()')
    assert any("Star Wars" in t for t in titles)  # tooltips carry the titles


def test_training_log_marks_the_chosen_epoch(runs):
    lines = [json.loads(l) for l in open(runs["log"])]
    end = [l for l in lines if l.get("event") == "end" and l["phase"] == "fit"]
    assert len(end) == 1 and 1 <= end[0]["chosen_epoch"] <= 4
    assert {l["phase"] for l in lines if "epoch" in l} == {"fit", "refit"}


def test_train_report_writes_the_run_directly(runs):
    text, doc = parse(runs["train_report"])
    for s in SECTIONS:
        assert doc.xpath(f'//section[@id="{s}"]'), s
    assert len(svgs(doc, "training")) == 5
    assert len(svgs(doc, "embeddings")) == 2


def test_different_protocols_are_grouped_not_compared(cli, runs, tmp_path):
    sampled = tmp_path / "sampled.json"
    cli("evaluate", "--model", str(runs["model"]), "--set", "eval.candidates=uniform:100", "--json", str(sampled))
    out = tmp_path / "g.html"
    cli("report", str(runs["cml"]), str(sampled), "--out", str(out), "--bootstrap", "100")
    text, doc = parse(out)
    assert "2 different protocols" in text
    assert len(doc.xpath('//section[@id="metrics"]/h3')) == 2
    assert not doc.xpath('//span[@class="p"]')  # one run per group: nothing is paired
    assert not svgs(doc, "per-user")[0].xpath('.//*[@class="point"]')


def test_bad_inputs_are_refused(cli, runs, tmp_path):
    out = tmp_path / "r.html"
    r = cli("report", str(tmp_path / "absent.json"), "--out", str(out), check=False)
    assert r.returncode == 2 and "absent.json" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    r = cli("report", str(bad), "--out", str(out), check=False)
    assert r.returncode == 3 and "bad.json" in r.stderr
    log = tmp_path / "bad.jsonl"
    log.write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2}\n')
    r = cli("report", str(runs["cml"]), "--log", str(log), "--out", str(out), check=False)
    assert r.returncode == 3 and "bad.jsonl:2" in r.stderr and "loss" in r.stderr
    corrupt = tmp_path / "corrupt.model"
    corrupt.write_bytes(open(runs["model"], "rb").read()[:1000])
    r = cli("report", str(runs["cml"]), "--model", str(corrupt), "--out", str(out), check=False)
    assert r.returncode != 0 and "corrupt.model" in r.stderr
    assert not out.exists()  # nothing half-written
    r = cli("report", str(runs["cml"]), "--map", "umap", "--out", str(out), check=False)
    assert r.returncode == 2 and "umap" in r.stderr
