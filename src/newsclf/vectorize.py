"""``HashingVectorizer.transform`` for word unigrams and bigrams, computed per chunk with
array operations: the same matrix as scikit-learn's, several times faster.

scikit-learn builds every n-gram of every document as a Python string and hashes each one.
Here the chunk is tokenised at once (one byte translation of all its documents' UTF-8 and a
split; documents with non-ASCII word characters are tokenised with the regex), the chunk's
tokens are numbered, bigrams become pairs of numbers, and only the distinct unigrams and
bigrams of the chunk are turned into strings and hashed (with the same MurmurHash3 as
scikit-learn's). The rows are then assembled with numpy and summed
as ``FeatureHasher`` does. tests/test_vectorize.py checks the result against scikit-learn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import normalize

try:  # the sparse conversions of scipy.sparse, for a linear-time grouping of cells by row
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover  # a scipy without them: cells are sorted instead
    _sparsetools = None

from newsclf.cleaning import has_non_ascii_word_char

DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# The same tokens as the default pattern: maximal runs of two or more word characters.
_TOKEN = re.compile(r"\w{2,}")
# Bytes that are not ASCII word characters ([0-9A-Za-z_]) become spaces, so a split of the
# UTF-8 bytes gives the word runs of a document whose non-ASCII characters are all non-word.
_WORD_BYTES = set(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SEPARATE = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))
# The same, with ASCII capitals lowered: str.lower() of such a document changes only those
# (its other cased characters are non-ASCII letters, which it has none of).
_SEPARATE_LOWER = bytes(b + 32 if 65 <= b <= 90 else c for b, c in enumerate(_SEPARATE))


def supports(vectorizer: object) -> bool:
    """True when :func:`transform` computes exactly what ``vectorizer.transform`` does:
    a ``HashingVectorizer`` over words with the default tokenisation, no stop words or
    custom callables, and n-grams of one or two words."""
    if type(vectorizer) is not HashingVectorizer:
        return False
    v = vectorizer
    return (
        v.input == "content"
        and v.analyzer == "word"
        and v.tokenizer is None
        and v.preprocessor is None
        and v.strip_accents is None
        and v.stop_words is None
        and v.token_pattern == DEFAULT_TOKEN_PATTERN
        and tuple(v.ngram_range) in ((1, 1), (1, 2), (2, 2))
    )


_SHARED: ContextVar[dict | None] = ContextVar("newsclf_shared_matrices", default=None)


@contextmanager
def shared_matrices() -> Iterator[None]:
    """Within the block (in this thread), :func:`transform` hashes the same texts with the
    same vectorizer settings once and hands each caller a copy: newsclf-predict's default
    topic and stance models hash an article's words the same way."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def transform(vectorizer: HashingVectorizer, texts: Sequence[str]) -> object:
    """``vectorizer.transform(texts)`` for a vectorizer :func:`supports` accepts."""
    if not texts or not all(isinstance(t, str) for t in texts):
        return vectorizer.transform(texts)  # its own errors and empty-input behaviour
    shared = _SHARED.get()
    if shared is None:
        return _transform(vectorizer, texts)
    # the texts' hashes are cached in the strings: the key costs a pass over the chunk
    key = (tuple(texts), repr(sorted(vectorizer.get_params().items())))
    if key not in shared:
        shared[key] = _transform(vectorizer, texts)
    return shared[key].copy()  # a caller may change its matrix in place


def _transform(vectorizer: HashingVectorizer, texts: Sequence[str]) -> object:
    rows, keys, strings = _ngrams(vectorizer, texts)
    columns, signs = _hash(strings, vectorizer)
    # Sum repeated (row, column) cells and sort them, as FeatureHasher's sum_duplicates does.
    n_features = vectorizer.n_features
    weights = signs[keys] if vectorizer.alternate_sign else None
    indptr, indices, data = _cell_sums(rows, columns[keys], weights, len(texts), n_features)
    X = sp.csr_matrix(
        (data.astype(vectorizer.dtype), indices.astype(np.int32), indptr),
        shape=(len(texts), n_features),
    )
    if vectorizer.binary:
        X.data.fill(1)
    if vectorizer.norm is not None:
        X = normalize(X, norm=vectorizer.norm, copy=False)
    return X


