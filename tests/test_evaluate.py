"""newsclf-evaluate: metrics against hand-computed values, evaluation sets, the CLI end to end
on a temporary store (equal to newsclf-predict's probabilities), bad input."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import log_loss as sk_log_loss

from newsclf import evalsets, evaluation
from newsclf.articles import Article, Reject, Source
from newsclf.cli import evaluate as cli_evaluate
from newsclf.errors import NewsclfError
from newsclf.saved_model import LoadedModel, Preparation
from newsclf.tasks import Task
from tests.conftest import STANCE_WORDS, TOPIC_WORDS, error_line, run_cli
from tests.predict_support import article_rows, register_models

TOPICS, STANCES = list(TOPIC_WORDS), list(STANCE_WORDS)


# --------------------------------------------------------------------------- metrics


def test_calibration_by_hand():
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "a"]
    confidence = [0.9, 0.6, 0.75, 0.55]
    bins = evaluation.confidence_bins(gold, predicted, confidence, n_bins=10)
    # (0.5, 0.6]: 0.6 and 0.55, both wrong; (0.7, 0.8]: 0.75 right; (0.8, 0.9]: 0.9 right
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 1, 1, 0]
    assert bins[5]["accuracy"] == 0.0 and math.isclose(bins[5]["confidence"], 0.575)
    assert bins[0]["accuracy"] is None
    ece = evaluation.expected_calibration_error(bins)
    assert math.isclose(ece, (2 * 0.575 + 1 * 0.25 + 1 * 0.1) / 4)
    # right-closed bins: exactly 0.1 is in the first bin, 0 too
    edges = evaluation.confidence_bins(["a", "a"], ["a", "a"], [0.0, 0.1], n_bins=10)
    assert edges[0]["count"] == 2


def test_log_loss_by_hand_and_against_sklearn():
    classes = ["a", "b", "c"]
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4]])
    gold = ["a", "c", "c"]
    expected = -(math.log(0.7) + math.log(0.4) + math.log(0.4)) / 3
    assert math.isclose(evaluation.log_loss(gold, p, classes), expected)
    assert math.isclose(expected, sk_log_loss(gold, p, labels=classes))
    # a gold label the model never learned costs -log(eps), not infinity
    assert math.isclose(evaluation.log_loss(["d"], p[:1], classes), -math.log(1e-15))


class FixedClassifier:
    """A classifier whose probabilities are given per text (to check metrics by hand)."""

    def __init__(self, table: dict[str, list[float]], classes: list[str]) -> None:
        self.table, self.labels = table, classes

    def scores(self, texts):
        return np.array([self.table[t] for t in texts]), list(self.labels), None


def _set(articles, gold_rows, tmp_path, rejects=(), columns=("id", "stance")) -> evalsets.EvalSet:
    path = tmp_path / "gold.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(gold_rows)
    return evalsets.EvalSet("dev", list(articles), list(rejects), [str(path)])


STANCE = Task("stance", {"anti_russia": "", "neutral": "", "pro_russia": ""})


def test_evaluate_on_a_set_by_hand(tmp_path):
    texts = {"t1": [0.8, 0.2, 0.0], "t2": [0.3, 0.6, 0.1], "t3": [0.5, 0.1, 0.4], "t4": [0, 1, 0]}
    articles = [Article(i, "", t) for i, t in zip(["a1", "a2", "a3", "a4"], texts, strict=True)]
    rows = [("a1", "anti_russia"), ("a2", "neutral"), ("a3", "neutral"), ("gone", "neutral")]
    rejected = [Reject("gone", "x.csv:5", "empty_text")]
    evalset = _set(articles, rows, tmp_path, rejected)
    clf = FixedClassifier(texts, ["anti_russia", "neutral", "pro_russia"])
    result = evalsets.evaluate(clf, STANCE, evalset)
    # a4 has no gold label: not scored; "gone" was rejected: counted, not scored
    assert result.n_scored == 3 and result.n_gold == 4 and result.n_not_scored == 1
    m = result.metrics
    # predicted anti, neutral, anti; gold anti, neutral, neutral
    assert math.isclose(m["accuracy"], 2 / 3)
    # F1 anti = 2*(1/2*1)/(1/2+1) = 2/3, neutral = 2*(1*1/2)/(3/2) = 2/3; no pro_russia gold,
    # so pro_russia is not averaged in
    assert math.isclose(m["macro_f1"], 2 / 3) and "f1_pro_russia" not in m
    assert math.isclose(m["log_loss"], -(math.log(0.8) + math.log(0.6) + math.log(0.1)) / 3)
    # bins (0.4,0.5]: 0.5 wrong; (0.5,0.6]: 0.6 right; (0.7,0.8]: 0.8 right
    assert math.isclose(m["ece"], (0.5 + 0.4 + 0.2) / 3)
    wrong = result.misclassified
    assert wrong.to_dict("records") == [
        {
            "id": "a3",
            "title": "t3",  # no title: the body's first line
            "gold": "neutral",
            "predicted": "anti_russia",
            "probability": 0.5,
            "gold_probability": 0.1,
        }
    ]


def test_set_without_labels_of_a_task_is_skipped(tmp_path):
    evalset = _set([Article("a1", "", "x")], [("a1", "economy")], tmp_path, columns=("id", "topic"))
    clf = FixedClassifier({"x": [1, 0, 0]}, STANCE.label_names)
    assert evalsets.evaluate(clf, STANCE, evalset) is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("a1", "pro-russia"), r"gold\.csv:2: unknown stance label 'pro-russia' for a1"),
        (("nope", "neutral"), r"gold\.csv:2: annotation names unknown article 'nope'"),
    ],
)
def test_bad_labels_name_file_id_and_value(tmp_path, row, message):
    evalset = _set([Article("a1", "", "x")], [row], tmp_path)
    with pytest.raises(NewsclfError, match=message):
        evalset.gold(STANCE)


def test_external_minimums_and_gate():
    assert evaluation.external_minimums({"nyt_dev": 0.6}, {"nyt_dev": 0.55}) == (True, "")
    ok, why = evaluation.external_minimums({"nyt_dev": 0.5}, {"nyt_dev": 0.55})
    assert not ok and why == "nyt_dev macro-F1 0.5000 below the minimum 0.5500"
    assert not evaluation.external_minimums({}, {"semeval_dev": 0.4})[0]
    assert evaluation.external_minimums({"x": 0.1}, None) == (True, "")
    # the gate: minimums first, then the champion on the test set and on the sets' mean
    assert not evaluation.gate(0.9, 0.3, None, {"nyt_dev": 0.5}, {"nyt_dev": 0.55}).promote
    assert evaluation.gate(0.9, 0.3, None, {"nyt_dev": 0.6}, {"nyt_dev": 0.55}).promote
    worse = evaluation.gate(0.9, 0.3, 0.8, {"a": 0.5, "b": 0.3}, None, {"a": 0.4, "b": 0.5})
    assert not worse.promote and worse.reason == (
        "mean macro-F1 on a, b 0.4000 worse than the champion's 0.4500"
    )
    better = evaluation.gate(0.9, 0.3, 0.8, {"a": 0.5, "b": 0.5}, None, {"a": 0.4, "b": 0.5})
    assert better.promote and "mean macro-F1 on a, b 0.5000 >= champion's 0.4500" in better.reason
    # a champion that could not be scored on the test set (another dataset) is compared on
    # the shared sets, and stays when there are none
    note = "champion v2 was trained on another dataset"
    alone = evaluation.gate(0.9, 0.3, None, {}, None, {}, note, must_compare=True)
    assert not alone.promote and alone.reason.startswith(f"{note}, and no evaluation set")
    on_sets = evaluation.gate(0.9, 0.3, None, {"a": 0.6}, None, {"a": 0.5}, note, must_compare=True)
    assert on_sets.promote and on_sets.reason.endswith(
        "mean macro-F1 on a 0.6000 >= champion's 0.5000"
    )
    assert evaluation.gate(0.9, 0.3, None, {}, None, {}, "not compared (...=false)").promote


def test_load_set_prepares_like_predict_and_counts_rejects(tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    path.write_text(
        "id,title,text\n"
        'a1,One,"Body\u00a0one   here.\n\nShare this article"\n'
        "a2,Two,\n"  # empty: rejected
        "a1,Again,Same id\n"  # repeated id: rejected
        "a3,Three,too,many,fields\n"  # unreadable: rejected, no id
        "a4,Four,Share this article\n",  # only boilerplate: empty unless the rule is off
        encoding="utf-8",
    )
    cfg = {
        "source": {"_target_": "newsclf.articles.Source", "path": str(path), "on_error": "reject"},
        "annotations": {"path": str(tmp_path / "g.csv"), "id_column": "id"},
    }
    reads = []
    read = Source.read
    monkeypatch.setattr(Source, "read", lambda self: reads.append(1) or read(self))
    raw = evalsets.load_set("mine", cfg)
    evalset = raw.prepare(Preparation())
    assert [a.text for a in evalset.articles] == ["One\n\nBody one here."]
    assert evalset.n_input == 5
    assert evalset.reject_counts() == {
        "empty_text": 2,
        "duplicate_id": 1,
        "malformed_record": 1,
    }
    # a model whose dataset kept boilerplate sees the set as newsclf-predict prepares it for it
    kept = Preparation({"boilerplate": {}}, max_chars=12)
    other = raw.prepare(kept)
    assert [a.text for a in other.articles] == ["One\n\nBody one her", "Four\n\nShare this a"]
    assert other.n_input == 5 and other.reject_counts() == {
        "empty_text": 1,
        "duplicate_id": 1,
        "malformed_record": 1,
    }
    assert raw.prepare(Preparation()) is evalset and len(raw.prepared) == 2
    assert reads == [1]  # the source was read once for both preparations


def test_a_sets_rejects_are_in_input_order(tmp_path):
    """A repeated id was rejected after every other reject of the set (rejects.csv listed
    line 3's duplicate after line 4's empty text and line 5's malformed row)."""
    path = tmp_path / "a.csv"
    path.write_text(
        "id,title,text\na1,One,gas\na1,Again,oil\na2,Two,\na3,Three,too,many\na4,Four,tank\n",
        encoding="utf-8",
    )
    cfg = {
        "source": {"_target_": "newsclf.articles.Source", "path": str(path), "on_error": "reject"},
        "annotations": {"path": str(tmp_path / "g.csv"), "id_column": "id"},
    }
    evalset = evalsets.load_set("mine", cfg).prepare(Preparation())
    assert [(r.source.rpartition(":")[2], r.reason) for r in evalset.rejects] == [
        ("3", "duplicate_id"),
        ("4", "empty_text"),
        ("5", "malformed_record"),
    ]
    assert [a.id for a in evalset.articles] == ["a1", "a4"]


def test_labels_of_ids_the_set_lacks_are_named_when_a_record_had_no_id(tmp_path, caplog):
    """A record without an id (a malformed CSV line) may be any labelled article, so a labels
    file naming ids the set lacks cannot stop the run; it is named in a warning instead of
    passing without a word (a typo would only show as "+N rejected")."""
    path = tmp_path / "a.csv"
    path.write_text(
        "id,title,text\na1,One,gas prices\na3,Three,too,many,fields\n", encoding="utf-8"
    )
    labels = tmp_path / "g.csv"
    labels.write_text("id,stance\na1,neutral\na3,neutral\nzz9,neutral\n", encoding="utf-8")
    cfg = {
        "source": {"_target_": "newsclf.articles.Source", "path": str(path), "on_error": "reject"},
        "annotations": {"path": str(labels), "id_column": "id"},
    }
    evalset = evalsets.load_set("mine", cfg).prepare(Preparation())
    with caplog.at_level("WARNING"):
        assert set(evalset.gold(STANCE)) == {"a1", "a3", "zz9"}
    assert "mine: 2 stance label(s) name ids not among the set's articles (a3, zz9)" in caplog.text
    assert "among its 1 records that could not be read" in caplog.text


def test_summary_counts_a_set_once_per_preparation(tmp_path, capsys):
    path = tmp_path / "a.csv"
    path.write_text("id,title,text\na1,One,Body\na2,Two,Share this article\n", encoding="utf-8")
    cfg = {
        "source": {"_target_": "newsclf.articles.Source", "path": str(path)},
        "annotations": {"path": str(tmp_path / "g.csv")},
    }
    raw = evalsets.load_set("mine", cfg)
    models = [
        LoadedModel("topic", None, "u1", "newsclf-topic", "1"),
        LoadedModel("stance", None, "u2", "newsclf-stance", "2", preparation=Preparation({})),
        LoadedModel("x", None, "u3", "kept", "3", preparation=Preparation({"boilerplate": {}})),
    ]
    results = [cli_evaluate.ModelResult(m.name, m, STANCE) for m in models]
    for m in models:
        raw.prepare(m.preparation)
    cli_evaluate.summary(results, {"mine": raw}, [])
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "mine (as newsclf-topic v1, newsclf-stance v2 prepare it): 2 articles in = 1 kept + "
        "1 rejected (empty_text 1)" in out
    )
    assert "mine (as kept v3 prepares it): 2 articles in = 2 kept + 0 rejected" in out


