"""dataset -> train -> champion -> batch prediction through the console scripts against a real
``mlflow server`` on a real PostgreSQL, then what the server (and its database) holds."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import psycopg2
import pyarrow.parquet as pq
import pytest

from tests.integration.helpers import run

TASKS = ("topic", "stance")


@pytest.fixture(scope="module")
def team_run(tmp_path_factory, mlflow_server) -> dict:
    """A user's working folder: every command with mlflow=server and the server's URI."""
    from tests.conftest import make_corpus

    cwd = tmp_path_factory.mktemp("team")
    env = {"MLFLOW_TRACKING_URI": mlflow_server.uri}
    env = {**_clean_env(), **env}
    corpus = cwd / "corpus"
    make_corpus(corpus, n_per_topic=10)
    sources = (f"source.path={corpus / 'articles'}", f"annotations.path={corpus / 'labels.csv'}")
    run(cwd, "newsclf-dataset", "mlflow=server", *sources, "output_dir=ds", env=env)
    trained = {
        task: run(
            cwd, "newsclf-train", "mlflow=server", f"task={task}", f"dataset_dir=ds/{task}", env=env
        )
        for task in TASKS
    }
    predicted = run(
        cwd,
        "newsclf-predict",
        "mlflow=server",
        f"source.path={corpus / 'articles'}",
        "output.path=predictions/all.parquet",
        "report.mlflow=true",
        env=env,
    )
    return {"cwd": cwd, "trained": trained, "predicted": predicted, "corpus": corpus}


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def test_server_holds_experiments_runs_metrics_versions_and_aliases(team_run, mlflow_server):
    # download_artifacts resolves models:/ URIs through the process-wide registry URI whatever
    # tracking_uri says; the autouse fixture restores both after the test.
    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    client = mlflow.MlflowClient()
    for task in TASKS:
        experiment = client.get_experiment_by_name(f"newsclf-{task}")
        assert experiment is not None
        assert experiment.artifact_location.startswith("mlflow-artifacts:")  # served, not local
        runs = client.search_runs([experiment.experiment_id])
        stages = sorted(r.data.tags["newsclf.stage"] for r in runs)
        assert stages == ["dataset", "train"]
        train_run = next(r for r in runs if r.data.tags["newsclf.stage"] == "train")
        assert train_run.info.status == "FINISHED"
        assert {"validation_macro_f1", "test_macro_f1", "test_accuracy"} <= set(
            train_run.data.metrics
        )
        assert train_run.data.params["task.name"] == task
        assert len(train_run.inputs.dataset_inputs) == 3
        champion = client.get_model_version_by_alias(f"newsclf-{task}", "champion")
        assert str(champion.version) == "1" and champion.run_id == train_run.info.run_id
        assert champion.tags["promoted"] == "True"
        assert f"registered newsclf-{task} version 1 (champion" in team_run["trained"][task].stdout
    names = sorted(m.name for m in client.search_registered_models())
    assert [n for n in names if n.startswith("newsclf-")] == ["newsclf-stance", "newsclf-topic"]
    assert not [n for n in names if "lock" in n]  # no promotion lock left behind


def test_artifacts_download_from_the_server(team_run, mlflow_server, tmp_path):
    # download_artifacts resolves models:/ URIs through the process-wide registry URI whatever
    # tracking_uri says; the autouse fixture restores both after the test.
    mlflow.set_tracking_uri(mlflow_server.uri)
    mlflow.set_registry_uri(mlflow_server.uri)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("newsclf-topic", "champion")
    plot = mlflow.artifacts.download_artifacts(
        run_id=version.run_id,
        artifact_path="plots/test_confusion_matrix.png",
        dst_path=tmp_path,
    )
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/newsclf-topic/{version.version}",
            dst_path=tmp_path / "m",
        )
    )
    assert (model / "MLmodel").exists() and (model / "artifacts" / "model.skops").exists()
    # the files live in the server's artifact store, not in the user's folder
    assert list(mlflow_server.artifacts.rglob("model.skops"))
    assert not (team_run["cwd"] / "mlruns").exists()
    assert not (team_run["cwd"] / "mlflow.db").exists()


def test_predictions_use_the_server_champions(team_run, mlflow_server):
    path = team_run["cwd"] / "predictions" / "all.parquet"
    table = pq.read_table(path).to_pandas()
    n_articles = len(list((team_run["corpus"] / "articles").glob("*.txt")))
    assert len(table) == n_articles
    assert json.loads(pq.read_metadata(path).metadata[b"newsclf"])["n_input"] == n_articles
    for task in TASKS:
        assert set(table[f"{task}_model"]) == {f"newsclf-{task}"}
        assert set(table[f"{task}_version"].astype(str)) == {"1"}
    # the batch report went to the server as well
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name("newsclf-predict")
    (report,) = client.search_runs([experiment.experiment_id])
    assert report.data.metrics["n_predicted"] == n_articles


def test_postgresql_is_the_backend_store(team_run, postgres):
    """The same facts, read from the database behind the server."""
    with (
        psycopg2.connect(
            host="127.0.0.1",
            port=postgres.port,
            user="newsclf",
            password="pg-secret-for-tests",
            dbname="mlflow",
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(
            "select name, alias, version from registered_model_aliases "
            "where name like 'newsclf-%' order by name"
        )
        assert cur.fetchall() == [
            ("newsclf-stance", "champion", 1),
            ("newsclf-topic", "champion", 1),
        ]
        cur.execute(
            "select count(*) from runs r join experiments e using (experiment_id) "
            "where e.name in ('newsclf-topic', 'newsclf-stance')"
        )
        assert cur.fetchone()[0] == 4
