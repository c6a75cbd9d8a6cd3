from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline, make_pipeline

from newsclf import datasets, saved_model, tracking
from newsclf.articles import body_of
from newsclf.errors import NewsclfError
from newsclf.models import (
    RuleCues,
    build_model,
    check_training_labels,
    feature_union,
    fit,
    fit_on_features,
    fit_out_of_core,
    front_features,
    shares_features,
    text_pipeline,
    top_features,
)
from newsclf.saved_model import load_pipeline, save_pipeline
from tests.conftest import ROOT, STANCE_WORDS, TOPIC_WORDS, make_corpus, run_cli

MODEL_CONFIGS = sorted((ROOT / "configs" / "model").glob("*.yaml"))


def _data(words: dict[str, str] = TOPIC_WORDS, per_label: int = 6):
    texts, labels = [], []
    for label, line in words.items():
        for i in range(per_label):
            w = line.split()
            texts.append(" ".join(w[i % 3 :] + w[: i % 3] + ["common", "words"]))
            labels.append(label)
    return texts, labels


def _model_config(path: Path, task: str = "stance", **overrides):
    # model configs may interpolate ${seed} and ${task}; compose them as Hydra does
    cfg = OmegaConf.merge(
        {
            "seed": 0,
            "task": OmegaConf.load(ROOT / "configs" / "task" / f"{task}.yaml"),
            "model": OmegaConf.load(path),
        },
        {"model": overrides},
    )
    return cfg.model


class Rows:
    """A table like a Hugging Face Dataset (len, slices, a label column) that records the
    slices read, so a test can check that training streamed it."""

    def __init__(self, texts, labels, names):
        self.texts, self.labels = texts, [names.index(label) for label in labels]
        self.slices: list[int] = []

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, key):
        if key == "label":
            return list(self.labels)
        self.slices.append(len(self.texts[key]))
        return {"text": self.texts[key], "label": self.labels[key]}


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: Path(p).stem)
@pytest.mark.parametrize("words", [TOPIC_WORDS, STANCE_WORDS], ids=["topic", "stance"])
def test_every_model_config_fits_both_tasks_saves_and_loads(path, words, tmp_path):
    cfg = _model_config(path)
    model = build_model(cfg)
    texts, labels = _data(words)
    if cfg.get("out_of_core"):
        rows = Rows(texts, labels, list(words))
        settings = {"chunk_size": 8, "epochs": 20, "n_jobs": 1, "seed": 0}
        fit_out_of_core(model, rows, list(words), settings)
    else:
        model.fit(texts, labels)
    predicted = model.predict(texts)
    assert set(predicted) <= set(labels)
    assert (predicted == np.array(labels)).mean() > 0.8
    # the model survives newsclf's skops save and trusted-type load unchanged
    loaded = load_pipeline(save_pipeline(model, tmp_path / "model.skops"))
    assert (loaded.predict(texts) == predicted).all()
    params = clone(model).get_params()
    ranges = {k: v for k, v in params.items() if k.endswith("ngram_range")}
    assert ranges and all(isinstance(v, tuple) for v in ranges.values())


def test_model_zoo_covers_the_required_pipelines():
    names = {p.stem for p in MODEL_CONFIGS}
    assert {
        "tfidf_logreg",
        "tfidf_vocab_logreg",
        "tfidf_svm",
        "tfidf_cnb",
        "tfidf_char_svm",
        "tfidf_union_svm",
        "hashing_sgd",
        "hashing_sgd_stream",
    } <= names
    default = OmegaConf.load(ROOT / "configs" / "train.yaml").defaults
    assert {"model": "tfidf_logreg"} in default


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: Path(p).stem)
def test_class_weight_option_reaches_the_classifier(path):
    cfg = OmegaConf.load(path)
    if "class_weight" not in cfg:
        assert "ComplementNB" in str(cfg.pipeline.classifier)  # corrects imbalance itself
        return
    for option in ("balanced", None):
        model = build_model(_model_config(path, class_weight=option))
        weights = [v for k, v in model.get_params().items() if k.endswith("class_weight")]
        assert weights == [option]


def test_union_config_has_word_and_char_parts():
    model = build_model(_model_config(ROOT / "configs/model/tfidf_union_svm.yaml"))
    params = model.get_params()
    assert params["vectorizer__word__ngram_range"] == (1, 2)
    assert params["vectorizer__char__analyzer"] == "char_wb"
    model.set_params(vectorizer__char__ngram_range=(3, 4))  # overridable like any step
    texts, labels = _data()
    assert model.fit(texts, labels).predict(texts[:1])[0] in labels