def transform_any(step: object, texts: Sequence[str]) -> object:
    """``step.transform(texts)`` for any fitted transformer of texts, with every hashing
    vectorizer :func:`supports` accepts computed here: alone, first in a ``Pipeline``, or a
    part of a ``FeatureUnion`` (such as the words beside the rule cues of
    ``tfidf_cues_logreg``), at any depth. The same matrix as scikit-learn's."""
    if supports(step):
        return transform(step, texts)
    if isinstance(step, Pipeline) and not isinstance(step.steps[0][1], str | None):
        features = transform_any(step.steps[0][1], texts)
        for _, later in step.steps[1:]:
            if later not in (None, "passthrough"):
                features = later.transform(features)
        return features
    if isinstance(step, FeatureUnion) and _plain_union(step):
        weights = step.transformer_weights or {}
        parts = []
        for name, part in step.transformer_list:
            if part == "drop":
                continue
            features, weight = transform_any(part, texts), weights.get(name)
            parts.append(features if weight is None else features * weight)
        if parts:  # stacked as FeatureUnion.transform stacks them (default output)
            if any(sp.issparse(p) for p in parts):
                return sp.hstack(parts).tocsr()
            return np.hstack(parts)
    return step.transform(texts)  # all parts dropped: scikit-learn's own answer


def _plain_union(union: FeatureUnion) -> bool:
    """A union whose parts are all transformers or dropped, with default output: its
    ``transform`` is its parts' outputs, weighted, side by side."""
    output = getattr(union, "_sklearn_output_config", {}).get("transform", "default")
    return output == "default" and all(
        part == "drop" or not isinstance(part, str) for _, part in union.transformer_list
    )


def ngram_counts(
    vectorizer: HashingVectorizer, texts: Sequence[str]
) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """The distinct n-grams ``vectorizer``'s analyzer finds in ``texts`` (UTF-8 bytes), how
    often each occurs in all of them, and the column each is hashed to (as with
    ``alternate_sign=False``), for a vectorizer :func:`supports` accepts."""
    if not texts:
        return [], np.empty(0, np.int64), np.empty(0, np.int32)
    _, keys, strings = _ngrams(vectorizer, list(texts))
    columns, _ = _hash(strings, vectorizer)
    counts = np.bincount(keys, minlength=len(columns))
    found = np.flatnonzero(counts)  # unigrams of a bigram-only vectorizer occur in none
    terms = pa.concat_arrays([a.cast(pa.large_binary()) for a in strings]).take(found)
    return terms.to_pylist(), counts[found], columns[found]


def _ngrams(
    vectorizer: HashingVectorizer, texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[pa.Array]]:
    """Every n-gram occurrence of ``texts`` as (row, key): ``key`` numbers the distinct
    n-grams, whose strings are the returned arrays one after the other."""
    min_n, max_n = vectorizer.ngram_range
    docs = _separated(texts, vectorizer.lowercase)
    # Split at runs of spaces (no empty words to drop), keep words of two or more bytes (a word
    # character is at least one), and number the chunk's distinct words.
    words = pc.ascii_split_whitespace(docs)
    doc = pc.list_parent_indices(words).to_numpy().astype(np.int32)  # half the bytes to move
    words = pc.list_flatten(words)
    long = pc.greater_equal(pc.binary_length(words), 2)
    encoded = words.filter(long).dictionary_encode()
    doc = doc[long.to_numpy(zero_copy_only=False)]
    vocabulary = encoded.dictionary
    ids = encoded.indices.to_numpy()
    parts_rows, parts_keys, parts_strings = [], [], [vocabulary]
    if min_n == 1:
        parts_rows.append(doc)
        parts_keys.append(ids)
    if max_n == 2 and len(ids) > 1:
        same = doc[:-1] == doc[1:]  # bigrams never cross documents
        # 32-bit keys when they fit: Arrow's hash table numbers them a fifth faster
        key_type = np.uint32 if len(vocabulary) ** 2 <= 2**32 else np.int64
        pair_keys = ids[:-1][same].astype(key_type) * key_type(len(vocabulary))
        pair_keys += ids[1:][same].astype(key_type)
        # numbered in order of appearance by a hash table: several times faster than sorting
        pairs = pa.array(pair_keys).dictionary_encode()
        first, second = np.divmod(pairs.dictionary.to_numpy().astype(np.int64), len(vocabulary))
        parts_strings.append(
            pc.binary_join_element_wise(
                vocabulary.take(first), vocabulary.take(second), pa.scalar(" ", pa.large_string())
            )
        )
        parts_rows.append(doc[:-1][same])
        parts_keys.append(pairs.indices.to_numpy() + np.int32(len(vocabulary)))
    rows = np.concatenate(parts_rows) if parts_rows else np.empty(0, np.int32)
    keys = np.concatenate(parts_keys) if parts_keys else np.empty(0, np.int32)
    return rows, keys, parts_strings


