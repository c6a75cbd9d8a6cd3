"""The one exception type users see: a one-line message naming the file, record and problem."""


class NewsclfError(Exception):
    """A user-facing error: bad input or configuration. The CLIs print it as one line."""


def first_line(exc: BaseException) -> str:
    """The first line of an error, or its type's name when it has no message; of a Java error
    raised through py4j, the Java exception's line, not py4j's call site."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString() if java is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
