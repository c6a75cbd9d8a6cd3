"""The one exception type users see: a one-line message naming the file, record and problem."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable


class NewsclfError(Exception):
    """A user-facing error: bad input or configuration. The CLIs print it as one line."""


def all_rejected(n: int) -> str:
    """'all 3 inputs were rejected' ('its one input was rejected'): an input is a record, or
    a file that could not be read at all."""
    return "its one input was rejected" if n == 1 else f"all {n} inputs were rejected"


def first_line(exc: BaseException) -> str:
    """The first line of an error, or its type's name when it has no message; of a Java error
    raised through py4j, the Java exception's line, not py4j's call site."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString() if java is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def no_such_parameter(target: Callable[..., object], name: str) -> str:
    """What to say of a configured parameter ``name`` that ``target`` does not take: the
    parameters it does take, and the nearest one to a misspelt name."""
    known = [p for p in inspect.signature(target).parameters if p not in ("self", "args", "kwargs")]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{target.__qualname__} has no parameter {name!r} ({hint}it takes {', '.join(known)})"


def instantiation_problem(exc: BaseException) -> str:
    """One line for an error Hydra raised building a configured object: a parameter the target
    does not take named by its config key (see :func:`unknown_parameter`), else Hydra's "Error
    in call to target 'X'" line with the first line of the error it stands for."""
    unknown = unknown_parameter(exc)
    if unknown is not None:
        return unknown
    head = re.sub(r",? set env var HYDRA_FULL_ERROR=1.*", "", first_line(exc)).rstrip(":.")
    cause = exc.__cause__
    if cause is None:
        return head
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    # "Error loading 'x.Y':" announces the import error on its next line: give that
    detail = lines[1] if len(lines) > 1 and lines[0].endswith(":") else first_line(cause)
    return f"{head}: {detail}"


def unknown_parameter(exc: BaseException) -> str | None:
    """``model.pipeline.classifier.Cc: LogisticRegression has no parameter 'Cc' (did you mean
    C? ...)`` for Hydra's error on a configured key its target does not take, else None."""
    text, cause = str(exc), exc.__cause__
    unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    target = re.search(r"target '([\w.]+)'", text)
    if not (isinstance(cause, TypeError) and unknown and target):
        return None
    from hydra.utils import get_object  # only on this error path: start-up stays light

    node = re.search(r"^full_key: (\S+)$", text, re.MULTILINE)
    key = f"{node.group(1)}.{unknown.group(1)}" if node else unknown.group(1)
    try:
        return f"{key}: {no_such_parameter(get_object(target.group(1)), unknown.group(1))}"
    except (ImportError, ValueError, TypeError):  # not importable, or no signature to read
        return None
