"""``newsclf-predict``: predict every configured task for a source of articles, chunk by chunk,
into one predictions file that appears only when complete."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from newsclf import tracking
from newsclf.articles import Article, Reject, Removal, clean_and_dedupe
from newsclf.cli import user_errors
from newsclf.predict import PredictionWriter, predict_chunks, prediction_columns, write_rejects

log = logging.getLogger(__name__)


def run_prediction(cfg: DictConfig, progress: Progress | None = None) -> dict:
    """Load the models (before touching the input), stream the articles, write predictions."""
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
    models = [
        tracking.load_model(uri, cfg.trusted_types, task=task) for task, uri in cfg.models.items()
    ]
    source = instantiate(cfg.source)
    path = Path(cfg.output.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = PredictionWriter(path, prediction_columns([m.task for m in models]), cfg.output.format)
    rejects: list[Reject] = []
    removals: list[Removal] = []

    def articles() -> Iterator[Article]:
        for item in clean_and_dedupe(source.read(), instantiate(cfg.clean), cfg.dedupe_text):
            if isinstance(item, Article):
                yield item
            elif isinstance(item, Reject):
                rejects.append(item)
            else:
                removals.append(item)

    started = time.perf_counter()
    task_id = progress.add_task("predicting", total=None) if progress else None
    try:
        for frame in predict_chunks(articles(), models, cfg.chunk_size):
            writer.write(frame)
            if progress:
                progress.update(task_id, advance=len(frame))
        seconds = time.perf_counter() - started
        counts = {
            "n_input": writer.rows + len(rejects),
            "n_predicted": writer.rows,
            "n_rejected": len(rejects),
            "rejected_by_reason": dict(Counter(r.reason for r in rejects)),
        }
        models_meta = {m.task: {"uri": m.uri, "name": m.name, "version": m.version} for m in models}
        write_rejects(path, rejects, removals)
        writer.commit({**counts, "models": models_meta, "source": str(source.path)})
    except BaseException:
        writer.abort()
        raise
    return {**counts, "path": str(path), "seconds": seconds, "models": models_meta}


def summary(result: dict) -> None:
    rate = result["n_predicted"] / result["seconds"] if result["seconds"] else 0.0
    models = ", ".join(f"{t}: {m['name']} v{m['version']}" for t, m in result["models"].items())
    Console().print(
        f"[bold]newsclf-predict[/]: {result['n_input']} articles in = {result['n_predicted']} "
        f"predicted + {result['n_rejected']} rejected {result['rejected_by_reason'] or ''} "
        f"({rate:,.0f} articles/s)\n  models: {models}\n  predictions: {result['path']}"
    )


@hydra.main(version_base="1.3", config_path="../configs", config_name="predict")
@user_errors("newsclf-predict")
def main(cfg: DictConfig) -> None:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        result = run_prediction(cfg, progress)
    summary(result)


if __name__ == "__main__":
    main()
