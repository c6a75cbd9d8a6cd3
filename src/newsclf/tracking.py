"""Everything MLflow: tracking set-up, runs, params, dataset inputs, models, registry, aliases.

This is the one module that talks to MLflow, so an MLflow API change has one place to land.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from newsclf.errors import NewsclfError
from newsclf.predict import Classifier, LoadedModel, load_pipeline, save_pipeline

log = logging.getLogger(__name__)

CHAMPION = "champion"
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|credential)", re.IGNORECASE)
_URI_CREDENTIALS = re.compile(r"(://[^:/@]+:)[^@/]+@")
_MAX_PARAM_CHARS = 6000


def configure(tracking_uri: str, registry_uri: str | None = None) -> None:
    """Point MLflow at a tracking store (``sqlite:///mlflow.db`` by default) and registry."""
    mlflow.set_tracking_uri(tracking_uri)
    if registry_uri:
        mlflow.set_registry_uri(registry_uri)


def experiment_name(prefix: str, task: str) -> str:
    return f"{prefix}{task}"


@contextmanager
def run(experiment: str, run_name: str, tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start a run in ``experiment`` (created when missing); yields the run id."""
    try:
        mlflow.set_experiment(experiment)
        active = mlflow.start_run(run_name=run_name, tags={**git_tags(), **(tags or {})})
    except MlflowException as exc:
        raise NewsclfError(f"MLflow at {mlflow.get_tracking_uri()}: {_first_line(exc)}") from None
    with active:
        yield active.info.run_id


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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


def redact(key: str, value: Any) -> Any:
    """Hide secrets: values of secret-looking keys and passwords inside URIs."""
    if _SECRET_KEY.search(key):
        return "***"
    if isinstance(value, str):
        return _URI_CREDENTIALS.sub(r"\1***@", value)
    return value


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


def log_config(config: Mapping[str, Any], config_yaml: str) -> None:
    """The resolved config as flat params (secrets redacted) and as ``config.yaml``."""
    params = {k: redact(k, v) for k, v in flatten(config).items()}
    params = {k: str(v)[:_MAX_PARAM_CHARS] for k, v in params.items()}
    items = list(params.items())
    for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
        mlflow.log_params(dict(items[start : start + 100]))
    lines = [
        line if not _SECRET_KEY.search(line.split(":", 1)[0]) else line.split(":", 1)[0] + ": ***"
        for line in config_yaml.splitlines()
    ]
    mlflow.log_text(_URI_CREDENTIALS.sub(r"\1***@", "\n".join(lines)) + "\n", "config.yaml")


def log_metrics(values: Mapping[str, float], prefix: str = "") -> None:
    mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in values.items()})


def log_artifact(path: str | Path, folder: str | None = None) -> None:
    mlflow.log_artifact(str(path), artifact_path=folder)


def log_text(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def log_dataset(split: Any, path: str | Path, name: str, digest: str, context: str) -> None:
    """Log a Hugging Face dataset split as the run's MLflow dataset input."""
    with warnings.catch_warnings():
        # MLflow warns that the integer label column cannot hold missing values; it never does.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        dataset = mlflow.data.from_huggingface(
            split, path=str(path), targets="label", name=name, digest=digest[:36]
        )
    mlflow.log_input(dataset, context=context)


def set_tags(tags: Mapping[str, str]) -> None:
    mlflow.set_tags(dict(tags))


# --------------------------------------------------------------------------- models


def _signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("string", "text")]),
        outputs=Schema([ColSpec("string", "label"), ColSpec("double", "probability")]),
    )


def _requirements() -> list[str]:
    from importlib.metadata import version

    pins = ["scikit-learn", "skops", "pandas", "numpy", "scipy", "mlflow"]
    return [f"{p}=={version(p)}" for p in pins]


