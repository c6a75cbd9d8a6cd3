"""End-to-end: the console scripts against a temporary SQLite MLflow store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest

from newsclf.cli import rate_text
from tests.conftest import SEEDS, error_line, make_corpus
from tests.conftest import run_cli as run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """dataset -> train (both tasks) -> predict on the bundled corpus, with the defaults."""
    cwd = tmp_path_factory.mktemp("e2e")
    run(cwd, "newsclf-dataset")
    run(cwd, "newsclf-train", "task=topic")
    run(cwd, "newsclf-train", "task=stance")
    run(cwd, "newsclf-predict", "output.path=predictions/seeds.parquet")
    return cwd


def _client(cwd: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")


def test_datasets_written_with_card_and_counts(workdir):
    n_articles = len(list((SEEDS / "articles").glob("*.txt")))
    for task in ("topic", "stance"):
        folder = workdir / "data" / "datasets" / task
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["n_input"] == n_articles == manifest["n_kept"] + manifest["n_rejected"]
        assert sum(manifest["rows"].values()) == manifest["n_labelled"]
        assert (folder / "README.md").read_text().startswith("---\n")
        assert {p.name for p in (folder / "parquet").iterdir()} == {
            "train.parquet",
            "validation.parquet",
            "test.parquet",
        }
        assert "latin_filler" in manifest["removed_by_rule"]  # the seed's lorem ipsum
    # Hydra's run logs hold the summaries, which they lacked (train.log and predict.log were
    # empty): "each run's config and log"
    logs: dict[str, str] = {}
    for log in sorted(workdir.glob("outputs/*/*/*.log")):  # both newsclf-train runs' logs
        logs[log.name] = logs.get(log.name, "") + log.read_text()
    read = f"newsclf-dataset: {n_articles} articles read = {manifest['n_kept']} kept"
    assert read in logs["dataset.log"]
    assert "newsclf-train stance / tfidf_logreg, fit on train: validation" in logs["train.log"]
    assert "newsclf-predict: " in logs["predict.log"] and "[bold]" not in logs["predict.log"]


def test_both_models_registered_with_champion(workdir):
    client = _client(workdir)
    for task in ("topic", "stance"):
        version = client.get_model_version_by_alias(f"newsclf-{task}", "champion")
        run = client.get_run(version.run_id)
        assert run.data.metrics["test_macro_f1"] > 0.3
        assert {"validation_accuracy", "test_accuracy", "validation_macro_f1"} <= set(
            run.data.metrics
        )
        assert run.data.params["model.name"] == "tfidf_logreg"
        assert run.data.tags["mlflow.source.git.commit"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert "plots/test_confusion_matrix.png" in artifacts
        assert len(run.inputs.dataset_inputs) == 3
        # the model cleans raw articles as its dataset was cleaned
        manifest = json.loads((workdir / "data/datasets" / task / "manifest.json").read_text())
        mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
        local = mlflow.artifacts.download_artifacts(f"models:/newsclf-{task}/{version.version}")
        preparation = json.loads((Path(local) / "artifacts/preparation.json").read_text())
        assert preparation == {"clean": manifest["clean"], "max_chars": 100000}
        assert manifest["clean"]["boilerplate"]["share_prompt"]  # the rules, spelled out
        experiment = client.get_experiment(run.info.experiment_id)
        assert experiment.name == f"newsclf-{task}"
        # mlflow ui shows descriptions: task, labels, model, dataset, test metrics
        labels = ", ".join(manifest["labels"])
        experiment_note = experiment.tags["mlflow.note.content"]
        assert f"task **{task}**" in experiment_note and labels in experiment_note
        registered = client.get_registered_model(f"newsclf-{task}").description
        assert f"task **{task}**" in registered and labels in registered
        assert "champion" in registered
        described = client.get_model_version(f"newsclf-{task}", version.version).description
        steps = "(HashingVectorizer -> TfidfTransformer -> LogisticRegression)"
        assert f"Model **tfidf_logreg** {steps}" in described
        assert manifest["fingerprint"] in described
        assert f"test macro-F1 {run.data.metrics['test_macro_f1']:.3f}" in described
        # ... and the registered (refit) version's own score, which its tag holds: the two
        # differed with nothing to say which was which
        refit = run.data.metrics["registered_test_macro_f1"]
        assert f"refit on train + validation: test macro-F1 {refit:.3f})" in described
        assert float(version.tags["test_macro_f1"]) == pytest.approx(refit)
        assert run.data.tags["mlflow.note.content"] == described
        dataset_runs = client.search_runs(
            [run.info.experiment_id], "tags.`newsclf.stage` = 'dataset'"
        )
        assert dataset_runs and dataset_runs[0].inputs.dataset_inputs


def test_lock_files_are_hidden(workdir):
    """filelock's files were left in sight beside the database (mlflow.db.lock,
    mlflow.db.newsclf-topic.promotion.lock). They stay (deleting a lock file that another
    process is waiting on lets a third lock a new file: two holders) but are hidden, as the
    predictions' .<output>.lock is."""
    in_sight = [p for p in workdir.rglob("*.lock") if not p.name.startswith(".")]
    assert in_sight == []
    for name in (".mlflow.db.lock", ".mlflow.db.newsclf-topic.promotion.lock"):
        assert (workdir / name).exists(), name


