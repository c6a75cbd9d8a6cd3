"""scikit-learn pipelines built from ``configs/model/*.yaml``: the train stage's estimators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from newsclf.errors import NewsclfError


def text_pipeline(vectorizer: BaseEstimator, classifier: BaseEstimator) -> Pipeline:
    """A two-step ``Pipeline``: ``vectorizer`` (text -> features) then ``classifier``."""
    return Pipeline([("vectorizer", _tuples(vectorizer)), ("classifier", classifier)])


def _tuples(estimator: BaseEstimator) -> BaseEstimator:
    # YAML has no tuples, and scikit-learn validates ngram_range and friends as tuples.
    params = estimator.get_params(deep=True)
    fixed = {k: tuple(v) for k, v in params.items() if k.endswith("_range") and isinstance(v, list)}
    return estimator.set_params(**fixed) if fixed else estimator


def build_model(cfg: DictConfig | Mapping[str, Any]) -> Pipeline:
    """Instantiate the pipeline described by a model config (its ``pipeline`` key)."""
    if isinstance(cfg, Mapping) and not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    if "pipeline" not in cfg:
        raise NewsclfError(f"model config has no 'pipeline' key (has {list(cfg)})")
    try:
        model = instantiate(cfg.pipeline, _convert_="all")
    except Exception as exc:  # Hydra wraps import and argument errors in several types
        raise NewsclfError(f"model.pipeline: cannot build the model ({exc})") from None
    if not hasattr(model, "fit") or not hasattr(model, "predict"):
        raise NewsclfError(f"model.pipeline: {type(model).__name__} is not an estimator")
    return model
