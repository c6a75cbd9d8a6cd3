"""The model artifact: a fitted pipeline saved with skops (never pickle) and loaded only with
trusted types, the classifier it makes, the text preparation it carries (``preparation.json``),
its MLflow model (logged with newsclf's own model code, ``pyfunc_model.py``; loaded by URI
without running code from the model, pickle-format models refused unless trusted) and the
verified copy the Spark engine hands to its executors."""

from __future__ import annotations

import atexit
import hashlib
import inspect
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline

from newsclf import vectorize
from newsclf.articles import Article
from newsclf.cleaning import DEFAULT_BOILERPLATE, Cleaner, Removal
from newsclf.errors import NewsclfError, first_line

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

log = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 100_000  # a model's body cap when its run set none
# A logged newsclf model's files inside its MLflow model folder.
SKOPS_FILE = "artifacts/model.skops"  # the fitted pipeline
PREPARATION_FILE = "artifacts/preparation.json"  # how it prepares raw articles
# hashes of the texts it learned from, to tell when it is scored on its own training articles
TRAINING_TEXTS_FILE = "artifacts/training_texts.npy"
HASHED_CHARS = 4_000  # of each text, spacing and case ignored: a body cut later still matches
NO_LABEL = ""  # a logged model's label for an article with nothing left to classify
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")  # the code MLflow runs to load it
# The keys ``mlflow.pyfunc.load_model(..., model_config=...)`` may set (pyfunc_model.py): MLflow
# passes a loader's model_config on only for keys the model was logged with.
MODEL_CONFIG = {"trusted_types": [], "prepared_input": False}

# Types a newsclf model may contain beyond skops' defaults. Loading refuses anything else, so a
# tampered model file cannot smuggle in a callable; users extend the list knowingly.
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "newsclf.models.RuleCues",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.CountVectorizer",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.naive_bayes.ComplementNB",
    "sklearn.naive_bayes.MultinomialNB",
    "sklearn.utils._bunch.Bunch",
)


def save_pipeline(pipeline: object, path: str | Path) -> Path:
    """Serialise a fitted pipeline with skops (never pickle)."""
    path = Path(path)
    sio.dump(pipeline, path)
    return path


def load_pipeline(path: str | Path, trusted_types: Sequence[str] = ()) -> object:
    """Load a skops file, refusing types outside ``TRUSTED_TYPES`` + ``trusted_types``."""
    path = Path(path)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises zipfile / key errors for foreign files
        raise NewsclfError(f"{path}: not a skops model file ({exc})") from None
    allowed = set(TRUSTED_TYPES) | set(trusted_types)
    refused = sorted(t for t in untrusted if t not in allowed)
    if refused:
        raise NewsclfError(
            f"{path}: refusing to load untrusted types {', '.join(refused)}; if you trust this "
            "model, add them to trusted_types"
        )
    return sio.load(path, trusted=untrusted)


