"""newsclf-train with evaluation sets (metrics, gate.external, champion comparison on them), the
refit on train + validation before registering, and the top features per class."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow import MlflowClient
from scipy.special import softmax

from newsclf import calibration, datasets, saved_model, tracking
from newsclf.articles import Article, Source, body_of
from newsclf.models import build_model
from tests.conftest import ROOT, STANCE_WORDS, TOPIC_WORDS, error_line, make_corpus, run_cli
from tests.predict_support import article_rows


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A generated corpus's datasets and a labelled evaluation set in the same style."""
    cwd = tmp_path_factory.mktemp("train-eval")
    labels = make_corpus(cwd / "corpus", n_per_topic=10)
    run_cli(
        cwd,
        "newsclf-dataset",
        f"source.path={cwd / 'corpus/articles'}",
        f"annotations.path={labels}",
        "log_to_mlflow=false",
        "weak.enabled=false",
    )
    rows = article_rows(36, seed=5)
    pd.DataFrame(rows).to_csv(cwd / "dev.csv", index=False)
    topics, stances = list(TOPIC_WORDS), list(STANCE_WORDS)
    gold = [
        {"article_id": r["id"], "topic": topics[i % 6], "stance": stances[i % 3]}
        for i, r in enumerate(rows)
    ]
    pd.DataFrame(gold).to_csv(cwd / "dev_labels.csv", index=False)
    return cwd


def _dev(cwd: Path) -> list[str]:
    return [
        "evaluation=own",
        f"evaluation.own.source.path={cwd / 'dev.csv'}",
        f"evaluation.own.annotations.path={cwd / 'dev_labels.csv'}",
    ]


def _fit(cwd: Path, splits: tuple[str, ...]):
    """The default topic model fit by hand on ``splits`` of the built dataset."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train")
    dd, manifest = datasets.load(cwd / "data/datasets/topic")
    texts = [t for s in splits for t in dd[s]["text"]]
    labels = [manifest.labels[i] for s in splits for i in dd[s]["label"]]
    return build_model(cfg.model).fit(texts, labels), list(dd["test"]["text"])


def _validation_temperature(cwd: Path, model) -> float:
    """The temperature fitted by hand on ``model``'s scores of the validation split."""
    dd, manifest = datasets.load(cwd / "data/datasets/topic")
    scores = model.decision_function(dd["validation"]["text"])
    classes = list(model[-1].classes_)
    y = [classes.index(manifest.labels[i]) for i in dd["validation"]["label"]]
    return calibration.fit_temperature(scores, y)


