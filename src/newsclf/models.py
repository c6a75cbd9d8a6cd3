"""scikit-learn pipelines built from ``configs/model/*.yaml``: the train stage's estimators.

A model config's ``pipeline`` is instantiated by Hydra; :func:`text_pipeline` and
:func:`feature_union` make the YAML short. A config with an ``out_of_core`` key is trained by
:func:`fit_out_of_core`, which streams the training split in chunks through a stateless
vectorizer and the classifier's ``partial_fit``, so the corpus never has to fit in memory.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from hydra.utils import instantiate
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.base import clone as sklearn_clone
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils import compute_class_weight, get_tags

from newsclf.errors import NewsclfError, first_line, instantiation_problem, unknown_parameter

log = logging.getLogger(__name__)


def text_pipeline(
    vectorizer: BaseEstimator, classifier: BaseEstimator, weighting: BaseEstimator | None = None
) -> Pipeline:
    """``vectorizer`` (texts -> counts or features), optionally ``weighting`` (e.g. a
    ``TfidfTransformer`` after a ``HashingVectorizer``), then ``classifier``.

    Step names are ``vectorizer``, ``weighting`` and ``classifier``, so overrides read
    ``model.pipeline.vectorizer.ngram_range=[1,3]`` and parameters
    ``vectorizer__ngram_range``.
    """
    steps = [("vectorizer", _tuples(vectorizer))]
    if weighting is not None:
        steps.append(("weighting", weighting))
    steps.append(("classifier", classifier))
    return Pipeline(steps)


def feature_union(n_jobs: int | None = None, **transformers: BaseEstimator) -> FeatureUnion:
    """A ``FeatureUnion`` of named transformers (e.g. ``word`` and ``char`` n-grams), their
    outputs side by side. Keyword names become the parts' names."""
    if not transformers:
        raise NewsclfError("feature_union: needs at least one named transformer")
    return FeatureUnion([(name, _tuples(t)) for name, t in transformers.items()], n_jobs=n_jobs)


def _tuples(estimator: BaseEstimator) -> BaseEstimator:
    # YAML has no tuples, and scikit-learn validates ngram_range and friends as tuples.
    params = estimator.get_params(deep=True)
    fixed = {k: tuple(v) for k, v in params.items() if k.endswith("_range") and isinstance(v, list)}
    return estimator.set_params(**fixed) if fixed else estimator


def fit(pipeline: BaseEstimator, texts: Sequence[str], labels: Sequence[str]) -> BaseEstimator:
    """``pipeline.fit(texts, labels)``; a leading hashing vectorizer's features are computed
    by ``newsclf.vectorize`` (the same matrix, several times faster), the rest as usual."""
    from newsclf import vectorize

    if isinstance(pipeline, Pipeline) and len(pipeline) > 1 and vectorize.supports(pipeline[0]):
        texts = list(texts)
        features = vectorize.transform(pipeline[0].fit(texts), texts)  # fit: stateless checks
        pipeline[1:].fit(features, labels)  # the same step objects, fitted in place
        return pipeline
    return pipeline.fit(texts, labels)


def shares_features(pipeline: BaseEstimator) -> bool:
    """True when ``pipeline``'s first step learns nothing from the data (a hashing vectorizer,
    or a union of them): a text's features are then the same in every fit, so the fit on train,
    the evaluation and the refit on train + validation can share one vectorising pass."""
    if not isinstance(pipeline, Pipeline) or len(pipeline) < 2:
        return False
    front = pipeline[0]
    return not get_tags(front).requires_fit or _stateless_union(front)


def front_features(pipeline: Pipeline, texts: Sequence[str]) -> Any:
    """The features ``pipeline``'s first step gives ``texts`` (a pipeline
    :func:`shares_features` accepts): what :func:`fit_on_features` and ``pipeline[1:]`` take."""
    from newsclf import vectorize

    texts = list(texts)
    front = sklearn_clone(pipeline[0]).fit(texts)  # stateless: fit only checks parameters
    return vectorize.transform_any(front, texts)


