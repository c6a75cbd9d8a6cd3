"""``newsclf-train``: fit, evaluate, log, register and gate one model for one task.

Returns the optimised metric (``optimize_metric``) so Hydra sweepers can use it.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from newsclf.cli import (
    BOOL,
    NON_NEGATIVE,
    NUMBER,
    OPTIONAL_POSITIVE,
    PATH,
    POSITIVE,
    check_complete,
    check_types,
    console,
    console_script,
    fast_help,
    lazy_import,
    sweep,
    user_errors,
)
from newsclf.errors import NewsclfError
from newsclf.redact import redact_text
from newsclf.store_uri import is_remote
from newsclf.tasks import Task

articles = lazy_import("newsclf.articles")
batch = lazy_import("newsclf.batch")
calibration = lazy_import("newsclf.calibration")
datasets = lazy_import("newsclf.datasets")
evalsets = lazy_import("newsclf.evalsets")
evaluation = lazy_import("newsclf.evaluation")
fits = lazy_import("newsclf.fitting")
hf = lazy_import("datasets")
models = lazy_import("newsclf.models")
saved_model = lazy_import("newsclf.saved_model")
sklearn_base = lazy_import("sklearn.base")
registry = lazy_import("newsclf.registry")
tracking = lazy_import("newsclf.tracking")

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict:
    """Train and evaluate; log everything to MLflow; register and gate the model."""
    try:
        return _train(cfg)
    finally:  # a job that fails early must not wait for the rest of the vectorising
        if "newsclf.fitting" in sys.modules:  # else no pool was started: no import
            fits.SharedFeatures.stop_all()


CONFIG_TYPES = {
    "dataset_dir": PATH,
    "n_jobs": ((int,), "an integer (-1: one worker per core)"),
    "top_features": NON_NEGATIVE,
    "calibration_bins": POSITIVE,
    "max_chars": OPTIONAL_POSITIVE,
    "register": BOOL,
    "gate.min_test_macro_f1": NUMBER,
    "gate.compare_to_champion": BOOL,
}


def _check_config(cfg: DictConfig) -> Task:
    """The task, once the settings are checked: a wrong one fails before any work."""
    check_types(cfg, CONFIG_TYPES)  # Hydra passes n_jobs=abc through as a string
    task = Task.from_config(cfg.task)  # first: the checks below read its labels
    sweep.check_optimize_metric(cfg)
    _check_external_minimums(cfg)
    models.declared_floats(cfg.model)  # C=10 and C: 10.0 are one param value in MLflow
    if cfg.refit not in REFIT:
        raise NewsclfError(f"refit: {cfg.refit!r} is not one of {', '.join(REFIT)}")
    if cfg.get("calibrate") not in CALIBRATE:
        raise NewsclfError(f"calibrate: {cfg.calibrate!r} is not one of temperature, null")
    prefix = str(cfg.mlflow.model_prefix)
    if cfg.register and ("/" in prefix or ":" in prefix):  # found only after training, else
        raise NewsclfError(
            f"mlflow.model_prefix: {prefix!r} cannot hold '/' or ':' (MLflow's registered "
            "model names); use e.g. team-a- (NEWSCLF_MODEL_PREFIX)"
        )
    return task


def _train(cfg: DictConfig) -> dict:
    task = _check_config(cfg)
    uris = (cfg.mlflow.tracking_uri, cfg.mlflow.registry_uri)
    server = any(is_remote(str(uri)) for uri in uris if uri)
    if server:  # a store that does not answer fails the job before any input is read
        tracking.configure(*uris)
    names = task.label_names
    out_of_core = cfg.model.get("out_of_core")  # stream the train split, never load it whole
    # The fits need neither MLflow nor the run, and the solvers release the GIL: they start
    # at once, in threads, beside the imports (Hugging Face datasets, skops, MLflow) and the
    # logging of the config and datasets (on two cores, seconds per job); the refit on train +
    # validation too, when one is wanted. A streamed fit forks worker processes, so it starts
    # later, with the imports done.
    data = None if out_of_core else fits.read_splits(cfg.dataset_dir, names)
    if data is not None:
        model, shared, fitting, refitting = _start_fits(cfg, data, names)
    dd, manifest = datasets.load(cfg.dataset_dir)
    if manifest.labels != task.label_names:
        raise NewsclfError(
            f"{cfg.dataset_dir}: dataset labels {manifest.labels} differ from task "
            f"{task.name}'s {task.label_names}; rebuild it with newsclf-dataset"
        )
    in_memory = datasets.SPLITS[1:] if out_of_core else datasets.SPLITS
    if data is None:
        data = {s: (dd[s]["text"], [names[i] for i in dd[s]["label"]]) for s in in_memory}
        if out_of_core:
            model = models.build_model(cfg.model)
            shared = fitting = refitting = None
        else:
            model, shared, fitting, refitting = _start_fits(cfg, data, names)
    elif any(len(data[s][0]) != dd[s].num_rows for s in in_memory):  # read as the folder was
        raise NewsclfError(f"{cfg.dataset_dir}: changed while being read; run again")
    # how the model to log prepares raw articles; evaluation sets are prepared the same way
    preparation = saved_model.training_preparation(manifest, cfg.max_chars, cfg.dataset_dir)
    sets = _evaluation_sets(cfg)  # read before the run starts: a bad set fails at once
    for raw in sets.values():
        raw.prepare(preparation)
    if not server:  # a local store: set up beside the fits (MLflow's imports take seconds)
        tracking.configure(*uris)
    experiment = tracking.experiment_name(cfg.mlflow.experiment_prefix, task.name)
    registered = f"{cfg.mlflow.model_prefix}{task.name}"
    tags = {"newsclf.stage": "train", "newsclf.fingerprint": manifest.fingerprint}
    result: dict = {"task": task.name, "model": cfg.model.name}
    run_name, parent = cfg.run_name, sweep.parent_run_id()
    if parent:  # a trial of a --multirun: a child of the sweep's run
        number, overrides = sweep.trial_info()
        run_name = f"{cfg.run_name}-{number}"
        tags.update({"newsclf.sweep_job": str(number), "newsclf.overrides": redact_text(overrides)})
    with tracking.run(experiment, run_name, tags, parent_run_id=parent) as run_id:
        result["run_id"] = run_id
        tracking.describe_experiment(experiment, tracking.experiment_description(task))
        if fitting is None:
            fitting = fits.in_thread(_fit, model, dd, data, names, out_of_core)
        tracking.log_config(OmegaConf.to_container(cfg, resolve=True))
        for split in datasets.SPLITS:
            tracking.log_dataset(
                dd[split],
                Path(cfg.dataset_dir) / "hf",
                f"newsclf-{task.name}-{split}",
                manifest.fingerprint,
                context=split,
            )
        # the table of top features needs only the final model and its texts: it is made in
        # a thread as soon as that model is fitted, beside the evaluation and plots below
        top = _start_top_features(cfg, model, data, refitting, fitting, out_of_core)
        evaluation.plot_confusion_matrix  # noqa: B018  # matplotlib's import, beside the fits
        fit_seconds = fitting.result()
        tracking.log_metrics({"fit_seconds": fit_seconds, "n_train": dd["train"].num_rows})
        result.update(
            _log_split_scores(model, data, shared, names, f"{task.name} / {cfg.model.name}")
        )
        # labels are unchanged by it: the metrics above hold for the calibrated model too
        temperature = _fit_temperature(cfg, model, data, shared)
        if temperature is not None:
            result["calibration_temperature"] = temperature
        scored = model if temperature is None else calibration.with_temperature(model, temperature)
        hashes: dict[str, object] = {}  # per split, read and hashed once

        def split_hashes(split: str):
            if split not in hashes:
                hashes[split] = saved_model.text_hashes(_bodies(dd[split]))
            return hashes[split]

        trained_on = split_hashes("train") if sets else None
        result["external"] = _score_sets(cfg, task, scored, sets, preparation, trained_on)
        if result["external"]:  # what a sweep can maximise: optimize_metric=evaluation_macro_f1
            mean = sum(result["external"].values()) / len(result["external"])
            result["evaluation_macro_f1"] = mean
            tracking.log_metrics({"evaluation_macro_f1": mean})
        final = model
        if cfg.register and cfg.refit == "train+validation":
            # The version to register learns from validation too (same parameters; the test
            # split stays unseen). Its metrics above are those of the model fit on train only.
            final = _refit(cfg, model, dd, data, names, out_of_core, refitting)
        result["refit"] = final is not model
        # readable names of hashed features come from the texts the final model learned from
        texts = list(data["train"][0] if not out_of_core else dd["train"][:50_000]["text"])
        if final is not model:
            texts += list(data["validation"][0])
        _log_top_features(cfg, final, texts, top)
        if temperature is not None:  # a copy: the top-features thread may still read final
            final = calibration.with_temperature(final, temperature)
        example = saved_model.raw_example(dd["train"][:2])
        learned_from = ("train", "validation") if result["refit"] else ("train",)
        model_uri = saved_model.log_model(
            final, names, task.name, example, preparation, [split_hashes(s) for s in learned_from]
        )
        result["model_uri"] = model_uri
        if cfg.register:
            scores = _registered_scores(result, final, data["test"], task, sets, preparation)
            if result["refit"]:  # the version's own score, beside the train-only fit's
                result["registered_test_macro_f1"] = scores["test"]
            result.update(
                _register_and_gate(
                    cfg,
                    registered,
                    model_uri,
                    data["test"],
                    result,
                    task,
                    sets,
                    scores,
                    manifest.fingerprint,
                )
            )
            registry.describe_model(
                registered,
                result["version"],
                registry.model_description(task, cfg.mlflow.model_prefix),
                registry.version_description(
                    cfg.model.name, cfg.dataset_dir, cfg.refit, final, manifest, result
                ),
            )
    return result


def _log_split_scores(model, data: dict, shared, names: list[str], title: str) -> dict:
    """The metrics of the model fit on train on the validation and test splits, logged with
    their reports and confusion matrices: ``{validation_macro_f1: ..., ...}``."""
    result = {}
    for split in ("validation", "test"):
        texts, gold = data[split]
        if not texts:
            log.warning("%s split is empty: no %s metrics", split, split)
            continue
        predicted = shared.predict(model, split) if shared else model.predict(texts)
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
                f"{title} / {split}",
            )
            tracking.log_artifact(png, "plots")
    return result


def _start_fits(cfg: DictConfig, data: dict, names: list[str]) -> tuple:
    """The model, its shared split features, and the fit and refit (futures), started."""
    model = models.build_model(cfg.model)
    models.check_training_labels(model, data["train"][1])
    n_jobs = batch.resolve_n_jobs(int(cfg.get("n_jobs", 1)))
    shared = fits.SharedFeatures.start(model, data, n_jobs)
    refitting = _start_refit(cfg, model, data, names, shared)
    fitting = fits.in_thread(_fit, model, None, data, names, None, shared)
    return model, shared, fitting, refitting


def _fit(
    model: object, dd: object, data: dict, names: list[str], out_of_core: object, shared=None
) -> float:
    """Fit the model (streamed for an out-of-core config, on the ``shared`` features of the
    train split when given); the fit's wall time."""
    started = time.perf_counter()
    if out_of_core:
        models.fit_out_of_core(model, dd["train"], names, out_of_core)
    elif shared is not None:
        shared.fit(model, data, ("train",))
    else:
        models.fit(model, *data["train"])
    return time.perf_counter() - started