class Classifier:
    """A fitted text pipeline plus its label names: texts in, label and probability out."""

    def __init__(self, pipeline: object, labels: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.labels = list(labels)

    def predict(self, texts: Sequence[str], per_label: bool = False) -> pd.DataFrame:
        """One row per text: ``label`` (a name) and ``probability`` (of that label); with
        ``per_label``, also ``probability_<label>`` for every label of the task."""
        return self.predict_with_features(texts, per_label)[0]

    def predict_with_features(
        self, texts: Sequence[str], per_label: bool = False
    ) -> tuple[pd.DataFrame, object | None]:
        """Predictions and, for a ``Pipeline``, the feature matrix its last step saw (for the
        batch report's drift statistics; the same numbers as ``pipeline.predict_proba``)."""
        texts = list(texts)
        columns = probability_columns(self.labels) if per_label else []
        if not texts:
            empty = {"label": pd.Series(dtype=object), "probability": pd.Series(dtype=float)}
            return pd.DataFrame({**empty, **{c: pd.Series(dtype=float) for c in columns}}), None
        scores, names, features = self.scores(texts)
        best = scores.argmax(axis=1)
        frame = pd.DataFrame(
            {
                "label": [names[i] for i in best],
                "probability": scores[np.arange(len(texts)), best].astype(float),
            }
        )
        if per_label:  # in the task's label order; a label never seen in training scores 0
            position = {name: i for i, name in enumerate(names)}
            for label, column in zip(self.labels, columns, strict=True):
                i = position.get(label)
                frame[column] = scores[:, i].astype(float) if i is not None else 0.0
        return frame, features

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str], object | None]:
        """Every class's probability per text (rows: texts, columns: ``names``), the class names
        the pipeline was trained on, and the feature matrix its last step saw (or None)."""
        texts = list(texts)
        features, final = texts, self.pipeline
        if isinstance(self.pipeline, Pipeline) and len(self.pipeline) > 1:
            features, final = _transform(self.pipeline[:-1], texts), self.pipeline[-1]
        names = [str(c) for c in final.classes_]  # trained on label names
        return _scores(final, features), names, (features if features is not texts else None)

    @property
    def vectorizer(self) -> object | None:
        """The pipeline's first step when it keeps a word vocabulary (for the OOV share)."""
        if isinstance(self.pipeline, Pipeline) and len(self.pipeline) > 1:
            first = self.pipeline[0]
            if hasattr(first, "vocabulary_") and hasattr(first, "build_tokenizer"):
                return first
        return None

    @property
    def weighting(self) -> object | None:
        """The fitted idf weights (a ``TfidfVectorizer`` or ``TfidfTransformer``, after hashing
        too) among the features the classifier sees, for the drift signal: the step feeding it
        or, when that step is a ``FeatureUnion`` (words beside rule cues), its first part
        holding them; their columns start at ``weighting_start``."""
        found = self._idf_columns
        return found[0] if found else None

    @property
    def weighting_start(self) -> int:
        found = self._idf_columns
        return found[1] if found else 0

    @cached_property
    def _idf_columns(self) -> tuple[object, int] | None:
        if isinstance(self.pipeline, Pipeline) and len(self.pipeline) > 1:
            return _idf_step(self.pipeline[-2])
        return None


def _idf_step(step: object) -> tuple[object, int] | None:
    """(the fitted idf step, the first of its columns in ``step``'s output) of a transformer
    that holds one: itself, a ``Pipeline`` ending in it, or a part of a ``FeatureUnion``."""
    from sklearn.pipeline import FeatureUnion

    if getattr(step, "idf_", None) is not None:
        return step, 0
    if isinstance(step, Pipeline):
        return _idf_step(step[-1])
    if isinstance(step, FeatureUnion):
        start = 0
        for _, part in step.transformer_list:
            if part == "drop":
                continue
            if isinstance(part, str):  # "passthrough": its width is the input's
                return None
            found = _idf_step(part)
            if found:
                return found[0], start + found[1]
            start += part.transform([""]).shape[1]  # the part's width, e.g. rule cues
    return None


def _transform(steps: Pipeline, texts: list[str]) -> object:
    """``steps.transform(texts)``, with hashing vectorizers done by ``newsclf.vectorize``
    (the same matrix, computed several times faster)."""
    return vectorize.transform_any(steps, texts)


