"""Shared fixtures: small generated corpora and a temporary MLflow store."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ARTICLE = SEEDS / "articles" / "000_31b14feb0c05d0a3.txt"
BIN = Path(sys.executable).parent  # the console scripts of the environment under test

# Words that make each label learnable in generated test articles.
TOPIC_WORDS = {
    "diplomacy": "summit envoy treaty ambassador talks embassy negotiation minister",
    "military": "troops artillery brigade missile frontline tank drone offensive",
    "economy": "rouble inflation exports gas prices market sanctions bank",
    "cyber_disinfo": "hackers malware propaganda bots disinformation ransomware trolls leak",
    "human_rights": "prisoner activist protest detained trial torture journalist court",
    "other": "football festival telescope museum orchestra vaccine election league",
}
STANCE_WORDS = {
    "anti_russia": "condemned aggression illegal brutal accused crimes",
    "neutral": "reported according figures scheduled analysts noted",
    "pro_russia": "legitimate defended provocation western hypocrisy sovereign",
}
FILLER = "the of and a to in is was for on that with as by at from it".split()


def make_corpus(folder: Path, n_per_topic: int = 8, seed: int = 0) -> Path:
    """Write a labelled corpus in the seed format; returns the labels.csv path."""
    rng = random.Random(seed)
    articles = folder / "articles"
    articles.mkdir(parents=True, exist_ok=True)
    rows = ["article_id,topic,stance,provenance"]
    stances = list(STANCE_WORDS)
    for t, topic in enumerate(TOPIC_WORDS):
        for i in range(n_per_topic):
            stance = stances[(i + t) % 3]
            words = TOPIC_WORDS[topic].split() * 3 + STANCE_WORDS[stance].split() * 3
            body = []
            for _ in range(3):
                sentence = rng.sample(words, 8) + rng.sample(FILLER, 6)
                rng.shuffle(sentence)
                body.append(" ".join(sentence).capitalize() + ".")
            aid = f"{topic}_{i:02d}"
            text = f"Monday, {i + 1} May 2023\n{topic.title()} report {i}\n\n" + "\n\n".join(body)
            (articles / f"{aid}.txt").write_text(text + "\n", encoding="utf-8")
            rows.append(f"{aid},{topic},{stance},original")
    labels = folder / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return labels


@pytest.fixture(autouse=True, scope="session")
def _temporary_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests write only into temporary folders: MLflow's default ``./mlruns`` (models logged
    by module fixtures) and Hydra's ``outputs/`` land in a temporary working directory."""
    made = [p for p in ("mlruns", "mlflow.db", "outputs") if not (ROOT / p).exists()]
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(before)
    leaked = [p for p in made if (ROOT / p).exists()]
    assert not leaked, f"tests wrote {leaked} into the checkout"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A generated corpus folder with articles/ and labels.csv."""
    make_corpus(tmp_path / "corpus")
    return tmp_path / "corpus"


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A temporary SQLite MLflow store; artifacts go beside it."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@contextmanager
def mlflow_state_restored() -> Iterator[None]:
    """Restore MLflow's process-wide state on exit: ``mlflow.set_tracking_uri`` and
    ``set_registry_uri`` (called by ``tracking.configure``) also export MLFLOW_TRACKING_URI and
    MLFLOW_REGISTRY_URI, which would send later tests and their subprocesses to this test's
    store or server."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    prefixes = ("MLFLOW_", "NEWSCLF_")
    saved_env = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(prefixes)]:
            del os.environ[key]
        os.environ.update(saved_env)
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved


@pytest.fixture(autouse=True, scope="module")
def _isolated_module() -> Iterator[None]:
    """Module fixtures (a registered model shared by a test file) leave no MLflow state."""
    with mlflow_state_restored():
        yield


@pytest.fixture(autouse=True)
def _isolated_test() -> Iterator[None]:
    """Each test leaves no MLflow state behind."""
    with mlflow_state_restored():
        yield


def run_cli(
    cwd: Path,
    script: str,
    *args: str,
    env: dict | None = None,
    ok: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run a newsclf console script in ``cwd``; fail with its output unless it exits 0 (when
    ``ok``). Without ``env``, the script sees this process's environment minus
    MLFLOW_TRACKING_URI (mlflow.set_tracking_uri in the tests exports it; each script must use
    its own folder's default store) and a wide terminal, so summary lines are not wrapped."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["COLUMNS"] = "200"
    proc = subprocess.run(
        [str(BIN / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if ok and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def splits_of_bodies(dd) -> dict[str, set[str]]:
    """Each body of a DatasetDict (its text without the title) -> the splits it is in."""
    out: dict[str, set[str]] = {}
    for split, rows in dd.items():
        for row in rows:
            body = row["text"].split("\n\n", 1)[1] if row["title"] else row["text"]
            out.setdefault(body, set()).add(split)
    return out


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one "error:" line a console script prints for bad input (exit 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def spark():
    """A local Spark session (two cores, no UI) for one test module."""
    from newsclf.spark import spark_session

    session = spark_session(
        "local[2]",
        "newsclf-test",
        {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"},
    )
    yield session
    session.stop()
