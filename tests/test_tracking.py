import mlflow
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from newsclf import registry, saved_model, store_uri, tracking
from newsclf.errors import NewsclfError

TEXTS = ["gas prices rouble", "tank artillery troops", "gas market", "troops drone"]
LABELS = ["economy", "military", "economy", "military"]


def test_flatten_and_redact():
    flat = tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"})
    assert flat == {"a.b": 1, "a.c": "[1, 2]", "d": "x"}
    assert tracking.redact("mlflow.password", "hunter2") == "***"
    assert tracking.redact("uri", "postgresql://me:hunter2@db/x") == "postgresql://***@db/x"
    assert tracking.redact("model.C", 10) == 10


@pytest.fixture
def logged(mlflow_uri):
    tracking.configure(mlflow_uri)
    pipe = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)
    with tracking.run("newsclf-topic", "unit", {}) as run_id:
        tracking.log_config({"db": {"password": "hunter2"}, "x": 1, "max_df": 1.0})
        uri = saved_model.log_model(pipe, ["economy", "military"], "topic", TEXTS[:2])
    return run_id, uri


def test_model_round_trip_registry_and_alias(logged):
    run_id, uri = logged
    params = mlflow.get_run(run_id).data.params
    assert params["db.password"] == "***" and params["x"] == "1"
    # sklearn reads max_df=1.0 as a proportion and max_df=1 as a count: they must not merge
    assert params["max_df"] == "1.0"
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/config.yaml")
    assert "hunter2" not in text
    version = registry.register(uri, "newsclf-topic")
    assert registry.champion("newsclf-topic") is None
    registry.promote("newsclf-topic", version)
    assert registry.champion("newsclf-topic") == version
    model = saved_model.load_model("models:/newsclf-topic@champion", task="topic")
    assert (model.name, model.version, model.task) == ("newsclf-topic", version, "topic")
    assert model.classifier.predict(["rouble gas"])["label"].tolist() == ["economy"]
    # the same model through MLflow's own loader gives the same labels
    pyfunc = mlflow.pyfunc.load_model("models:/newsclf-topic@champion")
    import pandas as pd

    frame = pyfunc.predict(pd.DataFrame({"text": TEXTS}))
    assert frame["label"].tolist() == model.classifier.predict(TEXTS)["label"].tolist()
    assert saved_model.load_model(uri).task == "topic"  # by logged-model URI too


def test_wrong_task_missing_alias_and_foreign_models(logged, tmp_path):
    _, uri = logged
    with pytest.raises(NewsclfError, match="is a topic model, not stance"):
        saved_model.load_model(uri, task="stance")
    with pytest.raises(NewsclfError, match="models:/newsclf-nope@champion"):
        saved_model.load_model("models:/newsclf-nope@champion")
    with pytest.raises(NewsclfError, match="cannot load"):
        saved_model.load_model(str(tmp_path / "no-such-folder"))
    foreign = tmp_path / "foreign"
    mlflow.sklearn.save_model(LogisticRegression().fit([[0], [1]], [0, 1]), str(foreign))
    with pytest.raises(NewsclfError, match="not a newsclf model"):
        saved_model.load_model(str(foreign))


@pytest.mark.parametrize(
    ("uri", "remote"),
    [
        ("http://127.0.0.1:5000", True),
        ("https://mlflow.example.org", True),
        ("postgresql+psycopg2://u@db/mlflow", True),
        ("postgresql://db/mlflow", True),
        ("mysql+pymysql://db/mlflow", True),
        ("sqlite:///mlflow.db", False),
        ("file:///tmp/mlruns", False),
        ("databricks", False),
        ("postgresqlish:///x", False),
    ],
)
def test_remote_stores_are_servers_and_databases(uri, remote):
    assert store_uri.is_remote(uri) is remote
