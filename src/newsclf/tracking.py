"""MLflow tracking: the store's set-up and errors, runs, params, metrics, dataset inputs,
sweeps and batch reports.

Registered models, the champion alias and the gate's lock live in ``registry``; the model
format's own calls (logging and loading a pyfunc model, ``spark_udf``) in ``saved_model``,
``pyfunc_model`` and ``spark``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import requests
from filelock import FileLock
from filelock import Timeout as FileLockTimeout
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from newsclf.errors import NewsclfError, first_line
from newsclf.redact import redact, redact_text, redact_tree
from newsclf.store_uri import is_database, is_http

log = logging.getLogger(__name__)

_MAX_PARAM_CHARS = 6000


# MLflow's own HTTP defaults retry for about four minutes; a job against a dead server should
# say so sooner. Environment variables of the same names, when set, win.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",  # retries after the first attempt
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # waits of 0, 2, 4, 8 s (+ up to 1 s jitter)
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",  # seconds per request
}


def configure(tracking_uri: str, registry_uri: str | None = None, create: bool = True) -> None:
    """Point MLflow at a tracking store (``sqlite:///mlflow.db`` by default) and registry.

    A tracking server must answer now (so a job fails before reading any input, with a clear
    error, when it does not); a SQLite store is created under a file lock, so parallel jobs
    never race to create its tables. With ``create=False`` (jobs that only read models) a
    missing SQLite file is an error instead: it is almost always the wrong working folder.
    """
    for key, value in HTTP_RETRY_DEFAULTS.items():
        os.environ.setdefault(key, value)
        _check_whole_number(key)
    mlflow.set_tracking_uri(tracking_uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)
    for uri in dict.fromkeys(u for u in (tracking_uri, registry_uri) if u):
        if is_http(uri):
            check_reachable(uri)
        elif sqlite_path(uri) is not None:
            _init_sqlite(uri, create)
        elif is_database(uri):
            check_database(uri)


def _check_whole_number(key: str) -> None:
    """MLflow reads the variable ``key`` as an int, and a value such as 0.1 would fail deep
    inside its first HTTP request: say so when the job starts."""
    value = os.environ[key]
    try:
        int(value)
    except ValueError:
        raise NewsclfError(f"{key}={value!r}: MLflow takes a whole number here") from None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _init_sqlite(uri: str, create: bool = True) -> None:
    """Create (or migrate) the SQLite store's tables while holding a lock file beside it.

    A new store is built under a temporary name and renamed into place when complete (MLflow's
    schema migrations commit hundreds of times, each waiting for the disk: seconds); an
    existing one is opened (and migrated, if MLflow is newer) where it is.
    """
    path = sqlite_path(uri)
    assert path is not None
    if not create and not path.exists():
        raise NewsclfError(
            f"MLflow store {path.absolute()} does not exist: run from the folder the models "
            "were trained in, or set mlflow.tracking_uri"
        )
    lock = lock_beside(path, ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock), timeout=300), mlflow_errors(uri):
            if not path.exists():
                _create_sqlite_store(path, uri)
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    except FileLockTimeout:
        raise NewsclfError(f"MLflow at {uri}: {lock} held by another process") from None
    except OSError as exc:  # e.g. a working directory the user cannot write
        raise NewsclfError(
            f"MLflow store {path}: cannot write ({exc.strerror}); run from a writable folder "
            "or set mlflow.tracking_uri"
        ) from None


def lock_beside(db: Path, suffix: str) -> Path:
    """The lock file ``.<db name><suffix>`` beside a SQLite store: hidden, as it is left there.
    A released lock file is not deleted: a process waiting on it would then hold a lock on a
    deleted file while another locks a new one (two holders); so it is out of sight instead."""
    return db.with_name(f".{db.name}{suffix}")


def _create_sqlite_store(path: Path, uri: str) -> None:
    """Create MLflow's tables in a new SQLite file at ``path`` (the caller holds the lock).

    MLflow creates them in a temporary file beside ``path`` whose connections skip the
    per-commit disk syncs; the file is synced once, then renamed to ``path``.
    """
    try:  # what MlflowClient uses to open a SQL store (so the new rows are identical)
        from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store
    except ImportError:  # another MLflow: it creates the store itself, just more slowly
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    query = uri.split("?", 1)[1] if "?" in uri else ""
    tmp_uri = f"sqlite:///{tmp}" + (f"?{query}" if query else "")

    def no_sync(dbapi_connection: Any, _record: Any) -> None:
        if _sqlite_file(dbapi_connection) == str(tmp.resolve()):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=MEMORY")
            cursor.close()

    tmp.unlink(missing_ok=True)
    event.listen(Engine, "connect", no_sync)
    try:
        store = _get_sqlalchemy_store(tmp_uri, None)
        store.engine.dispose()
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        event.remove(Engine, "connect", no_sync)
        tmp.unlink(missing_ok=True)


def _sqlite_file(dbapi_connection: Any) -> str | None:
    """The main database file of a sqlite3 connection."""
    try:
        for _, name, file in dbapi_connection.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return file
    except Exception:
        return None
    return None


def check_database(uri: str) -> None:
    """Raise a one-line NewsclfError unless the database store at ``uri`` takes a connection:
    MLflow would retry a refused password for about two minutes, then raise a traceback."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    args = {"connect_timeout": 10} if uri.startswith("postgresql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args=args)
        with engine.connect():
            pass
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise NewsclfError(
            f"MLflow store {redact('uri', uri)}: cannot connect ({first_line(cause)})"
        ) from None


