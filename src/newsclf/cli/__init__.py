"""Thin Hydra entry points: compose the config, call the pipeline stages, print a summary."""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from newsclf.errors import NewsclfError

# Our own progress and summaries replace the libraries' per-file progress bars.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# MLflow's INFO lines ("Validating input example...", "Created version '3'...") repeat what our
# summary says; set MLFLOW_LOGGING_LEVEL=INFO to see them again.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

# At exit, CPython's final garbage collection walks every object MLflow, datasets and
# scikit-learn created: 1.5 s of a 10 s newsclf-train. Frozen objects are skipped; the
# process ends right after, so nothing is lost.
atexit.register(gc.freeze)

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# ${newsclf.seeds:} is the bundled corpus, wherever newsclf is installed.
OmegaConf.register_new_resolver("newsclf.seeds", lambda: str(SEEDS_DIR), replace=True)


class _LazyModule:
    """Stands for a module and imports it when one of its attributes is first used. Not an
    entry of ``sys.modules``: libraries that scan every loaded module (skops, pickle) never
    trigger the import half way through their own."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_import(name: str) -> Any:
    """Module ``name``, imported when first used: ``--help`` and configuration errors then
    answer without importing MLflow, scikit-learn and friends (several seconds)."""
    return sys.modules.get(name) or _LazyModule(name)


def fast_help(prog: str, config_name: str) -> Callable:
    """Answer ``--help`` (``-h``) without Hydra's own help, which copies its whole config
    repository once per config group (seconds): the config groups and the composed config
    (overrides on the command line applied), in Hydra's layout. ``--hydra-help`` is Hydra's."""

    def decorate(hydra_main: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(hydra_main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            argv = sys.argv[1:]
            if args or kwargs or not {"--help", "-h"} & set(argv):
                return hydra_main(*args, **kwargs)
            from hydra import compose, initialize_config_dir

            overrides = [a for a in argv if a not in ("--help", "-h")]
            try:
                with initialize_config_dir(str(CONFIG_DIR), version_base="1.3", job_name=prog):
                    cfg = compose(config_name, overrides=overrides)
            except Exception:  # a bad override: Hydra's help says what is wrong with it
                return hydra_main(*args, **kwargs)
            groups = sorted(
                f"{d.name}: {', '.join(sorted(p.stem for p in d.glob('*.yaml')))}"
                for d in CONFIG_DIR.iterdir()
                if d.is_dir() and d.name != "hydra" and any(d.glob("*.yaml"))
            )
            print(
                f"{prog} is powered by Hydra.\n\n== Configuration groups ==\n"
                "Compose your configuration from those groups (group=option)\n\n"
                + "\n".join(groups)
                + "\n\n\n== Config ==\nOverride anything in the config (foo.bar=value)\n\n"
                + OmegaConf.to_yaml(cfg)
                + "\n\nPowered by Hydra (https://hydra.cc)\n"
                "Use --hydra-help to view Hydra specific help\n"
            )
            return None

        return wrapper

    return decorate


def user_errors(prog: str) -> Callable:
    """Turn a NewsclfError into one line on stderr and exit code 2 (no traceback)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except NewsclfError as exc:
                logging.getLogger(prog).debug("failed", exc_info=True)
                print(f"{prog}: error: {exc}", file=sys.stderr)
                sys.exit(2)

        return wrapper

    return decorate
