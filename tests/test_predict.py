import gc
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from newsclf.articles import Article
from newsclf.batch import PredictionWriter, ordered_map
from newsclf.errors import NewsclfError
from newsclf.predict import prediction_columns, process_chunk
from newsclf.saved_model import Classifier, LoadedModel, load_pipeline, save_pipeline

TEXTS = ["gas prices rouble", "tank artillery troops", "gas market", "troops drone"] * 3
LABELS = ["economy", "military", "economy", "military"] * 3


def _fitted(clf=None):
    return Pipeline(
        [("vectorizer", TfidfVectorizer()), ("classifier", clf or LogisticRegression())]
    ).fit(TEXTS, LABELS)


def test_classifier_gives_label_and_probability():
    out = Classifier(_fitted(), ["economy", "military"]).predict(["rouble gas", "drone troops"])
    assert out["label"].tolist() == ["economy", "military"]
    assert ((out["probability"] > 0.5) & (out["probability"] <= 1)).all()


def test_classifier_without_predict_proba_uses_softmax_scores():
    out = Classifier(_fitted(LinearSVC()), ["economy", "military"]).predict(["gas", "tank"])
    assert out["label"].tolist() == ["economy", "military"]
    assert np.all((out["probability"] > 0.5) & (out["probability"] < 1))


def test_skops_round_trip_and_untrusted_types_refused(tmp_path):
    path = save_pipeline(_fitted(), tmp_path / "m.skops")
    loaded = load_pipeline(path)
    assert list(loaded.predict(["gas"])) == ["economy"]
    # A model file that would call eval() on its input when run.
    evil = Pipeline([("f", FunctionTransformer(eval)), ("c", LogisticRegression())])
    bad = save_pipeline(evil, tmp_path / "evil.skops")
    with pytest.raises(NewsclfError, match=r"refusing to load untrusted types builtins\.eval") as e:
        load_pipeline(bad)
    assert str(e.value).endswith("add them to trusted_types")  # the config key, as it is named
    assert load_pipeline(bad, trusted_types=["builtins.eval"]) is not None  # explicit opt-in
    with pytest.raises(NewsclfError, match="not a skops model file"):
        (tmp_path / "junk.skops").write_bytes(b"not a zip")
        load_pipeline(tmp_path / "junk.skops")


def _model(task="topic"):
    return LoadedModel(task, Classifier(_fitted(), ["economy", "military"]), "uri", "name", "3")


def _chunks(articles: list[Article], size: int = 5):
    """Prediction frames of ``size`` articles at a time, as a batch job makes them."""
    for start in range(0, len(articles), size):
        result = process_chunk(articles[start : start + size], [_model()])
        yield result.frame[prediction_columns(["topic"])]


def test_process_chunk_keeps_order_and_counts():
    arts = [Article(str(i), "", t) for i, t in enumerate(TEXTS)]
    frames = list(_chunks(arts))
    assert [len(f) for f in frames] == [5, 5, 2]
    out = pd.concat(frames)
    assert out["id"].tolist() == [str(i) for i in range(12)]
    assert out["topic_label"].tolist() == LABELS
    assert list(out.columns) == prediction_columns(["topic"])


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_writer_formats_and_atomic_commit(tmp_path, fmt):
    path = tmp_path / f"p.{fmt}"
    arts = [Article(str(i), "", t) for i, t in enumerate(TEXTS)]
    writer = PredictionWriter(path, prediction_columns(["topic"]))
    for frame in _chunks(arts):
        writer.write(frame)
        assert not path.exists()  # only the temporary file exists until commit
    writer.commit({"n_input": 12})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    if fmt == "parquet":
        assert pq.read_table(path).num_rows == 12
        assert json.loads(pq.read_metadata(path).metadata[b"newsclf"])["rows"] == 12
    elif fmt == "csv":
        assert len(pd.read_csv(path)) == 12
    else:
        assert len(pd.read_json(path, lines=True)) == 12


