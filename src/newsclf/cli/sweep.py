"""One MLflow parent run per ``newsclf-train --multirun``, whatever the sweeper and launcher.

A Hydra callback (``hydra.callbacks.mlflow_sweep`` in ``configs/train.yaml``) creates the parent
run in the sweeping process before any trial starts and hands its id to the trials, which may
run in other processes (joblib), on other machines (SLURM, Ray), so through two channels: the
environment (inherited by local workers, exported by ``sbatch``) and a small file in the sweep
folder (shared by cluster jobs). Each trial's run nests under it; when the sweep ends the parent
gets the best trial's params and optimised metric.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from newsclf.cli import (
    config_dir_options,
    console,
    interrupt_once,
    lazy_import,
    redact_hydra_record,
    redact_output,
    user_problem,
)
from newsclf.errors import NewsclfError
from newsclf.redact import redact_text

tracking = lazy_import("newsclf.tracking")

log = logging.getLogger(__name__)

ENV_RUN_ID = "NEWSCLF_SWEEP_RUN_ID"
MARKER = "mlflow_sweep.json"
RESULTS = "optimization_results.yaml"  # written by the Optuna sweeper


class TrialFailed(CompactHydraException):
    """A trial's user error, re-raised for Hydra to record: Hydra prints a compact
    exception's message alone where it would print another's traceback."""


class SweepRun(Callback):
    """Hydra callback: the sweep's MLflow parent run (see the module docstring)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.run_id: str | None = None
        self.sweep_dir: Path | None = None
        self.metric = "validation_macro_f1"
        self.options: list[str] = []  # --config-dir ... of the sweep's command line
        self.local = False  # trials in this machine's processes, which end with the sweep

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            self._start(config)
        except Exception as exc:  # Hydra would only warn, then run every trial regardless
            problem = user_problem(exc, config)  # e.g. the tracking server is down: one line
            if problem is None:
                raise
            print(f"newsclf-train: error: {problem}", file=sys.stderr)
            sys.exit(2)

    def _start(self, config: DictConfig) -> None:
        check_optimize_metric(config)
        check_launcher(config)
        tracking.configure(config.mlflow.tracking_uri, config.mlflow.registry_uri)
        experiment = tracking.experiment_name(config.mlflow.experiment_prefix, config.task.name)
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self.metric = str(config.optimize_metric)
        self.options = config_options(config.hydra)
        launcher = str(config.hydra.launcher._target_).rsplit(".", 1)[-1]
        self.local = launcher in ("BasicLauncher", "JoblibLauncher")
        tags = {
            "newsclf.stage": "sweep",
            "newsclf.sweep_dir": str(self.sweep_dir),
            "newsclf.sweeper": str(config.hydra.sweeper._target_).rsplit(".", 1)[-1],
            "newsclf.launcher": launcher,
            "newsclf.overrides": redact_text(" ".join(task_overrides(config.hydra))),
            "newsclf.optimize_metric": str(config.optimize_metric),
        }
        self.run_id = tracking.start_sweep(experiment, sweep_run_name(config), tags)
        os.environ[ENV_RUN_ID] = self.run_id
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        marker = self.sweep_dir / MARKER
        tmp = marker.with_name(f".{MARKER}.tmp")
        tmp.write_text(json.dumps({"run_id": self.run_id, "experiment": experiment}) + "\n")
        tmp.replace(marker)
        atexit.register(self._abandon)
        log.info("sweep parent run %s in MLflow experiment %s", self.run_id, experiment)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        assert self.sweep_dir is not None
        try:
            result = tracking.finish_sweep(
                self.run_id,
                str(config.optimize_metric),
                [self.sweep_dir / RESULTS],
                n_launched=launched(self.sweep_dir),
            )
        except NewsclfError as exc:
            print(f"newsclf-train: error: {exc}", file=sys.stderr)
            sys.exit(2)
        finally:
            self.run_id = None
            os.environ.pop(ENV_RUN_ID, None)
        summary(result, str(config.optimize_metric), self.options)

    def _abandon(self) -> None:
        """At exit without ``on_multirun_end`` (a failed trial ended the sweep): the parent
        still gets the best finished trial, and is marked FAILED."""
        if self.run_id is None:
            return
        run_id, self.run_id = self.run_id, None
        try:
            assert self.sweep_dir is not None
            n_launched = launched(self.sweep_dir)
            result = tracking.finish_sweep(
                run_id, self.metric, [], failed=True, n_launched=n_launched,
                kill_running=self.local,
            )  # fmt: skip
            summary(result, self.metric, self.options)  # though a failed trial ended it
        except Exception as exc:  # at exit, with the server perhaps gone: log, never raise
            log.warning("sweep run %s not closed: %s", run_id, exc)
            tracking.abandon_sweep(run_id)


def sweep_run_name(config: DictConfig) -> str:
    """The parent run's name: ``sweep-<run_name>`` when the user named the runs, else
    ``sweep-<task>-<the swept keys>``. The default ``run_name`` interpolates the model's name,
    which at this point is the first trial's, not the sweep's."""
    overrides = task_overrides(config.hydra)
    if any(o.split("=", 1)[0].lstrip("+~") == "run_name" for o in overrides):
        return f"sweep-{config.run_name}"
    parsed = OverridesParser.create().parse_overrides(overrides)
    swept = [o.key_or_group for o in parsed if o.is_sweep_override()]
    swept += [k for k in config.hydra.sweeper.get("params") or {} if k not in swept]
    return "-".join([f"sweep-{config.task.name}", *swept])[:250]  # MLflow's limit is 250


