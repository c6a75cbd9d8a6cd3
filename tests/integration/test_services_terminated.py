"""A terminated test run (SIGTERM: a CI timeout) stops its PostgreSQL cluster and its
``mlflow server`` instead of leaving them running, re-parented to init."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import ROOT

HOLD = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    from tests.integration.conftest import *  # noqa: F403 (the fixtures)


    def test_hold(postgres, mlflow_server):
        postmaster = (postgres.data / "postmaster.pid").read_text().split()[0]
        Path(os.environ["HOLD_INFO"]).write_text(json.dumps({
            "server_pid": mlflow_server.proc.pid,
            "postmaster_pid": int(postmaster),
            "folders": [str(postgres.root), str(mlflow_server.root)],
        }))
        time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_postgres_and_mlflow_server(tmp_path):
    (tmp_path / "test_hold.py").write_text(HOLD)
    info = tmp_path / "info.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOLD_INFO": str(info)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hold.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not info.exists():
            assert run.poll() is None, run.communicate()[0].decode()
            assert time.monotonic() < deadline, "the services never started"
            time.sleep(0.2)
        services = json.loads(info.read_text())
        assert _alive(services["postmaster_pid"]) and _group_alive(services["server_pid"])
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == -signal.SIGTERM  # it still dies of the signal
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        _alive(services["postmaster_pid"]) or _group_alive(services["server_pid"])
    ):
        time.sleep(0.2)
    assert not _alive(services["postmaster_pid"]), "PostgreSQL outlived the test run"
    assert not _group_alive(services["server_pid"]), "mlflow server outlived the test run"
    assert not any(Path(folder).exists() for folder in services["folders"])
