"""What kind of MLflow store a tracking or registry URI names.

Imports nothing heavy: ``newsclf-train`` asks before it imports MLflow (a remote store is
checked before the fits start; a local one after, beside them).
"""

from __future__ import annotations

DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")


def is_http(uri: str) -> bool:
    """A tracking server (``http(s)://host:port``)."""
    return uri.startswith(("http://", "https://"))


def is_database(uri: str) -> bool:
    """A database store MLflow opens with SQLAlchemy (``postgresql+psycopg2://...``)."""
    return uri.split("://", 1)[0].split("+", 1)[0] in DATABASE_SCHEMES


def is_remote(uri: str) -> bool:
    """A server or a database: a store that may not answer, so it is checked first."""
    return is_http(uri) or is_database(uri)