def test_predictions_one_row_per_seed_article(workdir):
    path = workdir / "predictions" / "seeds.parquet"
    table = pq.read_table(path).to_pandas()
    n_articles = len(list((SEEDS / "articles").glob("*.txt")))
    meta = json.loads(pq.read_metadata(path).metadata[b"newsclf"])
    assert len(table) == meta["rows"] == meta["n_input"] - meta["n_rejected"] == n_articles
    assert table["id"].is_unique
    assert set(table["topic_model"]) == {"newsclf-topic"}
    assert table["stance_probability"].between(0, 1).all()
    # MLflow's own loader, given the raw articles, prepares them alike: the same labels
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/newsclf-topic@champion")
    from newsclf.articles import Source

    articles = list(Source(path=str(SEEDS / "articles")).read())
    raw = pd.DataFrame({"title": [a.title for a in articles], "text": [a.body for a in articles]})
    assert model.predict(raw)["label"].tolist() == table["topic_label"].tolist()


def test_same_config_and_seed_give_same_fingerprint_and_metrics(workdir, tmp_path):
    # output to a pipe, no COLUMNS: the summary table is not cut at 80 columns
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "COLUMNS")}
    out = tmp_path / "data" / "datasets"  # absolute: a folder column wider than 80 columns
    proc = run(tmp_path, "newsclf-dataset", "log_to_mlflow=false", f"output_dir={out}", env=env)
    for task in ("topic", "stance"):
        a = json.loads((workdir / "data/datasets" / task / "manifest.json").read_text())
        b = json.loads((tmp_path / "data/datasets" / task / "manifest.json").read_text())
        assert a["fingerprint"] == b["fingerprint"]
        row = next(line for line in proc.stdout.splitlines() if line.startswith(f"│ {task} "))
        assert b["fingerprint"] in row and str(out / task) in row and "…" not in row
    run(tmp_path, "newsclf-train", "task=topic")
    first = _client(workdir).get_model_version_by_alias("newsclf-topic", "champion")
    second = _client(tmp_path).get_model_version_by_alias("newsclf-topic", "champion")
    m1 = _client(workdir).get_run(first.run_id).data.metrics
    m2 = _client(tmp_path).get_run(second.run_id).data.metrics
    assert m1["test_macro_f1"] == m2["test_macro_f1"]


def test_gate_keeps_better_champion(workdir):
    client = _client(workdir)
    before = client.get_model_version_by_alias("newsclf-topic", "champion").version
    proc = run(workdir, "newsclf-train", "task=topic", "gate.min_test_macro_f1=1.01")
    assert "not promoted" in proc.stdout
    assert client.get_model_version_by_alias("newsclf-topic", "champion").version == before