REFIT = ("train+validation", "none")


def _check_external_minimums(cfg: DictConfig) -> None:
    """``gate.external``: evaluation set name -> minimum macro-F1, checked before any work."""
    minimums = cfg.gate.get("external")
    if minimums is None:
        return
    if not isinstance(minimums, DictConfig):
        raise NewsclfError(
            f"gate.external: {minimums} is not a mapping of evaluation set to minimum "
            "macro-F1, e.g. gate.external={nyt_dev:0.55}"
        )
    check_types(cfg, {f"gate.external.{name}": NUMBER for name in minimums})


CALIBRATE = ("temperature", None)


def _fit_temperature(cfg: DictConfig, model, data: dict, shared) -> float | None:
    """With ``calibrate=temperature``: the temperature that makes the train-only fit's
    probabilities on the validation split best by log loss (``newsclf.calibration``), logged
    with the log loss before and after. None when off, without validation articles, or for a
    classifier whose probabilities are not the softmax of linear scores (left as they are)."""
    texts, gold = data["validation"]
    if cfg.get("calibrate") is None or not texts or not hasattr(model, "steps"):
        return None
    if shared is not None:
        features = model[1:-1].transform(shared.splits["validation"].result())
    else:
        features = model[:-1].transform(list(texts))
    classifier = model[-1]
    scores = calibration.softmax_scores(classifier, features)
    if scores is None:
        log.info(
            "calibrate: %s's probabilities are not the softmax of linear scores; left as they are",
            type(classifier).__name__,
        )
        return None
    classes = [str(c) for c in classifier.classes_]
    known = [i for i, label in enumerate(gold) if label in classes]  # a class train lacked
    scores = scores[known]
    y = [classes.index(gold[i]) for i in known]
    temperature = calibration.fit_temperature(scores, y)
    if temperature <= calibration.MIN_TEMPERATURE * 1.01:
        log.warning(
            "calibrate: the temperature stopped at its floor %.2f (the validation split is all "
            "right or nearly so, too small to calibrate on): probabilities stay overconfident; "
            "a larger validation split, or calibrate=null",
            calibration.MIN_TEMPERATURE,
        )
    tracking.log_metrics(
        {
            "calibration_temperature": temperature,
            "validation_log_loss_uncalibrated": calibration.log_loss(scores, y),
            "validation_log_loss": calibration.log_loss(scores / temperature, y),
        }
    )
    return temperature


