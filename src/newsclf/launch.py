"""The console scripts' entry points.

Each imports its command only when run, so that Ctrl-C while the command's libraries are still
being imported (Hydra, scikit-learn: up to a second or two) is the same one line as Ctrl-C
during the work, not a traceback through the imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def _launcher(prog: str, module: str) -> Callable[[], Any]:
    def main() -> Any:
        try:
            command = importlib.import_module(module).main
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; rerun the same command", file=sys.stderr)
            sys.unraisablehook = lambda _unraisable: None  # half-built objects' teardown noise
            sys.exit(130)  # 128 + SIGINT, as an interrupted command exits
        return command()

    main.__doc__ = f"The ``{prog}`` console script ({module}.main)."
    return main


dataset = _launcher("newsclf-dataset", "newsclf.cli.dataset")
train = _launcher("newsclf-train", "newsclf.cli.train")
predict = _launcher("newsclf-predict", "newsclf.cli.predict")
annotate = _launcher("newsclf-annotate", "newsclf.cli.annotate")
evaluate = _launcher("newsclf-evaluate", "newsclf.cli.evaluate")