def test_predict_csv_and_jsonl_outputs_from_other_sources(workdir, tmp_path):
    rows = [
        {"id": "a", "title": "Gas deal", "text": "Gazprom cut gas exports to Europe."},
        {"id": "b", "title": "Talks", "text": "Envoys met in Geneva for talks."},
    ]
    pd.DataFrame(rows).to_json(tmp_path / "in.jsonl", orient="records", lines=True)
    out = tmp_path / "out.csv"
    run(
        workdir,
        "newsclf-predict",
        "source=jsonl",
        f"source.path={tmp_path / 'in.jsonl'}",
        f"output.path={out}",
    )
    frame = pd.read_csv(out)
    assert frame["id"].tolist() == ["a", "b"]
    out2 = tmp_path / "out.jsonl"
    run(
        workdir,
        "newsclf-predict",
        "source=jsonl",
        f"source.path={tmp_path / 'in.jsonl'}",
        f"output.path={out2}",
        "~models.stance",
    )
    assert "stance_label" not in pd.read_json(out2, lines=True).columns


def test_custom_corpus_by_override(tmp_path):
    make_corpus(tmp_path / "mine")
    run(
        tmp_path,
        "newsclf-dataset",
        f"source.path={tmp_path / 'mine/articles'}",
        f"annotations.path={tmp_path / 'mine/labels.csv'}",
        "output_dir=ds",
    )
    proc = run(tmp_path, "newsclf-train", "task=stance", "dataset_dir=ds/stance", "model=tfidf_cnb")
    assert "registered newsclf-stance version 1" in proc.stdout
    # MLflow's own event lines repeat the summary: hidden unless MLFLOW_LOGGING_LEVEL=INFO
    output = proc.stdout + proc.stderr
    assert "Created version" not in output and "Validating input example" not in output


@pytest.fixture
def bad_inputs(tmp_path) -> Path:
    make_corpus(tmp_path / "c")
    return tmp_path


def test_bad_input_errors_are_one_line(bad_inputs):
    d = bad_inputs
    labels = f"annotations.path={d / 'c/labels.csv'}"

    def dataset(*args: str) -> str:
        return error_line(run(d, "newsclf-dataset", "log_to_mlflow=false", *args, ok=False))

    assert "does not exist" in dataset(f"source.path={d / 'missing'}", labels)
    # a misspelt task key was silently ignored (the labels then read from the task's name)
    assert dataset(f"source.path={d / 'c/articles'}", labels, "+tasks.topic.colum=section") == (
        "newsclf-dataset: error: task topic: Task has no parameter 'colum' (did you mean "
        "column? it takes name, labels, description, column)"
    )
    (d / "empty").mkdir()
    assert "no input files" in dataset(f"source.path={d / 'empty'}", labels)
    (d / "bin").mkdir()
    (d / "bin/x.txt").write_bytes(b"\x00\x9f\x92binary")
    assert "x.txt: binary file" in dataset(f"source.path={d / 'bin'}", labels)
    (d / "latin").mkdir()
    (d / "latin/x.txt").write_bytes("Monday, 1 May 2023\nCaf\xe9\n\nB".encode("latin-1"))
    assert "x.txt: not utf-8 text" in dataset(f"source.path={d / 'latin'}", labels)
    (d / "a.jsonl").write_text(
        '{"id": "1", "title": "t", "text": "x"}\n{broken\n', encoding="utf-8"
    )
    assert "a.jsonl:2: malformed JSON line" in dataset("source=jsonl", f"source.path={d}/a.jsonl")
    pd.DataFrame({"id": ["1"], "body": ["x"]}).to_csv(d / "a.csv", index=False)
    assert "missing column(s) text" in dataset("source=csv", f"source.path={d}/a.csv")
    bad_labels = d / "bad.csv"
    bad_labels.write_text("article_id,topic,stance\nghost,other,\n", encoding="utf-8")
    msg = dataset(f"source.path={d / 'c/articles'}", f"annotations.path={bad_labels}")
    assert "bad.csv:2" in msg and "unknown article 'ghost'" in msg
    bad_labels.write_text("article_id,topic,stance\nother_00,sports,\n", encoding="utf-8")
    msg = dataset(f"source.path={d / 'c/articles'}", f"annotations.path={bad_labels}")
    assert "unknown topic label 'sports'" in msg
    bad_labels.write_text("article_id,topic,stance\nother_00,other,neutral\n", encoding="utf-8")
    msg = dataset(f"source.path={d / 'c/articles'}", f"annotations.path={bad_labels}")
    assert "at least two labels present" in msg
    # the label model's parameters are checked before the source is even looked at
    msg = dataset(f"source.path={d / 'missing'}", labels, "+weak.label_model_params.max_iter=ten")
    assert msg.endswith("dawid_skene: max_iter='ten' must be a whole number >= 1")