def _evaluation_sets(cfg: DictConfig) -> dict[str, object]:
    """The labelled evaluation sets configured with ``evaluation=...`` (none by default)."""
    if not cfg.get("evaluation"):
        if cfg.gate.get("external"):
            raise NewsclfError(
                f"gate.external: minimums for {', '.join(cfg.gate.external)} but no evaluation "
                "set configured (add evaluation=real_dev or evaluation=[nyt_dev,...])"
            )
        return {}
    check_complete(cfg, "evaluation")
    sets_cfg = OmegaConf.to_container(cfg.evaluation, resolve=True)
    missing = sorted(set(cfg.gate.get("external") or {}) - set(sets_cfg))
    if missing:
        raise NewsclfError(
            f"gate.external: no evaluation set named {', '.join(missing)} "
            f"(configured: {', '.join(sets_cfg)})"
        )
    return evalsets.load_sets(sets_cfg)


def _score_sets(
    cfg: DictConfig, task: Task, model, sets: dict, preparation, trained_on=None
) -> dict[str, float]:
    """Score the fitted model on each evaluation set, prepared as the logged model will prepare
    articles (``preparation``); log metrics (``<set>_macro_f1``, ...) and the set's files under
    ``evaluation/<set>/``, and warn about a set's articles among its training texts
    (``trained_on``: their ``text_hashes``). Returns set name -> macro-F1."""
    scores: dict[str, float] = {}
    classifier = saved_model.Classifier(model, task.label_names)
    for raw in sets.values():
        evalset = raw.prepare(preparation)
        scored = evalsets.evaluate(classifier, task, evalset, cfg.calibration_bins)
        if scored is None:
            log.warning("%s: no %s labels, not scored", evalset.name, task.name)
            continue
        counts = {"n_input": evalset.n_input, "n_not_scored": scored.n_not_scored}
        seen = evalsets.n_in_training(scored, evalset, trained_on)
        if seen is not None:
            counts["n_in_training"] = seen
        line = evalsets.overlap_warning(scored, seen, f"{task.name} / {cfg.model.name}")
        if line:
            console().print(f"  [yellow]{line}[/]")
        tracking.log_metrics({**scored.metrics, **counts}, prefix=f"{evalset.name}_")
        with tempfile.TemporaryDirectory() as tmp:
            title = f"{task.name} / {cfg.model.name} / {evalset.name}"
            evalsets.write_artifacts(scored, Path(tmp), title)
            tracking.log_artifacts(tmp, f"evaluation/{evalset.name}")
        scores[evalset.name] = scored.metrics.get("macro_f1", float("nan"))
    return scores