def fit_on_features(
    pipeline: Pipeline, texts: Sequence[str], features: Any, labels: Sequence[str]
) -> Pipeline:
    """:func:`fit` given ``features = front_features(pipeline, texts)``: the same fitted steps
    (the first step learns nothing, the others see the same matrix), without vectorising."""
    pipeline[0].fit(list(texts))  # checks parameters, marks the step fitted
    pipeline[1:].fit(features, list(labels))  # the same step objects, fitted in place
    return pipeline


def build_model(cfg: DictConfig | Mapping[str, Any]) -> Pipeline:
    """Instantiate the pipeline described by a model config (its ``pipeline`` key)."""
    if isinstance(cfg, Mapping) and not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    if "pipeline" not in cfg:
        raise NewsclfError(f"model config has no 'pipeline' key (has {list(cfg)})")
    try:
        model = instantiate(cfg.pipeline, _convert_="all")
    except OmegaConfBaseException:
        raise  # a config error (x=${nope}): the CLI names its full key
    except Exception as exc:  # Hydra wraps import and argument errors in several types
        if isinstance(exc.__cause__, OmegaConfBaseException):
            raise exc.__cause__ from None
        problem = unknown_parameter(exc)
        if problem is None:
            problem = f"model.pipeline: cannot build the model ({instantiation_problem(exc)})"
        raise NewsclfError(problem) from None
    if not hasattr(model, "fit") or not hasattr(model, "predict"):
        raise NewsclfError(f"model.pipeline: {type(model).__name__} is not an estimator")
    check_parameters(model)
    if cfg.get("out_of_core"):
        out_of_core_settings(cfg.out_of_core)
        check_streamable(model)
    return model


def declared_floats(cfg: DictConfig) -> None:
    """Make whole numbers floats, in place, for the parameters scikit-learn declares real
    numbers only: ``C=10`` on the command line is then ``10.0``, as ``C: 10.0`` in the YAML
    is, so one setting is one value among MLflow's params whichever way it was written.
    Parameters that take an integer too (``max_df``: 1 is a count, 1.0 a share) and
    interpolations stay as they are."""
    from omegaconf import ListConfig

    nodes: list[Any] = [cfg]
    while nodes:
        node = nodes.pop()
        if isinstance(node, ListConfig):
            nodes.extend(v for v in node if isinstance(v, DictConfig | ListConfig))
            continue
        if not isinstance(node, DictConfig):
            continue
        constraints = _declared_constraints(node.get("_target_"))
        for key in list(node.keys()):
            if OmegaConf.is_interpolation(node, str(key)):
                continue
            value = node[key]
            if isinstance(value, DictConfig | ListConfig):
                nodes.append(value)
            elif type(value) is int and _reals_only(constraints.get(str(key))):
                node[key] = float(value)


def _declared_constraints(target: object) -> dict:
    """scikit-learn's declared parameter constraints of the class ``target`` names ({} for
    anything else)."""
    import importlib

    if not isinstance(target, str) or "." not in target:
        return {}
    module, name = target.rsplit(".", 1)
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return {}  # instantiate names the problem
    constraints = getattr(cls, "_parameter_constraints", None) if isinstance(cls, type) else None
    return constraints if isinstance(constraints, dict) else {}


def _reals_only(constraints: object) -> bool:
    """Whether a parameter's constraints admit real numbers and no integer kind."""
    from numbers import Integral, Real

    if not isinstance(constraints, list):
        return False
    kinds = [getattr(c, "type", c) for c in constraints]  # an Interval's number kind
    kinds = [k for k in kinds if isinstance(k, type)]
    if any(issubclass(k, Integral) for k in kinds):
        return False
    return any(issubclass(k, Real) for k in kinds)


