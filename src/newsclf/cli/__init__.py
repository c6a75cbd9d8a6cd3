"""Thin Hydra entry points: compose the config, call the pipeline stages, print a summary."""

from __future__ import annotations

import atexit
import functools
import gc
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

# ${newsclf.seeds:} is the bundled corpus, wherever newsclf is installed.
OmegaConf.register_new_resolver("newsclf.seeds", lambda: str(SEEDS_DIR), replace=True)


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