# --------------------------------------------------------------------------- the CLI


def _write_set(folder: Path, n: int = 60) -> tuple[Path, Path, list[dict]]:
    """Articles in the style of the test models' corpus, with gold labels (every 7th one
    deliberately wrong, so there are mistakes), an empty one and an unannotated one."""
    rows = article_rows(n, seed=3)
    gold = []
    for i, row in enumerate(rows):
        topic, stance = TOPICS[i % 6], STANCES[i % 3]
        if i % 7 == 0:
            topic = TOPICS[(i + 1) % 6]
        gold.append({"id": row["id"], "topic": topic, "stance": stance})
    rows[5]["text"] = "   "  # empty after cleaning: a reject, its gold label not scored
    gold.pop(-1)  # the last article has no labels
    articles = folder / "articles.csv"
    pd.DataFrame(rows).to_csv(articles, index=False)
    labels = folder / "labels.csv"
    _write_labels(gold, labels)
    return articles, labels, gold


def _write_labels(gold: list[dict], path: Path) -> None:
    """The annotations file of evaluation=own, in the newsclf-dataset format (``article_id``)."""
    pd.DataFrame(gold).rename(columns={"id": "article_id"}).to_csv(path, index=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("evaluate")
    return register_models(folder)


def test_cli_end_to_end(store, tmp_path):
    uri = store
    articles, labels, gold = _write_set(tmp_path)
    configs = tmp_path / "configs" / "evaluation"
    configs.mkdir(parents=True)
    topic_only = tmp_path / "topic_only.csv"
    pd.DataFrame(gold)[["id", "topic"]].to_csv(topic_only, index=False)
    (configs / "topics.yaml").write_text(
        "defaults:\n  - /source@topics.source: csv\n  - _self_\n"
        f"topics:\n  source:\n    path: {articles}\n"
        f"  annotations:\n    path: {topic_only}\n    id_column: id\n",
        encoding="utf-8",
    )
    proc = run_cli(
        tmp_path,
        "newsclf-evaluate",
        "--config-dir",
        str(tmp_path / "configs"),
        f"mlflow.tracking_uri={uri}",
        "evaluation=[own,topics]",
        f"evaluation.own.source.path={articles}",
        f"evaluation.own.annotations.path={labels}",
        "output_dir=out",
    )
    out = " ".join(proc.stdout.split())
    assert "own: 60 articles in = 59 kept + 1 rejected (empty_text 1)" in out
    assert "topics: no stance labels (column 'stance')" in out and "skipped" in out
    # own: 59 labelled, one of them rejected -> 58 scored; 59 kept, one of them unlabelled
    assert "newsclf-topic v1 │ own │ 58 (+1 rejected, +1 unlabelled)" in out
    assert "newsclf-stance v1 │ own │ 58 (+1 rejected, +1 unlabelled)" in out
    assert "newsclf-topic v1 │ topics │ 58 (+1 rejected, +1 unlabelled)" in out

    predictions = pd.read_csv(tmp_path / "out/newsclf-topic-v1/own/predictions.csv")
    scored = {g["id"]: g for g in gold if g["id"] != "a000005"}
    assert set(predictions["id"]) == set(scored)
    right = predictions["gold"] == predictions["predicted"]
    accuracy = right.mean()
    misclassified = pd.read_csv(tmp_path / "out/newsclf-topic-v1/own/misclassified.csv")
    assert len(misclassified) == (~right).sum() > 0
    assert list(misclassified.columns[:5]) == ["id", "title", "gold", "predicted", "probability"]
    for name in ("confusion_matrix.png", "reliability.png", "report.txt"):
        assert (tmp_path / "out/newsclf-topic-v1/own" / name).stat().st_size > 0

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("newsclf-topic", "1")
    assert math.isclose(float(version.tags["eval.own.accuracy"]), accuracy, abs_tol=1e-4)
    assert version.tags["eval.own.n"] == "58" and "eval.topics.macro_f1" in version.tags
    run = client.get_run(version.tags["eval.run_id"])
    assert run.data.tags["newsclf.stage"] == "evaluate"
    assert math.isclose(run.data.metrics["own_accuracy"], accuracy)
    assert run.data.metrics["own_n_not_scored"] == 1
    assert client.get_experiment(run.info.experiment_id).name == "newsclf-topic"
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"own", "topics"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "own")}
    assert {"own/misclassified.csv", "own/reliability.png", "own/misclassified.json"} <= artifacts
    stance = client.get_model_version("newsclf-stance", "1")
    assert "eval.own.macro_f1" in stance.tags and "eval.topics.macro_f1" not in stance.tags
    # a later run of one set moves eval.run_id and that set's run, not the other set's
    first = version.tags["eval.run_id"]
    assert version.tags["eval.own.run_id"] == version.tags["eval.topics.run_id"] == first
    run_cli(
        tmp_path, "newsclf-evaluate", "--config-dir", str(tmp_path / "configs"),
        f"mlflow.tracking_uri={uri}", "evaluation=[topics]", "output_dir=out2",
    )  # fmt: skip
    tags = client.get_model_version("newsclf-topic", "1").tags
    assert tags["eval.run_id"] == tags["eval.topics.run_id"] != first
    assert tags["eval.own.run_id"] == first

    # the same articles through newsclf-predict: the same labels and probabilities
    run_cli(
        tmp_path,
        "newsclf-predict",
        f"mlflow.tracking_uri={uri}",
        "source=csv",
        f"source.path={articles}",
        "output.path=p.parquet",
        "n_jobs=1",
    )
    predicted = pd.read_parquet(tmp_path / "p.parquet").set_index("id")
    for task in ("topic", "stance"):
        mine = pd.read_csv(tmp_path / f"out/newsclf-{task}-v1/own/predictions.csv")
        theirs = predicted.loc[mine["id"]]
        assert mine["predicted"].tolist() == theirs[f"{task}_label"].tolist()
        np.testing.assert_allclose(mine["probability"], theirs[f"{task}_probability"], rtol=1e-12)