def check_parameters(model: BaseEstimator) -> None:
    """Check the parameters of ``model`` and of every estimator in it as scikit-learn's
    ``fit`` would (``C=-1``, ``C=abc``, ``ngram_range=[2,1]``), before any fit starts: one
    line naming the step (``model.pipeline.<step>``) and the problem, instead of a traceback
    from a fit already running in a thread, inside an MLflow run."""
    from sklearn.utils._param_validation import InvalidParameterError

    for where, step in _steps(model):
        try:
            if hasattr(step, "_parameter_constraints"):  # scikit-learn's own check, done by fit
                step._validate_params()
            if hasattr(step, "_validate_ngram_range"):  # text vectorizers check it at fit
                step._validate_ngram_range()
        except (InvalidParameterError, ValueError, TypeError) as exc:
            raise NewsclfError(f"{where}: {first_line(exc)}") from None


def check_training_labels(model: BaseEstimator, labels: Sequence[str]) -> None:
    """Check that every step of ``model`` that cross-validates on its training data (a
    ``CalibratedClassifierCV``'s ``cv=3``) gets at least one article of each label per fold:
    one line naming the step, the label and what to change, instead of scikit-learn's
    traceback from inside the fit."""
    counts = Counter(labels)
    if not counts:
        return
    label, fewest = min(sorted(counts.items()), key=lambda item: item[1])
    for where, step in _steps(model):
        folds = getattr(step, "cv", None)
        cross_validates = "cv" in getattr(step, "_parameter_constraints", {})
        if cross_validates and folds is None and not type(step).__name__.startswith("Ridge"):
            folds = 5  # scikit-learn's default for cv=None (Ridge*CV's is leave-one-out)
        if isinstance(folds, int) and not isinstance(folds, bool) and fewest < folds:
            fix = f"set {where}.cv={fewest}, or" if fewest >= 2 else "choose another model or"
            raise NewsclfError(
                f"{where}: cv={folds} needs at least {folds} training articles of every label; "
                f"the train split has {fewest} of '{label}' ({fix} label more articles)"
            )


def _steps(model: BaseEstimator) -> list[tuple[str, BaseEstimator]]:
    """``model`` and every estimator in it, each with its config key (``model.pipeline.<step>``)."""
    return [("model.pipeline", model)] + [
        (f"model.pipeline.{key.replace('__', '.')}", value)
        for key, value in model.get_params(deep=True).items()
        if isinstance(value, BaseEstimator)
    ]


# --------------------------------------------------------------------------- rule cues

LABELING_DIR = Path(__file__).resolve().parent / "configs" / "labeling"


class RuleCues(TransformerMixin, BaseEstimator):
    """The votes of a task's labelling rules as features, beside the words.

    Words say what an article is about; the rules (``configs/labeling/<rules>.yaml``) say whom
    its verdicts are aimed at (condemnation near a mention of the Kremlin, blame near NATO),
    which is what the stance guideline asks and what transfers from the bundled corpus to real
    outlets. One column per rule and label it can vote for, plus one for "mentions a target";
    ``weight`` scales them against L2-normalised word features. ``rules`` is a rule-set name,
    a YAML path, or None; a name with no rule file (e.g. a task of your own) gives no columns.
    The rule set is read at ``fit`` and kept in the model, so a saved model needs no config.
    """

    def __init__(
        self, rules: str | None = None, labels: Sequence[str] = (), weight: float = 0.1
    ) -> None:
        self.rules = rules
        self.labels = labels
        self.weight = weight

    def fit(self, X: Sequence[str], y: Sequence[str] | None = None) -> RuleCues:
        self.rules_config_ = _rule_file(self.rules)
        self.labels_ = [str(label) for label in self.labels] or sorted({str(v) for v in y or []})
        ruleset = self._ruleset()
        self.n_features_out_ = 0 if ruleset is None else len(ruleset.rules) * len(self.labels_) + 1
        return self

    def transform(self, X: Sequence[str]) -> sp.csr_matrix:
        ruleset = self._ruleset()
        if ruleset is None:
            return sp.csr_matrix((len(X), 0))
        from newsclf.articles import Article

        articles = []
        for text in X:  # Article.text is title + blank line + body
            title, _, body = str(text).partition("\n\n")
            articles.append(Article(id="", title=title, body=body))
        mentions = ruleset.mentions_target(articles)  # searched once, for the rules and here
        votes = ruleset.apply(articles, mentions)
        n_labels = len(self.labels_)
        rows, cols = np.nonzero(votes >= 0)
        cols = cols * n_labels + votes[rows, cols]
        if mentions is not None:
            extra = np.nonzero(mentions)[0]
            rows = np.concatenate([rows, extra])
            cols = np.concatenate([cols, np.full(len(extra), self.n_features_out_ - 1)])
        data = np.full(len(rows), float(self.weight))
        return sp.csr_matrix((data, (rows, cols)), shape=(len(X), self.n_features_out_))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        ruleset = self._ruleset()
        if ruleset is None:
            return np.array([], dtype=object)
        names = [f"rule:{r.name}={label}" for r in ruleset.rules for label in self.labels_]
        return np.array([*names, "rule:mentions_target"], dtype=object)

    def _ruleset(self):  # compiled once per process, never saved (regexes)
        cached = self.__dict__.get("_compiled")
        if cached is None and getattr(self, "rules_config_", None) is not None:
            from newsclf.labelling.rules import TextRule, load_rules
            from newsclf.tasks import Task

            task = Task(name="cues", labels={label: "" for label in self.labels_})
            cached = load_rules(self.rules_config_, task, origin=f"RuleCues({self.rules})")
            if any(not isinstance(rule, TextRule) for rule in cached.rules):
                raise NewsclfError(
                    f"RuleCues({self.rules}): only text rules can be features (no source or "
                    "model rules)"
                )
            self.__dict__["_compiled"] = cached
        return cached

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        return state