def test_jsonl_keeps_probabilities_as_parquet_and_csv_do(tmp_path):
    """Every output format holds the same floats (JSON lines had 10 decimals); a missing
    probability is null."""
    frame = pd.DataFrame(
        {"id": ["a", "b"], "topic_probability": [0.9334362011935995, np.nan], "truncated_chars": 0}
    )
    for fmt in ("jsonl", "csv", "parquet"):
        writer = PredictionWriter(tmp_path / f"p.{fmt}", list(frame.columns))
        writer.write(frame)
        writer.commit({})
    lines = (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["topic_probability"] for r in rows] == [0.9334362011935995, None]
    assert rows[0] == {"id": "a", "topic_probability": 0.9334362011935995, "truncated_chars": 0}
    for other in (pd.read_csv(tmp_path / "p.csv"), pd.read_parquet(tmp_path / "p.parquet")):
        assert other["topic_probability"][0] == rows[0]["topic_probability"]


def test_writer_abort_leaves_nothing(tmp_path):
    writer = PredictionWriter(tmp_path / "p.parquet", prediction_columns(["topic"]))
    writer.write(next(_chunks([Article("1", "", "gas")])))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_destinations(tmp_path):
    with pytest.raises(NewsclfError, match="output folder does not exist"):
        PredictionWriter(tmp_path / "missing" / "p.parquet", ["id"])
    with pytest.raises(NewsclfError, match="unknown output format"):
        PredictionWriter(tmp_path / "p.xlsx", ["id"])


def test_empty_input_writes_complete_empty_file(tmp_path):
    path = tmp_path / "p.parquet"
    writer = PredictionWriter(path, prediction_columns(["topic"]))
    writer.commit({})
    assert pq.read_table(path).num_rows == 0


def _square(x: int) -> int:
    return x * x


def _no_setup() -> None:
    pass


def test_ordered_map_keeps_order_in_workers_and_unfreezes_the_collector():
    assert list(ordered_map(_square, range(20), 2, _no_setup, ())) == [x * x for x in range(20)]
    # gc.freeze() before forking the workers is undone once they are gone, so a long-lived
    # process calling this repeatedly does not pin all its objects forever.
    assert gc.get_freeze_count() == 0


def _worker_memory_settings(_: int) -> tuple[str, str | None]:
    import pyarrow as pa

    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    thp = next((line.split()[1] for line in lines if line.startswith("THP_enabled:")), None)
    return pa.default_memory_pool().backend_name, thp


def test_workers_keep_their_memory_and_the_parent_is_left_alone():
    import pyarrow as pa

    parent = pa.default_memory_pool().backend_name
    (backend, thp), *_ = ordered_map(_worker_memory_settings, range(2), 2, _no_setup, ())
    assert backend == "system"  # Arrow's buffers from malloc, which keeps freed memory
    if sys.platform == "linux" and thp is not None:
        assert thp == "0"  # no transparent huge pages in a worker
    assert pa.default_memory_pool().backend_name == parent


def _models_that_prepare_differently() -> tuple[LoadedModel, LoadedModel]:
    """A topic model with the default preparation, and a stance model whose preparation also
    drops "Statement from the ministry..." paragraphs."""
    from newsclf.cleaning import DEFAULT_BOILERPLATE
    from newsclf.saved_model import Preparation

    rule = {**DEFAULT_BOILERPLATE, "statement": r"statement from the ministry.*"}
    stance = LoadedModel(
        "stance",
        Classifier(_fitted(), ["economy", "military"]),
        "uri",
        "name",
        "3",
        preparation=Preparation({"boilerplate": rule}),
    )
    return _model("topic"), stance


