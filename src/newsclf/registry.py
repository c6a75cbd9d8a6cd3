"""Register: model versions, the champion alias and the gate's promotion lock, and what
``mlflow ui`` shows for a registered model and its versions."""

from __future__ import annotations

import logging
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import psutil
from filelock import FileLock
from filelock import Timeout as FileLockTimeout
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

from newsclf import tracking
from newsclf.errors import NewsclfError, first_line
from newsclf.tracking import NOTE

log = logging.getLogger(__name__)

CHAMPION = "champion"

LOCK_SUFFIX = ".promotion-lock"


@dataclass(frozen=True)
class Registration:
    """A registered version and the champion decision made for it."""

    version: str
    promoted: bool
    reason: str
    previous_champion: str | None  # the champion the decision was made against
    champion_score: Any  # what score() returned for the champion, or None


def register_gated(
    model_uri: str,
    name: str,
    decide: Callable[[float | None], Any],
    score: Callable[[str], Any] | None = None,
    tags: Mapping[str, str] | None = None,
    lock_timeout: float = 600.0,
    stale_after: float = 120.0,
) -> Registration:
    """Register ``model_uri`` as a new version of ``name`` and move the champion alias to it when
    ``decide(champion score)`` (an object with ``promote`` and ``reason``) says so.

    read champion -> score it -> decide -> register -> set alias runs under a promotion lock
    (:func:`promotion_lock`), so no job decides against a champion that another job has just
    replaced: of concurrent promotions the best one ends as champion, and every alias move is
    recorded on its version (``promoted``, ``previous_champion``). ``score(version)`` rescores
    an existing version on the caller's test set; it runs before the lock, and again inside it
    only when the champion moved meanwhile, so the lock is held briefly.
    """
    seen = champion(name)
    seen_score = score(seen) if score and seen else None
    with promotion_lock(name, lock_timeout, stale_after):
        current = champion(name)
        if current != seen:
            seen, seen_score = current, (score(current) if score and current else None)
        decision = decide(seen_score)
        version = register(
            model_uri,
            name,
            {
                **(tags or {}),
                "gate": decision.reason,
                "promoted": str(decision.promote),
                "previous_champion": seen or "",
            },
        )
        if decision.promote:
            try:
                promote(name, version)
            except BaseException:
                _delete_version_quietly(name, version)  # no version that claims a promotion
                raise
    return Registration(version, bool(decision.promote), decision.reason, seen, seen_score)


def _delete_version_quietly(name: str, version: str) -> None:
    try:
        MlflowClient().delete_model_version(name, version)
    except Exception as exc:
        log.warning("could not remove %s version %s: %s", name, version, first_line(exc))


@contextmanager
def promotion_lock(name: str, timeout: float = 600.0, stale_after: float = 120.0) -> Iterator[None]:
    """Hold the lock that serialises champion decisions for registered model ``name``.

    Against a local store (SQLite file or ``file:`` folder) it is an OS file lock beside the
    store, released by the OS if the holder dies. Against a tracking server, whose clients share
    no file system, it is a registered model named ``<name>.promotion-lock``: creating a
    registered model is atomic in the server's database (the name is its primary key), so
    exactly one job gets it; it is deleted on release. Its holder renews it every
    ``stale_after / 4`` seconds; a lock not renewed for ``stale_after`` seconds, or whose holder
    is a process of this host that has ended, is broken. Waiting longer than ``timeout`` seconds
    raises NewsclfError.
    """
    path = _local_lock_path(mlflow.get_registry_uri(), name)
    if path is None:
        with _registry_lock(name, timeout, stale_after):
            yield
        return
    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except FileLockTimeout:
        raise NewsclfError(f"{name}: promotion lock {path} held for over {timeout:.0f}s") from None
    try:
        yield
    finally:
        lock.release()