def _rule_file(rules: str | None) -> dict | None:
    if not rules:
        return None
    path = Path(rules)
    if path.suffix not in (".yaml", ".yml"):
        path = LABELING_DIR / f"{rules}.yaml"
        if not path.exists():
            log.info("RuleCues: no labelling rules named %r, no cue features", rules)
            return None
    if not path.exists():
        raise NewsclfError(f"RuleCues: rule file {path} does not exist")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


# --------------------------------------------------------------------------- out of core


@dataclass(frozen=True)
class OutOfCore:
    """How :func:`fit_out_of_core` streams the training split (a model config's
    ``out_of_core`` key): rows per chunk, passes over the data, processes vectorising chunks
    (-1: all cores) and the seed of the chunk order."""

    chunk_size: int = 10_000
    epochs: int = 1
    n_jobs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.epochs < 1 or self.n_jobs == 0:
            raise NewsclfError(
                f"model.out_of_core: chunk_size={self.chunk_size} and epochs={self.epochs} "
                f"must be >= 1 and n_jobs={self.n_jobs} must not be 0"
            )


def out_of_core_settings(cfg: Mapping[str, Any] | None) -> OutOfCore:
    """Validated :class:`OutOfCore` settings from a config mapping."""
    values = dict(
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg or {}
    )
    unknown = sorted(set(values) - set(OutOfCore.__dataclass_fields__))
    if unknown:
        raise NewsclfError(
            f"model.out_of_core: unknown key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(OutOfCore.__dataclass_fields__)})"
        )
    return OutOfCore(**values)


def check_streamable(pipeline: Pipeline) -> None:
    """Raise unless every step before the classifier is stateless (needs no fit, like
    ``HashingVectorizer``) and the classifier has ``partial_fit``."""
    if not isinstance(pipeline, Pipeline):
        raise NewsclfError(f"model.out_of_core: needs a Pipeline, got {type(pipeline).__name__}")
    for name, step in pipeline.steps[:-1]:
        if get_tags(step).requires_fit and not _stateless_union(step):
            raise NewsclfError(
                f"model.out_of_core: step {name!r} ({type(step).__name__}) must see all the "
                "data before transforming; use a stateless vectorizer such as HashingVectorizer"
            )
    name, classifier = pipeline.steps[-1]
    if not hasattr(classifier, "partial_fit"):
        raise NewsclfError(
            f"model.out_of_core: classifier {type(classifier).__name__} has no partial_fit; "
            "use e.g. SGDClassifier, ComplementNB or MultinomialNB"
        )


