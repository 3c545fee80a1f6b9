"""siamrec.report: the HTML report from Python (Evaluation.json files, a fit log, a model file)."""
import pytest

import siamrec
from test_model import TOY, toy


def test_report_of_a_fit_and_its_errors(tmp_path):
    ds = toy()
    train, _, test = ds.split("ratio", ratios=[0.8, 0, 0.2], seed=1)
    m = siamrec.Model(TOY)
    log = tmp_path / "fit.jsonl"
    m.fit(train, progress=False, threads=1, log=str(log))
    ev = m.evaluate(test)
    run = tmp_path / "run.json"
    run.write_text(ev.json)
    m.save(tmp_path / "toy.model")
    out = tmp_path / "r.html"
    siamrec.report([run], out, labels=["toy"], logs=[log], model=tmp_path / "toy.model", map="pca", bootstrap=100)
    html = out.read_text()
    for s in ("protocol", "metrics", "charts", "per-user", "training", "beyond", "embeddings"):
        assert f'<section id="{s}">' in html
    assert ">toy</th>" in html and "PCA of item embeddings" in html
    assert f'{ev.get("ndcg@10"):.4f}' in html
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(siamrec.DataError, match="bad.json"):
        siamrec.report([bad], tmp_path / "x.html")
    with pytest.raises(siamrec.Error, match="umap"):
        siamrec.report([run], tmp_path / "x.html", map="umap")


def test_report_of_a_tune_study(tmp_path):
    study = tmp_path / "study.jsonl"
    head = ('{"study":1,"config":"c.yaml","space":"s.yaml","sampler":"tpe","pruner":"none",'
            '"objectives":["ndcg@10"],"seed":1,"validation":"carved"}\n')
    trial = ('{{"trial":{},"seed":1,"params":{{"train.lr":"{}"}},"status":"complete","epochs":5,'
             '"seconds":0.5,"metrics":{{}},"objectives":[{}],"rungs":{{}}}}\n')
    study.write_text(head + trial.format(1, "0.01", 0.21) + trial.format(2, "0.1", 0.27))
    out = tmp_path / "s.html"
    siamrec.report([], out, studies=[study])
    html = out.read_text()
    assert '<section id="tuning">' in html and '<section id="metrics">' not in html
    assert "<td>2</td><td class=\"text\">complete, best</td>" in html
    study.write_text("not a study\n")
    with pytest.raises(siamrec.DataError, match="study.jsonl:1"):
        siamrec.report([], out, studies=[study])
    with pytest.raises(siamrec.Error, match="study file"):
        siamrec.report([], out)