def _bodies(rows, chunk: int = 10_000) -> Iterator[str]:
    """The article bodies of a split, streamed from the dataset's files with flat memory (a
    million-article split read through the ``Dataset`` would stay mapped): what the
    training-text hashes are of, so that a headline read differently elsewhere does not hide
    an article."""
    read = models.row_ranges(rows, ("title", "text"))
    for start in range(0, len(rows), chunk):
        batch = read(start, start + chunk)
        yield from map(articles.body_of, batch["title"], batch["text"])


def _start_refit(cfg: DictConfig, model, data: dict, names: list[str], shared=None):
    """The refit on train + validation (see ``_refit``), started at once in a thread when it
    will be needed: it does not depend on the first fit, and the solvers release the GIL, so on
    two cores it runs beside the first fit and the logging instead of after them. In-memory
    fits only (a streamed fit has its own worker processes)."""
    if not cfg.register or cfg.refit != "train+validation" or not data["validation"][0]:
        return None
    final = sklearn_base.clone(model)  # before the first fit starts changing model
    if shared is not None:

        def refit() -> tuple[object, float]:
            started = time.perf_counter()
            shared.fit(final, data, ("train", "validation"))
            return final, time.perf_counter() - started

        return fits.in_thread(refit)
    texts = list(data["train"][0]) + list(data["validation"][0])
    both = {"train": (texts, list(data["train"][1]) + list(data["validation"][1]))}
    return fits.in_thread(lambda: (final, _fit(final, {}, both, names, None)))


