"""``newsclf-evaluate``: score models (default: both champions) on labelled evaluation sets.

Per model and set: macro-F1, accuracy, per-class precision / recall / F1, calibration (ECE, log
loss), a confusion matrix and a reliability plot, and the misclassified articles; logged as an
evaluation run per model in its task's experiment, tagged on the model version, and printed as
one table. Each model reads a set's articles as its own logged preparation makes them, so its
scores are those of what ``newsclf-predict`` gives on the same file.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf
from rich.table import Table

from newsclf.cli import (
    BOOL,
    PATH,
    POSITIVE,
    check_complete,
    check_types,
    console,
    console_script,
    fast_help,
    lazy_import,
    user_errors,
)
from newsclf.errors import NewsclfError
from newsclf.tasks import Task

if TYPE_CHECKING:
    from newsclf.saved_model import LoadedModel

evalsets = lazy_import("newsclf.evalsets")
saved_model = lazy_import("newsclf.saved_model")
registry = lazy_import("newsclf.registry")
tracking = lazy_import("newsclf.tracking")

log = logging.getLogger(__name__)

TAGGED = ("macro_f1", "accuracy", "ece", "log_loss", "n")  # metrics tagged on the version


@dataclass
class ModelResult:
    """One model's scores on every set that has labels of its task."""

    key: str
    model: LoadedModel
    task: Task
    scores: list[evalsets.SetScore] = field(default_factory=list)
    run_id: str | None = None
    folder: Path | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. sets it was trained on


def model_uris(cfg: DictConfig) -> dict[str, str]:
    """``models``: a mapping name -> URI, or a list of URIs (named by themselves)."""
    models = cfg.get("models")
    if not models:
        raise NewsclfError("models: no model configured (models.<name>=<model URI>)")
    if isinstance(models, ListConfig):
        return {str(uri): str(uri) for uri in models}
    return {str(k): str(v) for k, v in models.items() if v}


CONFIG_TYPES = {
    "output_dir": PATH,
    "calibration_bins": POSITIVE,
    "allow_pickle": BOOL,
    "log_to_mlflow": BOOL,
    "tag_versions": BOOL,
}


def evaluate_models(cfg: DictConfig) -> tuple[list[ModelResult], dict, list[str]]:
    """Load the models, read every set, check every set's labels, then score, write and log.
    Returns the results, the sets and the lines about skipped model x set pairs."""
    check_types(cfg, CONFIG_TYPES)  # Hydra passes calibration_bins=abc through as a string
    check_complete(cfg, "evaluation")  # an unset path fails before the models load
    uris = model_uris(cfg)
    # a registry that must already hold the models is not created empty (a wrong folder)
    create = not tracking.reads_store(uris.values())
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri, create=create)
    # a model under a task's key (models.topic=...) must be of that task; a pickle-format
    # model, which carries no task, takes it from there
    configured = {k: t.name for k, t in (cfg.get("tasks") or {}).items()}
    models = {
        key: saved_model.load_model(
            uri, cfg.trusted_types, task=configured.get(key), allow_pickle=cfg.allow_pickle
        )
        for key, uri in uris.items()
    }  # a bad URI fails before any article is read
    tasks = {t.name: t for t in (Task.from_config(c) for c in (cfg.get("tasks") or {}).values())}
    sets_cfg = OmegaConf.to_container(cfg.evaluation, resolve=True) if cfg.evaluation else {}
    if not sets_cfg:
        raise NewsclfError("evaluation: no evaluation set configured (e.g. evaluation=real_dev)")
    # read once; each model sees a set as its own preparation makes it, as in newsclf-predict
    sets = evalsets.load_sets(sets_cfg)
    results = [ModelResult(key, m, evalsets.model_task(m, tasks)) for key, m in models.items()]
    for result in results:  # bad labels stop the job before anything is written or logged
        for raw in sets.values():
            raw.prepare(result.model.preparation).gold(result.task)
    skipped: list[str] = []
    for result in results:
        for raw in sets.values():
            evalset = raw.prepare(result.model.preparation)
            scored = evalsets.evaluate(
                result.model.classifier, result.task, evalset, cfg.calibration_bins
            )
            if scored is None:
                line = (
                    f"{evalset.name}: no {result.task.name} labels (column "
                    f"{result.task.annotation_column!r}) in {', '.join(evalset.annotations)}; "
                    f"skipped for {result.task.name} models"
                )
                if line not in skipped:
                    skipped.append(line)
                    log.warning(line)
                continue
            seen = evalsets.n_in_training(scored, evalset, result.model.training_hashes)
            if seen is not None:
                scored.metrics["n_in_training"] = seen
            line = evalsets.overlap_warning(scored, seen, _model_label(result.model))
            if line:  # printed with the summary
                result.warnings.append(line)
            result.scores.append(scored)
        if result.scores:
            result.folder = _write(cfg, result, sets)
            if cfg.log_to_mlflow:
                _log(cfg, result, sets)
    return results, sets, skipped


