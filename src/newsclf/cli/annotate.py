"""``newsclf-annotate``: export the K articles most worth labelling next, in the annotations
format (fill in the label columns, add the file to ``annotations.path``, rebuild, retrain)."""

from __future__ import annotations

import logging
import shlex

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from newsclf.cli import (
    BOOL,
    PATH,
    POSITIVE,
    check_types,
    config_dir_options,
    console,
    console_script,
    fast_help,
    lazy_import,
    user_errors,
    warn_dropped_boilerplate,
)
from newsclf.errors import NewsclfError
from newsclf.labelling.gold import (
    UnknownArticleError,
    annotation_paths,
    load_source_annotations,
    unknown_ids_setting,
)
from newsclf.tasks import Task

annotate = lazy_import("newsclf.annotate")
article_io = lazy_import("newsclf.articles")
saved_model = lazy_import("newsclf.saved_model")
tracking = lazy_import("newsclf.tracking")
weak_labelling = lazy_import("newsclf.labelling.weak")

log = logging.getLogger(__name__)


CONFIG_TYPES = {
    "output.path": PATH,
    "k": POSITIVE,
    "dedupe_text": BOOL,
    "weak.enabled": BOOL,
    "output.overwrite": BOOL,
}


def export(cfg: DictConfig) -> dict:
    """Rank the not-yet-annotated articles and write the annotations CSV and its context."""
    if cfg.strategy not in annotate.STRATEGIES:
        raise NewsclfError(
            f"strategy: {cfg.strategy!r} is not one of {', '.join(annotate.STRATEGIES)}"
        )
    check_types(cfg, CONFIG_TYPES)  # Hydra passes overwrite=no through as the string "no"
    unknown_ids = unknown_ids_setting(cfg.annotations)
    annotate.check_output(cfg.output.path, cfg.output.overwrite)  # before any work
    source = instantiate(cfg.source)
    source.check_output_outside(cfg.output.path, "output.path")
    tasks = {key: Task.from_config(t) for key, t in cfg.tasks.items()}
    models, rule_sets = {}, {}
    if cfg.strategy == "least_confident":  # models first: a missing one fails before reading
        tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
        uris = cfg.get("models") or {}
        for key, task in tasks.items():
            if not uris.get(key):
                raise NewsclfError(f"models.{key}: no model URI for task {task.name}")
            models[key] = saved_model.load_model(uris[key], list(cfg.trusted_types), task=task.name)
    else:
        rule_sets = weak_labelling.load_rule_sets(cfg, tasks)
        missing = [key for key in tasks if key not in rule_sets]
        if missing:
            raise NewsclfError(f"labeling.{missing[0]}: strategy=conflict needs rules per task")
    warn_dropped_boilerplate(cfg.clean)
    result = article_io.ingest(source, instantiate(cfg.clean), cfg.dedupe_text)
    known = {a.id for a in result.articles} | {r.id for r in result.rejects if r.id}
    try:
        gold = load_source_annotations(
            annotation_paths(cfg.annotations.path),
            list(tasks.values()),
            cfg.annotations.id_column,
            known,
            unknown_ids,
            source.path,
        )
    except UnknownArticleError as exc:
        if exc.bundled:  # its message says what to do
            raise
        raise NewsclfError(
            f"{exc}: not in {source.path}; annotations.unknown_ids=ignore skips the "
            "annotations of articles the source does not hold"
        ) from None
    # an article labelled for one task only is still a candidate, for the others
    annotated = {key: set(gold.get(task.name, {})) for key, task in tasks.items()}
    # a text labelled under another id (a syndicated copy) is not proposed again
    annotated = annotate.with_text_copies(result.articles, result.rejects, annotated)
    complete = set.intersection(*annotated.values()) if annotated else set()
    kept_ids = {a.id for a in result.articles}
    if models:
        scores = annotate.model_scores(result.articles, models)
    else:
        scores = annotate.conflict_scores(result.articles, rule_sets)
    chosen = annotate.rank(result.articles, scores, cfg.k, annotated)
    counts = {
        "n_input": result.n_input,
        "n_kept": len(result.articles),
        "n_rejected": len(result.rejects),
        "rejected_by_reason": dict(sorted(result.reject_counts().items())),
        "n_annotated": len(complete),
        "n_candidates": len(kept_ids - complete),
        "n_exported": len(chosen),
        "strategy": cfg.strategy,
    }
    if not chosen:  # an empty export would only block the next run's (it exists)
        return {**counts, "path": None, "context": None, "rebuild": None}
    path, context = annotate.write_export(
        chosen,
        list(tasks.values()),
        cfg.output.path,
        cfg.annotations.id_column,
        cfg.output.overwrite,
        gold=gold,
        task_keys=list(tasks),  # the scores' hints are by config key
    )
    return {
        **counts,
        "path": str(path),
        "context": str(context),
        "rebuild": rebuild_command(
            annotation_paths(cfg.annotations.path),
            str(path),
            cfg.annotations.id_column,
            unknown_ids,
        ),
    }


