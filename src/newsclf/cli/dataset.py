"""``newsclf-dataset``: build one labelled DatasetDict per task from a source of articles."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from newsclf.cli import (
    BOOL,
    INT,
    NUMBER,
    check_types,
    console,
    console_script,
    fast_help,
    lazy_import,
    user_errors,
)
from newsclf.errors import NewsclfError
from newsclf.labelling.gold import annotation_paths, load_annotations
from newsclf.tasks import Task

if TYPE_CHECKING:
    from newsclf.datasets import Manifest

article_io = lazy_import("newsclf.articles")
datasets = lazy_import("newsclf.datasets")
labelling_report = lazy_import("newsclf.labelling.report")
saved_model = lazy_import("newsclf.saved_model")
tracking = lazy_import("newsclf.tracking")
weak_labelling = lazy_import("newsclf.labelling.weak")

log = logging.getLogger(__name__)


CONFIG_TYPES = {
    "dedupe_text": BOOL,
    "log_to_mlflow": BOOL,
    "split.validation": NUMBER,
    "split.test": NUMBER,
    "split.seed": INT,
    "weak.enabled": BOOL,
    "weak.min_confidence": NUMBER,
    "weak.gold_in_train": BOOL,
}


def build_datasets(cfg: DictConfig) -> dict[str, Manifest]:
    """Ingest the source once, then weakly label, build, save and log a dataset per task."""
    check_types(cfg, CONFIG_TYPES)
    tasks = {key: Task.from_config(t) for key, t in cfg.tasks.items()}
    if cfg.log_to_mlflow or weak_labelling.has_model_rules(cfg):
        tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
    # bad rules fail before any article is read
    rule_sets = weak_labelling.load_rule_sets(cfg, tasks)
    source = instantiate(cfg.source)
    result = article_io.ingest(source, instantiate(cfg.clean), cfg.dedupe_text)
    if not result.articles:
        reasons = ", ".join(f"{k} {v}" for k, v in result.reject_counts().most_common())
        raise NewsclfError(
            f"{source.path}: nothing kept, all {len(result.rejects)} records rejected "
            f"({reasons}; first: {result.rejects[0].detail or result.rejects[0].reason}); see "
            f"{datasets.write_rejects(Path(cfg.output_dir), result.rejects)}"
        )
    known = {a.id for a in result.articles} | {r.id for r in result.rejects if r.id}
    try:
        gold = load_annotations(
            annotation_paths(cfg.annotations.path),
            list(tasks.values()),
            cfg.annotations.id_column,
            known,
        )
    except NewsclfError as exc:
        unnamed = sum(1 for r in result.rejects if not r.id)
        if "unknown article" not in str(exc) or not unnamed:
            raise
        rejects = datasets.write_rejects(Path(cfg.output_dir), result.rejects)
        raise NewsclfError(
            f"{exc}: it is not among the articles read, and {unnamed} records were rejected "
            f"before their id was known; see {rejects}"
        ) from None
    split = datasets.SplitConfig(**cfg.split)
    kept_ids = {a.id for a in result.articles}
    manifests = {}
    for key, task in tasks.items():
        labels = {k: v for k, v in gold[task.name].items() if k in kept_ids}
        weak, files, report = None, {}, None
        if key in rule_sets:
            weak, files, report = weak_labelling.weak_labels(
                cfg, rule_sets[key], result.articles, labels
            )
        dd = datasets.build(result.articles, labels, task, split, weak, cfg.weak.gold_in_train)
        manifest = datasets.make_manifest(
            dd,
            task,
            result,
            source=str(source.path),
            annotations=annotation_paths(cfg.annotations.path),
            split=OmegaConf.to_container(cfg.split),
            # the models trained on it clean raw articles the same way (newsclf-train)
            clean=saved_model.Preparation(OmegaConf.to_container(cfg.clean, resolve=True)).clean,
            weak=weak_labelling.weak_summary(cfg, report, datasets.count_weak(dd)),
        )
        out = datasets.save(
            dd,
            Path(cfg.output_dir) / task.name,
            datasets.dataset_card(dd, task, manifest),
            manifest,
            result.rejects,
            result.removals,
            files,
        )
        manifest = replace(manifest, path=str(out))
        if cfg.log_to_mlflow:
            _log_dataset_run(cfg, task, dd, manifest, out, report)
        manifests[task.name] = manifest
        log.info("%s: %s (fingerprint %s)", task.name, out, manifest.fingerprint)
    return manifests


def _log_dataset_run(
    cfg: DictConfig, task: Task, dd, manifest: Manifest, out: Path, report: dict | None
) -> None:
    experiment = tracking.experiment_name(cfg.mlflow.experiment_prefix, task.name)
    tags = {"newsclf.stage": "dataset", "newsclf.fingerprint": manifest.fingerprint}
    with tracking.run(experiment, f"dataset-{task.name}", tags):
        tracking.describe_experiment(experiment, tracking.experiment_description(task))
        tracking.log_config(OmegaConf.to_container(cfg, resolve=True))
        tracking.log_metrics(
            {
                "n_input": manifest.n_input,
                "n_kept": manifest.n_kept,
                "n_rejected": manifest.n_rejected,
                "n_labelled": manifest.n_labelled,
                "n_gold": manifest.n_gold,
                "n_weak": manifest.n_weak,
                **{f"n_{s}": n for s, n in manifest.rows.items()},
            }
        )
        if report is not None:
            tracking.log_metrics(labelling_report.metrics(report))
            tracking.log_table(labelling_report.rule_table(report), "labeling/rules.json")
            for name in ("labeling_report.md", "labeling_report.json", "votes.csv"):
                tracking.log_artifact(out / name, "labeling")
        for split in datasets.SPLITS:
            tracking.log_dataset(
                dd[split],
                out / "hf",
                f"newsclf-{task.name}-{split}",
                manifest.fingerprint,
                context=split,
            )
        for name in ("README.md", "manifest.json", "rejects.csv", "boilerplate.csv"):
            tracking.log_artifact(out / name, "dataset")


def summary(manifests: dict[str, Manifest]) -> None:
    out = console()
    first = next(iter(manifests.values()))
    out.print(
        f"[bold]newsclf-dataset[/]: {first.n_input} articles read = {first.n_kept} kept "
        f"+ {first.n_rejected} rejected {first.rejected_by_reason or ''}\n"
        f"  boilerplate paragraphs removed: {first.removed_by_rule or 'none'}"
    )
    table = Table("task", "gold", "weak", "train", "validation", "test", "fingerprint", "folder")
    for task, m in manifests.items():
        table.add_row(
            task,
            str(m.n_gold),
            str(m.n_weak),
            *(str(m.rows[s]) for s in datasets.SPLITS),
            m.fingerprint,
            m.path,
        )
    out.print(table)
    for task, m in manifests.items():
        if m.weak:
            w = m.weak
            accuracy = "n/a (no gold)" if w.accuracy is None else f"{w.accuracy:.3f}"
            out.print(
                f"  {task} weak labels: coverage {w.coverage:.3f}, accuracy against gold "
                f"{accuracy}, {w.n_train} added to train (confidence >= "
                f"{w.min_confidence}); report: {m.path}/labeling_report.md"
            )


@fast_help("newsclf-dataset", "dataset")
@hydra.main(version_base="1.3", config_path="../configs", config_name="dataset")
@user_errors("newsclf-dataset")
def main(cfg: DictConfig) -> None:
    summary(build_datasets(cfg))


main = console_script("newsclf-dataset", main)

if __name__ == "__main__":
    main()