class _Dropping(logging.Filter):
    """Drops the records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


@contextmanager
def _dropping(logger: str, prefix: str) -> Iterator[None]:
    """While inside, the records of ``logger`` starting with ``prefix`` are not printed."""
    target, drop = logging.getLogger(logger), _Dropping(prefix)
    target.addFilter(drop)
    try:
        yield
    finally:
        target.removeFilter(drop)


def check_reachable(uri: str) -> None:
    """Raise a one-line NewsclfError unless the tracking server at ``uri`` answers."""
    # urllib3 warns "Retrying (Retry(total=...)) after connection broken by ..." on each retry
    # of a server that does not answer, before the one line this check gives (which names the
    # retries): only that line is printed
    with _dropping("urllib3.connectionpool", "Retrying"), mlflow_errors(uri):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means the tracking server did not answer."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # requests' errors only: a ConnectionError of the job's own (reading a URL) is not ours
        if isinstance(current, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return True
        if isinstance(current, requests.exceptions.RetryError):
            return not _HTTP_ERRORS.search(str(current))
        if isinstance(current, MlflowException) and _UNREACHABLE.search(str(current)):
            return not _HTTP_ERRORS.search(str(current))
        current = current.__cause__ or current.__context__
    return False


_UNREACHABLE = re.compile(
    r"Max retries exceeded|Failed to establish a new connection|Connection (refused|aborted|"
    r"reset)|RemoteDisconnected|timeout exception|Read timed out",
    re.IGNORECASE,
)
_HTTP_ERRORS = re.compile(r"too many (\d+) error responses")  # it answered, with errors


def unreachable_message(uri: str, exc: BaseException) -> str:
    """``tracking server unreachable: <uri> ...`` with the cause in a few words."""
    text = str(exc)
    if re.search(r"refused", text, re.IGNORECASE):
        cause = "connection refused"
    elif re.search(r"timed? ?out", text, re.IGNORECASE):
        cause = "timed out"
    else:
        cause = "connection failed"
    return (
        f"tracking server unreachable: {redact('uri', uri)} ({cause}; gave up after "
        f"{_retries()} retries, see MLFLOW_HTTP_REQUEST_MAX_RETRIES)"
    )


def _retries() -> str:
    return os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")


def describe_error(uri: str, exc: BaseException) -> str:
    """One line for an MLflow or connection error: unreachable, failing, or MLflow's own."""
    if is_unreachable(exc):
        return unreachable_message(uri, exc)
    if match := _HTTP_ERRORS.search(str(exc)):
        return (
            f"tracking server error: {redact('uri', uri)} answered HTTP {match.group(1)} "
            f"to {_retries()} retries in a row (see the server's log)"
        )
    if "Invalid Host header" in str(exc):  # MLflow's guard against DNS rebinding
        host = urllib.parse.urlsplit(uri).netloc.rpartition("@")[2]
        return (
            f"tracking server {redact('uri', uri)} refused the host name {host} (HTTP 403): "
            f"start it with --allowed-hosts naming every host:port users reach it by, "
            f"{host} included (docs/team-setup.md)"
        )
    return f"MLflow at {redact('uri', uri)}: {first_line(exc)}"


