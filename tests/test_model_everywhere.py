"""One model, the same everywhere: the logged model prepares raw articles itself, so MLflow's
pyfunc loader, ``mlflow models serve``, ``spark_udf`` and ``newsclf-predict`` agree."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from newsclf import registry, saved_model, tracking
from newsclf.articles import Source, ingest
from newsclf.saved_model import Preparation
from tests.conftest import BIN, make_corpus, run_cli
from tests.predict_support import article_rows, write_jsonl

MAX_CHARS = 3000  # small, so truncation shows


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raw_articles() -> pd.DataFrame:
    """Raw articles as a user has them: mojibake, curly quotes, boilerplate paragraphs and
    lines, no title, an over-long body, one that is all boilerplate."""
    rows = article_rows(24)
    mojibake = "The envoy’s café talks — “treaty” summit".encode().decode("latin-1")
    rows[0]["text"] = f"{mojibake}\n\n{rows[0]['text']}"
    rows[1]["title"] = "Ambassador’s “frank” talks"
    rows[2]["text"] += "\n\nShare this: Facebook Twitter Email\n\nAdvertisement\n\n━━━━"
    rows[3]["text"] += "\n\nRead more: troops in the east\n\nSign up for our newsletter briefing"
    rows[4]["title"] = None
    rows[5]["text"] = "rouble inflation exports gas prices market. " * 400  # > 2 * MAX_CHARS
    rows[6]["text"] = "brigade " * 500  # > MAX_CHARS, < 2 * MAX_CHARS
    rows[7]["text"] = "Advertisement\n\nShare this: Facebook Twitter"  # nothing left
    lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit sed do."
    rows[8]["text"] = f"{lorem}\n\n{rows[8]['text']}"
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A topic model registered as champion in a SQLite store, logged with a preparation
    that differs from the defaults (curly quotes kept, bodies cut at MAX_CHARS)."""
    folder = tmp_path_factory.mktemp("everywhere")
    labels = pd.read_csv(make_corpus(folder / "corpus", n_per_topic=10))
    preparation = Preparation({"straight_quotes": False}, MAX_CHARS)
    articles = {
        a.id: a
        for a in ingest(Source(path=str(folder / "corpus/articles")), preparation.cleaner).articles
    }
    texts = [articles[i].text for i in labels["article_id"]]
    pipe = Pipeline(
        [("vectorizer", TfidfVectorizer()), ("classifier", LogisticRegression(max_iter=500))]
    ).fit(texts, labels["topic"])
    store = f"sqlite:///{folder / 'mlflow.db'}"
    tracking.configure(store)
    with tracking.run("newsclf-topic", "unit"):
        uri = saved_model.log_model(
            pipe,
            sorted(set(labels["topic"])),
            "topic",
            _raw_articles()[:2][["title", "text"]],
            preparation,
        )
    registry.promote("newsclf-topic", registry.register(uri, "newsclf-topic"))
    return folder, store


def _serve(model_uri: str, store: str, frame: pd.DataFrame, cwd) -> pd.DataFrame:
    """Predictions of ``mlflow models serve`` (a real REST server on a free loopback port)."""
    port = _free_port()
    # the scoring server runs `uvicorn` from the PATH: this environment's
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "PATH": path}
    log = (cwd / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            *(str(BIN / "mlflow"), "models", "serve", "-m", model_uri),
            *("--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)),
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (cwd / "serve.log").read_text()
            assert time.monotonic() < deadline, "mlflow models serve never answered"
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        body = {"dataframe_split": frame.astype(object).where(frame.notna(), None).to_dict("split")}
        response = requests.post(f"http://127.0.0.1:{port}/invocations", json=body, timeout=120)
        assert response.ok, response.text
        return pd.DataFrame(response.json()["predictions"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def _spark_udf(model_uri: str, frame: pd.DataFrame) -> pd.DataFrame:
    from pyspark.sql import functions as F

    from newsclf.spark import spark_session

    spark = spark_session(
        "local[1]",
        "newsclf-test-udf",
        {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"},
    )
    try:
        data = spark.createDataFrame(frame, "title string, text string")
        udf = mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local")  # type from signature
        out = data.select(udf(F.struct("title", "text")).alias("p")).select("p.*").toPandas()
    finally:
        spark.stop()
    return out


def test_pyfunc_serve_spark_udf_and_newsclf_predict_agree(model, tmp_path):
    _, store = model
    uri = "models:/newsclf-topic@champion"
    raw = _raw_articles()
    frame = raw[["title", "text"]]

    records = raw.astype(object).where(raw.notna(), None).to_dict("records")  # null, not NaN
    source = write_jsonl(tmp_path / "raw.jsonl", records)
    run_cli(
        tmp_path,
        "newsclf-predict",
        f"mlflow.tracking_uri={store}",
        "source=jsonl",
        f"source.path={source}",
        f"models.topic={uri}",
        "~models.stance",
        f"output.path={tmp_path / 'p.parquet'}",
        "n_jobs=1",
    )
    ours = pq.read_table(tmp_path / "p.parquet").to_pandas().set_index("id")
    rejects = pd.read_csv(tmp_path / "p.parquet.rejects.csv")
    assert rejects[["id", "reason"]].values.tolist() == [[raw["id"][7], "empty_text"]]
    assert (
        ours.loc[raw["id"][5], "truncated_chars"] > 0
        and ours.loc[raw["id"][6], "truncated_chars"] > 0
    )

    mlflow.set_tracking_uri(store)
    loaded = mlflow.pyfunc.load_model(uri).predict(frame)
    served = _serve(uri, store, frame, tmp_path)
    spark = _spark_udf(uri, frame)

    labels = sorted(TOPICS)
    expected = ["label", "probability", *(f"probability_{label}" for label in labels)]
    kept = raw["id"] != raw["id"][7]
    for name, out in (("pyfunc", loaded), ("serve", served), ("spark_udf", spark)):
        assert out.columns.tolist() == expected, name
        assert out["label"][~kept].tolist() == [""], name  # nothing left to classify
        assert out["probability"][~kept].isna().all(), name
        got = out[kept.to_numpy()].reset_index(drop=True)
        assert got["label"].tolist() == ours["topic_label"].tolist(), name
        diff = np.abs(got["probability"].to_numpy(float) - ours["topic_probability"].to_numpy())
        assert diff.max() < 1e-9, name
        per_label = got[expected[2:]].to_numpy(float)
        assert np.allclose(per_label.sum(axis=1), 1.0), name
        assert np.abs(per_label.max(axis=1) - got["probability"].to_numpy(float)).max() < 1e-12
        reference = loaded[kept.to_numpy()].reset_index(drop=True)[expected[2:]]
        assert np.abs(per_label - reference.to_numpy(float)).max() < 1e-9, name

    # The preparation matters: the same texts unprepared score otherwise.
    bare = Preparation({"fix_text": False, "boilerplate": {}, "latin_filler": False}, None)
    assert bare.texts(frame["title"], frame["text"]) != Preparation(
        {"straight_quotes": False}, MAX_CHARS
    ).texts(frame["title"], frame["text"])


TOPICS = ("diplomacy", "military", "economy", "cyber_disinfo", "human_rights", "other")