def test_cli_bad_labels_exit_2(store, tmp_path):
    uri = store
    articles, labels, gold = _write_set(tmp_path, n=12)
    gold[3]["stance"] = "pro-russian"
    _write_labels(gold, labels)
    args = [
        f"mlflow.tracking_uri={uri}",
        "evaluation=own",
        f"evaluation.own.source.path={articles}",
        f"evaluation.own.annotations.path={labels}",
        "output_dir=out",
    ]
    line = error_line(run_cli(tmp_path, "newsclf-evaluate", *args, ok=False))
    assert line == (
        f"newsclf-evaluate: error: {labels}:5: unknown stance label 'pro-russian' for a000003 "
        "(allowed: anti_russia, neutral, pro_russia)"
    )
    for bad, expected in (
        ("calibration_bins=abc", "calibration_bins: 'abc' is not a positive integer"),
        ("calibration_bins=0", "calibration_bins: 0 is not a positive integer"),
        ("log_to_mlflow=no", "log_to_mlflow: 'no' is not true or false"),
    ):
        line = error_line(run_cli(tmp_path, "newsclf-evaluate", *args, bad, ok=False))
        assert line == f"newsclf-evaluate: error: {expected}"
    assert not (tmp_path / "out").exists()  # nothing written before the labels were checked
    gold[3]["stance"] = "neutral"
    gold[4]["id"] = "b999"
    _write_labels(gold, labels)
    line = error_line(run_cli(tmp_path, "newsclf-evaluate", *args, ok=False))
    assert line.endswith(f"{labels}:6: annotation names unknown article 'b999'")
    line = error_line(
        run_cli(tmp_path, "newsclf-evaluate", *args, "models.topic=models:/nope@x", ok=False)
    )
    assert "models:/nope@x" in line
    # a labels file without any task's column (a misspelt header) scores nothing: it exited 0
    # with an empty table
    misspelt = tmp_path / "misspelt.csv"
    pd.DataFrame({"article_id": ["a000001"], "subject": ["economy"]}).to_csv(misspelt, index=False)
    proc = run_cli(
        tmp_path, "newsclf-evaluate", *args, f"evaluation.own.annotations.path={misspelt}", ok=False
    )
    assert proc.returncode == 2
    assert error_line(proc) == (
        f"newsclf-evaluate: error: nothing scored: own: no topic labels (column 'topic') in "
        f"{misspelt}; skipped for topic models; own: no stance labels (column 'stance') in "
        f"{misspelt}; skipped for stance models"
    )


