"""The one exception type users see: a one-line message naming the file, record and problem."""


class NewsclfError(Exception):
    """A user-facing error: bad input or configuration. The CLIs print it as one line."""


def where(path: object, record: object | None = None) -> str:
    """Format an input location as ``path`` or ``path:record`` for error messages."""
    return f"{path}" if record is None else f"{path}:{record}"
