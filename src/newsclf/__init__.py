"""newsclf: train text classifiers for news articles and run them over large collections."""

from importlib.metadata import PackageNotFoundError, version

from newsclf.errors import NewsclfError

try:
    __version__ = version("newsclf")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["NewsclfError", "__version__"]