def test_an_article_empty_under_any_models_preparation_is_rejected_in_any_order(tmp_path):
    """Two models whose saved preparations differ: an article that one of them cleans to
    nothing is rejected as empty_text (not predicted with "" and NaN for that model), and the
    job's output does not depend on the order of the models."""
    from newsclf.articles import Source
    from newsclf.batch import JobSettings, run_job

    topic, stance = _models_that_prepare_differently()
    texts = ["gas prices rouble", "Statement from the ministry on gas.", "troops drone", "  "]
    rows = [{"id": f"a{i}", "title": "", "text": t} for i, t in enumerate(texts)]
    source_path = tmp_path / "in.jsonl"
    source_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    source = Source(path=str(source_path), format="jsonl")
    outputs = []
    for name, models in (("ts", [topic, stance]), ("st", [stance, topic])):
        out = tmp_path / f"{name}.parquet"
        result = run_job(source, models, out, JobSettings(n_jobs=1))
        assert result.n_predicted == 2 and result.rejected_by_reason == {"empty_text": 2}
        rejects = pd.read_csv(tmp_path / f"{name}.parquet.rejects.csv")
        assert rejects[["id", "reason"]].values.tolist() == [
            ["a1", "empty_text"],
            ["a3", "empty_text"],
        ]
        outputs.append(rejects)
        frame = pd.read_parquet(out)
        assert frame["id"].tolist() == ["a0", "a2"]
        assert frame["stance_probability"].notna().all()
        outputs.append(frame[sorted(frame.columns)])
    pd.testing.assert_frame_equal(outputs[0], outputs[2])  # the rejects
    pd.testing.assert_frame_equal(outputs[1], outputs[3])  # the predictions


def test_duplicate_texts_are_the_same_under_every_models_preparation(tmp_path):
    """With dedupe_text, an article is a duplicate only if its text is the same under each
    model's preparation. Before, the first model's decided: two articles its cleaning made
    equal lost the second's prediction from a model that reads them differently, and the
    output depended on the order of the models."""
    from newsclf.articles import Source
    from newsclf.batch import JobSettings, run_job

    topic, stance = _models_that_prepare_differently()
    texts = [
        "gas prices rouble\n\nStatement from the ministry on gas.",
        "gas prices rouble\n\nStatement from the ministry on troops.",  # same for stance only
        "gas prices rouble\n\nStatement from the ministry on gas.",  # the same for both
    ]
    rows = [{"id": f"a{i}", "title": "", "text": t} for i, t in enumerate(texts)]
    source_path = tmp_path / "in.jsonl"
    source_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    source = Source(path=str(source_path), format="jsonl")
    for name, models in (("ts", [topic, stance]), ("st", [stance, topic])):
        out = tmp_path / f"{name}.parquet"
        result = run_job(source, models, out, JobSettings(n_jobs=1, dedupe_text=True))
        assert result.rejected_by_reason == {"duplicate_text": 1}, name
        assert pd.read_parquet(out)["id"].tolist() == ["a0", "a1"]


def test_drift_counts_of_words_beside_other_features_are_those_of_the_words_alone():
    """A model whose words sit in a FeatureUnion after other columns (the stance default's rule
    cues come beside them) reports the same documents-per-term profile as the words alone."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import FeatureUnion, make_pipeline

    from newsclf.models import RuleCues
    from newsclf.predict import _model_stats

    def words():
        return make_pipeline(HashingVectorizer(n_features=2**10, norm=None), TfidfTransformer())

    cues = RuleCues(rules="stance", labels=["anti_russia", "neutral", "pro_russia"])
    union = Pipeline(
        [
            ("vectorizer", FeatureUnion([("cues", cues), ("words", words())])),
            ("classifier", LogisticRegression()),
        ]
    ).fit(TEXTS, LABELS)
    alone = Pipeline([("vectorizer", words()), ("classifier", LogisticRegression())])
    alone.fit(TEXTS, LABELS)
    texts = ["gas prices", "troops and tanks near the gas field", "Moscow denies it"]
    stats = {}
    for name, pipe in (("union", union), ("alone", alone)):
        classifier = Classifier(pipe, ["economy", "military"])
        _, features = classifier.predict_with_features(texts)
        stats[name] = _model_stats(classifier, texts, features, sample=0)
    assert Classifier(union, []).weighting_start == cues.transform([""]).shape[1] > 0
    assert stats["alone"].term_docs is not None and stats["alone"].term_docs.sum() > 0
    np.testing.assert_array_equal(stats["union"].term_docs, stats["alone"].term_docs)