def _scores(estimator: object, features: object) -> np.ndarray:
    if hasattr(estimator, "predict_proba"):
        try:
            return np.asarray(estimator.predict_proba(features))
        except AttributeError:  # e.g. SGDClassifier(loss="hinge") exposes it but fails
            pass
    # No probabilities (e.g. plain LinearSVC): a softmax of the decision scores.
    decision = np.asarray(estimator.decision_function(features))
    if decision.ndim == 1:
        decision = np.column_stack([-decision, decision])
    exp = np.exp(decision - decision.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def probability_columns(labels: Sequence[str]) -> list[str]:
    """The per-label probability columns of a logged model's output, in label order."""
    return [f"probability_{label}" for label in labels]


class PyfuncClassifier:
    """An MLflow pyfunc model (loaded only when the user allowed pickle-format models) with the
    ``Classifier`` interface: a ``label`` column (or plain labels) out, probability if given."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.labels: list[str] = []
        self.vectorizer = None

    def predict(self, texts: Sequence[str], per_label: bool = False) -> pd.DataFrame:
        return self.predict_with_features(texts)[0]

    def predict_with_features(
        self, texts: Sequence[str], per_label: bool = False
    ) -> tuple[pd.DataFrame, None]:
        out = self.model.predict(pd.DataFrame({"text": list(texts)}))
        frame = pd.DataFrame(index=range(len(texts)))
        if isinstance(out, pd.DataFrame) and "label" in out:
            frame["label"] = [str(x) for x in out["label"]]
            frame["probability"] = np.asarray(out.get("probability", np.nan), dtype=float)
        else:
            frame["label"] = [str(x) for x in np.asarray(out).ravel()]
            frame["probability"] = np.nan
        return frame, None


@dataclass(frozen=True)
class Preparation:
    """How raw articles become the text a model reads: cleaned with the settings its training
    data was cleaned with (``Cleaner`` keyword arguments, the boilerplate rules spelled out),
    the body cut at ``max_chars``, title and body joined as ``Article.text``.

    Logged with each model (``preparation.json``), so ``newsclf-predict``, the Spark engine
    and MLflow's own ways of running the model (``pyfunc.load_model``, ``models serve``,
    ``spark_udf``) all prepare an article alike, through :meth:`prepare`.
    """

    clean: Mapping[str, Any] = field(default_factory=dict)
    max_chars: int | None = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if self.max_chars is not None and self.max_chars < 1:
            raise NewsclfError(f"max_chars: must be at least 1 or null, got {self.max_chars}")
        settings = {k: v for k, v in dict(self.clean).items() if k != "_target_"}
        accepted = inspect.signature(Cleaner).parameters
        unknown = sorted(set(settings) - set(accepted))
        if unknown:
            raise NewsclfError(f"clean: unknown setting {unknown[0]!r}")
        # Every setting spelled out (defaults and rules too): a model keeps preparing as it was
        # trained even when newsclf's defaults change later.
        full = {k: p.default for k, p in accepted.items() if p.default is not p.empty}
        full.update(settings)
        if full.get("boilerplate") is None:
            full["boilerplate"] = dict(DEFAULT_BOILERPLATE)
        object.__setattr__(self, "clean", full)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preparation:
        return cls(dict(data.get("clean") or {}), data.get("max_chars", DEFAULT_MAX_CHARS))

    def to_dict(self) -> dict[str, Any]:
        return {"clean": dict(self.clean), "max_chars": self.max_chars}

    @property
    def key(self) -> str:
        """A canonical text of the settings (models with equal keys prepare alike)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @cached_property
    def cleaner(self) -> Cleaner:
        return Cleaner(**self.clean)

    def prepare(self, article: Article) -> PreparedArticle:
        """The article cleaned and cut as the model expects, with what was removed."""
        return prepare_article(article, self.cleaner, self.max_chars)

    def texts(self, titles: Sequence[object], bodies: Sequence[object]) -> list[str | None]:
        """Model texts of raw titles and bodies (missing ones empty); None where nothing of
        the body is left after cleaning (``newsclf-predict`` rejects those as empty_text) or a
        title or body is not text (a number, bytes, a list: rejected as wrong_type there)."""
        return [a.text if a else None for a in self.articles(titles, bodies)]

    def articles(self, titles: Sequence[object], bodies: Sequence[object]) -> list[Article | None]:
        """Raw titles and bodies (missing ones empty) prepared as articles; None where nothing
        of the body is left after cleaning, or a title or body is not text."""
        out: list[Article | None] = []
        for i, (title, body) in enumerate(zip(titles, bodies, strict=True)):
            title_text, body_text = _text_cell(title), _text_cell(body)
            if title_text is None or body_text is None:
                out.append(None)  # str() of it would be scored as if it were words
                continue
            prepared = self.prepare(Article(str(i), title_text, body_text)).article
            out.append(prepared if prepared.body.strip() else None)
        return out


