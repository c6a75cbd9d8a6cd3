"""Batch prediction: a fitted pipeline as a classifier, safe skops loading, the text
preparation a model carries, chunks of articles predicted, and atomic writing of the
predictions file."""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import skops.io as sio
from sklearn.pipeline import Pipeline

from newsclf import vectorize
from newsclf.articles import DEFAULT_BOILERPLATE, Article, Cleaner, Record, Reject, Removal
from newsclf.errors import NewsclfError

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
INTEGER_COLUMNS = ("truncated_chars",)
DEFAULT_MAX_CHARS = 100_000  # a model's body cap when its run set none
# A logged newsclf model's files inside its MLflow model folder.
SKOPS_FILE = "artifacts/model.skops"  # the fitted pipeline
PREPARATION_FILE = "artifacts/preparation.json"  # how it prepares raw articles
NO_LABEL = ""  # a logged model's label for an article with nothing left to classify

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
        """The step feeding the classifier when it holds training idf weights (a fitted
        ``TfidfVectorizer`` or ``TfidfTransformer``, after hashing too), for the drift signal."""
        if isinstance(self.pipeline, Pipeline) and len(self.pipeline) > 1:
            step = self.pipeline[-2]
            if getattr(step, "idf_", None) is not None:
                return step
        return None


def _transform(steps: Pipeline, texts: list[str]) -> object:
    """``steps.transform(texts)``, with a hashing vectorizer's part done by
    ``newsclf.vectorize`` (the same matrix, computed several times faster)."""
    first = steps[0]
    if not vectorize.supports(first):
        return steps.transform(texts)
    features = vectorize.transform(first, texts)
    for _, step in steps.steps[1:]:
        if step not in (None, "passthrough"):
            features = step.transform(features)
    return features


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
        the body is left after cleaning (``newsclf-predict`` rejects those as empty_text)."""
        out: list[str | None] = []
        for i, (title, body) in enumerate(zip(titles, bodies, strict=True)):
            article = Article(str(i), _text_or_empty(title), _text_or_empty(body))
            prepared = self.prepare(article).article
            out.append(prepared.text if prepared.body.strip() else None)
        return out


def _text_or_empty(value: object) -> str:
    """A text cell as a string: None and NaN (pandas' and Spark's missing values) are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


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


def prediction_columns(tasks: Sequence[str]) -> list[str]:
    cols = ["id"]
    for task in tasks:
        cols += [f"{task}_label", f"{task}_probability", f"{task}_model", f"{task}_version"]
    return cols


def output_format(path: Path, fmt: str = "auto") -> str:
    fmt = path.suffix.lstrip(".").lower() if fmt == "auto" else fmt
    if fmt not in OUTPUT_FORMATS:
        raise NewsclfError(
            f"{path}: unknown output format {fmt!r} (use .parquet, .csv or .jsonl, "
            "or set output.format)"
        )
    return fmt


