"""The one exception type users see: a one-line message naming the file, record and problem."""


class NewsclfError(Exception):
    """A user-facing error: bad input or configuration. The CLIs print it as one line."""