def _refit(cfg: DictConfig, model, dd, data: dict, names: list[str], out_of_core, started=None):
    """A fresh copy of ``model`` fit on train + validation (``started``: that fit, running)."""
    if not dd["validation"].num_rows:
        return model
    if started is not None:
        final, seconds = started.result()
    else:
        final = sklearn_base.clone(model)
        if out_of_core:  # _fit streams dd["train"] or fits data["train"]: give it both splits
            both_dd = {"train": hf.concatenate_datasets([dd["train"], dd["validation"]])}
            both_data: dict = {}
        else:
            texts = list(data["train"][0]) + list(data["validation"][0])
            both_dd = {}
            both_data = {"train": (texts, list(data["train"][1]) + list(data["validation"][1]))}
        seconds = _fit(final, both_dd, both_data, names, out_of_core)
    n = dd["train"].num_rows + dd["validation"].num_rows
    tracking.log_metrics({"refit_seconds": seconds, "n_refit": n})
    tracking.set_tags({"newsclf.refit": "train+validation"})
    return final


def _start_top_features(cfg: DictConfig, model, data: dict, refitting, fitting, out_of_core):
    """The top-features rows of the model to log, computed in a thread once it is fitted: a
    future of (model, rows), or None (a streamed fit: computed later, from a sample of its
    texts; ``top_features=0``: not at all)."""
    if out_of_core or not cfg.top_features:
        return None
    if refitting is not None:
        texts = list(data["train"][0]) + list(data["validation"][0])

        def final() -> object:
            return refitting.result()[0]
    else:
        texts = list(data["train"][0])

        def final() -> object:
            fitting.result()
            return model

    def rows() -> tuple[object, list | None]:
        fitted = final()
        return fitted, models.top_features(fitted, texts, int(cfg.top_features))

    return fits.in_thread(rows)


def _log_top_features(cfg: DictConfig, model, texts: list[str], started=None) -> None:
    """The ``top_features`` n-grams with the largest weight per class, as a table artifact
    (``started``: their computation, running, for the same model)."""
    if not cfg.top_features:
        return
    fitted, rows = started.result() if started is not None else (None, None)
    if fitted is not model:
        rows = models.top_features(model, texts, int(cfg.top_features))
    if rows is None:
        log.info("top features: not readable from this model; none logged")
        return
    tracking.log_table({k: [r[k] for r in rows] for k in rows[0]}, "top_features.json")


def _gate_scores(
    classifier, preparation, test, task: Task, sets: dict, names, trained_on=None
) -> dict:
    """A model's test macro-F1 and its macro-F1 on the evaluation sets ``names``, each set
    prepared as the model prepares articles: how the gate scores challenger and champion.
    With ``trained_on`` (the model's training-text hashes), a set whose articles the model
    was trained on is said to be so: its score there is not held out."""
    scores = {}
    if test[0]:
        predicted = classifier.predict(test[0])["label"].tolist()
        scores["test"] = evaluation.metrics(test[1], predicted, task.label_names)["macro_f1"]
    for set_name in names:
        evalset = sets[set_name].prepare(preparation)
        scored = evalsets.evaluate(classifier, task, evalset)
        if scored is not None:
            scores[set_name] = scored.metrics["macro_f1"]
            seen = evalsets.n_in_training(scored, evalset, trained_on)
            line = evalsets.overlap_warning(scored, seen, "the champion")
            if line:
                tracking.log_metrics({f"champion_{set_name}_n_in_training": seen})
                console().print(f"  [yellow]gate: {line}[/]")
    return scores


def _registered_scores(result: dict, final, test, task: Task, sets, preparation) -> dict:
    """The scores of the version to register, on the basis the champion is scored on: the
    model refit on train + validation is scored anew (logged as ``registered_*``); a model
    registered as fit (calibrated or not: the same labels) is the one scored above."""
    external = result.get("external") or {}
    if not result["refit"]:
        return {"test": result.get("test_macro_f1", float("nan")), **external}
    classifier = saved_model.Classifier(final, task.label_names)
    scores = _gate_scores(classifier, preparation, test, task, sets, list(external))
    tracking.log_metrics({f"registered_{k}_macro_f1": v for k, v in scores.items()})
    return scores