def test_cli_rejects_stale_files_task_keys_and_unreadable_sets(store, tmp_path):
    """The review's findings, end to end: a set no article of which can be read (a mistyped
    column) exited 0 with n=0 and no reason shown; the rejects' reasons were written nowhere;
    a model under the other task's key was evaluated as that task's; an evaluation that scored
    nothing left the last one's report, plots and version tags beside its n=0; report.txt
    averaged over labels the set does not have; the CSVs were readable by their owner only."""
    uri = store
    articles, labels, gold = _write_set(tmp_path, n=30)
    args = [
        f"mlflow.tracking_uri={uri}",
        "evaluation=own",
        f"evaluation.own.source.path={articles}",
        f"evaluation.own.annotations.path={labels}",
        "output_dir=out",
    ]
    line = error_line(
        run_cli(
            tmp_path, "newsclf-evaluate", *args, "evaluation.own.source.text_column=body", ok=False
        )
    )
    assert line.startswith(f"newsclf-evaluate: error: {articles}: evaluation set own: no article")
    assert "missing column(s) body" in line
    # the keys to set are the evaluation set's (was "set source.text_column", which Hydra refuses)
    assert "; set evaluation.own.source.text_column / id_column / title_column)" in line
    line = error_line(
        run_cli(tmp_path, "newsclf-evaluate", *args, "evaluation.own.source.format=xml", ok=False)
    )
    assert line.startswith("newsclf-evaluate: error: evaluation.own.source.format: 'xml' is not")
    line = error_line(
        run_cli(
            tmp_path, "newsclf-evaluate", *args, "evaluation.own.annotations.id_column=nope",
            ok=False,
        )
    )  # fmt: skip
    assert line.endswith("; set evaluation.own.annotations.id_column to the column of article ids")
    line = error_line(
        run_cli(
            tmp_path, "newsclf-evaluate", *args, "models.topic=models:/newsclf-stance/1", ok=False
        )
    )
    assert line.endswith("is a stance model, not topic")
    # run from a folder without the store: said so, and no empty mlflow.db left there
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    line = error_line(
        run_cli(fresh, "newsclf-evaluate", "mlflow.tracking_uri=sqlite:///mlflow.db", *args[1:],
                ok=False)
    )  # fmt: skip
    assert line == (
        f"newsclf-evaluate: error: MLflow store {fresh / 'mlflow.db'} does not exist: run from "
        "the folder the models were trained in, or set mlflow.tracking_uri"
    )
    assert [p.name for p in fresh.iterdir()] == ["outputs"]  # Hydra's log folder alone
    (tmp_path / "a-file").write_text("")
    line = error_line(
        run_cli(tmp_path, "newsclf-evaluate", *args[:-1], "output_dir=a-file/x", ok=False)
    )
    assert line.startswith("newsclf-evaluate: error: a-file/x/") and "cannot write" in line

    # no pro_russia gold: report.txt's macro average is the macro-F1 the set is scored by
    for row in gold:
        row["stance"] = "anti_russia" if row["stance"] == "pro_russia" else row["stance"]
    _write_labels(gold, labels)
    run_cli(tmp_path, "newsclf-evaluate", *args)
    own = tmp_path / "out/newsclf-stance-v1/own"
    rejects = pd.read_csv(own / "rejects.csv")
    assert rejects[["id", "reason"]].values.tolist() == [["a000005", "empty_text"]]
    assert (own / "predictions.csv").stat().st_mode & 0o044 == 0o044  # as the umask allows
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    tags = client.get_model_version("newsclf-stance", "1").tags
    report = (own / "report.txt").read_text()
    macro = next(line.split() for line in report.splitlines() if "macro avg" in line)
    assert "pro_russia" not in report and float(macro[4]) == pytest.approx(
        float(tags["eval.own.macro_f1"]), abs=1e-3
    )

    # then only the empty article is labelled: nothing scored, nothing stale left; as
    # newsclf-predict and newsclf-dataset when nothing is kept: exit 2, one line, the rejects
    _write_labels([g for g in gold if g["id"] == "a000005"], labels)
    proc = run_cli(tmp_path, "newsclf-evaluate", *args, ok=False)
    line = error_line(proc)
    assert line.startswith("newsclf-evaluate: error: nothing scored: ") and ".png" not in line
    assert "newsclf-stance v1 on own (1 labelled, all rejected (empty_text 1))" in line
    assert line.endswith(f"see {Path('out/newsclf-topic-v1/own/rejects.csv')}")
    assert ".png" not in proc.stdout
    assert sorted(p.name for p in own.iterdir()) == [
        "misclassified.csv", "predictions.csv", "rejects.csv"
    ]  # fmt: skip
    tags = client.get_model_version("newsclf-stance", "1").tags
    assert tags["eval.own.n"] == "0" and "eval.own.macro_f1" not in tags
    assert "eval.own.accuracy" not in tags


