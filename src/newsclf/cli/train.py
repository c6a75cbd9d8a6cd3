"""``newsclf-train``: fit, evaluate, log, register and gate one model for one task.

Returns the optimised metric (``optimize_metric``) so Hydra sweepers can use it.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from newsclf import datasets, evaluation, tracking
from newsclf.cli import sweep, user_errors
from newsclf.errors import NewsclfError
from newsclf.labels import Task
from newsclf.models import build_model, fit_out_of_core

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict:
    """Train and evaluate; log everything to MLflow; register and gate the model."""
    task = Task.from_config(cfg.task)
    tracking.configure(cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)  # fails fast if down
    dd, manifest = datasets.load(cfg.dataset_dir)
    if manifest["labels"] != task.label_names:
        raise NewsclfError(
            f"{cfg.dataset_dir}: dataset labels {manifest['labels']} differ from task "
            f"{task.name}'s {task.label_names}; rebuild it with newsclf-dataset"
        )
    names = task.label_names
    out_of_core = cfg.model.get("out_of_core")  # stream the train split, never load it whole
    in_memory = datasets.SPLITS[1:] if out_of_core else datasets.SPLITS
    data = {s: (dd[s]["text"], [names[i] for i in dd[s]["label"]]) for s in in_memory}
    model = build_model(cfg.model)
    experiment = tracking.experiment_name(cfg.mlflow.experiment_prefix, task.name)
    registered = f"{cfg.mlflow.model_prefix}{task.name}"
    tags = {"newsclf.stage": "train", "newsclf.fingerprint": manifest["fingerprint"]}
    result: dict = {"task": task.name, "model": cfg.model.name}
    run_name, parent = cfg.run_name, sweep.parent_run_id()
    if parent:  # a trial of a --multirun: a child of the sweep's run
        number, overrides = sweep.trial_info()
        run_name = f"{cfg.run_name}-{number}"
        tags.update({"newsclf.sweep_job": str(number), "newsclf.overrides": overrides})
    with tracking.run(experiment, run_name, tags, parent_run_id=parent) as run_id:
        result["run_id"] = run_id
        tracking.log_config(OmegaConf.to_container(cfg, resolve=True), OmegaConf.to_yaml(cfg))
        for split in datasets.SPLITS:
            tracking.log_dataset(
                dd[split],
                Path(cfg.dataset_dir) / "hf",
                f"newsclf-{task.name}-{split}",
                manifest["fingerprint"],
                context=split,
            )
        started = time.perf_counter()
        if out_of_core:
            fit_out_of_core(model, dd["train"], names, out_of_core)
        else:
            model.fit(*data["train"])
        fit_seconds = time.perf_counter() - started
        tracking.log_metrics({"fit_seconds": fit_seconds, "n_train": dd["train"].num_rows})
        for split in ("validation", "test"):
            texts, gold = data[split]
            if not texts:
                log.warning("%s split is empty: no %s metrics", split, split)
                continue
            predicted = model.predict(texts)
            scores = evaluation.metrics(gold, predicted, names)
            tracking.log_metrics(scores, prefix=f"{split}_")
            result.update({f"{split}_{k}": v for k, v in scores.items()})
            tracking.log_text(evaluation.report(gold, predicted, names), f"{split}_report.txt")
            with tempfile.TemporaryDirectory() as tmp:
                png = evaluation.plot_confusion_matrix(
                    gold,
                    predicted,
                    names,
                    Path(tmp) / f"{split}_confusion_matrix.png",
                    f"{task.name} / {cfg.model.name} / {split}",
                )
                tracking.log_artifact(png, "plots")
        model_uri = tracking.log_model(model, names, task.name, dd["train"][:2]["text"])
        result["model_uri"] = model_uri
        if cfg.register:
            result.update(_register_and_gate(cfg, registered, model_uri, data["test"], result))
    return result


def _register_and_gate(cfg: DictConfig, name: str, model_uri: str, test, result: dict) -> dict:
    """Register a version; make it champion if the gate passes against the current champion,
    rescored on this run's test set. Concurrent jobs are serialised by a promotion lock."""
    test_f1 = result.get("test_macro_f1", float("nan"))
    labels = list(cfg.task.labels)

    def score(version: str) -> float:
        current = tracking.load_model(f"models:/{name}/{version}")
        predicted = current.classifier.predict(test[0])["label"].tolist()
        return evaluation.metrics(test[1], predicted, labels)["macro_f1"]

    lock = cfg.mlflow.get("promotion_lock") or {}
    outcome = tracking.register_gated(
        model_uri,
        name,
        decide=lambda champion_f1: evaluation.gate(
            test_f1, cfg.gate.min_test_macro_f1, champion_f1
        ),
        score=score if cfg.gate.compare_to_champion and test[0] else None,
        tags={"test_macro_f1": f"{test_f1:.6f}"},
        lock_timeout=float(lock.get("timeout_s", 600)),
        stale_after=float(lock.get("stale_after_s", 1800)),
    )
    if outcome.champion_score is not None:
        tracking.log_metrics({"champion_test_macro_f1": outcome.champion_score})
    tracking.set_tags(
        {
            "newsclf.registered_model": name,
            "newsclf.version": outcome.version,
            "newsclf.promoted": str(outcome.promoted),
            "newsclf.gate": outcome.reason,
            "newsclf.previous_champion": outcome.previous_champion or "",
        }
    )
    return {
        "registered_model": name,
        "version": outcome.version,
        "promoted": outcome.promoted,
        "gate": outcome.reason,
        "previous_champion": outcome.previous_champion,
    }


def summary(result: dict) -> None:
    console = Console()
    console.print(
        f"[bold]newsclf-train[/] {result['task']} / {result['model']}: "
        f"validation macro-F1 {result.get('validation_macro_f1', float('nan')):.3f}, "
        f"test macro-F1 {result.get('test_macro_f1', float('nan')):.3f}, "
        f"test accuracy {result.get('test_accuracy', float('nan')):.3f}"
    )
    if "version" in result:
        state = "champion" if result["promoted"] else "not promoted"
        console.print(
            f"  registered {result['registered_model']} version {result['version']} "
            f"({state}: {result['gate']}); run {result['run_id']}"
        )


def _run(cfg: DictConfig) -> float:
    result = train(cfg)
    summary(result)
    return float(result.get(cfg.optimize_metric, float("nan")))


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float:
    if sweep.in_multirun():
        return sweep.trial(_run, cfg)
    return user_errors("newsclf-train")(_run)(cfg)


if __name__ == "__main__":
    main()