def _local_lock_path(registry_uri: str, name: str) -> Path | None:
    safe = re.sub(r"[^\w.-]", "_", name)
    db = tracking.sqlite_path(registry_uri)
    if db is not None:
        return tracking.lock_beside(db, f".{safe}.promotion.lock")
    if registry_uri.startswith("file:"):
        folder = Path(re.sub(r"^file:(//)?", "", registry_uri))
    elif "://" not in registry_uri and ":" not in registry_uri.split("/", 1)[0]:
        folder = Path(registry_uri)
    else:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f".{safe}.promotion.lock"


@contextmanager
def _registry_lock(name: str, timeout: float, stale_after: float) -> Iterator[None]:
    client = MlflowClient()
    lock_name = f"{name}{LOCK_SUFFIX}"
    token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout
    wait = 0.1
    while True:
        try:
            client.create_registered_model(
                lock_name,
                tags={"newsclf.lock_holder": token, "newsclf.lock_since": f"{time.time():.3f}"},
                description=f"newsclf: promotion lock of {name}, held while a job moves its "
                f"champion alias; broken automatically after {stale_after:.0f}s",
            )
            break
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        holder, since = _lock_holder(client, lock_name)
        if holder == token:  # our create went through, then a retried request found it
            break
        if holder is not None and (time.time() - since > stale_after or _dead_here(holder)):
            log.warning("breaking stale promotion lock %s of %s", lock_name, holder)
            _release_registry_lock(client, lock_name, holder)
            continue
        if time.monotonic() > deadline:
            raise NewsclfError(
                f"{name}: promotion lock {lock_name} held by {holder} for over {timeout:.0f}s"
            )
        time.sleep(wait * random.uniform(0.5, 1.5))
        wait = min(wait * 2, 2.0)
    stop = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(client, lock_name, token, stop, stale_after / 4), daemon=True
    )
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        _release_registry_lock(client, lock_name, token)


def _heartbeat(
    client: MlflowClient, lock_name: str, token: str, stop: threading.Event, every: float
) -> None:
    """Renew the lock's time while it is held: only a lock whose holder stopped renewing it
    (died) grows stale, however long a promotion takes."""
    while not stop.wait(max(every, 0.5)):
        try:
            if _lock_holder(client, lock_name)[0] != token:
                return  # broken meanwhile: another job's lock now
            client.set_registered_model_tag(lock_name, "newsclf.lock_since", f"{time.time():.3f}")
        except Exception as exc:  # the server away for a moment: the next beat tries again
            log.debug("could not renew promotion lock %s: %s", lock_name, first_line(exc))


