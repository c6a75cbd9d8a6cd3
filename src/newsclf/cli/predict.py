"""``newsclf-predict``: predict every configured task for a source of articles, chunk by chunk,
into one predictions file that appears only when complete (or on Spark with ``engine=spark``)."""

from __future__ import annotations

import atexit
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from newsclf.cli import (
    BOOL,
    FRACTION,
    NUMBER,
    OPTIONAL_POSITIVE,
    PATH,
    POSITIVE,
    check_types,
    console,
    console_script,
    fast_help,
    forked,
    lazy_import,
    rate_text,
    user_errors,
)
from newsclf.errors import NewsclfError

if TYPE_CHECKING:
    from newsclf.batch import JobResult, JobSettings
    from newsclf.saved_model import LoadedModel

batch = lazy_import("newsclf.batch")
saved_model = lazy_import("newsclf.saved_model")
tracking = lazy_import("newsclf.tracking")

log = logging.getLogger(__name__)


class RateColumn(ProgressColumn):
    """Articles per second."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f} articles/s" if task.speed else "", style="cyan")


CONFIG_TYPES = {
    "output.path": PATH,
    "n_jobs": ((int,), "an integer (-1: one worker per core)"),
    "chunk_size": POSITIVE,
    "max_chars": OPTIONAL_POSITIVE,
    "dedupe_text": BOOL,
    "resume": BOOL,
    "allow_pickle": BOOL,
    "output.mkdir": BOOL,
    "output.overwrite": BOOL,
    "report.mlflow": BOOL,
    "report.low_confidence": FRACTION,
    "report.oov_sample": POSITIVE,
    "report.max_oov_share": FRACTION,
    "report.max_vocabulary_js": NUMBER,
}


def settings(cfg: DictConfig) -> JobSettings:
    check_types(cfg, CONFIG_TYPES)
    return batch.JobSettings(
        chunk_size=cfg.chunk_size,
        n_jobs=cfg.n_jobs,
        dedupe_text=cfg.dedupe_text,
        oov_sample=cfg.report.oov_sample,
        low_confidence=cfg.report.low_confidence,
        output_format=cfg.output.format,
        mkdir=cfg.output.mkdir,
        overwrite=cfg.output.get("overwrite", False),
        resume=cfg.resume,
        max_oov_share=cfg.report.max_oov_share,
        max_vocabulary_js=cfg.report.max_vocabulary_js,
    )


def load_models(cfg: DictConfig) -> list[LoadedModel]:
    """Load every configured model before touching the input, so a bad URI fails at once.

    MLflow's registry lookups and downloads run in a forked process while this one imports
    scikit-learn and skops to load the models: on two cores, a second less start-up (MLflow's
    imports alone take a second; this process then never imports MLflow).
    """
    if not cfg.models:
        raise NewsclfError("models: no model configured (models.<task>=<model URI>)")
    tasks, uris = list(cfg.models.keys()), list(cfg.models.values())
    into = tempfile.mkdtemp(prefix="newsclf-models-")  # here: saved_model imports skops
    atexit.register(shutil.rmtree, into, ignore_errors=True)
    mlflow_cfg = (cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
    with forked("newsclf.tracking", "fetch_models", *mlflow_cfg, uris, into) as fetched:
        batch.JobSettings  # noqa: B018  # scikit-learn's, skops' and pyarrow's imports, meanwhile
        models = fetched()
    return [
        saved_model.load_model(
            uri, cfg.trusted_types, task=task, allow_pickle=cfg.allow_pickle, fetched=model
        )
        for task, uri, model in zip(tasks, uris, models, strict=True)
    ]


def prepared_models(cfg: DictConfig, models: list[LoadedModel]) -> list[LoadedModel]:
    """The models with the text preparation ``preparation`` asks for: their own (``model``)
    or the configured ``clean`` and ``max_chars`` (``config``)."""
    if cfg.preparation == "model":
        return models
    if cfg.preparation != "config":
        raise NewsclfError(f"preparation: {cfg.preparation!r} is not one of model, config")
    clean = OmegaConf.to_container(cfg.clean, resolve=True)
    preparation = saved_model.Preparation(clean, cfg.max_chars)
    return [replace(m, preparation=preparation) for m in models]


def check_preparation_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Command-line settings of ``max_chars`` or ``clean`` apply with ``preparation=config``
    only: under the default (``model``) they would be ignored, so they are an error."""
    if cfg.preparation != "model":
        return
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    ignored = [k for k in keys if k == "max_chars" or k.split(".")[0].split("@")[0] == "clean"]
    if ignored:
        raise NewsclfError(
            f"{', '.join(ignored)}: used with preparation=config only; the default, "
            "preparation=model, prepares each article as the model's training data was. Add "
            "preparation=config to apply them"
        )


