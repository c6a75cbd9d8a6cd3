"""Integration: weak labelling of real, unlabelled articles (New York Times, Feb-Jul 2022,
read from <repo root>/../shared/data, never copied into the repository)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.conftest import ROOT
from tests.test_labeling_cli import run

NYT = ROOT.parent / "shared" / "data" / "nyt-russia-ukraine" / "articles.csv"


def test_nyt_articles_get_a_weak_dataset_and_a_report(tmp_path: Path):
    assert NYT.exists(), f"{NYT}: the shared data is missing"
    n_rows = len(pd.read_csv(NYT))
    proc = run(
        tmp_path,
        "newsclf-dataset",
        "source=csv",
        f"source.path={NYT}",
        "source.id_column=null",  # no id column: ids from the content
        "source.date_column=published",
        "annotations.path=null",  # no gold labels at all
        "log_to_mlflow=false",
    )
    assert "weak labels: coverage" in proc.stdout
    for task in ("topic", "stance"):
        folder = tmp_path / "data/datasets" / task
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["n_input"] == n_rows == manifest["n_kept"] + manifest["n_rejected"]
        assert manifest["n_gold"] == 0 and manifest["n_weak"] > 0
        assert manifest["rows"]["validation"] == manifest["rows"]["test"] == 0
        train = pd.read_parquet(folder / "parquet/train.parquet")
        assert set(train["label_source"]) == {"weak"} and len(train) == manifest["n_weak"]
        assert train["label_confidence"].between(0.7, 1).all()
        report = json.loads((folder / "labeling_report.json").read_text())
        assert report["n_gold"] == 0 and report["weak"]["accuracy"] is None
        unlabelled = report["unlabelled"]
        # nothing lost: every kept article is in the training split or counted with a reason
        assert manifest["n_weak"] + unlabelled["n_unlabelled"] == manifest["n_kept"]
        assert sum(unlabelled["by_reason"].values()) == unlabelled["n_unlabelled"]
        assert "## Label distribution" in (folder / "labeling_report.md").read_text()
    topic = json.loads((tmp_path / "data/datasets/topic/labeling_report.json").read_text())
    stance = json.loads((tmp_path / "data/datasets/stance/labeling_report.json").read_text())
    # news about the war: most articles get a topic, and several topics occur
    assert topic["weak"]["coverage"] > 0.7
    assert sum(d["weak"] > 0 for d in topic["label_distribution"].values()) >= 4
    # most articles mention the Russian state or its forces; pro-Russian votes stay rare
    assert stance["unlabelled"]["by_reason"].get("no_target", 0) < 0.2 * stance["n_articles"]
    dist = stance["label_distribution"]
    assert dist["pro_russia"]["weak"] < dist["anti_russia"]["weak"] + dist["neutral"]["weak"]
