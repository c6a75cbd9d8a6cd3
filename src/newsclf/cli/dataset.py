"""``newsclf-dataset``: build one labelled DatasetDict per task from a source of articles."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from newsclf import datasets, tracking
from newsclf.articles import ingest
from newsclf.cli import user_errors
from newsclf.labels import Task, load_annotations

log = logging.getLogger(__name__)


def build_datasets(cfg: DictConfig) -> dict[str, dict]:
    """Ingest the source once, then build, save and log a dataset per task."""
    source = instantiate(cfg.source)
    result = ingest(source, instantiate(cfg.clean), cfg.dedupe_text)
    tasks = [Task.from_config(t) for t in cfg.tasks.values()]
    known = {a.id for a in result.articles} | {r.id for r in result.rejects if r.id}
    gold = load_annotations(cfg.annotations.path, tasks, cfg.annotations.id_column, known)
    split = datasets.SplitConfig(**cfg.split)
    if cfg.log_to_mlflow:
        tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
    kept_ids = {a.id for a in result.articles}
    manifests = {}
    for task in tasks:
        labels = {k: v for k, v in gold[task.name].items() if k in kept_ids}
        dd = datasets.build(result.articles, labels, task, split)
        manifest = {
            "task": task.name,
            "labels": task.label_names,
            "fingerprint": datasets.fingerprint(dd),
            "source": str(source.path),
            "annotations": str(cfg.annotations.path),
            "split": OmegaConf.to_container(cfg.split),
            "n_input": result.n_input,
            "n_kept": len(result.articles),
            "n_rejected": len(result.rejects),
            "rejected_by_reason": dict(result.reject_counts()),
            "n_labelled": len(labels),
            "n_unlabelled": len(result.articles) - len(labels),
            "removed_by_rule": dict(Counter(r.rule for r in result.removals)),
            "rows": {s: dd[s].num_rows for s in datasets.SPLITS},
            "label_counts": datasets.label_counts(dd),
        }
        out = datasets.save(
            dd,
            Path(cfg.output_dir) / task.name,
            datasets.dataset_card(dd, task, manifest),
            manifest,
            result.rejects,
            result.removals,
        )
        manifest["path"] = str(out)
        if cfg.log_to_mlflow:
            _log_dataset_run(cfg, task, dd, manifest, out)
        manifests[task.name] = manifest
        log.info("%s: %s (fingerprint %s)", task.name, out, manifest["fingerprint"])
    return manifests


def _log_dataset_run(cfg: DictConfig, task: Task, dd, manifest: dict, out: Path) -> None:
    experiment = tracking.experiment_name(cfg.mlflow.experiment_prefix, task.name)
    tags = {"newsclf.stage": "dataset", "newsclf.fingerprint": manifest["fingerprint"]}
    with tracking.run(experiment, f"dataset-{task.name}", tags):
        tracking.log_config(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_yaml(cfg))
        tracking.log_metrics(
            {
                "n_input": manifest["n_input"],
                "n_kept": manifest["n_kept"],
                "n_rejected": manifest["n_rejected"],
                "n_labelled": manifest["n_labelled"],
                **{f"n_{s}": n for s, n in manifest["rows"].items()},
            }
        )
        for split in datasets.SPLITS:
            tracking.log_dataset(
                dd[split],
                out / "hf",
                f"newsclf-{task.name}-{split}",
                manifest["fingerprint"],
                context=split,
            )
        for name in ("README.md", "manifest.json", "rejects.csv", "boilerplate.csv"):
            tracking.log_artifact(out / name, "dataset")


def summary(manifests: dict[str, dict]) -> None:
    console = Console()
    first = next(iter(manifests.values()))
    console.print(
        f"[bold]newsclf-dataset[/]: {first['n_input']} articles read = {first['n_kept']} kept "
        f"+ {first['n_rejected']} rejected {first['rejected_by_reason'] or ''}\n"
        f"  boilerplate paragraphs removed: {first['removed_by_rule'] or 'none'}"
    )
    table = Table("task", "labelled", "train", "validation", "test", "fingerprint", "folder")
    for task, m in manifests.items():
        table.add_row(
            task,
            str(m["n_labelled"]),
            *(str(m["rows"][s]) for s in datasets.SPLITS),
            m["fingerprint"],
            m["path"],
        )
    console.print(table)


@hydra.main(version_base="1.3", config_path="../configs", config_name="dataset")
@user_errors("newsclf-dataset")
def main(cfg: DictConfig) -> None:
    summary(build_datasets(cfg))


if __name__ == "__main__":
    main()