class PredictionWriter:
    """Write prediction chunks to a temporary file and rename it into place on ``commit``.

    The final path therefore only ever holds a complete file. Parquet files carry the row count
    in their key-value metadata.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], fmt: str = "auto") -> None:
        self.path = Path(path)
        self.format = output_format(self.path, fmt)
        if not self.path.parent.is_dir():
            raise NewsclfError(f"{self.path.parent}: output folder does not exist")
        if not os.access(self.path.parent, os.W_OK):
            raise NewsclfError(f"{self.path.parent}: output folder is not writable")
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.columns = list(columns)
        self.rows = 0
        self._writer: object | None = None
        self._fh = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame[self.columns], preserve_index=False)
        table = table.cast(self._schema(table.schema))
        try:
            if self.format == "parquet":
                if self._writer is None:
                    self._writer = pq.ParquetWriter(self.tmp, table.schema)
                self._writer.write_table(table)
            elif self.format == "csv":
                if self._writer is None:
                    self._writer = pacsv.CSVWriter(self.tmp, table.schema)
                self._writer.write_table(table)
            else:
                if self._fh is None:
                    self._fh = self.tmp.open("w", encoding="utf-8")
                frame[self.columns].to_json(
                    self._fh, orient="records", lines=True, force_ascii=False
                )
        except OSError as exc:
            self.abort()
            raise NewsclfError(f"{self.path}: cannot write predictions ({exc.strerror})") from None
        self.rows += len(frame)

    def _schema(self, schema: pa.Schema) -> pa.Schema:
        # Fixed types, so an all-numeric id or version column stays a string in every chunk.
        def kind(name: str) -> pa.DataType:
            if name.endswith("_probability"):
                return pa.float64()
            return pa.int64() if name in INTEGER_COLUMNS else pa.string()

        return pa.schema(pa.field(f.name, kind(f.name)) for f in schema)

    def commit(self, metadata: Mapping[str, object]) -> Path:
        """Finish the file (an empty one if nothing was written) and move it into place."""
        try:
            if self.format == "parquet":
                meta = {b"newsclf": json.dumps({**metadata, "rows": self.rows}).encode()}
                if self._writer is None:
                    empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
                    self._writer = pq.ParquetWriter(self.tmp, self._schema(empty.schema))
                self._writer.add_key_value_metadata(meta)
                self._writer.close()
            elif self.format == "csv":
                if self._writer is None:
                    self.tmp.write_text(",".join(self.columns) + "\n", encoding="utf-8")
                else:
                    self._writer.close()
            else:
                if self._fh is None:
                    self.tmp.write_text("", encoding="utf-8")
                else:
                    self._fh.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise NewsclfError(f"{self.path}: cannot write predictions ({exc.strerror})") from None
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the final path is left untouched."""
        for closer in (self._writer, self._fh):
            try:
                if closer is not None:
                    closer.close()
            except Exception:
                pass
        self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- chunk processing


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


def prepare_records(
    records: Iterable[Record], cleaner: Cleaner, max_chars: int | None
) -> tuple[list[PreparedArticle], list[Reject], list[Removal]]:
    """Clean raw records for prediction (newsclf-predict and newsclf-evaluate alike): the
    prepared articles, the rejects (unreadable records, articles empty after cleaning) and the
    boilerplate removals, in input order."""
    kept: list[PreparedArticle] = []
    rejects: list[Reject] = []
    removals: list[Removal] = []
    for record in records:
        if isinstance(record, Reject):
            rejects.append(record)
            continue
        prepared = prepare_article(record, cleaner, max_chars)
        removals.extend(prepared.removals)
        if not prepared.article.body.strip():
            a = prepared.article
            rejects.append(Reject(a.id, a.source, "empty_text", "no body text after cleaning"))
            continue
        kept.append(prepared)
    return kept, rejects, removals


@dataclass
class ModelStats:
    """Per-model counts for the drift signal of the batch report, summed over chunks.

    ``term_docs[t]``: documents in which vocabulary term ``t`` occurs; ``oov_words`` /
    ``words``: words of sampled articles missing from the training vocabulary / all words.
    """

    n_docs: int = 0
    term_docs: np.ndarray | None = None
    oov_words: int = 0
    words: int = 0

    def add(self, other: ModelStats) -> None:
        self.n_docs += other.n_docs
        self.oov_words += other.oov_words
        self.words += other.words
        if other.term_docs is not None:
            if self.term_docs is None:
                self.term_docs = np.zeros_like(other.term_docs)
            self.term_docs += other.term_docs


@dataclass
class ChunkResult:
    """A chunk of input records, cleaned and predicted (before id de-duplication).

    ``frame`` has one row per non-empty article, in input order: id, ``_text_key`` (a 64-bit
    digest of the text), ``_source``, ``truncated_chars`` and every task's prediction columns.
    """

    n_records: int
    frame: pd.DataFrame
    rejects: list[Reject]
    removals: list[Removal]
    stats: dict[str, ModelStats]


