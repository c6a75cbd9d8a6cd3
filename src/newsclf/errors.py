"""The one exception type users see: a one-line message naming the file, record and problem."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable


class NewsclfError(Exception):
    """A user-facing error: bad input or configuration. The CLIs print it as one line."""


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