def test_train_with_evaluation_sets_refit_and_top_features(built, tmp_path):
    cwd = built
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = [f"mlflow.tracking_uri={uri}", "task=topic"]
    first = run_cli(cwd, "newsclf-train", *common, *_dev(cwd), "gate.external={own:0.2}")
    out = " ".join(first.stdout.split())
    assert "evaluation sets, fit on train: own macro-F1" in out and "version 1 (champion" in out
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v1 = client.get_model_version("newsclf-topic", "1")
    run = client.get_run(v1.run_id)
    metrics = run.data.metrics
    assert metrics["own_n"] == 36 and 0.2 <= metrics["own_macro_f1"] <= 1
    assert {"own_accuracy", "own_ece", "own_log_loss", "own_recall_military"} <= set(metrics)
    assert v1.tags["eval.own.macro_f1"] == f"{metrics['own_macro_f1']:.4f}"
    files = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation/own")}
    assert "evaluation/own/misclassified.csv" in files and "evaluation/own/reliability.png" in files

    # refit: the registered model is the default model fit on train + validation
    manifest = json.loads((cwd / "data/datasets/topic/manifest.json").read_text())
    assert metrics["n_refit"] == manifest["rows"]["train"] + manifest["rows"]["validation"]
    assert run.data.tags["newsclf.refit"] == "train+validation" and v1.tags["refit"] == (
        "train+validation"
    )
    tracking.configure(uri)
    registered = saved_model.load_model("models:/newsclf-topic/1").classifier
    by_hand, test_texts = _fit(cwd, ("train", "validation"))
    train_only, _ = _fit(cwd, ("train",))
    # calibrate=temperature: the temperature of the train-only fit's validation scores, applied
    # to the refit: its probabilities are softmax(scores / T), its labels the refit's own
    temperature = metrics["calibration_temperature"]
    assert temperature == pytest.approx(_validation_temperature(cwd, train_only), rel=1e-9)
    assert temperature < 1  # this corpus's fits are underconfident on validation
    assert metrics["validation_log_loss"] < metrics["validation_log_loss_uncalibrated"]
    np.testing.assert_allclose(
        registered.scores(test_texts)[0],
        softmax(by_hand.decision_function(test_texts) / temperature, axis=1),
        rtol=1e-9,
    )
    assert (registered.predict(test_texts)["label"] == by_hand.predict(test_texts)).all()
    assert f"temperature {temperature:.2f}" in out

    # top features: readable n-grams mapped back through the hashing vectorizer
    table = client.download_artifacts(run.info.run_id, "top_features.json", str(tmp_path))
    top = json.loads(Path(table).read_text())
    frame = pd.DataFrame(top["data"], columns=top["columns"])
    assert set(frame["label"]) == set(TOPIC_WORDS) and frame["rank"].max() == 20
    for label, words in TOPIC_WORDS.items():
        best = frame[(frame["label"] == label) & (frame["rank"] <= 3)]["feature"]
        assert set(best) & set(words.split()), (label, best.tolist())

    # refit=none keeps the model fit on train; an unreachable external minimum blocks the alias
    second = run_cli(
        cwd,
        "newsclf-train",
        *common,
        *_dev(cwd),
        "refit=none",
        "gate.external={own:1.01}",
        "calibrate=null",
    )
    out = " ".join(second.stdout.split())
    assert "version 2 (not promoted: own macro-F1" in out and "below the minimum 1.0100" in out
    v2 = client.get_model_version("newsclf-topic", "2")
    assert "newsclf.refit" not in client.get_run(v2.run_id).data.tags
    assert "calibration_temperature" not in client.get_run(v2.run_id).data.metrics
    model = saved_model.load_model("models:/newsclf-topic/2").classifier
    np.testing.assert_allclose(
        model.scores(test_texts)[0], train_only.predict_proba(test_texts), rtol=1e-9
    )
    # the champion was compared on the evaluation set as well
    assert "champion_own_macro_f1" in client.get_run(v2.run_id).data.metrics
    assert str(client.get_model_version_by_alias("newsclf-topic", "champion").version) == "1"


def test_scores_on_the_models_own_training_articles_are_flagged(built, tmp_path):
    """An evaluation set holding articles a model learned from: newsclf-train and
    newsclf-evaluate say how many, and log it; a set of other articles logs 0."""
    cwd = built
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    corpus = [  # the training corpus itself, as an evaluation set
        "evaluation=own",
        "evaluation.own.source.format=txt",
        "evaluation.own.source.pattern=*.txt",
        f"evaluation.own.source.path={cwd / 'corpus/articles'}",
        f"evaluation.own.annotations.path={cwd / 'corpus/labels.csv'}",
    ]
    rows = json.loads((cwd / "data/datasets/topic/manifest.json").read_text())["rows"]
    n = sum(rows.values())
    trained = run_cli(cwd, "newsclf-train", f"mlflow.tracking_uri={uri}", "task=topic", *corpus)
    out = " ".join(trained.stdout.split())
    # the fit scored here learned from the train split only
    assert (
        f"own: {rows['train']} of {n} scored articles are among the texts topic / tfidf_logreg "
        "was trained on; its topic scores there are not held out"
    ) in out
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("newsclf-topic", "1").run_id)
    assert run.data.metrics["own_n_in_training"] == rows["train"]
    # the gate compares the next job with that champion on the same set, which the champion
    # (refit on train + validation) learned from: said and logged (the gate said nothing)
    again = run_cli(cwd, "newsclf-train", f"mlflow.tracking_uri={uri}", "task=topic", *corpus)
    champion_seen = rows["train"] + rows["validation"]
    assert (
        f"gate: own: {champion_seen} of {n} scored articles are among the texts the champion was "
        "trained on"
    ) in " ".join(again.stdout.split())
    second = client.get_run(client.get_model_version("newsclf-topic", "2").run_id)
    assert second.data.metrics["champion_own_n_in_training"] == champion_seen

    # the registered model was refit on train + validation: it carries those articles'
    # hashes, found also when a set reads the headline differently (here: not at all)
    frame = pd.DataFrame(
        [a.__dict__ for a in Source(path=str(cwd / "corpus/articles")).read()]
    ).rename(columns={"body": "text"})
    frame[["id", "title", "text"]].to_csv(tmp_path / "corpus.csv", index=False)
    untitled = [
        "evaluation=own",
        f"evaluation.own.source.path={tmp_path / 'corpus.csv'}",
        "evaluation.own.source.title_column=null",
        f"evaluation.own.annotations.path={cwd / 'corpus/labels.csv'}",
        "evaluation.own.annotations.id_column=article_id",
    ]
    evaluated = run_cli(
        cwd, "newsclf-evaluate", f"mlflow.tracking_uri={uri}", "~models",
        "+models={t:models:/newsclf-topic/1}", "output_dir=" + str(tmp_path / "ev"), *untitled,
    )  # fmt: skip
    seen = rows["train"] + rows["validation"]
    out = " ".join(evaluated.stdout.split())
    assert f"own: {seen} of {n} scored articles are among the texts newsclf-topic v1" in out
    version = client.get_model_version("newsclf-topic", "1")
    assert client.get_run(version.tags["eval.run_id"]).data.metrics["own_n_in_training"] == seen

    # a model logged without a refit (register=false) learned from the train split only
    run_cli(cwd, "newsclf-train", f"mlflow.tracking_uri={uri}", "task=topic", "register=false")
    (latest,) = client.search_runs(
        [run.info.experiment_id], "tags.`newsclf.stage` = 'train'", max_results=1
    )
    assert "newsclf.refit" not in latest.data.tags
    tracking.configure(uri)
    unrefit = saved_model.load_model(f"runs:/{latest.info.run_id}/model")
    dd, _ = datasets.load(cwd / "data/datasets/topic")
    bodies = [body_of(t, x) for t, x in zip(dd["train"]["title"], dd["train"]["text"], strict=True)]
    assert np.array_equal(unrefit.training_hashes, saved_model.text_hashes(bodies))

    # articles it never saw: 0, and nothing said
    other = run_cli(
        cwd, "newsclf-evaluate", f"mlflow.tracking_uri={uri}", "~models",
        "+models={t:models:/newsclf-topic/1}", "output_dir=" + str(tmp_path / "ev2"), *_dev(cwd),
    )  # fmt: skip
    assert "trained on" not in other.stdout
    version = client.get_model_version("newsclf-topic", "1")
    assert client.get_run(version.tags["eval.run_id"]).data.metrics["own_n_in_training"] == 0


