"""Batch prediction: a fitted pipeline as a classifier, safe skops loading, streaming over
articles chunk by chunk, and atomic writing of the predictions file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import skops.io as sio

from newsclf.articles import Article, Reject, Removal
from newsclf.errors import NewsclfError

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")

# Types a newsclf model may contain beyond skops' defaults. Loading refuses anything else, so a
# tampered model file cannot smuggle in a callable; users extend the list knowingly.
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
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
            "model, add them to predict.trusted_types"
        )
    return sio.load(path, trusted=untrusted)


class Classifier:
    """A fitted text pipeline plus its label names: texts in, label and probability out."""

    def __init__(self, pipeline: object, labels: Sequence[str]) -> None:
        self.pipeline = pipeline
        self.labels = list(labels)

    def predict(self, texts: Sequence[str]) -> pd.DataFrame:
        """One row per text: ``label`` (a name) and ``probability`` (of that label)."""
        texts = list(texts)
        if not texts:
            return pd.DataFrame({"label": pd.Series(dtype=str), "probability": []})
        scores = self._scores(texts)
        best = scores.argmax(axis=1)
        names = [str(c) for c in self.pipeline.classes_]  # trained on label names
        return pd.DataFrame(
            {
                "label": [names[i] for i in best],
                "probability": scores[np.arange(len(texts)), best].astype(float),
            }
        )

    def _scores(self, texts: list[str]) -> np.ndarray:
        if hasattr(self.pipeline, "predict_proba"):
            try:
                return np.asarray(self.pipeline.predict_proba(texts))
            except AttributeError:  # e.g. SGDClassifier(loss="hinge") exposes it but fails
                pass
        # No probabilities (e.g. plain LinearSVC): a softmax of the decision scores.
        decision = np.asarray(self.pipeline.decision_function(texts))
        if decision.ndim == 1:
            decision = np.column_stack([-decision, decision])
        exp = np.exp(decision - decision.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LoadedModel:
    """A classifier with where it came from, for the predictions file."""

    task: str
    classifier: Classifier
    uri: str
    name: str
    version: str


def prediction_columns(tasks: Sequence[str]) -> list[str]:
    cols = ["id"]
    for task in tasks:
        cols += [f"{task}_label", f"{task}_probability", f"{task}_model", f"{task}_version"]
    return cols


def predict_chunks(
    articles: Iterable[Article], models: Sequence[LoadedModel], chunk_size: int = 2000
) -> Iterator[pd.DataFrame]:
    """Predict every task for chunks of articles; one row per article, in input order."""
    chunk: list[Article] = []
    for article in articles:
        chunk.append(article)
        if len(chunk) >= chunk_size:
            yield _predict_chunk(chunk, models)
            chunk = []
    if chunk:
        yield _predict_chunk(chunk, models)


def _predict_chunk(chunk: list[Article], models: Sequence[LoadedModel]) -> pd.DataFrame:
    texts = [a.text for a in chunk]
    frame = {"id": [a.id for a in chunk]}
    for model in models:
        out = model.classifier.predict(texts)
        frame[f"{model.task}_label"] = out["label"].tolist()
        frame[f"{model.task}_probability"] = out["probability"].tolist()
        frame[f"{model.task}_model"] = [model.name] * len(chunk)
        frame[f"{model.task}_version"] = [model.version] * len(chunk)
    return pd.DataFrame(frame)


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
        return pa.schema(
            pa.field(f.name, pa.float64() if f.name.endswith("_probability") else pa.string())
            for f in schema
        )

    def commit(self, metadata: Mapping[str, object]) -> Path:
        """Finish the file (an empty one if nothing was written) and move it into place."""
        try:
            if self.format == "parquet":
                meta = {b"newsclf": json.dumps({**metadata, "rows": self.rows}).encode()}
                if self._writer is None:
                    empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
                    self._writer = pq.ParquetWriter(self.tmp, empty.schema)
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


def write_rejects(path: Path, rejects: Sequence[Reject], removals: Sequence[Removal]) -> None:
    """Rejects and boilerplate removals beside the predictions, as CSV."""
    pd.DataFrame([asdict(r) for r in rejects], columns=list(Reject.__annotations__)).to_csv(
        path.with_name(path.name + ".rejects.csv"), index=False
    )
    if removals:
        pd.DataFrame([asdict(r) for r in removals]).to_csv(
            path.with_name(path.name + ".boilerplate.csv"), index=False
        )