def _model_label(model: LoadedModel) -> str:
    return f"{model.name} v{model.version}" if model.version else model.name


def _write(cfg: DictConfig, result: ModelResult, sets: dict) -> Path:
    model = result.model
    name = f"{model.name}-v{model.version}" if model.version else model.name
    folder = Path(cfg.output_dir) / re.sub(r"[^\w.-]+", "_", name).strip("_")
    for scored in result.scores:
        title = f"{result.task.name} / {_model_label(model)} / {scored.set_name}"
        rejects = sets[scored.set_name].prepare(model.preparation).rejects
        evalsets.write_artifacts(scored, folder / scored.set_name, title, rejects)
    return folder


def _log(cfg: DictConfig, result: ModelResult, sets: dict) -> None:
    model = result.model
    registered = bool(model.version) and model.name != model.uri
    experiment = tracking.experiment_name(cfg.mlflow.experiment_prefix, result.task.name)
    run_name = f"evaluate-{model.name}-v{model.version}" if registered else "evaluate"
    tags = {
        "newsclf.stage": "evaluate",
        "newsclf.model_uri": model.uri,
        "newsclf.eval_sets": ",".join(s.set_name for s in result.scores),
    }
    if registered:
        tags.update({"newsclf.registered_model": model.name, "newsclf.version": model.version})
    model_id = registry.model_id(model.name, model.version) if registered else None
    with tracking.run(experiment, run_name, tags) as run_id:
        result.run_id = run_id
        tracking.log_config(OmegaConf.to_container(cfg, resolve=True))
        for scored in result.scores:
            evalset = sets[scored.set_name].prepare(model.preparation)
            frame = scored.predictions
            texts = {a.id: a.text for a in evalset.articles}
            tracking.log_evaluation_input(
                frame.assign(text=[texts[i] for i in frame["id"]])[["id", "text", "gold"]],
                scored.set_name,
                evalset.source,
            )
            counts = {
                "n_input": evalset.n_input,
                "n_rejected": len(evalset.rejects),
                "n_not_scored": scored.n_not_scored,
            }
            tracking.log_metrics(
                {**scored.metrics, **counts}, prefix=f"{scored.set_name}_", model_id=model_id
            )
            tracking.log_artifacts(result.folder / scored.set_name, scored.set_name)
            tracking.log_table(
                scored.misclassified.to_dict("list"), f"{scored.set_name}/misclassified.json"
            )
        if registered and cfg.tag_versions:
            version_tags: dict[str, str | None] = {"eval.run_id": run_id}
            for scored in result.scores:
                for key in TAGGED:
                    value = scored.metrics.get(key)
                    if value is None:  # nothing scored: an earlier tag would contradict it
                        text = None
                    else:
                        text = str(int(value)) if key == "n" else f"{value:.4f}"
                    version_tags[f"eval.{scored.set_name}.{key}"] = text
                # each set's own run: a later run of other sets moves eval.run_id, not this
                version_tags[f"eval.{scored.set_name}.run_id"] = run_id
            registry.tag_version(model.name, model.version, version_tags)