def test_bad_model_config():
    with pytest.raises(NewsclfError, match="no 'pipeline'"):
        build_model({"name": "x"})
    # one line each: the module that failed to import; the key misspelt, with the real one
    with pytest.raises(NewsclfError) as err:
        build_model({"pipeline": {"_target_": "sklearn.nope.Missing"}})
    assert str(err.value) == (
        "model.pipeline: cannot build the model (Error locating target 'sklearn.nope.Missing': "
        """ModuleNotFoundError("No module named 'sklearn.nope'"))"""
    )
    cfg = _model_config(ROOT / "configs/model/tfidf_logreg.yaml")
    cfg.pipeline.classifier.Cc = 3
    with pytest.raises(
        NewsclfError,
        match=r"^model\.pipeline\.classifier\.Cc: LogisticRegression "
        r"has no parameter 'Cc' \(did you mean C\? it takes penalty, C, ",
    ):
        build_model(cfg)
    with pytest.raises(NewsclfError, match="at least one"):
        feature_union()


def _stream_pipeline(**sgd) -> Pipeline:
    return text_pipeline(
        HashingVectorizer(n_features=2**12, alternate_sign=False),
        SGDClassifier(loss="modified_huber", random_state=0, **sgd),
    )


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_shared_features_give_the_models_of_plain_fits(path):
    """newsclf-train vectorises each split once and fits on train, then refits on train +
    validation, from those features: the same models as plain fits on the texts."""
    model = build_model(_model_config(path, task="topic"))
    if not shares_features(model):
        assert model[0].__sklearn_tags__().requires_fit  # a vocabulary or rules: no sharing
        return
    texts, labels = _data(per_label=8)
    train, validation = (texts[0::2], labels[0::2]), (texts[1::2], labels[1::2])
    X_train, X_val = front_features(model, train[0]), front_features(model, validation[0])
    for parts in ([train], [train, validation]):
        texts_in = [t for p in parts for t in p[0]]
        labels_in = [y for p in parts for y in p[1]]
        X = X_train if len(parts) == 1 else sp.vstack([X_train, X_val], format="csr")
        shared = fit_on_features(clone(model), texts_in, X, labels_in)
        plain = fit(clone(model), texts_in, labels_in)
        reference = clone(model).fit(texts_in, labels_in)
        scores = "decision_function" if hasattr(shared, "decision_function") else "predict_proba"
        for other in (plain, reference):
            np.testing.assert_array_equal(
                getattr(shared, scores)(texts), getattr(other, scores)(texts)
            )
            np.testing.assert_array_equal(shared.predict(texts), other.predict(texts))
        np.testing.assert_array_equal(shared[1:].predict(X_val), plain.predict(validation[0]))


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_shared_features_from_worker_processes_equal_one_pass(path, monkeypatch):
    """newsclf-train vectorises chunks of each split in worker processes: the rows, stacked in
    order, are those of one pass over the split."""
    from newsclf.fitting import SharedFeatures

    model = build_model(_model_config(path, task="topic"))
    if not shares_features(model):
        return
    monkeypatch.setattr(SharedFeatures, "CHUNK", 7)  # several chunks per split
    texts, labels = _data(per_label=8)
    data = {"train": (texts[:30], labels[:30]), "validation": (texts[30:], labels[30:])}
    shared = SharedFeatures.start(model, data, n_jobs=2)
    for split, (split_texts, _) in data.items():
        got, want = shared.splits[split].result(timeout=120), front_features(model, split_texts)
        assert got.shape == want.shape
        np.testing.assert_array_equal(_dense(got), _dense(want))


def test_shared_features_not_started_are_cancelled_when_the_job_ends(monkeypatch):
    """A newsclf-train job that fails early stops its vectorising workers: the chunks they have
    not started are cancelled (the interpreter would otherwise wait for all of them at exit)."""
    from concurrent.futures import CancelledError

    from newsclf.fitting import SharedFeatures

    model = build_model(_model_config(MODEL_CONFIGS[0], task="topic"))
    assert shares_features(model)
    monkeypatch.setattr(SharedFeatures, "CHUNK", 1)  # one task per text
    texts, labels = _data(per_label=40)
    shared = SharedFeatures.start(model, {"train": (texts, labels)}, n_jobs=2)
    SharedFeatures.stop_all()
    with pytest.raises(CancelledError):
        shared.splits["train"].result(timeout=120)
    assert not SharedFeatures._pools


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def test_out_of_core_fit_streams_chunks_and_learns():
    texts, labels = _data(per_label=30)
    names = list(TOPIC_WORDS)
    rows = Rows(texts, labels, names)
    model = fit_out_of_core(_stream_pipeline(), rows, names, {"chunk_size": 25, "epochs": 3})
    assert max(rows.slices) <= 25  # never more than one chunk read at a time
    assert sum(rows.slices) >= 3 * len(texts)  # every row seen in every epoch
    assert list(model.classes_) == sorted(names)  # trained on label names
    assert (model.predict(texts) == np.array(labels)).mean() > 0.95