def test_external_gate_needs_its_set(built, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(
        built, "newsclf-train", f"mlflow.tracking_uri={uri}", "gate.external={nyt:0.5}", ok=False
    )
    assert "gate.external: minimums for nyt but no evaluation set configured" in error_line(proc)
    proc = run_cli(built, "newsclf-train", "calibrate=platt", ok=False)
    assert "calibrate: 'platt' is not one of temperature, null" in error_line(proc)
    proc = run_cli(built, "newsclf-train", "refit=all", ok=False)
    assert "refit: 'all' is not one of train+validation, none" in error_line(proc)
    proc = run_cli(built, "newsclf-train", "n_jobs=abc", ok=False)
    assert "n_jobs: 'abc' is not an integer (-1: one worker per core)" in error_line(proc)
    # checked before any fit: these were tracebacks after the whole run, or silently accepted
    for override, expected in (
        ("gate.external={own:high}", "gate.external.own: 'high' is not a number"),
        ("gate.external=[own]", "gate.external: ['own'] is not a mapping of evaluation set"),
        ("max_chars=abc", "max_chars: 'abc' is not a positive integer or null"),
        ("gate.min_test_macro_f1=nan", "gate.min_test_macro_f1: nan is not a number"),
        ("top_features=-3", "top_features: -3 is not an integer >= 0 (0: off)"),
        ("calibration_bins=0", "calibration_bins: 0 is not a positive integer"),
        ("optimize_metric=validation_macro_fl", "'validation_macro_fl' is not a metric"),
        ("optimize_metric=evaluation_macro_f1", "evaluation_macro_f1 needs evaluation sets"),
    ):
        proc = run_cli(built, "newsclf-train", f"mlflow.tracking_uri={uri}", override, ok=False)
        assert expected in error_line(proc), override
    assert not MlflowClient(tracking_uri=uri).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri=uri).search_experiments()]
    )  # no run was started by any of them


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.pipeline.classifier.C=abc", "model.pipeline.classifier: The 'C' parameter"),
        ("model.pipeline.classifier.C=-1", "model.pipeline.classifier: The 'C' parameter"),
        (
            "model.pipeline.vectorizer.ngram_range=[2,1]",
            "model.pipeline.vectorizer: Invalid value for ngram_range=(2, 1)",
        ),
    ],
)
def test_invalid_model_parameter_is_one_line_before_any_run(built, tmp_path, override, expected):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli(built, "newsclf-train", f"mlflow.tracking_uri={uri}", override, ok=False)
    assert expected in error_line(proc)
    assert not (tmp_path / "mlflow.db").exists()  # no run was started, so none left FAILED


