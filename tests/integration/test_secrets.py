"""No secret reaches a tracking server, its artifacts, the console or Hydra's run folder: a
dataset build, training runs and a parallel sweep logged through a real ``mlflow server`` with
every form of credential in the tracking URI and the config, then the store and every file are
searched."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import make_corpus, run_cli
from tests.integration.conftest import MlflowServer

# One secret per form, each findable on its own.
PASSWORD = "pw-4e1b/x@y"  # user:password, with "/" and "@" in it (percent-encoded in the URI)
TOKEN_USER = "tok4e1bUSER"  # a token as user name
EMPTY_USER = "tok4e1bEMPTY"  # an empty user name and a token as password
QUERY = "q4e1bQUERY"  # a password in a query string
KEYED = {"pwd": "k4e1bPWD", "auth_header": "k4e1bAUTH", "private_key": "k4e1bPRIV"}
KEYED |= {"db_password": "k4e1bDBPW", "api_key": "k4e1bAPI", "access_key": "k4e1bACC"}
HADOOP = "k4e1bS3A"  # a dict override, Hadoop's dotted setting name as its key
SECRETS = [PASSWORD.split("/")[0], TOKEN_USER, EMPTY_USER, QUERY, HADOOP, *KEYED.values()]


def test_no_secret_is_logged(tmp_path):
    server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}")
    server.start()
    try:
        _log_runs(tmp_path, server)
    finally:
        server.stop()
    store = (tmp_path / "server.db").read_bytes()
    files = [p for p in [*server.root.rglob("*"), *tmp_path.rglob("*")] if p.is_file()]
    console = (tmp_path / "console.txt").read_text()
    assert "foreign secretary" in console  # list items of other keys stay as they are
    for secret in SECRETS:
        assert secret.encode() not in store, secret
        assert secret not in console, secret
        for file in files:
            assert secret.encode() not in file.read_bytes(), (secret, file)
    assert any(p.name == "config.yaml" for p in server.artifacts.rglob("*"))
    assert any(p.name == "overrides.yaml" for p in tmp_path.rglob("*"))


def _log_runs(cwd: Path, server: MlflowServer) -> None:
    host = server.uri.removeprefix("http://")
    password = PASSWORD.replace("/", "%2F").replace("@", "%40")
    labels = make_corpus(cwd / "corpus", n_per_topic=8)
    extra = [
        f"+extra.query_uri='postgresql://mlflow@db:5432/mlflow?sslmode=require&password={QUERY}'",
        f"+extra.token_uri='https://{TOKEN_USER}@mlflow.example.org'",
        f"+extra.empty_user_uri='https://:{EMPTY_USER}@mlflow.example.org'",
        *(f"+extra.{key}={value}" for key, value in KEYED.items()),
        f"+extra.conf={{fs.s3a.secret.key:{HADOOP},spark.executor.memory:4g}}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["COLUMNS"] = "200"
    console = []
    for uri in (f"http://alice:{password}@{host}", f"http://{TOKEN_USER}@{host}"):
        dataset = run_cli(
            cwd, "newsclf-dataset", f"mlflow.tracking_uri={uri}",
            f"source.path={labels.parent / 'articles'}", f"annotations.path={labels}",
            f"output_dir={cwd / 'ds'}", *extra, env=env,
        )  # fmt: skip
        console += [dataset.stdout, dataset.stderr]
    for uri in (f"http://:{EMPTY_USER}@{host}", f"http://alice:{password}@{host}"):
        train = run_cli(
            cwd, "newsclf-train", f"mlflow.tracking_uri={uri}", "task=topic",
            f"dataset_dir={cwd / 'ds' / 'topic'}", *extra, env=env,
        )  # fmt: skip
        console += [train.stdout, train.stderr]
    # a sweep's trials run in worker processes, which print MLflow's "View run ... at <uri>"
    sweep = run_cli(
        cwd, "newsclf-train", "--multirun", "hydra/launcher=parallel",
        f"mlflow.tracking_uri=http://alice:{password}@{host}", "task=topic", "register=false",
        f"dataset_dir={cwd / 'ds' / 'topic'}", "model.pipeline.classifier.C=1,10", env=env,
    )  # fmt: skip
    assert "View run" in sweep.stdout + sweep.stderr  # what would carry the password
    console += [sweep.stdout, sweep.stderr]
    config = "".join(p.read_text() for p in server.artifacts.rglob("config.yaml"))
    (cwd / "console.txt").write_text("\n".join(console) + config)