def log_model(pipeline: Any, labels: Sequence[str], task: str, example: Sequence[str]) -> str:
    """Log a fitted pipeline as a newsclf pyfunc model (skops inside); returns its model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        skops_path = save_pipeline(pipeline, Path(tmp) / "model.skops")
        labels_path = Path(tmp) / "labels.json"
        labels_path.write_text(json.dumps(list(labels)), encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"pipeline": str(skops_path), "labels": str(labels_path)},
            signature=_signature(),
            input_example=pd.DataFrame({"text": list(example)}),
            pip_requirements=_requirements(),
            metadata={"newsclf_task": task, "newsclf_labels": list(labels), "format": "skops"},
        )
    return info.model_uri


def register(model_uri: str, name: str, tags: Mapping[str, str] | None = None) -> str:
    """Register a model version under ``name``; returns the version."""
    version = mlflow.register_model(model_uri, name, tags=dict(tags or {}))
    return str(version.version)


def champion(name: str) -> str | None:
    """The version holding the ``champion`` alias, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def promote(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


def tag_version(name: str, version: str, tags: Mapping[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def load_model(
    uri: str,
    trusted_types: Sequence[str] = (),
    task: str | None = None,
    allow_pickle: bool = False,
) -> LoadedModel:
    """Load a newsclf model by URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...``
    or a local folder) without running code from the model: the skops file is loaded with
    newsclf's trusted-type check.

    Models stored as pickle or cloudpickle (e.g. ``mlflow.sklearn`` with
    ``serialization_format="pickle"``) can run any code when loaded; they are refused unless
    ``allow_pickle`` is set, and then need ``task`` since they carry no newsclf metadata.
    """
    name, version = _registry_identity(uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except (MlflowException, OSError) as exc:
        raise NewsclfError(f"model {uri}: cannot load ({_first_line(exc)})") from None
    meta = _newsclf_metadata(local, uri, allow_pickle)
    if meta is None:  # a pickle-format model the user chose to trust
        if not task:
            raise NewsclfError(f"model {uri}: a pickle-format model needs its task named")
        classifier = _load_pickled(local, uri)
        model_task = task
    else:
        if task and meta["newsclf_task"] != task:
            raise NewsclfError(f"model {uri}: is a {meta['newsclf_task']} model, not {task}")
        pipeline = load_pipeline(local / "artifacts" / "model.skops", trusted_types)
        classifier = Classifier(pipeline, meta["newsclf_labels"])
        model_task = meta["newsclf_task"]
    return LoadedModel(
        task=model_task,
        classifier=classifier,
        uri=uri,
        name=name or uri,
        version=version or "",
        local_path=str(local),
    )


def _pickle_format(spec: dict) -> str | None:
    """'pickle' / 'cloudpickle' when loading the model would unpickle a file, else None."""
    sklearn = spec.get("flavors", {}).get("sklearn")
    if sklearn and sklearn.get("serialization_format", "cloudpickle") != "skops":
        return sklearn.get("serialization_format", "cloudpickle")
    pyfunc = spec.get("flavors", {}).get("python_function", {})
    if pyfunc.get("python_model") or str(pyfunc.get("model_path", "")).endswith(".pkl"):
        return "cloudpickle"
    return None


def _load_pickled(local: Path, uri: str) -> Classifier:
    """Load a pickle-format model (the user opted in) as a classifier of texts."""
    import mlflow.sklearn

    from newsclf.predict import PyfuncClassifier

    try:
        if "sklearn" in mlflow.models.Model.load(str(local)).flavors:
            pipeline = mlflow.sklearn.load_model(str(local))
            return Classifier(pipeline, [str(c) for c in getattr(pipeline, "classes_", [])])
        return PyfuncClassifier(mlflow.pyfunc.load_model(str(local)))
    except Exception as exc:  # anything can happen inside someone else's pickle
        raise NewsclfError(f"model {uri}: cannot load pickle-format model ({exc})") from None


def _newsclf_metadata(local: Path, uri: str, allow_pickle: bool = False) -> dict | None:
    """The newsclf metadata of a model folder; None for a pickle model the user trusts."""
    import yaml

    mlmodel = local / "MLmodel"
    if not mlmodel.exists():
        raise NewsclfError(f"model {uri}: not an MLflow model (no MLmodel file)")
    spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    meta = spec.get("metadata") or {}
    flavors = ", ".join(spec.get("flavors", {})) or "none"
    if "newsclf_task" in meta and (local / "artifacts" / "model.skops").exists():
        return meta
    pickled = _pickle_format(spec)
    if pickled and not allow_pickle:
        raise NewsclfError(
            f"model {uri}: stored as {pickled} (flavors: {flavors}); loading it would run code "
            "from the model file, so it is refused. Re-save it with skops, or set "
            "allow_pickle=true if you trust its origin"
        )
    if pickled:
        return None
    raise NewsclfError(f"model {uri}: not a newsclf model (flavors: {flavors})")


def _registry_identity(uri: str) -> tuple[str | None, str | None]:
    """(registered name, version) for ``models:/name@alias`` and ``models:/name/version``."""
    match = re.fullmatch(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))", uri)
    if not match:
        return None, None
    name, alias, version = match.groups()
    if alias:
        try:
            version = MlflowClient().get_model_version_by_alias(name, alias).version
        except MlflowException as exc:
            raise NewsclfError(f"model {uri}: {_first_line(exc)}") from None
    return name, str(version)


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
        for key in ("oov_word_share", "vocabulary_js"):
            if info["drift"].get(key) is not None:
                metrics[f"{task}_{key}"] = info["drift"][key]
    with run(experiment, "batch-predict", {"newsclf.stage": "predict"}) as run_id:
        mlflow.log_params({"source": str(report.get("source", ""))[:_MAX_PARAM_CHARS]})
        for task, model in report.get("models", {}).items():
            mlflow.log_params({f"{task}_model": model["uri"], f"{task}_version": model["version"]})
        log_metrics(metrics)
        log_artifact(report_path)
    return run_id


# --------------------------------------------------------------------------- labelling


def log_table(columns: Mapping[str, Sequence[Any]], artifact_file: str) -> None:
    """Log a small table (column -> values) as a JSON artifact MLflow's UI shows as a table."""
    mlflow.log_table(data=pd.DataFrame(dict(columns)), artifact_file=artifact_file)
