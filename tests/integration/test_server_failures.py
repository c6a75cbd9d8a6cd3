"""The tracking server goes away: jobs fail with one clear line after bounded retries, and
leave nothing half-registered; a prediction job fails before reading any input."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import mlflow
import pytest

from tests.conftest import BIN, error_line
from tests.integration.conftest import free_port, start_server
from tests.integration.helpers import CONFIGS, build_dataset, run


def _env(uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_TRACKING_URI": uri, **extra}


@pytest.fixture
def own_server(request, postgres):
    """A server of this test's own (it gets stopped), on its own database."""
    return start_server(request, postgres, f"fail_{uuid.uuid4().hex[:8]}")


def test_server_stopped_while_training(tmp_path, own_server):
    env = _env(own_server.uri)
    dataset = build_dataset(tmp_path, env=env)
    job = subprocess.Popen(
        [
            str(BIN / "newsclf-train"),
            "--config-dir",
            str(CONFIGS),
            "mlflow=server",
            "model=slow_forest",
            f"dataset_dir={dataset / 'topic'}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = mlflow.MlflowClient(tracking_uri=own_server.uri, registry_uri=own_server.uri)
        run_id = _wait_for_running_run(client, "newsclf-topic", job)
        time.sleep(1.5)  # logging done, the forest is being fitted
        assert job.poll() is None
        # Timed from the stop's start: under load the server's own shutdown can outlast the
        # job's retries, so the job may be done by the time stop() returns.
        stopping = time.monotonic()
        own_server.stop()
        out, err = job.communicate(timeout=300)
        waited = time.monotonic() - stopping
    finally:
        if job.poll() is None:
            job.kill()
    line = error_line(subprocess.CompletedProcess(job.args, job.returncode, out, err))
    assert "tracking server unreachable" in line and own_server.uri in line, line
    assert "gave up after 4 retries" in line
    assert 10 < waited < 210, waited  # it retried (0+2+4+8 s of backoff), then gave up

    own_server.start()  # same database: what did the job leave behind?
    assert client.search_registered_models() == []
    assert client.search_model_versions("name = 'newsclf-topic'") == []
    run = client.get_run(run_id)
    assert run.info.status in ("RUNNING", "FAILED")  # never FINISHED
    assert "test_macro_f1" not in run.data.metrics


def _wait_for_running_run(client, experiment: str, job, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert job.poll() is None, job.communicate()
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            runs = client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'")
            if runs:
                return runs[0].info.run_id
        time.sleep(0.2)
    raise AssertionError("the training run never appeared on the server")


def test_predict_with_unreachable_registry_fails_before_reading_input(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    env = _env(dead, MLFLOW_HTTP_REQUEST_MAX_RETRIES="1")
    missing = tmp_path / "articles-not-read.jsonl"  # reading it would fail differently
    proc = run(
        tmp_path,
        "newsclf-predict",
        "mlflow=server",
        "source=jsonl",
        f"source.path={missing}",
        env=env,
        ok=False,
    )
    line = error_line(proc)
    assert f"tracking server unreachable: {dead}" in line, line
    assert "connection refused" in line and "gave up after 1 retries" in line
    assert "articles-not-read" not in proc.stderr


def test_a_host_name_the_server_does_not_allow_is_named_with_the_option(
    request, postgres, tmp_path
):
    """A server started with --allowed-hosts for its public name refuses clients that reach it
    by another (HTTP 403): the error was MLflow's request failure with the response body; it
    now names the host and the server option."""
    server = start_server(
        request,
        postgres,
        f"hosts_{uuid.uuid4().hex[:8]}",
        "--allowed-hosts",
        "mlflow.internal:5000",
    )
    missing = tmp_path / "articles-not-read.jsonl"
    proc = run(
        tmp_path, "newsclf-predict", "mlflow=server", "source=jsonl", f"source.path={missing}",
        env=_env(server.uri), ok=False,
    )  # fmt: skip
    host = server.uri.removeprefix("http://")
    assert error_line(proc) == (
        f"newsclf-predict: error: tracking server {server.uri} refused the host name {host} "
        f"(HTTP 403): start it with --allowed-hosts naming every host:port users reach it by, "
        f"{host} included (docs/team-setup.md)"
    )


def test_train_with_unreachable_server_fails_before_reading_the_dataset(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    proc = run(
        tmp_path,
        "newsclf-train",
        "mlflow=server",
        f"dataset_dir={tmp_path / 'dataset-not-read'}",
        env=_env(dead, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"),
        ok=False,
    )
    assert f"tracking server unreachable: {dead}" in error_line(proc)
    assert "dataset-not-read" not in proc.stderr


def test_a_database_store_refusing_the_password_is_one_line_before_reading_input(
    tmp_path, postgres
):
    uri = postgres.create_database(f"pw_{uuid.uuid4().hex[:8]}")
    wrong = uri.replace(":pg-secret-for-tests@", ":not-the-password@")
    assert wrong != uri
    proc = run(
        tmp_path,
        "newsclf-train",
        f"mlflow.tracking_uri={wrong}",
        f"dataset_dir={tmp_path / 'dataset-not-read'}",
        env=_env(wrong),
        ok=False,
    )
    line = error_line(proc)
    assert "cannot connect" in line and "password authentication failed" in line, line
    assert "not-the-password" not in proc.stderr + proc.stdout
    assert "dataset-not-read" not in proc.stderr