@contextmanager
def mlflow_errors(uri: str | None = None) -> Iterator[None]:
    """Turn MLflow and connection errors into one-line NewsclfErrors."""
    try:
        yield
    except (MlflowException, requests.exceptions.RequestException) as exc:
        raise NewsclfError(describe_error(uri or mlflow.get_tracking_uri(), exc)) from None


def fetch_model(uri: str, into: str) -> dict[str, str | None]:
    """Download a model by URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...`` or
    a local folder) into the folder ``into``: ``local_path``, the downloaded folder, and the
    registered ``name`` and ``version`` (None for URIs that name no registered model).

    Plain values, no class of this module: a process that receives them from the one that
    fetched them then needs no import of this module, nor MLflow's."""
    name, version = registry_identity(uri)
    # the version just looked up, not the alias again: one registry query fewer, and the
    # folder is the version reported even if the alias moves meanwhile
    source = uri if name is None else f"models:/{name}/{version}"
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=into)
    except ImportError as exc:  # s3://, gs://, ...: the store's client library is missing
        raise NewsclfError(
            f"model {uri}: cannot load (MLflow needs the Python package {exc.name!r} to read "
            "this store; install it where newsclf runs)"
        ) from None
    except (MlflowException, OSError, ValueError) as exc:  # ValueError: e.g. http://host/x
        raise NewsclfError(f"model {uri}: cannot load ({_download_problem(exc)})") from None
    return {"local_path": str(local), "name": name, "version": version}


def _download_problem(exc: BaseException) -> str:
    """One line for a failed download: MLflow's first line, and when that only announces a
    list ("... failures occurred while downloading ...:"), the first problem listed too."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    listed = [line for line in lines[1:] if not line.startswith("#####")]  # "##### File x #####"
    if isinstance(exc, ValueError):  # MLflow could not parse the URI (http://host/x)
        return f"not a model URI MLflow can read: {first_line(exc)}"
    if lines and lines[0].endswith(":") and listed:
        return f"{lines[0]} {listed[0]}"
    return first_line(exc)


def fetch_models(
    tracking_uri: str, registry_uri: str | None, uris: Sequence[str], into: str
) -> list[dict[str, str | None]]:
    """Point MLflow at its store, then download the models of ``uris`` into subfolders of
    ``into`` (``0``, ``1``, ...): what a process started for the downloads alone does."""
    if reads_store(uris):
        configure(tracking_uri, registry_uri, create=False)
    return [fetch_model(uri, str(Path(into) / str(i))) for i, uri in enumerate(uris)]


def reads_store(uris: Iterable[str]) -> bool:
    """Whether any of the model URIs is resolved through the tracking store or registry
    (``models:/``, ``runs:/``), rather than read from a folder or an artifact location."""
    return any(str(uri).startswith(("models:/", "runs:/")) for uri in uris)


def registry_identity(uri: str) -> tuple[str | None, str | None]:
    """(registered name, version) for ``models:/name@alias`` and ``models:/name/version``."""
    match = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))", uri)
    if not match:
        return None, None
    name, alias, version = match.groups()
    if alias:
        try:
            version = MlflowClient().get_model_version_by_alias(name, alias).version
        except MlflowException as exc:  # which store was asked: often the wrong folder's
            store = redact("uri", mlflow.get_registry_uri())
            raise NewsclfError(f"model {uri}: {first_line(exc)} (registry: {store})") from None
    return name, str(version)


def experiment_name(prefix: str, task: str) -> str:
    return f"{prefix}{task}"


@contextmanager
def run(
    experiment: str,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[str]:
    """Start a run in ``experiment`` (created when missing), nested under ``parent_run_id`` when
    given; yields the run id. The run ends FINISHED, or FAILED when the block raises; when the
    tracking server stopped answering, the block's error becomes one clear NewsclfError."""
    with mlflow_errors():
        mlflow.set_experiment(experiment)
        active = mlflow.start_run(
            run_name=run_name, tags={**git_tags(), **(tags or {})}, parent_run_id=parent_run_id
        )
    try:
        yield active.info.run_id
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        unreachable = is_unreachable(exc)
        # one quick try when the server is gone: it is most likely still gone
        _end_run_quietly(status, retries=0 if unreachable else None)
        if unreachable or isinstance(exc, MlflowException | requests.exceptions.RequestException):
            raise NewsclfError(describe_error(mlflow.get_tracking_uri(), exc)) from None
        raise
    with mlflow_errors():
        mlflow.end_run()