def test_out_of_core_is_reproducible_and_parallel_gives_the_same_model():
    texts, labels = _data(per_label=12)
    names = list(TOPIC_WORDS)
    coefs = []
    for n_jobs in (1, 1, 2):
        settings = {"chunk_size": 10, "epochs": 2, "n_jobs": n_jobs, "seed": 3}
        model = fit_out_of_core(_stream_pipeline(), Rows(texts, labels, names), names, settings)
        coefs.append(model[-1].coef_)
    assert np.array_equal(coefs[0], coefs[1])
    assert np.array_equal(coefs[0], coefs[2])


def test_out_of_core_balanced_class_weight_is_applied_then_restored():
    texts, labels = _data(per_label=20)
    texts, labels = texts[:25] + texts[40:], labels[:25] + labels[40:]  # unbalanced labels
    names = list(TOPIC_WORDS)
    settings = {"chunk_size": 16, "epochs": 2}
    balanced = fit_out_of_core(
        _stream_pipeline(class_weight="balanced"), Rows(texts, labels, names), names, settings
    )
    plain = fit_out_of_core(_stream_pipeline(), Rows(texts, labels, names), names, settings)
    assert balanced[-1].class_weight == "balanced"  # the config value, as given
    assert not np.allclose(balanced[-1].coef_, plain[-1].coef_)


def test_out_of_core_refuses_pipelines_it_cannot_stream():
    names = list(TOPIC_WORDS)
    rows = Rows(*_data(), names)
    needs_idf = Pipeline(
        [
            ("vectorizer", HashingVectorizer()),
            ("weighting", TfidfTransformer()),
            ("classifier", SGDClassifier()),
        ]
    )
    with pytest.raises(NewsclfError, match="'weighting' \\(TfidfTransformer\\) must see all"):
        fit_out_of_core(needs_idf, rows, names)
    no_partial_fit = text_pipeline(HashingVectorizer(), LogisticRegression())
    with pytest.raises(NewsclfError, match="LogisticRegression has no partial_fit"):
        fit_out_of_core(no_partial_fit, rows, names)
    with pytest.raises(NewsclfError, match="unknown key\\(s\\) chunks"):
        fit_out_of_core(_stream_pipeline(), rows, names, {"chunks": 10})
    with pytest.raises(NewsclfError, match="chunk_size=0"):
        fit_out_of_core(_stream_pipeline(), rows, names, {"chunk_size": 0})
    stream_cfg = _model_config(ROOT / "configs/model/hashing_sgd_stream.yaml")
    stream_cfg.pipeline.weighting = {"_target_": "sklearn.feature_extraction.text.TfidfTransformer"}
    with pytest.raises(NewsclfError, match="must see all the data"):
        build_model(stream_cfg)  # caught when the config is built, before any data is read


def test_newsclf_train_out_of_core_end_to_end(tmp_path):
    """The real console scripts: a dataset, then newsclf-train model=hashing_sgd_stream."""
    make_corpus(tmp_path / "corpus", n_per_topic=12)
    run_cli(
        tmp_path,
        "newsclf-dataset",
        f"source.path={tmp_path / 'corpus/articles'}",
        f"annotations.path={tmp_path / 'corpus/labels.csv'}",
        "output_dir=ds",
    )
    proc = run_cli(
        tmp_path,
        "newsclf-train",
        "task=topic",
        "dataset_dir=ds/topic",
        "model=hashing_sgd_stream",
        "model.out_of_core.chunk_size=7",
        "model.out_of_core.epochs=10",
        "model.out_of_core.n_jobs=1",
    )
    assert "topic / hashing_sgd_stream" in proc.stdout
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("newsclf-topic")
    (run_info,) = client.search_runs([experiment.experiment_id], "tags.`newsclf.stage` = 'train'")
    assert run_info.data.params["model.out_of_core.chunk_size"] == "7"
    assert run_info.data.metrics["n_train"] > 40
    assert run_info.data.metrics["validation_accuracy"] > 0.8
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/newsclf-topic/1")
    out = model.predict(pd.DataFrame({"text": ["troops artillery brigade"]}))
    assert out["label"].tolist() == ["military"]
    # the streamed train split's texts are kept as hashes too (the overlap check)
    tracking.configure(f"sqlite:///{tmp_path / 'mlflow.db'}")
    loaded = saved_model.load_model("models:/newsclf-topic/1")
    dd, _ = datasets.load(tmp_path / "ds/topic")
    splits = ["train", "validation"] if "newsclf.refit" in run_info.data.tags else ["train"]
    pairs = [(t, x) for s in splits for t, x in zip(dd[s]["title"], dd[s]["text"], strict=True)]
    bodies = [body_of(t, x) for t, x in pairs]
    assert np.array_equal(loaded.training_hashes, saved_model.text_hashes(bodies))


