"""Atomic writes: a file appears under its name only once it is complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary(target: Path) -> Path:
    """The hidden name this process writes ``target`` under until it is complete."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target`` to write: renamed to ``target`` when the block ends,
    removed when it raises (a rename on one file system is atomic). The caller opens it as any
    file, so the umask sets its mode (``tempfile`` would make it private)."""
    tmp = temporary(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