def _register_and_gate(
    cfg: DictConfig,
    name: str,
    model_uri: str,
    test,
    result: dict,
    task: Task,
    sets: dict,
    mine: dict[str, float],
    fingerprint: str,
) -> dict:
    """Register a version; make it champion if the gate passes against the current champion,
    both scored alike (``mine``: the version's scores) on this run's test set and evaluation
    sets. A champion trained on another dataset is compared on the evaluation sets only (its
    training articles may be in this test split), and stays champion when there are none.
    Concurrent jobs are serialised by a promotion lock."""
    test_f1 = mine.get("test", float("nan"))
    external = {k: v for k, v in mine.items() if k != "test"}
    note: dict[str, str | None] = {"why": None}  # why the champion has no test score, if so

    def score(version: str) -> dict[str, float]:
        """The champion's test macro-F1 (same dataset only), and its macro-F1 on the same
        evaluation sets."""
        if not cfg.gate.compare_to_champion:
            note["why"] = f"champion v{version} not compared (gate.compare_to_champion=false)"
            return {}
        current = saved_model.load_model(f"models:/{name}/{version}")
        same = registry.version_fingerprint(name, version) == fingerprint
        if not test[0]:
            note["why"] = f"champion v{version} not compared on test (the test split is empty)"
        elif not same:
            note["why"] = (
                f"champion v{version} was trained on another dataset, so its test score is "
                "not comparable"
            )
        else:
            note["why"] = None
        on = test if same else ([], [])
        return _gate_scores(
            current.classifier, current.preparation, on, task, sets, external,
            current.training_hashes,
        )  # fmt: skip

    def decide(scores: dict[str, float] | None):
        champion = scores or {}
        return evaluation.gate(
            test_f1,
            cfg.gate.min_test_macro_f1,
            champion.get("test"),
            external,
            cfg.gate.get("external"),
            {k: v for k, v in champion.items() if k != "test"},
            None if scores is None else note["why"],  # None: there is no champion
            must_compare=scores is not None and bool(cfg.gate.compare_to_champion),
        )

    lock = cfg.mlflow.get("promotion_lock") or {}
    outcome = registry.register_gated(
        model_uri,
        name,
        decide=decide,
        score=score,
        tags={
            "test_macro_f1": f"{test_f1:.6f}",
            "refit": cfg.refit,
            **{f"eval.{k}.macro_f1": f"{v:.4f}" for k, v in external.items()},
        },
        lock_timeout=float(lock.get("timeout_s", 600)),
        stale_after=float(lock.get("stale_after_s", 120)),
    )
    for key, value in (outcome.champion_score or {}).items():
        metric = "champion_test_macro_f1" if key == "test" else f"champion_{key}_macro_f1"
        tracking.log_metrics({metric: value})
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
    out = console()
    # with a refit, these scores are the fit on train's; the version's own are the gate's
    fit = ", fit on train" if result.get("refit") else ""

    def score(key: str) -> str:  # an empty split (weak labels alone) has no score
        value = result.get(key, float("nan"))
        return "n/a (empty split)" if value != value else f"{value:.3f}"

    out.print(
        f"[bold]newsclf-train[/] {result['task']} / {result['model']}{fit}: "
        f"validation macro-F1 {score('validation_macro_f1')}, "
        f"test macro-F1 {score('test_macro_f1')}, test accuracy {score('test_accuracy')}"
        + (
            f", temperature {result['calibration_temperature']:.2f}"
            if "calibration_temperature" in result
            else ""
        )
    )
    if result.get("external"):
        console().print(
            f"  evaluation sets{fit}: "
            + ", ".join(f"{k} macro-F1 {v:.3f}" for k, v in result["external"].items())
        )
    if "version" in result:
        state = "champion" if result["promoted"] else "not promoted"
        out.print(
            f"  registered {result['registered_model']} version {result['version']} "
            f"({state}: {result['gate']})"
            + (
                "; the version is the refit on train + validation, which the gate scored"
                if result["refit"]
                else ""
            )
            + f"; run {result['run_id']}"
        )
    elif not sweep.in_multirun():  # e.g. a sweep preset's register: false, rerun as it is
        out.print(f"  not registered (register=false; add register=true); run {result['run_id']}")


def _run(cfg: DictConfig) -> float:
    result = train(cfg)
    summary(result)
    return float(result.get(cfg.optimize_metric, float("nan")))


@fast_help("newsclf-train", "train")
@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float:
    if sweep.in_multirun():
        return sweep.trial(_run, cfg)
    return user_errors("newsclf-train")(_run)(cfg)


main = console_script("newsclf-train", main)

if __name__ == "__main__":
    main()