def test_arrow_file_rows_reads_ranges_across_files_like_slicing(tmp_path):
    import datasets as hf

    from newsclf.models import ArrowFileRows

    n = 250
    data = {"text": [f"article {i}" for i in range(n)], "label": [i % 3 for i in range(n)]}
    hf.Dataset.from_dict(data).save_to_disk(str(tmp_path / "ds"), num_shards=3)
    ds = hf.load_from_disk(str(tmp_path / "ds"))
    read = ArrowFileRows.of(ds)
    assert read is not None and read.n_rows == n and len({b[0] for b in read.batches}) == 3
    for start, stop in [(0, 1), (0, n), (80, 90), (70, 180), (240, 400)]:
        assert read(start, stop) == ds[start:stop]
    assert ArrowFileRows.of(ds.select(range(10))) is None  # rows are not the files' rows
    assert ArrowFileRows.of(ds.remove_columns("label")) is None
    texts_only = ArrowFileRows.of(ds.remove_columns("label"), ("text",))  # other columns
    assert texts_only is not None and texts_only(70, 180) == {"text": ds[70:180]["text"]}
    # streaming a file-backed split gives the same model as reading it by slices
    names = ["a", "b", "c"]
    texts = [f"{names[i % 3]}word filler{i % 7}" for i in range(n)]
    hf.Dataset.from_dict({"text": texts, "label": data["label"]}).save_to_disk(
        str(tmp_path / "ds2"), num_shards=2
    )
    disk = hf.load_from_disk(str(tmp_path / "ds2"))
    memory = Rows(texts, [names[i] for i in data["label"]], names)
    settings = {"chunk_size": 40, "epochs": 2, "seed": 1}
    from_disk = fit_out_of_core(_stream_pipeline(), disk, names, settings)
    from_memory = fit_out_of_core(_stream_pipeline(), memory, names, settings)
    assert np.array_equal(from_disk[-1].coef_, from_memory[-1].coef_)


STANCE_LABELS = ["anti_russia", "neutral", "pro_russia"]
BLAME_WEST = (
    "Why Europe pays\n\nThe Kremlin warned for years. NATO's aggression and eastward march "
    "provoked Russia."
)
CONDEMN = (
    "Shelling\n\nRussia's brutal war of aggression goes on; the Kremlin's war machine shells towns."
)
NO_TARGET = "Cup final\n\nThe home side won the cup final on penalties."


def test_rule_cues_are_the_stance_rules_votes_near_their_targets():
    cues = RuleCues(rules="stance", labels=STANCE_LABELS, weight=0.5).fit([], None)
    names = list(cues.get_feature_names_out())
    x = cues.transform([BLAME_WEST, CONDEMN, NO_TARGET]).toarray()
    assert x.shape == (3, len(names)) and set(np.unique(x)) <= {0.0, 0.5}
    on = [{names[j] for j in np.nonzero(row)[0]} for row in x]
    assert "rule:west_as_culprit=pro_russia" in on[0]
    assert "rule:condemns_kremlin=anti_russia" in on[1]
    assert not any(n.endswith("=anti_russia") for n in on[0])
    assert not any(n.endswith("=pro_russia") for n in on[1])
    assert "rule:mentions_target" in on[0] & on[1]
    assert on[2] == set()  # no mention of the Russian state: every rule abstains


