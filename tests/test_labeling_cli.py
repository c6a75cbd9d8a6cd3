"""End-to-end: newsclf-dataset with labelling rules, and the newsclf-annotate loop, run as the
console scripts against a temporary SQLite MLflow store."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.conftest import error_line, make_corpus
from tests.conftest import run_cli as run


@pytest.fixture(scope="module")
def partly_labelled(tmp_path_factory) -> Path:
    """A generated corpus where only every third article has gold labels."""
    root = tmp_path_factory.mktemp("weak")
    labels = make_corpus(root / "c", n_per_topic=9)
    rows = list(csv.DictReader(labels.open()))
    with (root / "gold.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[::3])
    run(
        root,
        "newsclf-dataset",
        f"source.path={root / 'c/articles'}",
        f"annotations.path={root / 'gold.csv'}",
        "~tasks.stance",
        "~labeling.stance",
        "output_dir=ds",
    )
    return root


def test_weak_labels_fill_train_and_report_is_beside_the_dataset(partly_labelled):
    folder = partly_labelled / "ds/topic"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["n_gold"] == 18 and manifest["n_weak"] > 20
    assert manifest["n_labelled"] == manifest["n_gold"] + manifest["n_weak"]
    assert manifest["n_labelled"] + manifest["n_unlabelled"] == manifest["n_kept"] == 54
    for split in ("validation", "test"):
        frame = pd.read_parquet(folder / f"parquet/{split}.parquet")
        assert set(frame["label_source"]) == {"gold"}
    train = pd.read_parquet(folder / "parquet/train.parquet")
    weak = train[train["label_source"] == "weak"]
    assert (weak["label_confidence"] >= 0.7).all() and len(weak) == manifest["n_weak"]
    report = json.loads((folder / "labeling_report.json").read_text())
    assert report["rules_file"] == "configs/labeling/topic.yaml"
    assert report["weak"]["n_train"] == manifest["n_weak"]
    # the generated articles are built from each topic's words: the rules get most right
    assert report["weak"]["accuracy"] > 0.8
    assert {r["rule"] for r in report["rules"]} >= {"military_lead", "dominant_topic"}
    md = (folder / "labeling_report.md").read_text()
    assert "## Rules" in md and "## Unlabelled" in md
    votes = pd.read_csv(folder / "votes.csv", keep_default_na=False)
    assert len(votes) == 54 and "dominant_topic" in votes.columns
    assert "label_confidence" in (folder / "README.md").read_text()


def test_dataset_run_logs_the_labelling_report(partly_labelled):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{partly_labelled / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("newsclf-topic")
    (dataset_run,) = client.search_runs([experiment.experiment_id])
    metrics = dataset_run.data.metrics
    assert metrics["n_weak"] > 20 and 0.8 < metrics["weak_accuracy"] <= 1
    assert "rule.dominant_topic.coverage" in metrics
    artifacts = {a.path for a in client.list_artifacts(dataset_run.info.run_id, "labeling")}
    assert {"labeling/labeling_report.md", "labeling/votes.csv", "labeling/rules.json"} <= artifacts


def test_weak_only_and_majority_options(partly_labelled, tmp_path):
    proc = run(
        tmp_path,
        "newsclf-dataset",
        f"source.path={partly_labelled / 'c/articles'}",
        f"annotations.path={partly_labelled / 'gold.csv'}",
        "~tasks.stance",  # its rules (labeling.stance) are then left unused, not an error
        "weak.gold_in_train=false",
        "weak.label_model=majority",
        "log_to_mlflow=false",
    )
    manifest = json.loads((tmp_path / "data/datasets/topic/manifest.json").read_text())
    assert manifest["weak"]["label_model"] == "majority"
    train = pd.read_parquet(tmp_path / "data/datasets/topic/parquet/train.parquet")
    assert set(train["label_source"]) == {"weak"}
    # weak-only: gold train articles are trained on their weak labels, and the count says so
    assert manifest["weak"]["n_train"] == manifest["n_weak"] == len(train) > 0
    # the summary says so too (it said "added to train", which the report's 0 contradicted)
    assert f"{len(train)} in train, which has weak labels only" in " ".join(proc.stdout.split())


def test_bad_rules_are_one_line_errors_naming_file_and_key(tmp_path):
    make_corpus(tmp_path / "c")
    base = [
        f"source.path={tmp_path / 'c/articles'}",
        f"annotations.path={tmp_path / 'c/labels.csv'}",
    ]

    def dataset(*args: str) -> str:
        return error_line(
            run(tmp_path, "newsclf-dataset", "log_to_mlflow=false", *base, *args, ok=False)
        )

    msg = dataset("labeling.topic.rules.military_lead.label=militry")
    assert msg.endswith(
        "configs/labeling/topic.yaml and the command line: rules.military_lead.label: unknown "
        "topic label 'militry' (allowed: diplomacy, military, economy, cyber_disinfo, "
        "human_rights, other)"
    )
    msg = dataset("labeling.stance.targets=[]")
    # the file's key, changed on the command line: both named (the file alone was named)
    assert "configs/labeling/stance.yaml and the command line: targets: empty target list" in msg
    # a source rule the command line adds is not blamed on the file (it was)
    msg = dataset("+labeling.topic.rules.src={type:source,column:outlet,values:{RT:other}}")
    assert "the command line (labeling.topic): rules.src.column: the articles have no column" in msg
    msg = dataset("+labeling.topic.rules.x={type:regex,label:other,patterns:['(oops']}")
    # a rule the command line adds is not looked for in the config file
    assert "the command line (labeling.topic): rules.x.patterns[0]: invalid regex '(oops'" in msg
    msg = dataset("+labeling.topic.rules.clf={type:model,uri:'models:/no-such@champion'}")
    assert "command line (labeling.topic): rules.clf.uri: model models:/no-such@champion" in msg
    # a rules file of the user's own, in their config folder, is named by its path
    own = tmp_path / "my_configs/labeling"
    own.mkdir(parents=True)
    # a file the command does not choose is Hydra's business (it never reads it)
    (own / "unused.yaml").write_text("a: 1\n---\nb: 2\n")
    (own / "mine.yaml").write_text(
        "rules:\n  r: {type: keywords, label: sports, terms: [football]}\n", encoding="utf-8"
    )
    proc = run(
        tmp_path,
        "newsclf-dataset",
        "--config-dir",
        str(tmp_path / "my_configs"),
        "labeling@labeling.topic=mine",
        "log_to_mlflow=false",
        *base,
        ok=False,
    )
    assert f"{own / 'mine.yaml'}: rules.r.label: unknown topic label 'sports'" in error_line(proc)
    # a file that is no YAML was a 100-line parser traceback while Hydra composed (exit 1)
    (own / "broken.yaml").write_text("rules:\n  r: {type: keywords, terms: [gas, oil\n")
    for option in (["--config-dir", str(tmp_path / "my_configs")], [f"-cd={own.parent}"]):
        proc = run(
            tmp_path, "newsclf-dataset", *option, "labeling@labeling.topic=broken", *base, ok=False
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip() == (
            f"newsclf-dataset: error: {own / 'broken.yaml'}: not valid YAML (while parsing a "
            "flow sequence: expected ',' or ']', but got '<stream end>' at line 3, column 1)"
        )


def test_annotation_loop_export_label_rebuild(partly_labelled, tmp_path):
    root = partly_labelled
    common = [f"source.path={root / 'c/articles'}", "~tasks.stance", "~labeling.stance"]
    mine = tmp_path / "my_configs"  # the user's config folder: the rebuild needs it too
    mine.mkdir()
    first = run(
        tmp_path,
        "newsclf-annotate",
        "--config-dir",
        str(mine),
        *common,
        "strategy=conflict",
        "k=5",
        f"annotations.path={root / 'gold.csv'}",
        # a careless rule that calls everything with "the" sport: it conflicts with the others
        "+labeling.topic.rules.careless={type:keywords,label:other,terms:[the]}",
    )
    export = tmp_path / "annotate/next.csv"
    with export.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["article_id", "topic"]  # exactly what the annotations file reads back
    assert len(rows) == 6 and all(r[1] == "" for r in rows[1:])
    gold_ids = {r["article_id"] for r in csv.DictReader((root / "gold.csv").open())}
    assert not {r[0] for r in rows[1:]} & gold_ids  # only articles without gold are proposed
    context = pd.read_csv(tmp_path / "annotate/next.context.csv")
    assert list(context["article_id"]) == [r[0] for r in rows[1:]]
    assert context["score"].is_monotonic_decreasing and (context["score"] > 0.5).all()
    assert context["topic"].str.contains("other:1").all()  # the careless rule's vote
    # the annotator fills in labels (the generated ids start with the topic) ...
    filled = [rows[0]] + [[aid, aid.rsplit("_", 1)[0]] for aid, _ in rows[1:]]
    with export.open("w", newline="") as fh:
        csv.writer(fh).writerows(filled)
    # ... a second export refuses to overwrite it (output.overwrite=no is no "yes": it was
    # bool("no"), which replaced the labels typed in with blank rows) ...
    proc = run(tmp_path, "newsclf-annotate", *common, "strategy=conflict", ok=False)
    assert "next.csv: already exists" in error_line(proc)
    for bad, line in (
        ("output.overwrite=no", "output.overwrite: 'no' is not true or false"),
        ("k=abc", "k: 'abc' is not a positive integer"),
        ("k=2.7", "k: 2.7 is not a positive integer"),
    ):
        proc = run(tmp_path, "newsclf-annotate", *common, "strategy=conflict", bad, ok=False)
        assert error_line(proc) == f"newsclf-annotate: error: {line}"
    with export.open(newline="") as fh:
        assert list(csv.reader(fh)) == filled
    # ... and the rebuild the export printed reads both files: five more gold labels (it said
    # "annotations.path=[<your labels>,...]" without the source, so the articles were not found)
    (line,) = [x for x in first.stdout.splitlines() if x.startswith("  then: ")]
    command = shlex.split(line.removeprefix("  then: "))
    assert command == [
        "newsclf-dataset", "--config-dir", str(mine), *common,
        "+labeling.topic.rules.careless={type:keywords,label:other,terms:[the]}",
        f"annotations.path=['{root / 'gold.csv'}','annotate/next.csv']",
    ]  # fmt: skip
    run(tmp_path, *command, "log_to_mlflow=false")
    manifest = json.loads((tmp_path / "data/datasets/topic/manifest.json").read_text())
    assert manifest["n_gold"] == 18 + 5


def test_annotate_with_labels_of_other_sources_errs_or_skips_them(partly_labelled, tmp_path):
    """One labels file for several sources: newsclf-annotate stops with a hint, or skips the
    annotations of articles this source lacks, as newsclf-dataset does, and its rebuild
    command keeps the setting (the rebuild would stop on them otherwise)."""
    root = partly_labelled
    labels = tmp_path / "all.csv"
    gold = (root / "gold.csv").read_text().splitlines()
    labels.write_text("\n".join([*gold, "elsewhere-1,economy,neutral"]) + "\n")
    common = [
        f"source.path={root / 'c/articles'}", "~tasks.stance", "~labeling.stance",
        "strategy=conflict", "k=3", f"annotations.path={labels}",
    ]  # fmt: skip
    line = error_line(run(tmp_path, "newsclf-annotate", *common, ok=False))
    assert line.endswith(
        f"all.csv:{len(gold) + 1}: annotation names unknown article 'elsewhere-1': not in "
        f"{root / 'c/articles'}; annotations.unknown_ids=ignore skips the annotations of "
        "articles the source does not hold"
    ), line
    proc = run(tmp_path, "newsclf-annotate", *common, "annotations.unknown_ids=ignore")
    output = " ".join((proc.stdout + proc.stderr).split())
    assert f"1 annotations name articles not in {root / 'c/articles'}: skipped" in output
    assert "3 most worth labelling" in output
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("  then: ")]
    assert "annotations.unknown_ids=ignore" in shlex.split(line)
    proc = run(tmp_path, "newsclf-annotate", *common, "annotations.unknown_ids=x", ok=False)
    line = error_line(proc)
    assert line.endswith("annotations.unknown_ids: 'x' is not one of error, ignore")


def test_annotate_least_confident_uses_the_trained_model(partly_labelled, tmp_path):
    root = partly_labelled
    # uncalibrated: on this small, clean corpus the temperature would make every probability
    # 1.00, and the test reads the model's own probabilities in the export
    run(root, "newsclf-train", "task=topic", "dataset_dir=ds/topic", "calibrate=null")
    proc = run(
        root,
        "newsclf-annotate",
        f"source.path={root / 'c/articles'}",
        "~tasks.stance",
        "~labeling.stance",
        "~models.stance",
        "k=4",
        f"output.path={tmp_path / 'next.csv'}",
        f"annotations.path={root / 'gold.csv'}",
    )
    assert "exported the 4 most worth labelling of 36" in proc.stdout
    context = pd.read_csv(tmp_path / "next.context.csv")
    assert len(context) == 4 and context["topic"].str.match(r"^\w+ 0\.\d\d$").all()
    assert context["score"].between(0, 1).all()
    proc = run(root, "newsclf-annotate", "models.topic=models:/nope@champion", ok=False)
    assert "models:/nope@champion" in error_line(proc)
