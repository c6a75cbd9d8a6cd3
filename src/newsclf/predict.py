"""Batch prediction: chunks of raw articles prepared and scored by every task's model, and
atomic writing of the predictions file."""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from newsclf.articles import Cleaner, Record, Reject, Removal
from newsclf.errors import NewsclfError
from newsclf.saved_model import (  # noqa: F401  # Classifier, load_pipeline: see below
    Classifier,
    LoadedModel,
    Preparation,
    PreparedArticle,
    load_pipeline,
    predict_frame,
    prepare_article,
)

# Models logged before newsclf.saved_model existed carry a pyfunc_model.py that imports
# Classifier, Preparation, load_pipeline and predict_frame from here; MLflow runs that copy
# when such a model is loaded with mlflow.pyfunc (newsclf's own loaders never run it).

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
INTEGER_COLUMNS = ("truncated_chars",)


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