def test_rule_cues_without_a_rule_file_add_no_columns():
    cues = RuleCues(rules="no_such_task", labels=["a", "b"]).fit(["x"], ["a"])
    assert cues.transform(["x", "y"]).shape == (2, 0)
    assert RuleCues(rules=None).fit(["x"], ["a", "b"]).transform(["x"]).shape == (1, 0)
    with pytest.raises(NewsclfError, match="does not exist"):
        RuleCues(rules="missing.yaml").fit(["x"], ["a"])


def test_a_saved_cue_model_needs_no_rule_file(tmp_path):
    """The rules are kept in the model: it loads (trusted types only) and predicts the same
    after the rule file is gone, and the compiled regexes are not saved."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "targets: [Kremlin]\nrules:\n  blame:\n    type: cues\n    label: pro_russia\n"
        "    window: 5\n    terms: [provoked]\n",
        encoding="utf-8",
    )
    cfg = _model_config(ROOT / "configs" / "model" / "tfidf_cues_logreg.yaml")
    cfg.pipeline.vectorizer.cues.rules = str(rules)
    model = build_model(cfg)
    texts, labels = _data(STANCE_WORDS)
    texts = [*texts, "the Kremlin was provoked", "the Kremlin was provoked again"]
    labels = [*labels, "pro_russia", "pro_russia"]
    model.fit(texts, labels)
    cues = model.named_steps["vectorizer"].transformer_list[1][1]
    assert cues.transform(["the Kremlin was provoked"]).nnz == 2  # the vote and the target
    path = save_pipeline(model, tmp_path / "model.skops")
    rules.unlink()
    loaded = load_pipeline(path)
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts))
    assert "_compiled" not in loaded.named_steps["vectorizer"].transformer_list[1][1].__getstate__()


def test_top_features_of_a_cue_model_name_words_and_rules():
    cfg = _model_config(ROOT / "configs" / "model" / "tfidf_cues_logreg.yaml")
    model = build_model(cfg)
    texts = [BLAME_WEST, CONDEMN, NO_TARGET] * 4
    labels = ["pro_russia", "anti_russia", "neutral"] * 4
    model.fit(texts, labels)
    rows = top_features(model, texts, k=40)
    assert rows is not None
    features = {label: {r["feature"] for r in rows if r["label"] == label} for label in labels}
    assert "rule:west_as_culprit=pro_russia" in features["pro_russia"]
    assert "rule:condemns_kremlin=anti_russia" in features["anti_russia"]
    assert any(" " in f and not f.startswith("rule:") for f in features["neutral"])  # bigrams


def test_declared_floats_follow_scikit_learns_parameter_kinds():
    from newsclf.models import declared_floats

    cfg = OmegaConf.create(
        {
            "seed": 3,
            "pipeline": {
                "_target_": "newsclf.models.text_pipeline",
                "vectorizer": {
                    "_target_": "sklearn.pipeline.make_pipeline",
                    "_args_": [
                        {"_target_": "sklearn.feature_extraction.text.TfidfVectorizer", "max_df": 1}
                    ],
                },
                "classifier": {
                    "_target_": "sklearn.linear_model.LogisticRegression",
                    "C": 10,
                    "tol": 1,
                    "max_iter": 300,
                    "random_state": "${seed}",
                },
            },
        }
    )
    declared_floats(cfg)
    classifier = cfg.pipeline.classifier
    assert (type(classifier.C), type(classifier.tol), type(classifier.max_iter)) == (
        float,
        float,
        int,
    )
    assert OmegaConf.is_interpolation(classifier, "random_state")
    # max_df takes a count (int) or a share (float): 1 stays the count it says
    assert type(cfg.pipeline.vectorizer._args_[0].max_df) is int


def test_training_labels_are_checked_against_a_steps_cross_validation_folds():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.svm import LinearSVC

    labels = ["a"] * 6 + ["b"] * 3
    calibrated = make_pipeline(TfidfVectorizer(), CalibratedClassifierCV(LinearSVC()))
    with pytest.raises(NewsclfError, match=r"cv=5 needs at least 5 .* 3 of 'b'"):
        check_training_labels(calibrated, labels)  # cv=None: scikit-learn's 5 folds
    calibrated.set_params(calibratedclassifiercv__cv=3)
    check_training_labels(calibrated, labels)
    with pytest.raises(NewsclfError, match=r"has 1 of 'b' \(choose another model or label more"):
        check_training_labels(calibrated, ["a"] * 6 + ["b"])
    # RidgeClassifierCV's cv=None is leave-one-out, with no folds to fill
    check_training_labels(make_pipeline(TfidfVectorizer(), RidgeClassifierCV()), labels)