def check_spark_output(path: str, fmt: str) -> None:
    """``engine=spark`` writes a Parquet folder: an output named or set as CSV or JSONL is
    refused rather than written as Parquet under that name."""
    named = PurePosixPath(path).suffix.lstrip(".").lower() if fmt == "auto" else fmt.lower()
    if named in ("csv", "jsonl", "json"):
        raise NewsclfError(
            f"output: engine=spark writes a Parquet folder, not {named} ({path}); give "
            "output.path without that suffix (or ending in .parquet) and output.format=auto"
        )


def run_prediction(cfg: DictConfig, progress: Progress | None = None) -> JobResult:
    """Load the models, then run the job on the configured engine."""
    if cfg.engine not in ("local", "spark"):
        raise NewsclfError(f"engine: {cfg.engine!r} is not one of local, spark")
    check_types(cfg, CONFIG_TYPES)  # wrong types fail before models load
    if cfg.engine == "spark":
        check_spark_output(str(cfg.output.path), str(cfg.output.format))
    models = prepared_models(cfg, load_models(cfg))
    source = instantiate(cfg.source)
    if cfg.engine == "spark":
        from newsclf.spark import run_spark_job

        result = run_spark_job(source, models, cfg.output.path, settings(cfg), cfg.spark)
    else:
        task_id = progress.add_task("predicting", total=None) if progress else None

        def on_progress(done: int, total: int) -> None:
            if progress is not None:
                progress.update(task_id, completed=done, total=None if total < 0 else total)

        result = batch.run_job(source, models, cfg.output.path, settings(cfg), {}, on_progress)
    if cfg.report.mlflow:
        tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
        tracking.log_batch_report(
            tracking.experiment_name(cfg.mlflow.experiment_prefix, "predict"),
            result.report,
            result.report_path,
        )
    return result


def summary(result: JobResult) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.rejected_by_reason.items()))
    resumed = f", resumed after {result.resumed_records}" if result.resumed_records else ""
    lines = [
        f"[bold]newsclf-predict[/]: {result.n_input} articles in = {result.n_predicted} "
        f"predicted + {result.n_rejected} rejected{f' ({reasons})' if reasons else ''}; "
        f"{result.n_truncated} truncated; {rate_text(result.rate)} articles/s "
        f"({result.seconds:,.1f} s{resumed})"
    ]
    for task, info in result.report["tasks"].items():
        model = result.models[task]
        shares = list(info["labels"].items())
        top = ", ".join(f"{k} {v['share']:.0%}" for k, v in shares[:4])
        top += f" (+{len(shares) - 4} more in the report)" if len(shares) > 4 else ""
        drift = info["drift"]
        warn = f" [red]drift: {'; '.join(drift['warning'])}[/]" if drift["warning"] else ""
        version = f" v{model['version']}" if model["version"] else ""  # none for runs:/...
        lines.append(
            f"  {task} ({model['name']}{version}): {top}; "
            f"low-confidence {info['low_confidence_share']:.1%}, "
            f"OOV words {_value(drift['oov_word_share'])}, "
            f"vocabulary JS {_value(drift['vocabulary_js'])}{warn}"
        )
    lines.append(f"  predictions: {result.path}  (rejects, report beside it)")
    console().print("\n".join(lines))


def _value(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


@fast_help("newsclf-predict", "predict")
@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
@user_errors("newsclf-predict")
def main(cfg: DictConfig) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    check_preparation_overrides(cfg, HydraConfig.get().overrides.task)
    # a bar only on a terminal: into a pipe or file rich would leave an empty line
    with Progress(*columns, transient=True, disable=not sys.stdout.isatty()) as progress:
        result = run_prediction(cfg, progress)
    summary(result)


main = console_script("newsclf-predict", main)

if __name__ == "__main__":
    main()