def _stateless_union(step: BaseEstimator) -> bool:
    return isinstance(step, FeatureUnion) and all(
        t in ("drop", "passthrough") or not get_tags(t).requires_fit
        for _, t in step.transformer_list
    )


def fit_out_of_core(
    pipeline: Pipeline,
    rows: Any,
    label_names: Sequence[str],
    settings: OutOfCore | Mapping[str, Any] | None = None,
) -> Pipeline:
    """Fit ``pipeline`` on ``rows`` chunk by chunk, never holding more than a few chunks.

    ``rows`` is a table such as a Hugging Face ``Dataset``: ``len(rows)`` rows and
    ``rows[start:stop]`` giving a mapping with ``text`` (strings) and ``label`` (indices into
    ``label_names``, or label names) lists. Each epoch visits the chunks in a random order and
    shuffles rows within a chunk (stored datasets are sorted by id, which may group labels).
    ``class_weight="balanced"``, which ``partial_fit`` refuses, is computed from the label
    column up front. The classifier is trained on label names, like ``Pipeline.fit`` in
    newsclf-train.
    """
    settings = settings if isinstance(settings, OutOfCore) else out_of_core_settings(settings)
    check_streamable(pipeline)
    n_rows = len(rows)
    if n_rows == 0:
        raise NewsclfError("out-of-core training: the training split is empty")
    names = list(label_names)
    counts = Counter(_names(rows["label"], names))
    classes = np.array([n for n in names if n in counts])
    transform, classifier = Pipeline(pipeline.steps[:-1]), pipeline.steps[-1][1]
    transform.fit(rows[0:1]["text"])  # stateless: marks the steps fitted, learns nothing
    requested = getattr(classifier, "class_weight", None)
    if isinstance(requested, str) and requested == "balanced":
        y_all = np.repeat(classes, [counts[c] for c in classes])
        weights = compute_class_weight("balanced", classes=classes, y=y_all)
        classifier.set_params(class_weight=dict(zip(classes.tolist(), weights, strict=True)))
    rng = np.random.default_rng(settings.seed)
    starts = list(range(0, n_rows, settings.chunk_size))
    try:
        with Parallel(n_jobs=settings.n_jobs, return_as="generator") as parallel:
            for epoch in range(settings.epochs):
                order = rng.permutation(len(starts))
                chunks = _chunks(rows, [starts[i] for i in order], settings.chunk_size, names, rng)
                jobs = (delayed(_vectorize)(transform, texts, labels) for texts, labels in chunks)
                for done, (features, labels) in enumerate(parallel(jobs), start=1):
                    classifier.partial_fit(features, labels, classes=classes)
                    if done % 10 == 0 or done == len(starts):
                        log.info("epoch %d: %d/%d chunks", epoch + 1, done, len(starts))
    finally:
        if requested is not None:
            classifier.set_params(class_weight=requested)  # the model keeps its config
    return pipeline


def _names(labels: Any, names: list[str]) -> Iterator[str]:
    for label in labels:
        yield names[label] if isinstance(label, int | np.integer) else str(label)


def _chunks(
    rows: Any, starts: list[int], size: int, names: list[str], rng: np.random.Generator
) -> Iterator[tuple[list[str], list[str]]]:
    read = row_ranges(rows)
    for start in starts:
        chunk = read(start, start + size)
        order = rng.permutation(len(chunk["text"]))
        texts, labels = chunk["text"], list(_names(chunk["label"], names))
        yield [texts[i] for i in order], [labels[i] for i in order]


def _vectorize(transform: Pipeline, texts: list[str], labels: list[str]) -> tuple[Any, list[str]]:
    return transform.transform(texts), labels


def row_ranges(
    rows: Any, columns: Sequence[str] = ("text", "label")
) -> Callable[[int, int], Mapping[str, list]]:
    """A reader of ``rows[start:stop]`` (``columns``): from a Dataset's Arrow files when it can,
    with flat memory (:class:`ArrowFileRows`), else by slicing ``rows``."""
    return ArrowFileRows.of(rows, columns) or (lambda start, stop: rows[start:stop])


