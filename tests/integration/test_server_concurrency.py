"""Parallel jobs against the real server on PostgreSQL: nothing lost, and concurrent
promotions serialised by the lock entry in the server's registry."""

from __future__ import annotations

import mlflow

from tests.integration.helpers import (
    build_dataset,
    check_parallel_sweep,
    parallel_sweep,
    promotion_race,
)


def test_parallel_sweep_on_the_server_records_every_job(tmp_path, mlflow_server, server_env):
    dataset = build_dataset(tmp_path, env=server_env)
    team = ("mlflow=server", "mlflow.experiment_prefix=par-", "mlflow.model_prefix=par-")
    proc, seconds = parallel_sweep(tmp_path, dataset, *team, env=server_env)
    print(f"8-job sweep on the server, 2 workers: {seconds:.1f}s")
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    counts = check_parallel_sweep(client, "par-topic", "par-topic", proc.stdout + proc.stderr)
    assert counts["trials"] == counts["versions"] == 8
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store


def test_two_concurrent_promotions_on_the_server_leave_the_better(mlflow_server, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = promotion_race(mlflow_server.uri, "race-topic")
    better_version, better_promoted, better_saw = result["seen"][0.9]
    worse_version, worse_promoted, worse_saw = result["seen"][0.7]
    assert (better_version, worse_version) == ("2", "3")
    assert (better_promoted, better_saw) == (True, "1")
    assert (worse_promoted, worse_saw) == (False, better_version)
    assert result["champion"] == better_version
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
    assert not [m for m in client.search_registered_models() if "lock" in m.name]