def _end_run_quietly(status: str, retries: int | None = 0) -> None:
    """End the active run with ``status``; never raises (the original error matters more)."""
    saved = {k: os.environ.get(k) for k in HTTP_RETRY_DEFAULTS}
    if retries is not None:
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "5"
    try:
        mlflow.end_run(status)
    except Exception as exc:  # the run stays RUNNING in the store; say so in the log
        log.warning("could not mark the MLflow run %s: %s", status, first_line(exc))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def git_tags() -> dict[str, str]:
    """The git commit of the working tree (or of the installed source tree), when there is one."""
    for folder in (Path.cwd(), Path(__file__).parent):
        try:
            commit = subprocess.run(
                ["git", "-C", str(folder), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if commit:
            return {"mlflow.source.git.commit": commit, "git_commit": commit}
    return {}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their JSON text."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else value
    return flat


def log_config(config: Mapping[str, Any]) -> None:
    """The resolved config as flat params and as ``config.yaml``, secrets masked
    (:mod:`newsclf.redact`)."""
    import yaml

    safe = redact_tree(config)
    params = {k: str(v)[:_MAX_PARAM_CHARS] for k, v in flatten(safe).items()}
    items = list(params.items())
    for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
        mlflow.log_params(dict(items[start : start + 100]))
    text = yaml.safe_dump(safe, sort_keys=False, allow_unicode=True, default_flow_style=False)
    mlflow.log_text(text, "config.yaml")


def log_metrics(values: Mapping[str, float], prefix: str = "", model_id: str | None = None) -> None:
    """Log metrics on the active run; with ``model_id`` (a logged model's id) they are linked
    to that model too, so MLflow's model page shows them."""
    mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in values.items()}, model_id=model_id)


def log_artifact(path: str | Path, folder: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=folder)


def log_artifacts(folder: str | Path, artifact_path: str | None = None) -> None:
    mlflow.log_artifacts(str(folder), artifact_path=artifact_path)


def log_text(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def log_dataset(split: Any, path: str | Path, name: str, digest: str, context: str) -> None:
    """Log a Hugging Face dataset split as the run's MLflow dataset input."""
    # MLflow infers a schema from a sample of rows: of an empty split's none, it warns "Failed
    # to infer schema ... Exception: " (an empty StopIteration); the split is logged without
    with (
        warnings.catch_warnings(),
        _dropping("mlflow.data.huggingface_dataset", "Failed to infer schema")
        if split.num_rows == 0
        else nullcontext(),
    ):
        # MLflow warns that the integer label column cannot hold missing values; it never does.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        dataset = mlflow.data.from_huggingface(
            split, path=str(path), targets="label", name=name, digest=digest[:36]
        )
        for attempt in range(_DUPLICATE_RETRIES + 1):
            try:
                mlflow.log_input(dataset, context=context)
                break
            except MlflowException as exc:
                # Parallel jobs logging the same new dataset race in the server's get-or-create;
                # the loser's transaction is rolled back and its retry finds the dataset.
                if attempt == _DUPLICATE_RETRIES or not _DUPLICATE.search(str(exc)):
                    raise
                time.sleep(0.2 * (attempt + 1))


_DUPLICATE = re.compile(r"UniqueViolation|duplicate key|UNIQUE constraint failed", re.IGNORECASE)
_DUPLICATE_RETRIES = 3