def test_a_model_that_scores_nothing_on_a_set_claims_no_plots(store, tmp_path):
    """A model whose every labelled article of a set was rejected was said to have its
    confusion matrix and reliability plot written; now one line says nothing was scored (the
    other model's scores still make the run a success)."""
    articles, labels, gold = _write_set(tmp_path, n=30)
    for row in gold:  # stance labels only on the article that is empty after cleaning
        row["stance"] = row["stance"] if row["id"] == "a000005" else ""
    _write_labels(gold, labels)
    proc = run_cli(
        tmp_path, "newsclf-evaluate", f"mlflow.tracking_uri={store}", "evaluation=own",
        f"evaluation.own.source.path={articles}", f"evaluation.own.annotations.path={labels}",
        "output_dir=out",
    )  # fmt: skip
    out = " ".join(proc.stdout.split())
    stance = Path("out/newsclf-stance-v1")
    assert (
        f"newsclf-stance v1: nothing scored on own (1 labelled, all rejected (empty_text 1)); "
        f"no plots; see {stance / 'own' / 'rejects.csv'}"
    ) in out
    assert f"files in {stance}" not in out
    assert f"files in {Path('out/newsclf-topic-v1')}" in out and "confusion_matrix.png" in out
    assert not list((tmp_path / stance).rglob("*.png"))
    assert (tmp_path / "out/newsclf-topic-v1/own/confusion_matrix.png").exists()