def summary(results: list[ModelResult], sets: dict, skipped: list[str]) -> None:
    out = console()
    out.print("[bold]newsclf-evaluate[/]")
    for raw in sets.values():
        prepared = raw.prepared
        for key, evalset in prepared.items():
            name = evalset.name
            if len(prepared) > 1:  # models that prepare articles differently keep different ones
                users = [_model_label(r.model) for r in results if r.model.preparation.key == key]
                name += f" (as {', '.join(users)} prepare{'s' if len(users) == 1 else ''} it)"
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(evalset.reject_counts().items()))
            out.print(
                f"  {name}: {evalset.n_input} articles in = {len(evalset.articles)} kept + "
                f"{len(evalset.rejects)} rejected{f' ({reasons})' if reasons else ''}"
            )
    table = Table("model", "set", "n", "macro-F1", "accuracy", "ECE", "log loss", "recall")
    for result in results:
        for scored in result.scores:
            m = scored.metrics
            recall = ", ".join(
                f"{label} {m[f'recall_{label}']:.2f}"
                for label in scored.labels
                if m.get(f"support_{label}")
            )
            # with the set's line above: kept = scored + unlabelled, rejected counted apart
            others = [(scored.n_not_scored, "rejected"), (scored.n_unlabelled, "unlabelled")]
            extra = ", ".join(f"+{k} {what}" for k, what in others if k)
            n = f"{scored.n_scored}" + (f" ({extra})" if extra else "")
            table.add_row(
                _model_label(result.model),
                scored.set_name,
                n,
                *(_value(m.get(k)) for k in ("macro_f1", "accuracy", "ece", "log_loss")),
                recall,
            )
    out.print(table)
    for line in [*skipped, *(w for r in results for w in r.warnings)]:
        out.print(f"  [yellow]{line}[/]")
    for result in results:
        if result.folder is None:
            continue
        # plots are written only for a set with articles scored: claim them for no other
        for scored in result.scores:
            if not scored.n_scored:
                rejects = result.folder / scored.set_name / "rejects.csv"
                out.print(
                    f"  [yellow]{_model_label(result.model)}: nothing scored on "
                    f"{_not_scored(result, scored, sets)}; no plots; see {rejects}[/]"
                )
        if not any(scored.n_scored for scored in result.scores):
            continue
        where = f"run {result.run_id}, " if result.run_id else ""
        out.print(
            f"  {_model_label(result.model)}: {where}files in {result.folder} "
            "(per set scored: predictions.csv, misclassified.csv, rejects.csv, report.txt, "
            "confusion_matrix.png, reliability.png)"
        )


def _not_scored(result: ModelResult, scored: evalsets.SetScore, sets: dict) -> str:
    """``<set> (<n> labelled, all rejected (<reasons>))``: why a set gave a model nothing to
    score, from the rejects of its labelled articles."""
    evalset = sets[scored.set_name].prepare(result.model.preparation)
    gold = evalset.gold(result.task)
    reasons = Counter(r.reason for r in evalset.rejects if r.id in gold)
    why = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))
    return f"{scored.set_name} ({scored.n_gold} labelled, all rejected{f' ({why})' if why else ''})"


def check_scored(results: list[ModelResult], sets: dict, skipped: Sequence[str] = ()) -> None:
    """Raise a NewsclfError when no model scored any article (every labelled article of every
    set rejected), as newsclf-predict and newsclf-dataset stop when nothing is kept: exit 2, one
    line, after the files and the version tags were brought up to date (no earlier plots or
    scores are left beside the rejects). So too when no set has labels of any model's task
    (``skipped``: e.g. a misspelt column in the labels file)."""
    pairs = [(r, s) for r in results for s in r.scores]
    if not pairs and skipped:
        raise NewsclfError(f"nothing scored: {'; '.join(skipped)}")
    if not pairs or any(s.n_scored for _, s in pairs):
        return
    first, scored = pairs[0]
    where = [f"{_model_label(r.model)} on {_not_scored(r, s, sets)}" for r, s in pairs]
    raise NewsclfError(
        f"nothing scored: {'; '.join(where)}; see {first.folder / scored.set_name / 'rejects.csv'}"
    )


def _value(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:.3f}"


@fast_help("newsclf-evaluate", "evaluate")
@hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")
@user_errors("newsclf-evaluate")
def main(cfg: DictConfig) -> None:
    results, sets, skipped = evaluate_models(cfg)
    check_scored(results, sets, skipped)
    summary(results, sets, skipped)


main = console_script("newsclf-evaluate", main)

if __name__ == "__main__":
    main()