def set_tags(tags: Mapping[str, str]) -> None:
    mlflow.set_tags(dict(tags))


# --------------------------------------------------------------------------- sweeps


def start_sweep(experiment: str, run_name: str, tags: Mapping[str, str]) -> str:
    """Create the parent run of a sweep and return its id. Its trials nest under it from other
    processes, so it is not made the active run here."""
    with mlflow_errors():
        experiment_id = mlflow.set_experiment(experiment).experiment_id
        created = MlflowClient().create_run(
            experiment_id, run_name=run_name, tags={**git_tags(), **tags}
        )
    return created.info.run_id


def finish_sweep(
    parent_run_id: str,
    metric: str,
    artifacts: Sequence[Path] = (),
    failed: bool = False,
    n_launched: int = 0,
    kill_running: bool = False,
) -> dict[str, Any]:
    """Close a sweep's parent run. It gets the best trial's (highest ``metric``) params, that
    metric, tags naming the trial and the trial counts; returns the same as a summary. It ends
    FINISHED when a trial has the metric, FAILED otherwise or when ``failed``. ``n_launched``:
    the trials the launcher started, counting those that failed before starting a run.
    ``kill_running``: trials still RUNNING are marked KILLED (a local sweep interrupted: its
    worker processes ended with it, before they could close their runs)."""
    with mlflow_errors():
        client = MlflowClient()
        trials = mlflow.search_runs(
            filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
            search_all_experiments=True,
            output_format="list",
        )
        for trial in trials if kill_running else []:
            if trial.info.status == "RUNNING":
                client.set_terminated(trial.info.run_id, "KILLED")
        scored = [
            t
            for t in trials
            if t.info.status == "FINISHED"
            and metric in t.data.metrics
            and t.data.metrics[metric] == t.data.metrics[metric]  # not NaN
        ]
        summary: dict[str, Any] = {
            "run_id": parent_run_id,
            "n_trials": max(len(trials), n_launched),
            "n_finished": sum(t.info.status == "FINISHED" for t in trials),
            "best_run_id": None,
        }
        now = int(time.time() * 1000)
        metrics = [
            Metric("sweep_n_trials", summary["n_trials"], now, 0),
            Metric("sweep_n_finished", summary["n_finished"], now, 0),
        ]
        tags: list[RunTag] = []
        params: list[Param] = []
        if scored:
            best = max(scored, key=lambda t: (t.data.metrics[metric], -_job_number(t)))
            summary.update(
                best_run_id=best.info.run_id,
                best_run_name=best.info.run_name,
                best_value=best.data.metrics[metric],
                best_overrides=best.data.tags.get("newsclf.overrides", ""),
                # a sweep with register=true: the trial registered its model itself
                best_registered=best.data.tags.get("newsclf.registered_model"),
                best_version=best.data.tags.get("newsclf.version"),
                best_promoted=best.data.tags.get("newsclf.promoted") == "True",
            )
            metrics.append(Metric(metric, best.data.metrics[metric], now, 0))
            params = [Param(k, v) for k, v in sorted(best.data.params.items())]
            tags = [
                RunTag("newsclf.best_run_id", best.info.run_id),
                RunTag("newsclf.best_run_name", best.info.run_name or ""),
                RunTag("newsclf.best_overrides", summary["best_overrides"]),
            ]
        client.log_batch(parent_run_id, metrics=metrics, tags=tags)
        for start in range(0, len(params), 100):  # MLflow caps a batch at 100 params
            client.log_batch(parent_run_id, params=params[start : start + 100])
        for path in artifacts:
            if Path(path).exists():
                client.log_artifact(parent_run_id, str(path))
        client.set_terminated(parent_run_id, "FINISHED" if scored and not failed else "FAILED")
    return summary


def _job_number(trial: Any) -> int:
    """A trial's Hydra job number: ties go to the earliest trial, as in Optuna."""
    try:
        return int(trial.data.tags.get("newsclf.sweep_job", "0"))
    except ValueError:
        return 0


