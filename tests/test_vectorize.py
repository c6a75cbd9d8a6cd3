"""newsclf.vectorize computes exactly scikit-learn's HashingVectorizer.transform (the matrix
newsclf-predict feeds the model), and its MurmurHash3 is scikit-learn's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import murmurhash3_32

from newsclf import models, vectorize
from newsclf.models import RuleCues, feature_union, text_pipeline
from newsclf.saved_model import Classifier

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# ASCII words and punctuation, letters that change length or meaning when lowercased (İ, ß,
# ǅ), non-ASCII word characters (é, digits ², CJK) and non-word ones (£, combining accent,
# no-break space, curly quote, line separator), underscores and one-letter words.
PIECES = st.sampled_from(
    [
        *["the", "Minister", "a", "I", "x_y", "_", "42", "9bn", "r2d2", " ", "  ", "\n", "\t"],
        *[".", ",", "-", "'", "$", "(", ")", "é", "İ", "ß", "ǅ", "²", "日本", "£", "\u0301"],
        *["\u00a0", "’", "\u2028", "Ünï", "ΑΘΗΝΑ", "e\u0301", "ﬁ", "€5"],
    ]
)
TEXT = st.lists(PIECES, max_size=40).map("".join)


def same_matrix(a: object, b: object) -> None:
    assert type(a) is type(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


@SETTINGS
@given(
    texts=st.lists(TEXT, min_size=1, max_size=8),
    ngram_range=st.sampled_from([(1, 1), (1, 2), (2, 2)]),
    lowercase=st.booleans(),
    alternate_sign=st.booleans(),
    norm=st.sampled_from([None, "l2", "l1"]),
    binary=st.booleans(),
    n_features=st.sampled_from([7, 64, 2**18]),
)
def test_transform_equals_scikit_learn(
    texts, ngram_range, lowercase, alternate_sign, norm, binary, n_features
):
    vectorizer = HashingVectorizer(
        ngram_range=ngram_range,
        lowercase=lowercase,
        alternate_sign=alternate_sign,
        norm=norm,
        binary=binary,
        n_features=n_features,
    )
    assert vectorize.supports(vectorizer)
    same_matrix(vectorize.transform(vectorizer, texts), vectorizer.transform(texts))


def test_default_model_vectorizer_on_news_text():
    texts = [
        "Novartis hits acquisition trail. Swiss drugmaker Novartis has announced 5.65bn euros "
        "($7.4bn; £3.9bn) of purchases — it's the world's biggest generic drug producer.",
        "",
        "a",
        "Ελλάδα and İstanbul: STRASSE straße “quoted” words_with_underscores 2005-2006",
    ] * 3
    vectorizer = HashingVectorizer(
        ngram_range=(1, 2), n_features=2**18, alternate_sign=False, norm=None
    )
    same_matrix(vectorize.transform(vectorizer, texts), vectorizer.transform(texts))


@SETTINGS
@given(values=st.lists(st.binary(max_size=40), min_size=1, max_size=30))
def test_murmurhash_equals_scikit_learn(values):
    expected = [murmurhash3_32(v, positive=True) for v in values]
    assert vectorize.murmurhash3_32(pa.array(values, pa.binary())).tolist() == expected


@pytest.mark.parametrize(
    "vectorizer",
    [
        HashingVectorizer(analyzer="char"),
        HashingVectorizer(stop_words="english"),
        HashingVectorizer(ngram_range=(1, 3)),
        HashingVectorizer(token_pattern=r"\w+"),
        HashingVectorizer(strip_accents="unicode"),
        TfidfVectorizer(),
    ],
)
def test_other_vectorizers_are_left_to_scikit_learn(vectorizer):
    assert not vectorize.supports(vectorizer)


def test_classifier_predicts_what_the_pipeline_predicts():
    texts = ["markets rose on bank profits", "the striker scored twice", "shares fell"] * 4
    labels = ["business", "sport", "business"] * 4
    pipeline = text_pipeline(
        HashingVectorizer(ngram_range=(1, 2), alternate_sign=False, norm=None),
        LogisticRegression(),
        weighting=TfidfTransformer(sublinear_tf=True),
    )
    pipeline.fit(texts, labels)
    frame = Classifier(pipeline, ["business", "sport"]).predict([*texts, "bank striker"])
    proba = pipeline.predict_proba([*texts, "bank striker"])
    assert frame["probability"].tolist() == proba.max(axis=1).tolist()
    assert frame["label"].tolist() == pipeline.predict([*texts, "bank striker"]).tolist()


def test_unions_with_hashed_words_predict_what_the_pipeline_predicts():
    """A union of hashed words and rule cues (tfidf_cues_logreg), weighted, nested in another
    union with a dropped part, or beside a dense part: the fast transform gives scikit-learn's
    matrix, the classifier its probabilities."""
    texts = [
        "The Kremlin's brutal invasion of Ukraine drew condemnation from Kyiv.",
        "Moscow said NATO expansion provoked the crisis, blaming Western hypocrisy.",
        "Wheat prices rose on the Chicago exchange as shipping resumed.",
        "Putin met Lavrov; the talks ended without a statement.",
    ] * 3
    labels = ["anti_russia", "pro_russia", "neutral", "neutral"] * 3
    words = text_pipeline(
        HashingVectorizer(ngram_range=(1, 2), alternate_sign=False, norm=None),
        TfidfTransformer(sublinear_tf=True),
    )[:-1]  # the vectorising steps only
    cues = RuleCues("stance", labels=["anti_russia", "neutral", "pro_russia"])
    union = feature_union(words=words, cues=cues)
    union.set_params(transformer_weights={"cues": 0.1})
    nested = feature_union(inner=union, bigrams=HashingVectorizer(ngram_range=(2, 2)))
    nested.set_params(transformer_weights={"bigrams": 0.5})
    nested.transformer_list.append(("dropped", "drop"))
    # a dense part beside the sparse ones: the union is still stacked as a sparse matrix
    lengths = FunctionTransformer(lambda x: np.array([[len(t) / 100] for t in x]))
    mixed = feature_union(words=words, lengths=lengths)
    for front in (union, nested, mixed):
        pipeline = text_pipeline(front, LogisticRegression(max_iter=500)).fit(texts, labels)
        unseen = [*texts, "Russian troops shelled the city, officials in Kyiv said."]
        same_matrix(vectorize.transform_any(pipeline[:-1], unseen), pipeline[:-1].transform(unseen))
        scores, names, _ = Classifier(pipeline, sorted(set(labels))).scores(unseen)
        assert np.array_equal(scores, pipeline.predict_proba(unseen))
        assert names == pipeline.classes_.tolist()


def test_a_union_of_dense_parts_is_computed_once():
    """A union whose parts are all dense is stacked from its parts' outputs, as scikit-learn
    stacks them, without computing any part a second time."""
    calls = []

    def measure(name):
        def f(texts):
            calls.append(name)
            return np.array([[len(t) / 10, t.count(" ")] for t in texts])

        return FunctionTransformer(f)

    union = feature_union(lengths=measure("lengths"), spaces=measure("spaces"))
    union.set_params(transformer_weights={"spaces": 0.5})
    texts = ["markets rose", "the striker scored twice", "shares fell on bank news"]
    union.fit(texts)
    expected = union.transform(texts)
    calls.clear()
    got = vectorize.transform_any(union, texts)
    assert calls == ["lengths", "spaces"]
    assert isinstance(got, np.ndarray) and np.array_equal(got, expected)


def test_shared_matrices_hash_the_same_texts_once(monkeypatch):
    """Within shared_matrices(), models hashing the same texts with the same settings get
    the matrix of one computation, each its own copy; other settings or texts are hashed
    anew. Predictions are those made without sharing."""
    texts = ["markets rose on bank profits", "the striker scored twice", "shares fell"] * 4
    labels = ["business", "sport", "business"] * 4

    def model(**settings):
        hashing = HashingVectorizer(ngram_range=(1, 2), alternate_sign=False, norm=None)
        return text_pipeline(hashing.set_params(**settings), LogisticRegression()).fit(
            texts, labels
        )

    topic, stance, other = model(), model(), model(n_features=64)
    calls = []
    compute = vectorize._transform
    monkeypatch.setattr(vectorize, "_transform", lambda v, t: calls.append(1) or compute(v, t))
    alone = [Classifier(m, ["business", "sport"]).scores(texts)[0] for m in (topic, stance)]
    assert len(calls) == 2
    calls.clear()
    with vectorize.shared_matrices():
        first = vectorize.transform(topic[0], texts)
        first.data[:] = 0  # a caller that changes its matrix in place
        shared = [Classifier(m, ["business", "sport"]).scores(texts)[0] for m in (topic, stance)]
        vectorize.transform(other[0], texts)
        vectorize.transform(topic[0], texts[:3])
    assert len(calls) == 3  # topic and stance once, then other settings, then other texts
    assert all(np.array_equal(a, b) for a, b in zip(alone, shared, strict=True))
    vectorize.transform(topic[0], texts)  # outside the block: computed again
    assert len(calls) == 4


def test_training_fits_the_same_model_as_scikit_learn():
    texts = ["markets rose on bank profits", "the striker scored twice", "shares fell"] * 5
    labels = ["business", "sport", "business"] * 5

    def pipeline():
        return text_pipeline(
            HashingVectorizer(ngram_range=(1, 2), alternate_sign=False, norm=None),
            LogisticRegression(solver="saga", random_state=0),
            weighting=TfidfTransformer(sublinear_tf=True),
        )

    ours, theirs = models.fit(pipeline(), texts, labels), pipeline().fit(texts, labels)
    assert np.array_equal(ours[-2].idf_, theirs[-2].idf_)
    assert np.array_equal(ours[-1].coef_, theirs[-1].coef_)
    assert np.array_equal(ours.predict_proba(texts), theirs.predict_proba(texts))


@SETTINGS
@given(
    cells=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=60),
    signed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_cell_sums_by_counting_sort_equal_those_by_sorting(cells, signed, seed):
    """The linear-time grouping of cells (scipy's conversions) sums what sorting them does:
    empty rows, a cell repeated in one row and the same column in adjacent rows."""
    rng = np.random.default_rng(seed)
    rows = np.array([r for r, _ in cells], dtype=np.int64)  # in any order
    columns = np.array([c for _, c in cells], dtype=np.int32)
    weights = rng.choice([-1.0, 1.0], len(cells)) if signed else None
    fast = vectorize._cell_sums(rows, columns, weights, 7, 10)
    slow = vectorize._cell_sums_by_sorting(rows, columns, weights, 7, 10)
    for a, b in zip(fast, slow, strict=True):
        assert a.tolist() == b.tolist()


@SETTINGS
@given(
    texts=st.lists(TEXT, max_size=8),
    ngram_range=st.sampled_from([(1, 1), (1, 2), (2, 2)]),
    lowercase=st.booleans(),
    n_features=st.sampled_from([7, 2**18]),
)
def test_ngram_counts_are_the_analyzers(texts, ngram_range, lowercase, n_features):
    from collections import Counter

    from sklearn.feature_extraction import FeatureHasher

    vectorizer = HashingVectorizer(
        ngram_range=ngram_range, lowercase=lowercase, n_features=n_features
    )
    terms, counts, columns = vectorize.ngram_counts(vectorizer, texts)
    analyse = vectorizer.build_analyzer()
    expected = Counter(g for text in texts for g in analyse(text))
    found = [t.decode("utf-8") for t in terms]
    assert dict(zip(found, counts.tolist(), strict=True)) == dict(expected)
    assert len(found) == len(expected)  # each n-gram once
    if found:
        hasher = FeatureHasher(n_features=n_features, input_type="string", alternate_sign=False)
        assert columns.tolist() == hasher.transform([[t] for t in found]).tocsr().indices.tolist()


def test_top_features_of_a_hashed_model_are_the_analyzers(monkeypatch):
    texts = [
        "The minister said the budget would rise. Café owners protested in £5m row.",
        "Shares fell as the bank cut its forecast; the market closed lower.",
        "The striker scored twice as the club won the cup final.",
        "The new phone's chip is faster, the company said at its launch.",
    ] * 3
    labels = ["politics", "business", "sport", "tech"] * 3
    pipeline = text_pipeline(
        HashingVectorizer(ngram_range=(1, 2)), LogisticRegression(), TfidfTransformer()
    )
    model = models.fit(pipeline, texts, labels)
    fast = models.top_features(model, texts, k=15)
    monkeypatch.setattr(vectorize, "supports", lambda vectorizer: False)
    assert fast == models.top_features(model, texts, k=15)
    assert fast and len(fast) == 4 * 15
