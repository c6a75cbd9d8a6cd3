"""``newsclf-dataset``: build one labelled DatasetDict per task from a source of articles."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.table import Table

from newsclf.cli import (
    BOOL,
    FRACTION,
    INT,
    NUMBER,
    PATH,
    check_types,
    console,
    console_script,
    fast_help,
    lazy_import,
    rate_text,
    user_errors,
    warn_dropped_boilerplate,
)
from newsclf.errors import NewsclfError, all_rejected
from newsclf.labelling.gold import (
    UnknownArticleError,
    annotation_paths,
    load_annotations,
    load_source_annotations,
    merge_copies,
    missing_column,
    text_copies,
    unknown_ids_setting,
)
from newsclf.tasks import Task

if TYPE_CHECKING:
    from newsclf.articles import Source
    from newsclf.build import Ingested, TaskPlan, Written
    from newsclf.datasets import Manifest

article_io = lazy_import("newsclf.articles")
build = lazy_import("newsclf.build")
datasets = lazy_import("newsclf.datasets")
labelling_report = lazy_import("newsclf.labelling.report")
saved_model = lazy_import("newsclf.saved_model")
tracking = lazy_import("newsclf.tracking")
weak_labelling = lazy_import("newsclf.labelling.weak")

log = logging.getLogger(__name__)


CONFIG_TYPES = {
    "output_dir": PATH,
    "dedupe_text": BOOL,
    "log_to_mlflow": BOOL,
    "split.validation": NUMBER,
    "split.test": NUMBER,
    "split.seed": INT,
    "chunk_size": INT,
    "n_jobs": INT,
    "weak.enabled": BOOL,
    "weak.min_confidence": FRACTION,
    "weak.gold_in_train": BOOL,
}


def _int_setting(cfg: DictConfig, name: str, default: int) -> int:
    """An int setting, ``default`` only when missing or null: 0 is a value (chunk_size=0 is
    ingest's error, n_jobs=0 one worker per core as in the other CLIs)."""
    value = cfg.get(name)
    return default if value is None else int(value)


def build_datasets(cfg: DictConfig) -> dict[str, Manifest]:
    """Ingest the source once in chunks, then weakly label, write and log a dataset per task.

    Memory stays flat in the corpus size (``newsclf.build``): pass 1 cleans, de-duplicates and
    votes ``chunk_size`` records at a time, the label models are fitted on the distinct vote
    patterns, pass 2 writes every task's splits chunk by chunk.
    """
    check_types(cfg, CONFIG_TYPES)
    tasks = {key: Task.from_config(t) for key, t in cfg.tasks.items()}
    if cfg.log_to_mlflow or weak_labelling.has_model_rules(cfg):
        tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
    # bad rules fail before any article is read
    rule_sets = weak_labelling.load_rule_sets(cfg, tasks)
    for rules in rule_sets.values():
        weak_labelling.label_model(cfg, rules)  # and the label model's parameters
    warn_dropped_boilerplate(cfg.clean)
    source = instantiate(cfg.source)
    output_dir = Path(cfg.output_dir)
    source.check_output_outside(output_dir, "output_dir")
    paths = annotation_paths(cfg.annotations.path)
    id_column = cfg.annotations.id_column
    unknown_ids = unknown_ids_setting(cfg.annotations)
    named: set[str] = set()  # every id the files name, blank rows too: checked after pass 1
    annotated = load_annotations(paths, list(tasks.values()), id_column, None, named)
    by_key = {key: annotated[task.name] for key, task in tasks.items()}
    ingested = _pass_one(cfg, source, rule_sets, by_key, output_dir, named)
    folders: list[Path] = []
    try:
        _check_pass_one(ingested, source, output_dir)
        gold = _gold_labels(
            ingested, source, paths, list(tasks.values()), id_column, unknown_ids, named, output_dir
        )
        # annotated articles rejected as copies of a kept article's text (few: gold only);
        # rejects.csv (as long as the input, for a crawl) is read only when there are some
        rejected = set().union(*gold.values()) - ingested.gold_articles.keys()
        copies = list(text_copies(ingested.rejects_csv, rejected)) if rejected else []
        split = datasets.SplitConfig(**cfg.split)
        plans, reports, files = [], {}, {}
        for key, task in tasks.items():
            labels = {k: v for k, v in gold[task.name].items() if k in ingested.gold_articles}
            taken, conflicts = merge_copies(gold[task.name], copies)
            labels.update({k: v for k, v in taken.items() if k in ingested.gold_articles})
            weak_labels, files[key] = None, {}
            if conflicts:
                files[key] = {"label_conflicts.csv": _conflicts_csv(conflicts)}
                _warn_conflicts(task.name, conflicts, output_dir / task.name)
            if key in rule_sets:
                weak_labels, weak_files, reports[key] = weak_labelling.fit_weak_labels(
                    cfg, rule_sets[key], ingested.votes[key]
                )
                files[key].update(weak_files)
            folder = output_dir / f".{task.name}.tmp-{os.getpid()}"
            shutil.rmtree(folder, ignore_errors=True)
            folders.append(folder)
            plan = build.TaskPlan(
                key=key,
                task=task,
                folder=folder,
                gold=labels,
                assignment=build.plan_splits(labels, task, split, ingested.gold_articles),
                labels=weak_labels,
                min_confidence=float(cfg.weak.min_confidence),
                gold_in_train=bool(cfg.weak.gold_in_train),
                votes_names=rule_sets[key].names if key in rule_sets else [],
            )
            try:
                build.check_labels(plan, ingested.votes.get(key), ingested.n_kept)
            except NewsclfError as exc:  # say why, when it is the annotations' columns
                why = missing_column(paths, task)
                if not why:
                    raise
                raise NewsclfError(
                    f"{exc}: {why} (a task you do not want is left out with '~task@tasks.{key}')"
                ) from None
            if not labels and paths is not None and (why := missing_column(paths, task)):
                # weak labels alone would build it, with no validation or test split: a typo
                # in a column name must not pass as a weak-only dataset
                raise NewsclfError(
                    f"task {task.name}: no gold labels: {why}; weak labels alone give no "
                    f"validation or test split (leave the task out with '~task@tasks.{key}', "
                    "or build a weak-only dataset with annotations.path=null)"
                )
            plans.append(plan)
        written = build.write(ingested, plans)
        manifests = {}
        for plan in plans:
            task, stats = plan.task, written[plan.key]
            report = reports.get(plan.key)
            manifest = _manifest(cfg, plan, stats, ingested, str(source.path), paths, report)
            folder = plan.folder
            (folder / "README.md").write_text(
                datasets.dataset_card(stats, task, manifest), encoding="utf-8"
            )
            (folder / "manifest.json").write_text(
                json.dumps(manifest.to_dict(), indent=2), encoding="utf-8"
            )
            shutil.copyfile(ingested.rejects_csv, folder / "rejects.csv")
            shutil.copyfile(ingested.boilerplate_csv, folder / "boilerplate.csv")
            for name, text in files[plan.key].items():
                (folder / name).write_text(text, encoding="utf-8")
            out = output_dir / task.name
            datasets.swap_into_place(folder, out)
            manifest = replace(manifest, path=str(out))
            if cfg.log_to_mlflow:
                dd = datasets.load(out)[0]  # memory-mapped: logging reads what it needs
                _log_dataset_run(cfg, task, dd, manifest, out, report)
            manifests[task.name] = manifest
            log.info("%s: %s (fingerprint %s)", task.name, out, manifest.fingerprint)
        return manifests
    finally:
        ingested.close()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _pass_one(
    cfg: DictConfig,
    source: Source,
    rule_sets: dict,
    by_key: dict[str, dict[str, str]],
    output_dir: Path,
    named: set[str],
) -> Ingested:
    """Pass 1 on the configured engine: read, clean, de-duplicate, vote, stage."""
    engine = cfg.get("engine") or "local"
    if engine == "spark":  # then the label models, splits and writing as after a local pass
        from newsclf.spark_dataset import ingest_on_spark

        spark_cfg = OmegaConf.to_container(cfg.spark, resolve=True) if cfg.get("spark") else {}
        return ingest_on_spark(
            source, instantiate(cfg.clean), cfg.dedupe_text, rule_sets, by_key, output_dir,
            spark_cfg, named_ids=named,
        )  # fmt: skip
    if engine == "local":
        return build.ingest(
            source.read(),
            instantiate(cfg.clean),
            cfg.dedupe_text,
            rule_sets,
            by_key,
            output_dir,
            _int_setting(cfg, "chunk_size", build.CHUNK_SIZE),
            _int_setting(cfg, "n_jobs", 1),
            named,
        )
    raise NewsclfError(f"engine: {engine!r} is not one of local, spark")


def _check_pass_one(ingested: Ingested, source: Source, output_dir: Path) -> None:
    """One error line when pass 1 read or kept nothing; a warning for unreadable dates."""
    if ingested.n_input == 0:
        raise NewsclfError(f"{source.path}: source is empty (no articles)")
    if not ingested.n_kept:
        reasons = ", ".join(f"{k} {v}" for k, v in ingested.reject_counts.most_common())
        first = ingested.first_reject
        raise NewsclfError(
            f"{source.path}: nothing kept, {all_rejected(ingested.n_rejected)} "
            f"({reasons}; first: {first.detail or first.reason}); see "
            f"{_keep_rejects(output_dir, ingested)}"
        )
    if ingested.unread_dates:
        log.warning(
            "%d articles have a date that could not be read, left empty (first: %s); see "
            "source.date_column, or set it to null to read no dates",
            ingested.unread_dates,
            ingested.first_unread_date,
        )


def _gold_labels(
    ingested: Ingested,
    source: Source,
    paths: str | list[str] | None,
    tasks: list[Task],
    id_column: str,
    unknown_ids: str,
    named: set[str],
    output_dir: Path,
) -> dict[str, dict[str, str]]:
    """The gold labels once pass 1 has read the input, each annotation checked against it;
    one error line when an annotation names no article read."""
    # now that the input is read: every annotation must name an article of it, unless
    # annotations of other articles are to be skipped (one labels file for many sources)
    try:
        known = ingested.seen_annotated
        gold = load_source_annotations(paths, tasks, id_column, known, unknown_ids, source.path)
    except UnknownArticleError as exc:
        if exc.bundled:  # its message says what to do
            raise
        n_unknown = len(named - ingested.seen_annotated)
        if not 0 < n_unknown <= ingested.unnamed_rejects:
            raise NewsclfError(
                f"{exc}: {n_unknown} of the {len(named)} articles the annotations name are "
                f"not in {source.path}; annotations.unknown_ids=ignore skips them"
            ) from None
        # the annotated article may be a record rejected before its id was read: name that
        # record (its detail starts with file:line) and why, so the user can fix it
        n, first = ingested.unnamed_rejects, ingested.first_unnamed
        which = (
            "the record rejected before its id was known:"
            if n == 1
            else f"one of the {n} records rejected before their id was known, first:"
        )
        raise NewsclfError(
            f"{exc}: not among the articles read; it may be {which} "
            f"{first.reason}: {first.detail or first.source}; "
            f"see {_keep_rejects(output_dir, ingested)}"
        ) from None
    return gold


def _manifest(
    cfg: DictConfig,
    plan: TaskPlan,
    stats: Written,
    ingested: Ingested,
    source: str,
    paths: str | list[str] | None,
    report: dict | None,
) -> Manifest:
    """A task's dataset manifest: how it was built, and every input counted."""
    task = plan.task
    n_rows = sum(stats.rows.values())
    n_weak = sum(stats.sources[s].get("weak", 0) for s in datasets.SPLITS)
    return datasets.Manifest(
        task=task.name,
        labels=task.label_names,
        fingerprint=stats.fingerprint,
        source=source,
        annotations=paths,
        split=OmegaConf.to_container(cfg.split),
        # the models trained on it clean raw articles the same way (newsclf-train)
        clean=saved_model.Preparation(OmegaConf.to_container(cfg.clean, resolve=True)).clean,
        n_input=ingested.n_input,
        n_kept=ingested.n_kept,
        n_rejected=ingested.n_rejected,
        rejected_by_reason=dict(ingested.reject_counts),
        n_labelled=n_rows,
        n_gold=n_rows - n_weak,
        n_weak=n_weak,
        n_unlabelled=ingested.n_kept - n_rows,
        removed_by_rule=dict(ingested.removed_by_rule),
        unread_dates=ingested.unread_dates,
        rows=stats.rows,
        label_counts=stats.label_counts,
        weak=weak_labelling.weak_summary(cfg, report, n_weak),
    )


def _conflicts_csv(conflicts: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(conflicts[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(conflicts)
    return out.getvalue()


def _warn_conflicts(task: str, conflicts: list[dict[str, str]], folder: Path) -> None:
    first = conflicts[0]
    log.warning(
        "%s: %d annotated articles repeat the text of an article annotated with another label; "
        "the kept article's label is used (first: %s %r, kept %s %r); see %s",
        task,
        len(conflicts),
        first["copy_id"],
        first["copy_label"],
        first["kept_id"],
        first["kept_label"],
        folder / "label_conflicts.csv",
    )


def _keep_rejects(folder: Path, ingested: Ingested) -> Path:
    """The rejects of a build that stops early, so the user can see what went wrong."""
    path = folder / "rejects.csv"
    try:
        shutil.copyfile(ingested.rejects_csv, path)
    except OSError as exc:
        raise NewsclfError(f"{path}: cannot write the rejects ({exc.strerror})") from None
    return path


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


def empty_splits(task: str, m: Manifest) -> list[str]:
    """A line per validation or test split that came out empty although its share is not 0:
    too few gold-labelled articles (weak labels go to train only), found now rather than by
    newsclf-train's missing metrics."""
    why = (
        "no gold-labelled articles: weak labels go to train only; set annotations.path"
        if not m.n_gold
        else f"{m.n_gold} gold-labelled articles are too few for split.{{split}}={{share}}"
    )
    return [
        f"{task}: the {split} split is empty ({why.format(split=split, share=m.split[split])}); "
        f"newsclf-train will report no {split} metrics"
        for split in ("validation", "test")
        if m.rows.get("train") and not m.rows.get(split) and m.split.get(split)
    ]


def summary(manifests: dict[str, Manifest], seconds: float | None = None) -> None:
    out = console()
    first = next(iter(manifests.values()))
    more = ""
    if first.unread_dates:
        more += f"\n  dates that could not be read (left empty): {first.unread_dates}"
    if seconds:  # the whole build: read, clean, label, split, write every task
        more += f"\n  {rate_text(first.n_input / seconds)} articles/s ({seconds:,.1f} s)"
    out.print(
        f"[bold]newsclf-dataset[/]: {first.n_input} articles read = {first.n_kept} kept "
        f"+ {first.n_rejected} rejected"
        + (f" {first.rejected_by_reason}" if first.rejected_by_reason else "")
        + "\n"
        f"  boilerplate paragraphs removed: {first.removed_by_rule or 'none'}{more}"
    )
    # gold + weak + unlabelled = kept: an article with no label for a task is in no split
    columns = ("task", "gold", "weak", "unlabelled", "train", "validation", "test")
    table = Table(*columns, "fingerprint", "folder")
    for task, m in manifests.items():
        table.add_row(
            task,
            str(m.n_gold),
            str(m.n_weak),
            str(m.n_unlabelled),
            *(str(m.rows[s]) for s in datasets.SPLITS),
            m.fingerprint,
            m.path,
        )
    out.print(table)
    for task, m in manifests.items():
        for line in empty_splits(task, m):
            log.warning(line)
        if m.weak:
            w = m.weak
            accuracy = "n/a (no gold)" if w.accuracy is None else f"{w.accuracy:.3f}"
            # without gold in train, the train split's gold articles count too; the report's
            # "added to training" counts the articles without gold alone
            added = "added to train" if w.gold_in_train else "in train, which has weak labels only"
            out.print(
                f"  {task} weak labels: coverage {w.coverage:.3f}, accuracy against gold "
                f"{accuracy}, {w.n_train} {added} (confidence >= "
                f"{w.min_confidence}); report: {m.path}/labeling_report.md"
            )


@fast_help("newsclf-dataset", "dataset")
@hydra.main(version_base="1.3", config_path="../configs", config_name="dataset")
@user_errors("newsclf-dataset")
def main(cfg: DictConfig) -> None:
    started = time.perf_counter()
    manifests = build_datasets(cfg)
    summary(manifests, time.perf_counter() - started)


main = console_script("newsclf-dataset", main)

if __name__ == "__main__":
    main()