class ArrowFileRows:
    """Row ranges of a Hugging Face dataset read from its Arrow files, each file memory-mapped
    only while a range is read. Slicing the ``Dataset`` keeps every page it touched mapped, so
    the resident memory of a pass over a large split would grow to the split's size; here the
    pages are unmapped again after each read, and memory stays flat."""

    def __init__(self, files: Sequence[str], columns: Sequence[str] = ("text", "label")) -> None:
        self.columns = tuple(columns)
        self.batches: list[tuple[str, int, int, int]] = []  # file, batch number, first row, rows
        first = 0
        for file in files:
            with pa.memory_map(file) as source:  # reads batch headers only: zero-copy
                for number, batch in enumerate(pa.ipc.open_stream(source)):
                    self.batches.append((file, number, first, batch.num_rows))
                    first += batch.num_rows
        self.n_rows = first

    @classmethod
    def of(cls, rows: Any, columns: Sequence[str] = ("text", "label")) -> ArrowFileRows | None:
        """A reader of ``columns`` for a file-backed ``datasets.Dataset`` whose rows are
        exactly its files' rows (no indices mapping); None for anything else."""
        files = [f["filename"] for f in getattr(rows, "cache_files", None) or []]
        if not files or not set(columns) <= set(getattr(rows, "column_names", None) or []):
            return None
        try:
            reader = cls(files, columns)
        except (OSError, pa.ArrowInvalid):
            return None
        return reader if reader.n_rows == len(rows) else None

    def __call__(self, start: int, stop: int) -> dict[str, list]:
        out: dict[str, list] = {column: [] for column in self.columns}
        wanted = [b for b in self.batches if b[2] < stop and b[2] + b[3] > start]
        for file in dict.fromkeys(b[0] for b in wanted):
            spans = {number: (first, n) for f, number, first, n in wanted if f == file}
            with pa.memory_map(file) as source:
                for number, batch in enumerate(pa.ipc.open_stream(source)):
                    if number in spans:
                        first, n = spans[number]
                        low, high = max(start - first, 0), min(stop - first, n)
                        part = batch.slice(low, high - low)
                        for column in out:
                            out[column] += part.column(column).to_pylist()
                    if number >= max(spans):
                        break
        return out


# --------------------------------------------------------------------------- what a model keys on


def top_features(pipeline: Any, texts: Sequence[str], k: int = 20) -> list[dict] | None:
    """The ``k`` features with the largest weight for each class, as readable n-grams: rows of
    ``label``, ``rank``, ``feature``, ``weight``. None when the model's features or weights
    cannot be read (e.g. a character n-gram union, or a classifier without linear weights).

    A ``HashingVectorizer`` keeps no vocabulary, so its columns are mapped back through the
    n-grams of ``texts`` (the training texts): a column's name is the training n-gram hashed
    to it most often (two names joined by `` | `` when another is nearly as frequent).
    """
    if not isinstance(pipeline, Pipeline) or len(pipeline) < 2:
        return None
    weights, classes = _class_weights(pipeline[-1])
    if weights is None:
        return None
    best = [np.argsort(-row, kind="stable")[:k] for row in weights]
    wanted = {int(c) for columns in best for c in columns}  # only these need a name
    names = _feature_names(pipeline[0], texts, weights.shape[1], wanted)
    if names is None:
        return None
    rows = []
    for label, row, columns in zip(classes, weights, best, strict=True):
        for rank, column in enumerate(columns, start=1):
            name = names[column]
            if name:
                rows.append(
                    {
                        "label": str(label),
                        "rank": rank,
                        "feature": name,
                        "weight": float(row[column]),
                    }
                )
    return rows