def _text_cell(value: object) -> str | None:
    """A text cell as a string: a missing value (None, NaN, pd.NA of pandas' string dtype,
    NaT; pandas' and Spark's) is empty, not the text "<NA>"; any other value that is not a
    string is None."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return value if isinstance(value, str) else None


def predict_frame(
    classifier: Classifier, labels: Sequence[str], texts: Sequence[str | None]
) -> pd.DataFrame:
    """A logged model's output for prepared texts: ``label``, ``probability`` and
    ``probability_<label>`` per label. A missing text (None) gets the label ``""`` and NaN:
    not None, which ``spark_udf`` would turn into the string "nan"."""
    n = len(texts)
    label = np.full(n, NO_LABEL, dtype=object)
    scores = {c: np.full(n, np.nan) for c in ["probability", *probability_columns(labels)]}
    present = np.array([i for i, t in enumerate(texts) if t is not None], dtype=int)
    if len(present):
        predicted = classifier.predict([texts[i] for i in present], per_label=True)
        label[present] = predicted["label"].to_numpy(dtype=object)
        for column, values in scores.items():
            values[present] = predicted[column].to_numpy(dtype=float)
    return pd.DataFrame({"label": label, **scores})


@dataclass(frozen=True)
class LoadedModel:
    """A classifier with where it came from, for the predictions file, and how it prepares
    articles."""

    task: str
    classifier: Classifier
    uri: str
    name: str
    version: str
    local_path: str = ""  # the downloaded model folder
    preparation: Preparation = field(default_factory=Preparation)
    trusted_types: tuple[str, ...] = ()  # extra skops types the user trusted when loading it

    @cached_property
    def training_hashes(self) -> np.ndarray | None:
        """``text_hashes`` of its training texts, read when first asked for (prediction never
        needs them); None when the model did not log them (logged by an older newsclf, or
        pickle-format)."""
        return _training_hashes(Path(self.local_path)) if self.local_path else None


def text_hashes(texts: Iterable[str]) -> np.ndarray:
    """Sorted unique 64-bit hashes of ``texts`` (their first ``HASHED_CHARS`` characters,
    spacing and case ignored): what a model keeps of the texts it learned from."""
    return np.unique(_hash_each(texts))


def count_seen(hashes: np.ndarray, texts: Iterable[str]) -> int:
    """How many of ``texts`` have one of ``hashes`` (``text_hashes`` of a model's training
    texts): articles the model learned from."""
    return int(np.isin(_hash_each(texts), hashes).sum())


def _hash_each(texts: Iterable[str]) -> np.ndarray:
    return np.fromiter((_text_hash(t) for t in texts), dtype=np.uint64)


def _text_hash(text: str) -> int:
    key = " ".join(text.split()).casefold()[:HASHED_CHARS].encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _training_hashes(local: Path) -> np.ndarray | None:
    """The training-text hashes a model folder carries; None if it has none or they cannot be
    read (a damaged file only costs the overlap check, never the model)."""
    path = local / TRAINING_TEXTS_FILE
    if not path.is_file():
        return None
    try:
        hashes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("%s: not read (%s); no training-overlap check", path, first_line(exc))
        return None
    return hashes if hashes.dtype == np.uint64 and hashes.ndim == 1 else None


def prepare_article(article: Article, cleaner: Cleaner, max_chars: int | None) -> PreparedArticle:
    """Clean one article for prediction and cap its length (the same for every engine).

    A very long body is cut to ``2 * max_chars`` before cleaning (so cleaning time stays
    bounded) and to ``max_chars`` after; ``truncated_chars`` says how much was cut.
    """
    original, truncated = article, 0
    if max_chars and len(article.body) > 2 * max_chars:
        truncated = len(article.body) - 2 * max_chars
        article = replace(article, body=article.body[: 2 * max_chars])
    cleaned, removals = cleaner.clean(article)
    if max_chars and len(cleaned.body) > max_chars:
        truncated += len(cleaned.body) - max_chars
        cleaned = replace(cleaned, body=cleaned.body[:max_chars])
    if truncated:
        removals.append(Removal(article.id, "truncated", f"{truncated} chars beyond max_chars"))
    return PreparedArticle(cleaned, removals, truncated, original)


@dataclass(frozen=True)
class PreparedArticle:
    article: Article
    removals: list[Removal]
    truncated_chars: int
    original: Article | None = None  # the raw article (models with another preparation)


def training_preparation(
    manifest: Any, max_chars: int | None, dataset_dir: str | Path
) -> Preparation:
    """How a model trained on a dataset prepares raw articles: the cleaning the dataset was
    built with (from its ``newsclf.datasets.Manifest``), the body cut at ``max_chars``."""
    clean = manifest.clean
    if clean is None:
        log.warning(
            "%s: the manifest records no cleaning settings (built by an older newsclf); the "
            "model prepares articles with the default ones",
            dataset_dir,
        )
    return Preparation(clean or {}, max_chars)


def raw_example(rows: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Articles as the model takes them (title, body) from dataset rows (title + body)."""
    titles = list(rows["title"])
    bodies = [t.removeprefix(f"{title}\n\n") for title, t in zip(titles, rows["text"], strict=True)]
    return pd.DataFrame({"title": titles, "text": bodies})


