"""Parallel jobs against the SQLite default: nothing lost, no "database is locked", and
concurrent promotions serialised by the lock file beside the database."""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import time

import mlflow
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from newsclf import registry, saved_model, tracking
from newsclf.errors import NewsclfError
from newsclf.evaluation import gate
from tests.integration.helpers import (
    LABELS,
    TEXTS,
    build_dataset,
    check_parallel_sweep,
    parallel_sweep,
    promotion_race,
)


def test_parallel_sweep_on_sqlite_records_every_job(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    dataset = build_dataset(tmp_path)
    proc, seconds = parallel_sweep(tmp_path, dataset)  # the default store: ./mlflow.db
    print(f"8-job sweep on SQLite, 2 workers: {seconds:.1f}s")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    counts = check_parallel_sweep(
        client, "newsclf-topic", "newsclf-topic", proc.stdout + proc.stderr
    )
    assert counts["trials"] == counts["versions"] == 8
    assert (tmp_path / ".mlflow.db.newsclf-topic.promotion.lock").exists()


def test_two_concurrent_promotions_leave_the_better_champion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = promotion_race(f"sqlite:///{tmp_path / 'mlflow.db'}", "race")
    assert result["first"] == "1"
    better_version, better_promoted, better_saw = result["seen"][0.9]
    worse_version, worse_promoted, worse_saw = result["seen"][0.7]
    assert (better_version, worse_version) == ("2", "3")
    assert (better_promoted, better_saw) == (True, "1")
    # the worse job decided against the new champion, not the one it had first read
    assert (worse_promoted, worse_saw) == (False, better_version)
    assert result["champion"] == better_version


def _create_run(uri: str, barrier) -> None:
    barrier.wait(timeout=120)  # all jobs create the store's tables at the same moment
    tracking.configure(uri)
    with tracking.run("newsclf-topic", "first"):
        tracking.log_metrics({"x": 1.0})


def test_fresh_sqlite_store_created_once_by_parallel_jobs(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    jobs = [ctx.Process(target=_create_run, args=(uri, barrier)) for _ in range(3)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=300)
    assert [job.exitcode for job in jobs] == [0, 0, 0]
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("newsclf-topic").experiment_id])
    assert len(runs) == 3


def test_promotion_lock_waits_then_names_holder_and_breaks_stale_locks(mlflow_uri):
    tracking.configure(mlflow_uri)
    with registry._registry_lock("m", timeout=5, stale_after=600):
        held = mlflow.MlflowClient().get_registered_model("m" + registry.LOCK_SUFFIX)
        assert held.tags["newsclf.lock_holder"]
        waiting = registry._registry_lock("m", timeout=0.5, stale_after=600)
        with pytest.raises(NewsclfError, match=r"m: promotion lock m.promotion-lock held by"):
            waiting.__enter__()
        # a holder that died long ago: its lock is broken
        with registry._registry_lock("m", timeout=5, stale_after=0):
            taken = mlflow.MlflowClient().get_registered_model("m" + registry.LOCK_SUFFIX)
            assert taken.tags["newsclf.lock_holder"] != held.tags["newsclf.lock_holder"]
    assert [m.name for m in mlflow.MlflowClient().search_registered_models()] == []


def test_promotion_lock_of_a_dead_local_job_is_broken_at_once(mlflow_uri):
    tracking.configure(mlflow_uri)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # a job that has ended
    dead.wait()
    holder = f"{socket.gethostname()}:{dead.pid}:0000"
    mlflow.MlflowClient().create_registered_model(
        "m" + registry.LOCK_SUFFIX,
        tags={"newsclf.lock_holder": holder, "newsclf.lock_since": f"{time.time():.3f}"},
    )
    with registry._registry_lock("m", timeout=5, stale_after=600):
        taken = mlflow.MlflowClient().get_registered_model("m" + registry.LOCK_SUFFIX)
        assert taken.tags["newsclf.lock_holder"] != holder


def test_a_held_promotion_lock_is_renewed_and_never_goes_stale(mlflow_uri):
    tracking.configure(mlflow_uri)
    client = mlflow.MlflowClient()
    with registry._registry_lock("m", timeout=5, stale_after=2):
        first = float(_lock_tags(client)["newsclf.lock_since"])
        time.sleep(3)  # longer than stale_after: a live holder's lock must not be broken
        waiting = registry._registry_lock("m", timeout=1, stale_after=2)
        with pytest.raises(NewsclfError, match="held by"):
            waiting.__enter__()
        since = float(_lock_tags(client)["newsclf.lock_since"])
        assert since > first
    assert [m.name for m in client.search_registered_models()] == []


def _lock_tags(client: mlflow.MlflowClient) -> dict[str, str]:
    return client.get_registered_model("m" + registry.LOCK_SUFFIX).tags


def test_failed_promotion_leaves_no_half_registered_version(mlflow_uri, monkeypatch):
    tracking.configure(mlflow_uri)
    pipe = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)
    with tracking.run("newsclf-topic", "unit"):
        uri = saved_model.log_model(pipe, ["economy", "military"], "topic", TEXTS[:2])

    def broken(name: str, version: str) -> None:
        raise ConnectionError("the registry went away")

    monkeypatch.setattr(registry, "promote", broken)
    with pytest.raises(ConnectionError):
        registry.register_gated(uri, "newsclf-topic", decide=lambda s: gate(0.9, 0.0, s))
    assert mlflow.MlflowClient().search_model_versions("name = 'newsclf-topic'") == []