def test_too_few_articles_per_label_for_a_cross_validating_model_is_one_line(built, tmp_path):
    # was scikit-learn's traceback from the fit thread: "Requesting 20-fold cross-validation
    # but provided less than 20 examples for at least one class"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ("model=tfidf_svm", "model.pipeline.classifier.cv=20")
    proc = run_cli(built, "newsclf-train", f"mlflow.tracking_uri={uri}", *args, ok=False)
    line = error_line(proc)
    assert (
        "model.pipeline.classifier: cv=20 needs at least 20 training articles of every label"
        in line
    )
    assert re.search(
        r"the train split has \d+ of '\w+' \(set model.pipeline.classifier.cv=\d+", line
    )
    assert "Traceback" not in proc.stderr and proc.returncode == 2
    assert not (tmp_path / "mlflow.db").exists()


def _fullwidth(text: str) -> str:
    """ASCII letters as their fullwidth forms: NFKC (the default cleaning) turns them back."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text)


def test_evaluation_prepares_articles_as_the_model_does(tmp_path):
    """A dataset cleaned without NFKC or ftfy: newsclf-train's and newsclf-evaluate's scores on
    a set are those of newsclf-predict with the logged model, not of the default cleaning."""
    labels = make_corpus(tmp_path / "corpus", n_per_topic=10)
    run_cli(
        tmp_path,
        "newsclf-dataset",
        f"source.path={tmp_path / 'corpus/articles'}",
        f"annotations.path={labels}",
        "log_to_mlflow=false",
        "weak.enabled=false",
        "clean.unicode_form=NFC",
        "clean.fix_text=false",
    )
    rows = article_rows(30, seed=7)
    for row in rows[::3]:  # the default cleaning reads these words, the model's does not
        row["text"] = _fullwidth(row["text"])
    pd.DataFrame(rows).to_csv(tmp_path / "dev.csv", index=False)
    topics = list(TOPIC_WORDS)
    gold = [{"article_id": r["id"], "topic": topics[i % 6]} for i, r in enumerate(rows)]
    pd.DataFrame(gold).to_csv(tmp_path / "dev_labels.csv", index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # refit=none: the registered model is the one newsclf-train scored on the set
    run_cli(tmp_path, "newsclf-train", f"mlflow.tracking_uri={uri}", *_dev(tmp_path), "refit=none")
    topic_only = ["~models.stance", "models.topic=models:/newsclf-topic/1"]
    run_cli(
        tmp_path,
        "newsclf-evaluate",
        f"mlflow.tracking_uri={uri}",
        *topic_only,
        *_dev(tmp_path),
        "output_dir=out",
        "log_to_mlflow=false",
    )
    run_cli(
        tmp_path,
        "newsclf-predict",
        f"mlflow.tracking_uri={uri}",
        *topic_only,
        "source=csv",
        f"source.path={tmp_path / 'dev.csv'}",
        "output.path=p.parquet",
        "n_jobs=1",
    )
    predicted = pd.read_parquet(tmp_path / "p.parquet").set_index("id")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = client.get_model_version("newsclf-topic", "1").run_id
    logged = client.download_artifacts(run_id, "evaluation/own/predictions.csv", str(tmp_path))
    for path in (tmp_path / "out/newsclf-topic-v1/own/predictions.csv", logged):
        mine = pd.read_csv(path)
        assert len(mine) == 30
        theirs = predicted.loc[mine["id"]]
        assert mine["predicted"].tolist() == theirs["topic_label"].tolist()
        np.testing.assert_allclose(mine["probability"], theirs["topic_probability"], rtol=1e-12)
    # and the default cleaning would have scored other texts: the test can tell them apart
    tracking.configure(uri)
    model = saved_model.load_model("models:/newsclf-topic/1")
    assert model.preparation.clean["unicode_form"] == "NFC"
    raw = [Article(r["id"], r["title"], r["text"]) for r in rows[::3]]
    default = [saved_model.Preparation().prepare(a).article.text for a in raw]
    own = [model.preparation.prepare(a).article.text for a in raw]
    assert not np.allclose(
        model.classifier.scores(default)[0].max(axis=1),
        predicted.loc[[a.id for a in raw], "topic_probability"],
    )
    np.testing.assert_allclose(
        model.classifier.scores(own)[0].max(axis=1),
        predicted.loc[[a.id for a in raw], "topic_probability"],
        rtol=1e-12,
    )


def test_fits_read_the_splits_as_the_dataset_dict_has_them(built, tmp_path):
    """newsclf-train reads the splits' texts and labels with pyarrow, to start its fits before
    Hugging Face datasets is imported: the same rows as the DatasetDict; another layout -> None."""
    from newsclf.fitting import read_splits

    folder = built / "data/datasets/topic"
    dd, manifest = datasets.load(folder)
    data = read_splits(str(folder), manifest.labels)
    for split in datasets.SPLITS:
        assert data[split][0] == dd[split]["text"]
        assert data[split][1] == [manifest.labels[i] for i in dd[split]["label"]]
    assert read_splits(str(tmp_path), manifest.labels) is None
    assert read_splits(str(folder), manifest.labels[:1]) is None  # a label it cannot name


def test_the_gate_scores_challenger_and_champion_alike(built, tmp_path):
    """The review's findings: the gate compared the challenger fit on train only with the
    champion as registered (refit on train + validation), so the same config trained twice was
    "worse than the champion"; a champion trained on a rebuilt dataset was scored on a test
    split holding its own training articles; compare_to_champion=false said "no champion yet"."""
    cwd = built
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = [f"mlflow.tracking_uri={uri}", "task=topic"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_cli(cwd, "newsclf-train", *common)
    second = " ".join(run_cli(cwd, "newsclf-train", *common).stdout.split())
    v1, v2 = (client.get_model_version("newsclf-topic", v) for v in ("1", "2"))
    assert v2.tags["test_macro_f1"] == v1.tags["test_macro_f1"]  # the same model, twice
    assert "version 2 (champion: test macro-F1" in second and ">= champion's" in second
    assert "; the version is the refit on train + validation, which the gate scored; run" in second
    assert "newsclf-train topic / tfidf_logreg, fit on train: validation macro-F1" in second
    metrics = client.get_run(v2.run_id).data.metrics
    # the version's tag is the registered (refit) model's score, logged beside the train-only one
    assert float(v2.tags["test_macro_f1"]) == pytest.approx(metrics["registered_test_macro_f1"])
    assert metrics["champion_test_macro_f1"] == pytest.approx(metrics["registered_test_macro_f1"])

    run_cli(
        cwd,
        "newsclf-dataset",
        f"source.path={cwd / 'corpus/articles'}",
        f"annotations.path={cwd / 'corpus/labels.csv'}",
        "log_to_mlflow=false",
        "weak.enabled=false",
        "split.seed=7",
        f"output_dir={tmp_path / 'rebuilt'}",
    )
    # compared on nothing (no evaluation set), the champion stays: it used to be replaced
    rebuilt = (*common, f"dataset_dir={tmp_path / 'rebuilt/topic'}")
    out = " ".join(run_cli(cwd, "newsclf-train", *rebuilt).stdout.split())
    assert (
        "version 3 (not promoted: champion v2 was trained on another dataset, so its test score "
        "is not comparable, and no evaluation set is shared to compare on: the champion stays "
        "(evaluation=... compares them; gate.compare_to_champion=false replaces it)"
    ) in out
    assert str(client.get_model_version_by_alias("newsclf-topic", "champion").version) == "2"
    assert (
        "champion_test_macro_f1"
        not in client.get_run(client.get_model_version("newsclf-topic", "3").run_id).data.metrics
    )

    fourth = run_cli(cwd, "newsclf-train", *rebuilt, "gate.compare_to_champion=false")
    out = " ".join(fourth.stdout.split())
    assert "version 4 (champion:" in out
    assert "champion v2 not compared (gate.compare_to_champion=false)" in out
    assert "no champion yet" not in out


def test_a_whole_number_override_of_a_real_parameter_is_logged_as_the_yaml_writes_it(
    built, tmp_path
):
    """C=10 on the command line was logged as "10" beside the YAML default's "10.0": two
    values of one setting in MLflow's run comparison. Parameters scikit-learn declares real
    numbers only become floats; an integer count (max_iter) stays an integer."""
    run_cli(
        tmp_path,
        "newsclf-train",
        "task=topic",
        f"dataset_dir={built / 'data/datasets/topic'}",
        "model.pipeline.classifier.C=10",
        "model.pipeline.classifier.max_iter=300",
        "register=false",
    )
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("newsclf-topic").experiment_id])
    params = run.data.params
    assert params["model.pipeline.classifier.C"] == "10.0"
    assert params["model.pipeline.classifier.max_iter"] == "300"
    assert params["model.pipeline.classifier.random_state"] == params["seed"]