def _dead_here(holder: str) -> bool:
    """Whether the lock holder ``host:pid:nonce`` is a process of this host that has ended."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not psutil.pid_exists(int(pid))


def _lock_holder(client: MlflowClient, lock_name: str) -> tuple[str | None, float]:
    try:
        tags = client.get_registered_model(lock_name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None, 0.0
        raise
    return tags.get("newsclf.lock_holder"), float(tags.get("newsclf.lock_since", "0") or 0)


def _release_registry_lock(client: MlflowClient, lock_name: str, holder: str | None) -> None:
    try:
        if _lock_holder(client, lock_name)[0] == holder:
            client.delete_registered_model(lock_name)
    except Exception as exc:  # it goes stale and is broken by the next job
        log.warning("could not release promotion lock %s: %s", lock_name, first_line(exc))


def register(model_uri: str, name: str, tags: Mapping[str, str] | None = None) -> str:
    """Register a model version under ``name``; returns the version."""
    # register_model prints "Successfully registered model" and "Created version" whatever the
    # log level; the CLIs' summaries say the same, so they are shown only at MLflow's INFO.
    quiet = logging.getLogger("mlflow").getEffectiveLevel() > logging.INFO
    enabled = MLFLOW_LOGGING_STREAM.enabled
    MLFLOW_LOGGING_STREAM.enabled = enabled and not quiet
    try:
        version = mlflow.register_model(model_uri, name, tags=dict(tags or {}))
    finally:
        MLFLOW_LOGGING_STREAM.enabled = enabled
    return str(version.version)


def model_description(task: Any, prefix: str) -> str:
    """What ``mlflow ui`` shows for a task's registered model (``task``: a
    ``newsclf.tasks.Task``)."""
    return (
        f"newsclf classifier for the task **{task.name}**: {task.description or ''}\n\n"
        f"Labels: {', '.join(task.label_names)}.\n\n"
        "A pyfunc model taking raw articles (title, optional, and text) and returning label, "
        "probability and probability_<label>; it cleans them as its training data was cleaned. "
        f"Trained by newsclf-train; the `champion` alias marks the version that passed the "
        f"gate (newsclf-predict loads models:/{prefix}{task.name}@champion)."
    )


def version_description(
    model_name: str, dataset_dir: str, refit: str, model: object, manifest: Any, result: dict
) -> str:
    """What ``mlflow ui`` shows for a model version (and its run): model, data, metrics
    (``manifest``: the ``newsclf.datasets.Manifest`` it was trained on)."""
    steps = getattr(model, "steps", None)
    shape = " -> ".join(type(s).__name__ for _, s in steps) if steps else type(model).__name__
    metrics = ", ".join(
        f"{name} {result[f'{split}_{key}']:.3f}"
        for split in ("test", "validation")
        for key, name in (("macro_f1", f"{split} macro-F1"), ("accuracy", f"{split} accuracy"))
        if f"{split}_{key}" in result
    )
    rows = manifest.rows
    external = ", ".join(
        f"{name} macro-F1 {f1:.3f}" for name, f1 in result.get("external", {}).items()
    )
    return (
        f"Model **{model_name}** ({shape}) for {result['task']}, trained on dataset "
        f"`{manifest.fingerprint}` ({dataset_dir}: "
        f"{', '.join(f'{n} {s}' for s, n in rows.items())}).\n\n"
        f"Metrics: {metrics or 'none (empty splits)'}"
        + (
            f" (the fit on train; this version, refit on train + validation: test macro-F1 "
            f"{result['registered_test_macro_f1']:.3f}).\n\n"
            if "registered_test_macro_f1" in result
            else ".\n\n"
        )
        + (f"Evaluation sets: {external}.\n\n" if external else "")
        + f"Refit: {refit}. "
        + (
            f"Probabilities: temperature {result['calibration_temperature']:.3f} (validation). "
            if "calibration_temperature" in result
            else ""
        )
        + f"Gate: {'champion' if result.get('promoted') else 'not promoted'} "
        f"({result.get('gate', '')})."
    )


def describe_model(name: str, version: str, model_text: str, version_text: str) -> None:
    """Set the descriptions of a registered model, one of its versions and the active run."""
    with tracking.mlflow_errors():
        client = MlflowClient()
        client.update_registered_model(name, description=model_text)
        client.update_model_version(name, version, description=version_text)
        if mlflow.active_run() is not None:
            mlflow.set_tag(NOTE, version_text)


def version_fingerprint(name: str, version: str) -> str | None:
    """The dataset fingerprint (``newsclf.fingerprint``) of the run that logged a registered
    model version, or None when that run has none."""
    client = MlflowClient()
    run_id = client.get_model_version(name, version).run_id
    return client.get_run(run_id).data.tags.get("newsclf.fingerprint") if run_id else None


def champion(name: str) -> str | None:
    """The version holding the ``champion`` alias, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if tracking.is_unreachable(exc):  # "no champion" would be a wrong answer
            raise
        return None


def promote(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


def model_id(name: str, version: str) -> str | None:
    """The logged model behind a registered version (MLflow 3), or None."""
    with tracking.mlflow_errors():
        return getattr(MlflowClient().get_model_version(name, version), "model_id", None)


def tag_version(name: str, version: str, tags: Mapping[str, str | None]) -> None:
    """Set the tags on a registered model version; a tag of value None is deleted."""
    client = MlflowClient()
    present = client.get_model_version(name, version).tags
    for key, value in tags.items():
        if value is not None:
            client.set_model_version_tag(name, version, key, str(value))
        elif key in present:
            client.delete_model_version_tag(name, version, key)