def _class_weights(classifier: Any) -> tuple[np.ndarray | None, list]:
    """Per-class feature weights (classes x features), centred over the classes: linear
    ``coef_`` (averaged over a calibrated classifier's folds), or naive Bayes'
    ``feature_log_prob_``."""
    classes = list(getattr(classifier, "classes_", []))
    if hasattr(classifier, "calibrated_classifiers_"):
        inner = [getattr(c.estimator, "coef_", None) for c in classifier.calibrated_classifiers_]
        if any(c is None for c in inner):
            return None, classes
        coef = np.mean([np.asarray(c) for c in inner], axis=0)
    elif hasattr(classifier, "coef_"):
        coef = np.asarray(classifier.coef_)
    elif hasattr(classifier, "feature_log_prob_"):
        coef = np.asarray(classifier.feature_log_prob_)
    else:
        return None, classes
    if coef.shape[0] == 1 and len(classes) == 2:  # binary: one row, positive = classes[1]
        coef = np.vstack([-coef[0], coef[0]])
    if coef.shape[0] != len(classes):
        return None, classes
    # What a feature adds to one class over the others: the argmax (and softmax) are unchanged
    # by a per-feature constant, and naive Bayes' weights are all large for rare features.
    return coef - coef.mean(axis=0, keepdims=True), classes


_NAMING_CHUNK = 2_000  # texts per n-gram count when naming hashed columns


def _feature_names(
    vectorizer: Any, texts: Sequence[str], n_features: int, wanted: set[int] | None = None
) -> list[str] | None:
    """Readable names of the ``n_features`` columns (those of ``wanted`` only, if given; the
    others are named "")."""
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.feature_extraction.text import HashingVectorizer

    from newsclf import vectorize

    if isinstance(vectorizer, Pipeline):  # e.g. hashing then TF-IDF: the columns stay the same
        return _feature_names(vectorizer[0], texts, n_features, wanted)
    if isinstance(vectorizer, FeatureUnion):  # the parts' columns side by side
        names: list[str] = []
        for _, part in vectorizer.transformer_list:
            if part in ("drop", "passthrough"):
                return None
            width = part.transform(texts[:1]).shape[1] if texts else 0
            start = len(names)
            part_wanted = None if wanted is None else {c - start for c in wanted}
            part_names = _feature_names(part, texts, width, part_wanted)
            if part_names is None:
                return None
            names += part_names
        return names if len(names) == n_features else None
    if isinstance(vectorizer, HashingVectorizer):
        if vectorize.supports(vectorizer):  # the same n-grams and columns, array at a time
            # in chunks: all n-grams of 50,000 texts at once took gigabytes
            counts: Counter = Counter()
            column_of: dict[str, int] = {}
            any_found = False
            for start in range(0, len(texts), _NAMING_CHUNK):
                chunk = list(texts[start : start + _NAMING_CHUNK])
                found, found_counts, columns = vectorize.ngram_counts(vectorizer, chunk)
                any_found = any_found or bool(found)
                if wanted is not None:  # decode only the n-grams of the wanted columns
                    keep = np.flatnonzero(np.isin(columns, list(wanted)))
                    found = [found[i] for i in keep]
                    found_counts, columns = found_counts[keep], columns[keep]
                for raw, n, column in zip(
                    found, found_counts.tolist(), columns.tolist(), strict=True
                ):
                    term = raw.decode("utf-8")
                    counts[term] += n
                    column_of[term] = column
            if not any_found:
                return None
            terms = list(counts)
            columns = [column_of[t] for t in terms]
        else:
            analyse = vectorizer.build_analyzer()
            counts = Counter()
            for text in texts:
                counts.update(analyse(text))
            terms = list(counts)
            if not terms:
                return None
            hasher = FeatureHasher(
                n_features=vectorizer.n_features, input_type="string", alternate_sign=False
            )
            columns = hasher.transform([[t] for t in terms]).tocsr().indices
        by_column: dict[int, list[str]] = {}
        for term, column in zip(terms, columns, strict=True):
            by_column.setdefault(int(column), []).append(term)
        names = [""] * n_features
        for column, found in by_column.items():
            found.sort(key=lambda t: (-counts[t], t))
            name = found[0]
            if len(found) > 1 and counts[found[1]] * 2 >= counts[found[0]]:
                name = f"{found[0]} | {found[1]}"  # a collision of two common n-grams
            names[column] = name
        return names
    try:
        names = [str(n) for n in vectorizer.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        return None
    return names if len(names) == n_features else None