def test_an_unset_path_of_an_evaluation_set_is_named_by_its_full_key(tmp_path):
    from tests.conftest import error_line, run_cli

    # before: "path: missing mandatory value; set it on the command line (path=...)", a key
    # that does not exist; with the source path alone, "???: annotations file does not exist";
    # then both unset were named one run at a time
    proc = run_cli(tmp_path, "newsclf-evaluate", "evaluation=own", ok=False)
    keys = ["evaluation.own.annotations.path", "evaluation.own.source.path"]
    assert error_line(proc).endswith(
        f"{keys[0]}, {keys[1]}: missing mandatory values; set them on the command line "
        f"({keys[0]}=... {keys[1]}=...)"
    )
    proc = run_cli(
        tmp_path, "newsclf-evaluate", "evaluation=own", "evaluation.own.annotations.path=a.csv",
        ok=False,
    )  # fmt: skip
    assert "evaluation.own.source.path: missing mandatory value" in error_line(proc)


def test_a_real_set_without_the_shared_data_folder_names_the_variable(tmp_path, monkeypatch):
    """Run from a folder without ../shared/data, evaluation=real_dev said only "source path
    does not exist"; it now names NEWSCLF_SHARED_DATA, which points there."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import ROOT

    monkeypatch.delenv("NEWSCLF_SHARED_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("evaluate", overrides=["evaluation=real_dev"])
    with pytest.raises(NewsclfError) as caught:
        evalsets.load_set("nyt_dev", cfg.evaluation.nyt_dev)
    assert str(caught.value) == (
        "../shared/data/nyt-russia-ukraine/articles.csv: source path does not exist; evaluation "
        "set nyt_dev is read from the shared data folder: set NEWSCLF_SHARED_DATA to it "
        "(default ../shared/data, from the working folder)"
    )