def text_key(text: str) -> int:
    """A 64-bit digest of a text (for duplicate detection in bounded memory)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def process_chunk(
    records: Sequence[Record], models: Sequence[LoadedModel], oov_sample: int = 100
) -> ChunkResult:
    """Prepare and predict a chunk of raw records: what one worker does with one chunk.

    Each model reads the article as its own :class:`Preparation` makes it; the first model's
    decides what counts as empty (rejected), the removals reported and the duplicate key.
    Models whose preparation differs prepare the kept articles again with theirs.
    """
    primary = models[0].preparation if models else Preparation()
    kept, rejects, removals = prepare_records(records, primary.cleaner, primary.max_chars)
    texts = [p.article.text for p in kept]
    frame: dict[str, list] = {
        "id": [p.article.id for p in kept],
        "_text_key": [text_key(t) for t in texts],
        "_source": [p.article.source for p in kept],
        "truncated_chars": [p.truncated_chars for p in kept],
    }
    stats: dict[str, ModelStats] = {}
    for model in models:
        if model.preparation.key == primary.key:
            model_texts: list[str | None] = texts
            out, features = model.classifier.predict_with_features(texts)
        else:
            raw = [p.original for p in kept]
            model_texts = model.preparation.texts([a.title for a in raw], [a.body for a in raw])
            out, features = predict_frame(model.classifier, [], model_texts), None
        frame[f"{model.task}_label"] = out["label"].tolist()
        frame[f"{model.task}_probability"] = out["probability"].tolist()
        frame[f"{model.task}_model"] = [model.name] * len(kept)
        frame[f"{model.task}_version"] = [model.version] * len(kept)
        present = [t for t in model_texts if t is not None]
        stats[model.task] = _model_stats(model.classifier, present, features, oov_sample)
    result = pd.DataFrame(frame)
    result["_text_key"] = result["_text_key"].astype("uint64")
    return ChunkResult(len(records), result, rejects, removals, stats)


def _model_stats(classifier: object, texts: list[str], features: object, sample: int) -> ModelStats:
    stats = ModelStats(n_docs=len(texts))
    weighting = getattr(classifier, "weighting", None)
    if weighting is not None and features is not None and hasattr(features, "tocsr"):
        present = features.tocsr()
        if present.shape[1] == len(weighting.idf_):
            counts = np.bincount(present.indices, minlength=present.shape[1])
            stats.term_docs = counts.astype(np.int64)
    vectorizer = getattr(classifier, "vectorizer", None)
    if vectorizer is None or not texts:
        return stats
    if getattr(vectorizer, "analyzer", "word") != "word":
        return stats  # character n-grams: words are no measure of the vocabulary
    analyse = vectorizer.build_tokenizer()
    preprocess = vectorizer.build_preprocessor()
    stop = vectorizer.get_stop_words() or frozenset()
    vocabulary = vectorizer.vocabulary_
    for text in texts[:sample]:
        words = [w for w in analyse(preprocess(text)) if w not in stop]
        stats.words += len(words)
        stats.oov_words += sum(w not in vocabulary for w in words)
    return stats


def ordered_map(
    fn: Callable, items: Iterable, n_jobs: int, initializer: Callable, initargs: tuple
) -> Iterator:
    """``fn`` over ``items`` in ``n_jobs`` worker processes, results in input order, with at
    most two items per worker in flight (so memory stays bounded); in-process for one job."""
    if n_jobs == 1:
        initializer(*initargs)
        yield from map(fn, items)
        return
    # fork: workers start at once and share the loaded models copy-on-write; the parent's
    # threads (progress bar, MLflow) are never used in a worker.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    initargs = (initializer, *initargs)
    # Objects that exist before the fork go to gc's permanent generation: the workers' garbage
    # collector would otherwise write to every one of them and copy the parent's memory. They
    # return to the collector's care once the workers are gone.
    gc.freeze()
    try:
        with ProcessPoolExecutor(n_jobs, context, _start_worker, initargs) as pool:
            pending: deque = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n_jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        gc.unfreeze()


def _start_worker(initializer: Callable, *initargs: object) -> None:
    # Ctrl-C reaches the whole process group: the parent reports it, once; workers finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker must not outlive a killed parent: it would keep the job's lock file open.
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    initializer(*initargs)


def resolve_n_jobs(n_jobs: int) -> int:
    """``-1`` (or 0) means one worker per core."""
    return max(1, os.cpu_count() or 1) if n_jobs <= 0 else n_jobs


# Worker-process state, set once per worker by ``init_worker``.
_WORKER: dict = {}


def init_worker(models: Sequence[LoadedModel], oov_sample: int) -> None:
    _WORKER.update(models=models, oov_sample=oov_sample)


def worker_process_chunk(records: Sequence[Record]) -> ChunkResult:
    return process_chunk(records, _WORKER["models"], _WORKER["oov_sample"])
