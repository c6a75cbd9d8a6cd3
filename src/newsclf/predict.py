"""Scoring chunks: raw articles prepared as each task's model says, predicted, and turned into
the prediction columns (with the counts of the batch report's drift signal). The job around
it (workers, resume, the predictions file) is ``newsclf.batch``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from newsclf import vectorize
from newsclf.articles import Article, Record, Reject
from newsclf.cleaning import Cleaner, Removal
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


def prediction_columns(tasks: Sequence[str]) -> list[str]:
    cols = ["id"]
    for task in tasks:
        cols += [f"{task}_label", f"{task}_probability", f"{task}_model", f"{task}_version"]
    return cols


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


def in_input_order(
    n_records: int,
    kept_at: Iterable[int],
    rejects: Sequence[Reject],
    later: Iterable[tuple[int, Reject]],
) -> list[Reject]:
    """The rejects of ``n_records`` records in input order: ``rejects`` are the records not at
    the positions ``kept_at``, in input order (:func:`prepare_records`); ``later`` the rejects
    found among the kept ones afterwards (repeated ids or texts), with their positions."""
    kept = set(kept_at)
    at_reject = (i for i in range(n_records) if i not in kept)
    placed = [*zip(at_reject, rejects, strict=True), *later]
    return [r for _, r in sorted(placed, key=lambda item: item[0])]


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


@dataclass
class ChunkResult:
    """A chunk of input records, cleaned and predicted (before id de-duplication).

    ``frame`` has one row per non-empty article, in input order: id, ``_text_key`` (a 64-bit
    digest of the cleaned body: the duplicate key), ``_source``, ``_at`` (its position in the
    chunk), ``truncated_chars`` and every task's prediction columns. ``rejects`` are the other
    records, in input order.
    """

    n_records: int
    frame: pd.DataFrame
    rejects: list[Reject]
    removals: list[Removal]
    stats: dict[str, ModelStats]


# Joins an article's texts under several preparations; cleaning leaves no control characters.
DUPLICATE_SEPARATOR = "\x1f"


def text_key(text: str) -> int:
    """A 64-bit digest of a text (for duplicate detection in bounded memory)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def same_text(texts: Sequence[str | None]) -> str:
    """One article's texts (its bodies, the duplicate key) under the distinct preparations,
    joined: what a duplicate must repeat, so no model loses the prediction of a text it reads
    differently (newsclf-predict's local and Spark engines alike)."""
    return DUPLICATE_SEPARATOR.join(t or "" for t in texts)


def same_texts(*texts: Sequence[str | None]) -> Sequence[str]:
    """:func:`same_text` of each article, given each preparation's texts of all articles.
    One preparation's texts are returned as they are."""
    if len(texts) == 1:
        return texts[0]  # type: ignore[return-value]
    return [same_text(each) for each in zip(*texts, strict=True)]


def process_chunk(
    records: Sequence[Record], models: Sequence[LoadedModel], oov_sample: int = 100
) -> ChunkResult:
    """Prepare and predict a chunk of raw records: what one worker does with one chunk.

    Each model reads the article as its own :class:`Preparation` makes it; an article empty
    under any model's preparation is rejected (empty_text), whatever the order of the models.
    The first model's decides the removals reported. Models whose preparation differs prepare
    the kept articles again with theirs; the duplicate key is then of the body under each (the
    body, not title + body: a syndicated copy under another headline is a duplicate).
    """
    primary = models[0].preparation if models else Preparation()
    kept, rejects, removals = prepare_records(records, primary.cleaner, primary.max_chars)
    others: dict[str, list[Article | None]] = {}  # the articles of each other preparation
    for model in models:
        key = model.preparation.key
        if key != primary.key and key not in others:
            raw = [p.original for p in kept]
            others[key] = model.preparation.articles([a.title for a in raw], [a.body for a in raw])
    # Else an article one model cleans to nothing gets "" and NaN from it, and which articles
    # are rejected would depend on which model comes first.
    empty = {i for arts in others.values() for i, a in enumerate(arts) if a is None}
    if empty:
        kept, rejects = _reject_empty(records, kept, rejects, empty)
        others = {k: [a for i, a in enumerate(v) if i not in empty] for k, v in others.items()}
    texts = [p.article.text for p in kept]
    bodies = [[a.body for a in arts] for arts in others.values()]  # none is None any more
    position = {id(record): i for i, record in enumerate(records)}
    frame: dict[str, list] = {
        "id": [p.article.id for p in kept],
        "_text_key": [text_key(b) for b in same_texts([p.article.body for p in kept], *bodies)],
        "_source": [p.article.source for p in kept],
        # where each article was in the chunk: the duplicates found later among these rows
        # are put back in input order among the chunk's other rejects
        "_at": [position[id(p.original)] for p in kept],
        "truncated_chars": [p.truncated_chars for p in kept],
    }
    stats: dict[str, ModelStats] = {}
    with vectorize.shared_matrices():  # models that hash words alike hash them once
        for model in models:
            if model.preparation.key == primary.key:
                model_texts: list[str | None] = texts
                out, features = model.classifier.predict_with_features(texts)
            else:
                model_texts = [a.text for a in others[model.preparation.key]]
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


def _reject_empty(
    records: Sequence[Record],
    kept: list[PreparedArticle],
    rejects: list[Reject],
    empty: set[int],
) -> tuple[list[PreparedArticle], list[Reject]]:
    """``kept`` without the articles at the positions ``empty``, which join ``rejects`` as
    empty_text, the rejects staying in input order."""
    dropped = {id(kept[i].original) for i in empty}
    still = {id(p.original) for i, p in enumerate(kept) if i not in empty}
    earlier = iter(rejects)
    merged: list[Reject] = []
    for record in records:
        if id(record) in dropped:  # the detail of the first model's empty articles, too
            merged.append(
                Reject(record.id, record.source, "empty_text", "no body text after cleaning")
            )
        elif id(record) not in still:
            merged.append(next(earlier))
    return [p for i, p in enumerate(kept) if i not in empty], merged


def _model_stats(classifier: object, texts: list[str], features: object, sample: int) -> ModelStats:
    stats = ModelStats(n_docs=len(texts))
    weighting = getattr(classifier, "weighting", None)
    if weighting is not None and features is not None and hasattr(features, "tocsr"):
        present = features.tocsr()
        start, width = getattr(classifier, "weighting_start", 0), len(weighting.idf_)
        if present.shape[1] >= start + width:  # documents per term of the idf's columns
            counts = np.bincount(present.indices, minlength=present.shape[1])
            stats.term_docs = counts[start : start + width].astype(np.int64)
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