def task_overrides(hydra_cfg: DictConfig) -> list[str]:
    """The command line's overrides as typed: ``x=${nope}`` stays a string (iterating the
    config would resolve it, and fail in the sweep's set-up rather than in its trials)."""
    return [str(o) for o in OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False)]


def launched(sweep_dir: Path) -> int:
    """Trials the launcher started, failed ones included: Hydra gives each job its folder
    ``<sweep dir>/<job number>`` (cluster jobs write theirs to the shared sweep folder)."""
    return sum(p.name.isdigit() and p.is_dir() for p in sweep_dir.iterdir())


def summary(result: dict, metric: str, options: Sequence[str] = ()) -> None:
    out = console(soft_wrap=True)
    failed = result["n_trials"] - result["n_finished"]
    out.print(
        f"[bold]newsclf-train sweep[/]: {result['n_trials']} trials, {result['n_finished']} "
        f"finished{f', {failed} failed' if failed else ''}; parent run {result['run_id']}"
    )
    if result.get("best_run_id"):
        out.print(
            f"  best {metric} {result['best_value']:.4f}: run {result['best_run_name']} "
            f"({result['best_run_id']}) with {result['best_overrides'] or 'the defaults'}"
        )
        if result.get("best_registered") and result.get("best_version"):
            state = "champion" if result.get("best_promoted") else "not promoted"
            out.print(
                f"  registered by its trial: {result['best_registered']} version "
                f"{result['best_version']} ({state})"
            )
        else:
            command = register_command(result["best_overrides"], options)
            out.print(f"  register it with a plain run: {command}")


def register_command(overrides: str, options: Sequence[str] = ()) -> str:
    """The command that trains and registers a trial: the sweep's ``options``, the trial's
    overrides with ``register=true`` (sweep presets set ``register: false``), quoted for the
    shell."""
    kept = [o for o in overrides.split() if not o.lstrip("+~").startswith("register=")]
    return shlex.join(["newsclf-train", *options, *kept, "register=true"])


def config_options(hydra_cfg: DictConfig) -> list[str]:
    """The command-line options that chose the sweep's configs (``--config-dir``,
    ``--config-name``): without them its trials' overrides may name configs not found."""
    options = config_dir_options(hydra_cfg)
    if hydra_cfg.job.config_name not in (None, "train"):
        options += ["--config-name", str(hydra_cfg.job.config_name)]
    return options


def check_launcher(cfg: DictConfig) -> None:
    """One line, before any trial, for the SLURM launcher off a SLURM cluster (submitit's
    own error is a traceback)."""
    target = str(cfg.hydra.launcher.get("_target_", ""))
    if target.endswith("SlurmLauncher") and shutil.which("srun") is None:
        raise NewsclfError(
            "hydra/launcher=slurm: no SLURM here (srun is not on the PATH); run the sweep from "
            "a SLURM login node, or on this machine with hydra/launcher=parallel or "
            "hydra/launcher=submitit_local"
        )


def check_optimize_metric(cfg: DictConfig) -> None:
    """One line, before any trial, for an ``optimize_metric`` newsclf-train does not return:
    a typo would fail every trial of a sweep, after all of them had trained."""
    metric = str(cfg.get("optimize_metric"))
    if metric == "evaluation_macro_f1":
        if not cfg.get("evaluation"):
            raise NewsclfError(
                "optimize_metric: evaluation_macro_f1 needs evaluation sets "
                "(evaluation=real_dev, evaluation=own, ...)"
            )
        return
    labels = list(cfg.task.labels)
    names = ["macro_f1", "accuracy"]
    names += [f"{kind}_{label}" for kind in ("precision", "recall", "f1") for label in labels]
    if metric not in {f"{split}_{name}" for split in ("validation", "test") for name in names}:
        raise NewsclfError(
            f"optimize_metric: {metric!r} is not a metric newsclf-train returns "
            "(validation_macro_f1, validation_accuracy, validation_recall_<label>, ..., "
            "or evaluation_macro_f1 with evaluation sets)"
        )


def in_multirun() -> bool:
    """Whether this Hydra job is a trial of a ``--multirun``."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def trial(fn: Callable[[DictConfig], float], cfg: DictConfig) -> float:
    """Run one trial. A user error fails this trial only, after one line naming it: Hydra
    records the failed job, the other trials go on, and the sweeper decides (Optuna tolerates
    ``max_failure_rate``; the basic sweeper fails the sweep once its batch is done)."""
    redact_output()  # a trial may run in a fresh worker process (joblib, submitit)
    interrupt_once()
    redact_hydra_record()  # as user_errors does for a plain run
    try:
        return fn(cfg)
    except Exception as exc:
        problem = user_problem(exc, cfg)
        if problem is None:
            raise
        message = f"newsclf-train: error: {problem}"
        print(message, file=sys.stderr)  # now, not only once the sweeper looks at the batch
        raise TrialFailed(message) from None


def parent_run_id() -> str | None:
    """In a trial of a ``--multirun``, the sweep's parent run id; otherwise None."""
    if not in_multirun():
        return None
    hydra_cfg = HydraConfig.get()
    if os.environ.get(ENV_RUN_ID):
        return os.environ[ENV_RUN_ID]
    marker = Path(str(hydra_cfg.sweep.dir)) / MARKER
    if marker.exists():
        return json.loads(marker.read_text())["run_id"]
    return None


def trial_info() -> tuple[int, str]:
    """(job number, the trial's overrides as one string) of the current Hydra job."""
    hydra_cfg = HydraConfig.get()
    return int(hydra_cfg.job.num), " ".join(task_overrides(hydra_cfg))