def _separated(texts: Sequence[str], lowercase: bool) -> pa.Array:
    """Each text as a string whose space-separated runs are its tokens (with others, of one
    byte, that the caller drops): all texts' UTF-8 bytes are translated at once (non-word bytes
    to spaces, leaving ASCII), except those of texts with a non-ASCII word character, tokenised
    by regex (words of word characters, which hold no whitespace, joined by spaces)."""
    strings = pa.array(texts, pa.large_string())
    offsets, data = strings.buffers()[1:3]
    table = _SEPARATE_LOWER if lowercase else _SEPARATE
    translated = data.to_pybytes().translate(table) if data is not None else b""
    docs = pa.Array.from_buffers(
        pa.large_string(), len(texts), [None, offsets, pa.py_buffer(translated)]
    )
    # A text with a non-ASCII word character (whose lower case may even be ASCII: "İ") is
    # tokenised on its own, as before: with the regex when its lower case still has one.
    own, tokenised = [], []
    for i in np.flatnonzero(~pc.string_is_ascii(strings).to_numpy(zero_copy_only=False)):
        if has_non_ascii_word_char(texts[i]):
            text = texts[i].lower() if lowercase else texts[i]
            own.append(i)
            tokenised.append(
                b" ".join(w.encode("utf-8") for w in _TOKEN.findall(text))
                if has_non_ascii_word_char(text)
                else text.encode("utf-8").translate(_SEPARATE)
            )
    if own:
        mask = np.zeros(len(texts), bool)
        mask[own] = True
        docs = pc.replace_with_mask(docs, pa.array(mask), pa.array(tokenised, pa.large_string()))
    return docs


