"""The console scripts' entry points.

Each imports its command only when run, so that Ctrl-C while the command's libraries are still
being imported (Hydra, scikit-learn: up to a second or two) is the same one line as Ctrl-C
during the work, not a traceback through the imports.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn


def interrupted(prog: str, exc: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C: one line. A batch job says how far it got (``KeyboardInterrupt(message)``)."""
    print(f"{prog}: {interrupt_message(exc)}", file=sys.stderr)
    # Ctrl-C can land inside a constructor (a ZipFile with its file open but not yet its
    # state): its __del__ then fails at exit, and Python prints "Exception ignored" and a
    # traceback after the one line. After an interrupt such teardown errors are only noise,
    # as is py4j's logging at exit (calling a Spark JVM that the same Ctrl-C stopped; it logs
    # on the root logger too). Other warnings at exit (a sweep run not closed) still show.
    sys.unraisablehook = _quiet
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    logging.getLogger().addFilter(not_from_py4j)
    sys.exit(130)


def not_from_py4j(record: logging.LogRecord) -> bool:
    """A log filter: py4j logs some of its errors on the root logger."""
    return "py4j" not in Path(record.pathname).parts


def _quiet(_unraisable: object) -> None:
    """An unraisable-exception hook that reports nothing."""


def interrupt_message(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else "interrupted; rerun the same command"


def _launcher(prog: str, module: str) -> Callable[[], Any]:
    def main() -> Any:
        try:
            command = importlib.import_module(module).main
        except KeyboardInterrupt as exc:
            interrupted(prog, exc)
        return command()

    main.__doc__ = f"The ``{prog}`` console script ({module}.main)."
    return main


dataset = _launcher("newsclf-dataset", "newsclf.cli.dataset")
train = _launcher("newsclf-train", "newsclf.cli.train")
predict = _launcher("newsclf-predict", "newsclf.cli.predict")
annotate = _launcher("newsclf-annotate", "newsclf.cli.annotate")
evaluate = _launcher("newsclf-evaluate", "newsclf.cli.evaluate")