def test_predict_errors_before_reading_input(tmp_path):
    msg = error_line(run(tmp_path, "newsclf-predict", ok=False))
    assert f"MLflow store {tmp_path / 'mlflow.db'} does not exist" in msg  # nothing trained here
    assert not (tmp_path / "mlflow.db").exists()
    (tmp_path / "empty.db").write_bytes(b"")
    msg = error_line(
        run(tmp_path, "newsclf-predict", "mlflow.tracking_uri=sqlite:///empty.db", ok=False)
    )
    assert "models:/newsclf-topic@champion" in msg
    msg = error_line(run(tmp_path, "newsclf-train", "dataset_dir=nowhere", ok=False))
    assert "nowhere: no dataset here" in msg
    (log,) = tmp_path.glob("outputs/*/*/train.log")  # the error line is in the run's log too
    assert f"[newsclf][ERROR] - {msg}" in log.read_text()
    # a task file's misspelt key: named, in newsclf-train too (was "task.labels: Key 'labels'
    # is not in struct", from a check that read the labels first)
    (tmp_path / "mine/task").mkdir(parents=True)
    (tmp_path / "mine/task/section.yaml").write_text("name: section\nlables:\n  a: A\n  b: B\n")
    msg = error_line(
        run(tmp_path, "newsclf-train", "--config-dir", "mine", "task=section", ok=False)
    )
    assert msg == (
        "newsclf-train: error: task section: Task has no parameter 'lables' (did you mean "
        "labels? it takes name, labels, description, column)"
    )
    # an empty or null path: one line, not the working folder or a TypeError's traceback
    for app, key in [("newsclf-train", "dataset_dir"), ("newsclf-dataset", "output_dir"),
                     ("newsclf-predict", "output.path"), ("newsclf-evaluate", "output_dir"),
                     ("newsclf-annotate", "output.path")]:  # fmt: skip
        for value, shown in [("", "''"), ("null", "None")]:
            msg = error_line(run(tmp_path, app, f"{key}={value}", ok=False))
            assert msg == f"{app}: error: {key}: {shown} is not a path", msg


def test_an_empty_split_is_logged_without_mlflow_schema_warnings(tmp_path):
    """split.validation=0 leaves the validation split empty: logging it as a dataset input made
    MLflow warn "Failed to infer schema for Hugging Face dataset. Exception: " (its sample of
    no rows). The split is still logged (0 rows), with no warning, by the dataset run and by
    newsclf-train."""
    corpus = tmp_path / "corpus"
    make_corpus(corpus)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = (f"mlflow.tracking_uri={uri}", "~tasks.stance")
    dataset = run(
        tmp_path, "newsclf-dataset", f"source.path={corpus / 'articles'}",
        f"annotations.path={corpus / 'labels.csv'}", "split.validation=0", "output_dir=ds",
        *common,
    )  # fmt: skip
    train = run(tmp_path, "newsclf-train", "task=topic", "dataset_dir=ds/topic", common[0])
    procs = [dataset, train]
    for proc in procs:
        assert "Failed to infer schema" not in proc.stderr and "Exception:" not in proc.stderr
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("newsclf-topic").experiment_id
    runs = client.search_runs([experiment])
    assert {r.data.tags["newsclf.stage"] for r in runs} == {"dataset", "train"}
    for logged in runs:
        inputs = {i.dataset.name: i.dataset for i in logged.inputs.dataset_inputs}
        assert sorted(inputs) == [f"newsclf-topic-{s}" for s in ("test", "train", "validation")]
        assert json.loads(inputs["newsclf-topic-validation"].profile)["num_rows"] == 0


