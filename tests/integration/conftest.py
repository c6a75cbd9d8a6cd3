"""A real PostgreSQL 15 cluster and real ``mlflow server`` processes on loopback.

The cluster is created with ``initdb`` in a temporary folder and listens on a free loopback
port; each server uses its own database and artifact folder. Everything is stopped and removed
at the end of the session (or of the test, for per-test servers), also when a test fails: the
finalizers are registered before anything is started. When the test process is terminated
(SIGTERM, SIGHUP: a CI timeout, a closed terminal) the running services are stopped before it
exits, so no cluster or server outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

PG_VERSION = "15"
PG_USER = "newsclf"
PG_PASSWORD = "pg-secret-for-tests"
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> Path:
    """A PostgreSQL program: Debian keeps them in /usr/lib/postgresql/<version>/bin (15 on
    Debian 12, preferred; else the newest installed), off the PATH."""
    debian = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin/{name}")
    if debian.exists():
        return debian
    others = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3])
    )
    if others:
        return others[-1]
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.fail(f"PostgreSQL {PG_VERSION} ({name}) is not installed: apt-get install postgresql")


class Postgres:
    """A throw-away PostgreSQL cluster. initdb refuses to run as root, so as root the cluster
    belongs to the ``postgres`` system user and its programs run through ``runuser``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="newsclf-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.started = False
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str | Path) -> None:
        proc = subprocess.run(
            [*self.as_user, *map(str, cmd)], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(PG_PASSWORD + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        pwfile.chmod(0o600)
        self._run(
            _pg_bin("initdb"),
            "-D",
            self.data,
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            self.data,
            "-l",
            self.root / "log",
            "-o",
            options,
            "-w",
            "start",
        )
        self.started = True

    def create_database(self, name: str) -> str:
        """Create a database; returns its SQLAlchemy URI (psycopg2 driver, password inside)."""
        env = {**os.environ, "PGPASSWORD": PG_PASSWORD}
        proc = subprocess.run(
            [
                str(_pg_bin("createdb")),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                name,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            try:
                self._run(_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
            finally:
                self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """``mlflow server`` with a PostgreSQL backend store and a local artifact folder that the
    server proxies (clients upload and download through it, as in a team set-up)."""

    def __init__(self, backend_uri: str, *options: str) -> None:
        self.backend_uri = backend_uri
        self.options = options  # more `mlflow server` options
        self.root = Path(tempfile.mkdtemp(prefix="newsclf-mlflow-server-"))
        self.artifacts = self.root / "artifacts"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240.0) -> None:
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                self.backend_uri,
                "--artifacts-destination",
                str(self.artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "2",
                *self.options,
            ],
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the workers too
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"mlflow server did not answer in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server and all its worker processes (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 30  # workers may outlive the parent briefly
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# Stop functions of the services running now, newest last: what a terminated run stops.
_RUNNING: list[Callable[[], None]] = []
_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def _stop_services_and_exit(signum: int, _frame: object) -> None:
    """On SIGTERM / SIGHUP: stop every running service (newest first), then die of the signal
    as the process would have without this handler (so the caller sees the same exit)."""
    for sig in _TERMINATING:
        signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the clean-up short
    while _RUNNING:
        stop = _RUNNING.pop()
        with contextlib.suppress(Exception):
            stop()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def guard(request: pytest.FixtureRequest, stop: Callable[[], None]) -> None:
    """Run ``stop`` when the fixture's scope ends and when the test process is terminated."""
    if threading.current_thread() is threading.main_thread():
        for sig in _TERMINATING:
            if signal.getsignal(sig) is not _stop_services_and_exit:
                signal.signal(sig, _stop_services_and_exit)
    _RUNNING.append(stop)

    def finalize() -> None:
        if stop in _RUNNING:
            _RUNNING.remove(stop)
        stop()

    request.addfinalizer(finalize)


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Postgres:
    """The PostgreSQL 15 cluster, for the whole session."""
    pg = Postgres()
    guard(request, pg.stop)  # before start: a half-started cluster is cleaned up too
    pg.start()
    return pg


def start_server(
    request: pytest.FixtureRequest, postgres: Postgres, database: str, *options: str
) -> MlflowServer:
    server = MlflowServer(postgres.create_database(database), *options)
    guard(request, server.remove)
    server.start()
    return server


@pytest.fixture(scope="session")
def mlflow_server(request: pytest.FixtureRequest, postgres: Postgres) -> MlflowServer:
    """A tracking server on PostgreSQL shared by the session's integration tests."""
    return start_server(request, postgres, "mlflow")


@pytest.fixture
def server_env(mlflow_server: MlflowServer) -> dict[str, str]:
    """Environment for the console scripts: every newsclf command points at the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_TRACKING_URI": mlflow_server.uri}
