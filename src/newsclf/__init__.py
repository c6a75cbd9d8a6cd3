"""newsclf: train text classifiers for news articles and run them over large collections."""

from newsclf.errors import NewsclfError

__all__ = ["NewsclfError", "__version__"]


def __getattr__(name: str) -> str:
    # importlib.metadata costs a tenth of a second of every console script's start (--help
    # included); the version is read only when asked for.
    if name != "__version__":
        raise AttributeError(f"module 'newsclf' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("newsclf")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"
