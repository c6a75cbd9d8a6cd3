"""Safe model loading: skops with trusted types only; pickle formats only when asked for."""

from __future__ import annotations

import mlflow
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from newsclf import saved_model, tracking
from newsclf.errors import NewsclfError
from newsclf.saved_model import MODEL_CODE, save_pipeline, verified_model_copy

TEXTS = ["gas prices rouble", "tank artillery troops", "gas market", "troops drone"] * 3
LABELS = ["economy", "military", "economy", "military"] * 3


def _pipe():
    return Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)


@pytest.mark.parametrize("fmt", ["pickle", "cloudpickle"])
def test_pickle_models_refused_unless_allowed(tmp_path, mlflow_uri, fmt):
    folder = tmp_path / fmt
    mlflow.sklearn.save_model(_pipe(), str(folder), serialization_format=fmt)
    with pytest.raises(NewsclfError, match=rf"stored as {fmt} .*set allow_pickle=true"):
        saved_model.load_model(str(folder), task="topic")
    with pytest.raises(NewsclfError, match=r"needs its task named .*models\.topic=<uri>"):
        saved_model.load_model(str(folder), allow_pickle=True)
    model = saved_model.load_model(str(folder), task="topic", allow_pickle=True)
    assert model.task == "topic"
    assert model.classifier.predict(["rouble gas"])["label"].tolist() == ["economy"]


def test_cloudpickled_python_model_refused_unless_allowed(tmp_path, mlflow_uri):
    class Upper(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return ["economy" if "gas" in t else "military" for t in model_input["text"]]

    folder = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(str(folder), python_model=Upper())
    with pytest.raises(NewsclfError, match=r"stored as cloudpickle .*allow_pickle=true"):
        saved_model.load_model(str(folder), task="topic")
    model = saved_model.load_model(str(folder), task="topic", allow_pickle=True)
    out = model.classifier.predict(["gas", "tank"])
    assert out["label"].tolist() == ["economy", "military"]
    assert out["probability"].isna().all()  # the model gives none; nothing is made up


def test_tampered_newsclf_model_refused_and_code_replaced_for_spark(tmp_path, mlflow_uri):
    tracking.configure(mlflow_uri)
    with tracking.run("newsclf-topic", "unit"):
        uri = saved_model.log_model(_pipe(), ["economy", "military"], "topic", TEXTS[:2])
    local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "m"))
    evil = Pipeline([("f", FunctionTransformer(eval)), ("c", LogisticRegression())])
    skops = tmp_path / "m" / "artifacts" / "model.skops"
    save_pipeline(evil, skops)
    with pytest.raises(NewsclfError, match=r"refusing to load untrusted types builtins\.eval"):
        saved_model.load_model(local, task="topic")
    # A model whose code file was edited: Spark executors get newsclf's own code instead.
    save_pipeline(_pipe(), skops)
    (tmp_path / "m" / "pyfunc_model.py").write_text("import os; os.system('echo pwned')\n")
    model = saved_model.load_model(local, task="topic")
    copy = verified_model_copy(model, tmp_path / "copies")
    assert (tmp_path / "copies" / "topic" / "pyfunc_model.py").read_text() == MODEL_CODE.read_text()
    loaded = mlflow.pyfunc.load_model(copy)
    import pandas as pd

    assert loaded.predict(pd.DataFrame({"text": ["gas"]}))["label"].tolist() == ["economy"]


def test_pyfunc_loader_trusts_the_types_its_model_config_names(tmp_path, mlflow_uri):
    import pandas as pd

    pipe = Pipeline(
        [
            ("v", TfidfVectorizer()),
            ("a", FunctionTransformer(abs, accept_sparse=True)),  # builtins.abs: not trusted
            ("c", LogisticRegression()),
        ]
    ).fit(TEXTS, LABELS)
    tracking.configure(mlflow_uri)
    with tracking.run("newsclf-topic", "unit"):
        uri = saved_model.log_model(pipe, ["economy", "military"], "topic", TEXTS[:2])
    with pytest.raises(Exception, match=r"untrusted types builtins\.abs"):
        mlflow.pyfunc.load_model(uri)
    loaded = mlflow.pyfunc.load_model(uri, model_config={"trusted_types": ["builtins.abs"]})
    assert loaded.predict(pd.DataFrame({"text": ["gas"]}))["label"].tolist() == ["economy"]