def rebuild_command(
    labels: str | list[str] | None, export: str, id_column: str, unknown_ids: str = "error"
) -> str:
    """The newsclf-dataset command that adds the filled-in export to the labels: with this
    run's config folder, source, cleaning, tasks, rules and MLflow store, which it needs to
    find the same articles (the annotations name them), the export's id column and whether
    annotations of other sources' articles are skipped."""
    from hydra.core.hydra_config import HydraConfig

    carried: list[str] = []
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:  # called outside a Hydra run: no command line to carry
        hydra_cfg = None
    if hydra_cfg is not None:
        carried += config_dir_options(hydra_cfg)
        keep = ("source", "clean", "mlflow", "tasks", "task@", "labeling", "dedupe_text")
        carried += [o for o in hydra_cfg.overrides.task if o.lstrip("+~").startswith(keep)]
    if id_column != "article_id":
        carried.append(f"annotations.id_column={id_column}")
    if unknown_ids != "error":
        carried.append(f"annotations.unknown_ids={unknown_ids}")
    files = [labels] if isinstance(labels, str) else list(labels or [])
    # quoted for Hydra too: a path with a comma, brackets or '=' would not parse bare
    quoted = ",".join("'" + p.replace("'", "\\'") + "'" for p in [*files, export])
    return shlex.join(["newsclf-dataset", *carried, f"annotations.path=[{quoted}]"])


def summary(result: dict) -> None:
    from rich.markup import escape

    reasons = ", ".join(f"{k} {v}" for k, v in result["rejected_by_reason"].items())
    head = (
        f"[bold]newsclf-annotate[/] ({result['strategy']}): {result['n_input']} articles read = "
        f"{result['n_kept']} kept + {result['n_rejected']} rejected"
        f"{f' ({reasons})' if reasons else ''}; {result['n_annotated']} already annotated; "
    )
    if result["path"] is None:
        why = (
            "every kept article is annotated for every task"
            if not result["n_candidates"]
            else f"strategy {result['strategy']} scored none of the {result['n_candidates']} "
            "articles a label is missing from"
        )
        console().print(head + f"nothing to export: {why}; no file written", soft_wrap=True)
        return
    console().print(
        head + f"exported the {result['n_exported']} most worth labelling of "
        f"{result['n_candidates']}\n"
        f"  fill in: {result['path']}  (context to read: {result['context']})\n"
        f"  then: {escape(result['rebuild'])}\n"
        "  and newsclf-train (with evaluation=... to compare with a champion trained on other "
        "articles)",
        soft_wrap=True,  # the command stays one line, to copy
    )


@fast_help("newsclf-annotate", "annotate")
@hydra.main(version_base="1.3", config_path="../configs", config_name="annotate")
@user_errors("newsclf-annotate")
def main(cfg: DictConfig) -> None:
    summary(export(cfg))


main = console_script("newsclf-annotate", main)

if __name__ == "__main__":
    main()