# --------------------------------------------------------------------------- MLflow model
# MLflow is imported where it is used: preparing and scoring articles need none of it.


def _signature(labels: Sequence[str]) -> ModelSignature:
    """Raw articles in (``title`` optional), the label, its probability and each label's out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    scores = [ColSpec("double", c) for c in ["probability", *probability_columns(labels)]]
    return ModelSignature(
        inputs=Schema([ColSpec("string", "title", required=False), ColSpec("string", "text")]),
        outputs=Schema([ColSpec("string", "label"), *scores]),
    )


def _requirements() -> list[str]:
    from importlib.metadata import version

    pins = ["scikit-learn", "skops", "pandas", "numpy", "scipy", "mlflow"]
    return [f"{p}=={version(p)}" for p in pins]


_REQUIREMENT_CHECK = "warn_dependency_requirement_mismatches"


@contextmanager
def _no_requirement_check() -> Iterator[None]:
    """Skip MLflow's check of a model's pip requirements against the installed packages while
    logging one: newsclf pins exactly the installed versions (:func:`_requirements`), so the
    check cannot find a mismatch, and its scan of every installed package takes seconds."""
    import mlflow.pyfunc
    import mlflow.utils.environment

    modules = [
        m for m in (mlflow.utils.environment, mlflow.pyfunc) if hasattr(m, _REQUIREMENT_CHECK)
    ]
    saved = [getattr(m, _REQUIREMENT_CHECK) for m in modules]
    for module in modules:
        setattr(module, _REQUIREMENT_CHECK, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            setattr(module, _REQUIREMENT_CHECK, original)


def log_model(
    pipeline: Any,
    labels: Sequence[str],
    task: str,
    example: pd.DataFrame | Sequence[str],
    preparation: Preparation | None = None,
    training_hashes: Sequence[np.ndarray] | None = None,
) -> str:
    """Log a fitted pipeline as a newsclf pyfunc model (skops inside) with the text
    ``preparation`` its training data had (newsclf's defaults when None); ``example``: a few
    raw articles (``title``, ``text``) or texts; ``training_hashes``: ``text_hashes`` of the
    texts it learned from (one array per split), kept with it. Returns the model URI."""
    import mlflow

    preparation = preparation or Preparation()
    if not isinstance(example, pd.DataFrame):
        example = pd.DataFrame({"text": list(example)})
    with tempfile.TemporaryDirectory() as tmp:
        skops_path = save_pipeline(pipeline, Path(tmp) / Path(SKOPS_FILE).name)
        labels_path = Path(tmp) / "labels.json"
        labels_path.write_text(json.dumps(list(labels)), encoding="utf-8")
        preparation_path = Path(tmp) / Path(PREPARATION_FILE).name
        preparation_path.write_text(json.dumps(preparation.to_dict(), indent=2), encoding="utf-8")
        artifacts = {
            "pipeline": str(skops_path),
            "labels": str(labels_path),
            "preparation": str(preparation_path),
        }
        if training_hashes is not None:
            hashes_path = Path(tmp) / Path(TRAINING_TEXTS_FILE).name
            merged = np.unique(np.concatenate([np.zeros(0, np.uint64), *training_hashes]))
            np.save(hashes_path, merged, allow_pickle=False)
            artifacts["training_texts"] = str(hashes_path)
        with _no_requirement_check():
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE),
                artifacts=artifacts,
                signature=_signature(labels),
                input_example=example,
                pip_requirements=_requirements(),
                model_config=MODEL_CONFIG,
                metadata={"newsclf_task": task, "newsclf_labels": list(labels), "format": "skops"},
            )
    return info.model_uri


def load_model(
    uri: str,
    trusted_types: Sequence[str] = (),
    task: str | None = None,
    allow_pickle: bool = False,
    fetched: Mapping[str, str | None] | None = None,
) -> LoadedModel:
    """Load a newsclf model by URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...``
    or a local folder) without running code from the model: the skops file is loaded with
    newsclf's trusted-type check.

    Models stored as pickle or cloudpickle (e.g. ``mlflow.sklearn`` with
    ``serialization_format="pickle"``) can run any code when loaded; they are refused unless
    ``allow_pickle`` is set, and then need ``task`` since they carry no newsclf metadata.
    ``fetched``: the model's folder, already downloaded from MLflow (``tracking.fetch_model``).
    """
    if fetched is None:
        from newsclf import tracking

        # Into a folder of our own: MLflow would otherwise write registered_model_meta into the
        # model's own artifact folder of a local store (read-only, or someone else's)
        into = tempfile.mkdtemp(prefix="newsclf-model-")
        atexit.register(shutil.rmtree, into, ignore_errors=True)
        fetched = tracking.fetch_model(uri, into)
    local = Path(str(fetched["local_path"]))
    meta = _newsclf_metadata(local, uri, allow_pickle)
    if meta is None:  # a pickle-format model the user chose to trust
        if not task:
            raise NewsclfError(
                f"model {uri}: a pickle-format model needs its task named (configure it under "
                "its task's key, e.g. models.topic=<uri>)"
            )
        classifier = _load_pickled(local, uri)
        model_task = task
    else:
        if task and meta["newsclf_task"] != task:
            raise NewsclfError(f"model {uri}: is a {meta['newsclf_task']} model, not {task}")
        pipeline = load_pipeline(local / SKOPS_FILE, trusted_types)
        classifier = Classifier(pipeline, meta["newsclf_labels"])
        model_task = meta["newsclf_task"]
        try:  # trusted types can still make something that does not classify texts
            classifier.predict(["newsclf: a text to check that the model reads texts"])
        except Exception as exc:
            raise NewsclfError(
                f"model {uri}: model.skops holds a {type(pipeline).__name__} that does not "
                f"classify texts ({type(exc).__name__}: {first_line(exc)[:160]})"
            ) from None
    return LoadedModel(
        task=model_task,
        classifier=classifier,
        uri=uri,
        name=fetched["name"] or uri,
        version=fetched["version"] or "",
        local_path=str(local),
        preparation=_preparation(local, uri),
        trusted_types=tuple(trusted_types),
    )


def _preparation(local: Path, uri: str) -> Preparation:
    """The text preparation logged with a model; newsclf's defaults for models logged before
    models carried one (and for pickle-format models)."""
    path = local / PREPARATION_FILE
    if not path.exists():
        log.info("model %s: no %s, preparing articles with the defaults", uri, PREPARATION_FILE)
        return Preparation()
    try:
        return Preparation.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, AttributeError) as exc:
        raise NewsclfError(f"model {uri}: unreadable {PREPARATION_FILE} ({exc})") from None


def _pickle_format(spec: dict) -> str | None:
    """'pickle' / 'cloudpickle' when loading the model would unpickle a file, else None."""
    sklearn = spec.get("flavors", {}).get("sklearn")
    if sklearn and sklearn.get("serialization_format", "cloudpickle") != "skops":
        return sklearn.get("serialization_format", "cloudpickle")
    pyfunc = spec.get("flavors", {}).get("python_function", {})
    if pyfunc.get("python_model") or str(pyfunc.get("model_path", "")).endswith(".pkl"):
        return "cloudpickle"
    return None


def _load_pickled(local: Path, uri: str) -> Classifier:
    """Load a pickle-format model (the user opted in) as a classifier of texts."""
    import mlflow.pyfunc
    import mlflow.sklearn

    try:
        if "sklearn" in mlflow.models.Model.load(str(local)).flavors:
            pipeline = mlflow.sklearn.load_model(str(local))
            return Classifier(pipeline, [str(c) for c in getattr(pipeline, "classes_", [])])
        return PyfuncClassifier(mlflow.pyfunc.load_model(str(local)))
    except Exception as exc:  # anything can happen inside someone else's pickle
        raise NewsclfError(f"model {uri}: cannot load pickle-format model ({exc})") from None


def _newsclf_metadata(local: Path, uri: str, allow_pickle: bool = False) -> dict | None:
    """The newsclf metadata of a model folder; None for a pickle model the user trusts."""
    import yaml

    mlmodel = local / "MLmodel"
    if not mlmodel.exists():
        raise NewsclfError(f"model {uri}: not an MLflow model (no MLmodel file)")
    spec = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
    meta = spec.get("metadata") or {}
    flavors = ", ".join(spec.get("flavors", {})) or "none"
    if "newsclf_task" in meta and (local / SKOPS_FILE).exists():
        return meta
    pickled = _pickle_format(spec)
    if pickled and not allow_pickle:
        raise NewsclfError(
            f"model {uri}: stored as {pickled} (flavors: {flavors}); loading it would run code "
            "from the model file, so it is refused. Re-save it with skops, or set "
            "allow_pickle=true if you trust its origin"
        )
    if pickled:
        return None
    raise NewsclfError(f"model {uri}: not a newsclf model (flavors: {flavors})")


# --------------------------------------------------------------------------- Spark


def verified_model_copy(model: LoadedModel, folder: Path) -> str:
    """A copy of a loaded model folder whose code file is newsclf's own ``pyfunc_model.py``.

    ``spark_udf`` runs the model's code in every executor; a newsclf model's code is replaced by
    the installed one, so a tampered code file never runs. Pickle-format models (only loaded
    when ``allow_pickle`` is set) are handed over as they are.
    """
    source = Path(model.local_path)
    if not (source / SKOPS_FILE).exists():
        return str(source)
    target = folder / model.task
    shutil.copytree(source, target)
    for code in target.glob("*.py"):
        code.unlink()
    shutil.copy(MODEL_CODE, target / MODEL_CODE.name)
    _accept_model_config(target)
    return str(target)


def _accept_model_config(folder: Path) -> None:
    """Let the model in ``folder`` take newsclf's load-time ``model_config`` keys: a model
    logged before newsclf gave them would otherwise ignore Spark's ``prepared_input``."""
    from mlflow.models import Model

    model = Model.load(folder)
    flavor = model.flavors.get("python_function", {})
    flavor["model_config"] = {**MODEL_CONFIG, **(flavor.get("model_config") or {})}
    model.save(folder / "MLmodel")