def test_a_split_too_small_to_hold_an_article_is_named_at_build_time(tmp_path):
    """Six labelled articles leave the 15% validation and test splits empty: newsclf-dataset
    said nothing, and only newsclf-train's missing metrics showed it."""
    labels = make_corpus(tmp_path / "c", n_per_topic=1)
    args = [f"source.path={tmp_path / 'c/articles'}", f"annotations.path={labels}"]
    proc = run(tmp_path, "newsclf-dataset", *args, "log_to_mlflow=false", "weak.enabled=false")
    printed = " ".join(proc.stdout.split())
    empty = []
    for task in ("topic", "stance"):
        rows = json.loads((tmp_path / f"data/datasets/{task}/manifest.json").read_text())["rows"]
        for split in ("validation", "test"):
            line = (
                f"{task}: the {split} split is empty (6 gold-labelled articles are too few for "
                f"split.{split}=0.15); newsclf-train will report no {split} metrics"
            )
            assert (line in printed) == (rows[split] == 0), (task, split, rows)
            empty += [line] if rows[split] == 0 else []
    assert len(empty) >= 2  # the topic task's six labels: one article each
    more = run(tmp_path, "newsclf-dataset", *args, "log_to_mlflow=false", "weak.enabled=false",
               "split.validation=0", "output_dir=none")  # fmt: skip
    assert "validation split is empty" not in more.stdout  # asked for: nothing to say
    # the bundled corpus without its labels: weak labels only, which never go to validation
    weak = run(tmp_path, "newsclf-dataset", "annotations.path=null", "log_to_mlflow=false",
               "output_dir=weak", "~task@tasks.stance", "~labeling@labeling.stance")  # fmt: skip
    assert (
        "topic: the validation split is empty (no gold-labelled articles: weak labels go to "
        "train only; set annotations.path)" in " ".join(weak.stdout.split())
    )
    # a model trained on them has no test score, and says so (it printed nan)
    trained = run(tmp_path, "newsclf-train", "dataset_dir=weak/topic", "refit=none")
    out = " ".join(trained.stdout.split())
    assert "validation macro-F1 n/a (empty split), test macro-F1 n/a (empty split)" in out
    assert "(not promoted: no test score (the test split is empty: no gold labels))" in out


def test_summary_rates_keep_a_decimal_below_ten():
    """A dozen articles in 30 s (Spark's start-up) is 0.4 articles/s, not 0."""
    assert rate_text(12 / 30) == "0.4"
    assert rate_text(6893.4) == "6,893"
    assert rate_text(0.0) == "0.0"


def test_one_boilerplate_rule_added_says_that_it_replaced_the_defaults(tmp_path):
    """+clean.boilerplate.promo=... reads as adding a rule; it replaced the default rules
    (documented), and the default 'advertisement' rule stopped firing without a word."""
    make_corpus(tmp_path / "c")
    proc = run(
        tmp_path, "newsclf-dataset", f"source.path={tmp_path / 'c/articles'}",
        f"annotations.path={tmp_path / 'c/labels.csv'}", "log_to_mlflow=false",
        "+clean.boilerplate.promo=PROMO:.*",
    )  # fmt: skip
    assert (
        "clean.boilerplate replaces the default rules: share_prompt, newsletter, advertisement, "
        "related_links, cookie_notice, copyright no longer apply"
    ) in proc.stdout + proc.stderr
    quiet = run(tmp_path, "newsclf-dataset", f"source.path={tmp_path / 'c/articles'}",
                f"annotations.path={tmp_path / 'c/labels.csv'}", "log_to_mlflow=false",
                "clean.boilerplate={}")  # fmt: skip
    assert "replaces the default rules" not in quiet.stdout + quiet.stderr  # filter off: meant