def abandon_sweep(parent_run_id: str) -> None:
    """Mark a sweep's parent run FAILED (the sweep stopped early); never raises."""
    try:
        MlflowClient().set_terminated(parent_run_id, "FAILED")
    except Exception as exc:
        log.warning("could not mark sweep run %s FAILED: %s", parent_run_id, first_line(exc))


NOTE = "mlflow.note.content"  # the tag the MLflow UI shows as a description


def experiment_description(task: Any) -> str:
    """What ``mlflow ui`` shows for a task's experiment (``task``: a ``newsclf.tasks.Task``)."""
    return (
        f"newsclf task **{task.name}**: {task.description or 'no description'}\n\n"
        f"Labels: {', '.join(task.label_names)}.\n\n"
        "Runs: dataset builds (tag newsclf.stage=dataset) and training runs "
        "(newsclf.stage=train), each tagged with its dataset fingerprint (newsclf.fingerprint); "
        "a training run's description names its model, dataset and test-split metrics."
    )


def describe_experiment(name: str, text: str) -> None:
    """Set the description ``mlflow ui`` shows for an experiment."""
    with mlflow_errors():
        client = MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None and experiment.tags.get(NOTE) != text:
            try:
                client.set_experiment_tag(experiment.experiment_id, NOTE, text)
            except MlflowException:
                # a parallel job (a sweep) wrote the same tag first: the server's insert raced
                if client.get_experiment(experiment.experiment_id).tags.get(NOTE) != text:
                    raise


def log_evaluation_input(frame: pd.DataFrame, name: str, source: str) -> None:
    """Log a labelled evaluation set (id, text, gold label) as the active run's dataset input,
    context ``evaluation``."""
    with warnings.catch_warnings():
        # a local path "can be interpreted in multiple ways" (two local source types)
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways")
        dataset = mlflow.data.from_pandas(frame, source=source, targets="gold", name=name)
    mlflow.log_input(dataset, context="evaluation")


# --------------------------------------------------------------------------- batch prediction


def log_batch_report(experiment: str, report: Mapping[str, Any], report_path: str | Path) -> str:
    """Log a batch report as a run: counts and per-task shares as metrics, the file as an
    artifact. Returns the run id."""
    metrics: dict[str, float] = {
        k: float(report[k]) for k in ("n_input", "n_predicted", "n_rejected") if k in report
    }
    for task, info in report.get("tasks", {}).items():
        metrics[f"{task}_low_confidence_share"] = info["low_confidence_share"]
        metrics[f"{task}_mean_probability"] = info["mean_probability"]
        for label, counts in info["labels"].items():
            metrics[f"{task}_share_{label}"] = counts["share"]
        for key in ("oov_word_share", "vocabulary_js", "vocabulary_js_expected"):
            if info["drift"].get(key) is not None:
                metrics[f"{task}_{key}"] = info["drift"][key]
    with run(experiment, "batch-predict", {"newsclf.stage": "predict"}) as run_id:
        source = redact_text(str(report.get("source", "")))
        mlflow.log_params({"source": source[:_MAX_PARAM_CHARS]})
        for task, model in report.get("models", {}).items():
            uri = redact_text(model["uri"])
            mlflow.log_params({f"{task}_model": uri, f"{task}_version": model["version"]})
        log_metrics(metrics)
        if Path(report_path).is_file():
            log_artifact(report_path)
        else:  # on HDFS, S3, ...: not a file MLflow can read
            _log_report_copy(report, str(report_path))
    return run_id


def _log_report_copy(report: Mapping[str, Any], uri: str) -> None:
    """Log the report at ``uri`` (not a local file MLflow can read) from a local copy of the
    same name, made from ``report``."""
    with tempfile.TemporaryDirectory(prefix="newsclf-report-") as folder:
        copy = Path(folder) / uri.rstrip("/").rsplit("/", 1)[-1]
        copy.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        log_artifact(copy)


# --------------------------------------------------------------------------- labelling


def log_table(columns: Mapping[str, Sequence[Any]], artifact_file: str) -> None:
    """Log a small table (column -> values) as a JSON artifact MLflow's UI shows as a table."""
    mlflow.log_table(data=pd.DataFrame(dict(columns)), artifact_file=artifact_file)
