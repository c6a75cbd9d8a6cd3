"""A new SQLite store is created under a temporary name and renamed into place: it must be the
same store MLflow creates itself, and leave nothing else behind."""

from __future__ import annotations

import sqlite3

import mlflow
from mlflow.tracking import MlflowClient

from newsclf import tracking


def _schema(path) -> list:
    """Tables, indexes, schema version and default experiment. The clauses of a CREATE
    statement are compared as a set: MLflow's migrations rebuild some tables with their
    constraints in an order that varies from one run to the next."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        tables = [(kind, name, sorted((sql or "").split(", \n\t"))) for kind, name, sql in rows]
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
        experiments = db.execute("SELECT experiment_id, name, lifecycle_stage FROM experiments")
        return [tables, version, experiments.fetchall()]


def test_new_store_is_the_one_mlflow_creates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ours = tmp_path / "ours" / "mlflow.db"
    tracking.configure(f"sqlite:///{ours}")
    assert sorted(p.name for p in ours.parent.iterdir()) == [".mlflow.db.lock", "mlflow.db"]
    theirs = tmp_path / "theirs.db"
    MlflowClient(tracking_uri=f"sqlite:///{theirs}").search_experiments(max_results=1)
    assert _schema(ours) == _schema(theirs)
    default = MlflowClient(tracking_uri=f"sqlite:///{ours}").get_experiment("0")
    assert (
        default.artifact_location
        == MlflowClient(tracking_uri=f"sqlite:///{theirs}").get_experiment("0").artifact_location
    )


def test_existing_store_is_opened_in_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.configure(uri)
    mlflow.set_experiment("kept")
    tracking.configure(uri)  # a second job against the same store
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name("kept") is not None
    assert not list(tmp_path.glob(".mlflow.db.tmp-*"))