def _cell_sums(
    rows: np.ndarray,
    columns: np.ndarray,
    weights: np.ndarray | None,
    n_rows: int,
    n_columns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (row, column) cells of the occurrences ``rows[i], columns[i]`` in CSR
    order, as (indptr, column indices, sums): of ``weights`` (+1 or -1), or the number of
    occurrences when ``weights`` is None."""
    if _sparsetools is None or not len(rows):
        return _cell_sums_by_sorting(rows, columns, weights, n_rows, n_columns)
    rows_at, columns_by_row, weights_by_row = _grouped_by_row(
        rows, columns, weights, n_rows, n_columns
    )
    first = np.zeros(len(columns_by_row), bool)  # each cell's first occurrence
    np.not_equal(columns_by_row[1:], columns_by_row[:-1], out=first[1:])
    first[rows_at[:-1][rows_at[:-1] < rows_at[1:]]] = True  # and each row's first
    starts = np.flatnonzero(first)
    if weights is None:
        sums = np.diff(starts, append=len(columns_by_row))
    else:  # sums of +1 and -1: exact in any order
        sums = np.add.reduceat(weights_by_row.astype(np.float64), starts)
    indptr = np.searchsorted(starts, rows_at)
    return indptr, columns_by_row[starts], sums


def _grouped_by_row(
    rows: np.ndarray,
    columns: np.ndarray,
    weights: np.ndarray | None,
    n_rows: int,
    n_columns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The occurrences grouped by row, each row's in ascending column order: (where each
    row starts, the columns, the weights as int8). Two stable counting sorts, by column and
    then by row (scipy's COO-to-CSR and CSR-to-CSC conversions, without their summing of
    duplicates): linear time, where sorting the cells took twice as long."""
    index = np.int32 if max(len(rows), n_rows, n_columns) < 2**31 - 1 else np.int64
    n = len(rows)
    values = np.ones(n, np.int8) if weights is None else weights.astype(np.int8)
    by_column = np.empty(n_columns + 1, index), np.empty(n, index), np.empty(n, np.int8)
    _sparsetools.coo_tocsr(
        n_columns,
        n_rows,
        n,
        columns.astype(index, copy=False),
        rows.astype(index, copy=False),
        values,
        *by_column,
    )
    by_row = np.empty(n_rows + 1, index), np.empty(n, index), np.empty(n, np.int8)
    _sparsetools.csr_tocsc(n_columns, n_rows, *by_column, *by_row)
    return by_row


def _cell_sums_by_sorting(
    rows: np.ndarray,
    columns: np.ndarray,
    weights: np.ndarray | None,
    n_rows: int,
    n_columns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_cell_sums` by sorting the cells (without scipy's sparse tools)."""
    cells = (rows.astype(np.int64) * n_columns + columns).astype(_sort_dtype(n_rows * n_columns))
    if weights is not None:
        cells, where = np.unique(cells, return_inverse=True)
        sums = np.bincount(where.reshape(-1), weights=weights, minlength=len(cells))
    else:
        cells, sums = _distinct_counts(cells)
    indptr = np.searchsorted(cells, np.arange(n_rows + 1) * n_columns)
    return indptr, cells % n_columns, sums


def _distinct_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_counts=True)``, sorted by timsort (numpy's stable sort):
    cells come in row order, unigrams then bigrams, and timsort takes those runs as they are,
    where ``np.unique``'s quicksort does not (40 against 60 ms for 2,000 BBC articles)."""
    if len(values) == 0:
        return values, np.empty(0, np.intp)
    ordered = np.sort(values, kind="stable")
    first = np.empty(len(ordered), bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return ordered[starts], np.diff(starts, append=len(ordered))


def _sort_dtype(bound: int) -> type:
    """The narrowest of uint32 and int64 holding every value below ``bound``: numpy sorts
    32-bit keys in about half the time of 64-bit ones."""
    return np.uint32 if bound <= 2**32 else np.int64


def _hash(arrays: list[pa.Array], vectorizer: HashingVectorizer) -> tuple[np.ndarray, np.ndarray]:
    """Column and sign (+1 or -1) of each string, as ``FeatureHasher`` computes them: the
    32-bit MurmurHash3 (seed 0) of its bytes, as a signed number h; column |h| mod
    n_features, sign that of h."""
    h = np.concatenate([murmurhash3_32(a) for a in arrays]).view(np.int32).astype(np.int64)
    columns = (np.abs(h) % vectorizer.n_features).astype(np.int32)
    signs = np.ones(len(h), dtype=vectorizer.dtype)
    if vectorizer.alternate_sign:
        signs[h < 0] = -1
    return columns, signs


_C1, _C2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _scramble(k: np.ndarray) -> np.ndarray:
    return _rotl(k * _C1, 15) * _C2


def murmurhash3_32(strings: pa.Array) -> np.ndarray:
    """MurmurHash3 x86 32-bit (seed 0) of each value of a binary Arrow array, as uint32, all
    values at once: ``sklearn.utils.murmurhash3_32(value, positive=True)`` for each."""
    strings = strings.cast(pa.large_binary())
    n = len(strings)
    if n == 0:
        return np.empty(0, np.uint32)
    if strings.null_count:
        raise ValueError("murmurhash3_32: null values")
    offsets_buffer, data_buffer = strings.buffers()[1:3]
    offsets = np.frombuffer(offsets_buffer, np.int64)[strings.offset : strings.offset + n + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0)
    data = np.concatenate([data[: offsets[-1]], np.zeros(4, np.uint8)]).astype(np.uint32)
    starts, lengths = offsets[:-1], np.diff(offsets)
    # Longest first, so the values still in a 4-byte block step are a prefix.
    order = np.argsort(-(lengths // 4), kind="stable")
    starts, lengths = starts[order], lengths[order]
    blocks = lengths // 4
    h = np.zeros(n, np.uint32)
    for k in range(int(blocks[0]) if n else 0):
        m = int(np.count_nonzero(blocks > k))
        at = starts[:m] + 4 * k
        block = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24)
        x = h[:m] ^ _scramble(block)
        h[:m] = _rotl(x, 13) * np.uint32(5) + np.uint32(0xE6546B64)
    tail_at, tail = starts + 4 * blocks, lengths & 3
    k1 = np.zeros(n, np.uint32)
    for i in (2, 1, 0):
        has = tail > i
        k1[has] ^= data[tail_at[has] + i] << np.uint32(8 * i)
    has = tail > 0
    h[has] ^= _scramble(k1[has])
    h ^= lengths.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    out = np.empty(n, np.uint32)
    out[order] = h
    return out
