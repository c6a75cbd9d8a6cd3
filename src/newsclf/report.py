"""The batch report written beside each predictions file: what was predicted, how sure the
models were, and whether the batch looks like the models' training data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from newsclf.batch import JobSettings, JobState
    from newsclf.saved_model import LoadedModel


def training_term_profile(weighting: object) -> np.ndarray | None:
    """The share of training documents holding each term (or hashed column), from the idf.

    ``TfidfVectorizer`` and ``TfidfTransformer`` store idf = ln((1 + n) / (1 + df)) + 1
    (smoothed) or ln(n / df) + 1, so exp(1 - idf) is (1 + df) / (1 + n), the training
    document frequency of each term.
    """
    idf = getattr(weighting, "idf_", None)
    if idf is None:
        return None
    idf = np.asarray(idf, dtype=float)
    profile = np.exp(1.0 - np.asarray(idf, dtype=float))
    if getattr(weighting, "smooth_idf", True):
        # Undo the smoothing's one extra document per term: (1 + n) is exp(max idf - 1) when
        # some column never occurred in training (always, after hashing); with a vocabulary
        # the rarest terms get weight 0, which barely moves the profile.
        profile = np.clip(profile * np.exp(idf.max() - 1.0) - 1.0, 0.0, None)
    return profile


def training_documents(weighting: object) -> float | None:
    """The number of training documents, from a smoothed idf: a column no training document
    holds (always one, after hashing) has idf ln(1 + n) + 1."""
    idf = getattr(weighting, "idf_", None)
    if idf is None or not getattr(weighting, "smooth_idf", True):
        return None
    return float(np.exp(np.asarray(idf, dtype=float).max() - 1.0) - 1.0)


def expected_js(reference: np.ndarray, n_train: float, n_docs: int, seed: int = 0) -> float:
    """The divergence from ``reference`` of ``n_docs`` documents drawn from the training data
    itself: each term held by a binomial number of them. A small batch misses most rare terms
    by chance alone (100 seed articles against their own model: 0.31, 1,000: 0.06), so drift
    is the divergence above this."""
    share = np.clip(np.asarray(reference, dtype=float) / n_train, 0.0, 1.0)
    sample = np.random.default_rng(seed).binomial(n_docs, share)
    return js_divergence(reference, sample)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, 0 = same, 1 = disjoint) of two count profiles."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def batch_report(
    state: JobState,
    term_docs: Mapping[str, np.ndarray],
    models: Sequence[LoadedModel],
    settings: JobSettings,
) -> dict:
    """Per task: label distribution, share of low-confidence predictions, drift signals.

    Drift signals, both against the training data as the model remembers it: the share of
    words (in a sample of each chunk) missing from the training vocabulary, and the
    Jensen-Shannon divergence between the documents-per-term profile of the batch and that of
    the training set (recovered from the fitted idf weights), beside the divergence a sample
    of the training data of the batch's size would show. ``warning`` lists the signals above
    their thresholds (the divergence counted above that of the same-size sample).
    """
    tasks: dict[str, dict] = {}
    n = state.n_predicted
    for m in models:
        labels = state.labels.get(m.task, {})
        stats = state.stats.get(m.task, {"words": 0, "oov_words": 0})
        oov = stats["oov_words"] / stats["words"] if stats["words"] else None
        vocabulary_js = expected = None
        weighting = getattr(m.classifier, "weighting", None)
        reference = training_term_profile(weighting)
        if reference is not None and m.task in term_docs and term_docs[m.task].sum() > 0:
            vocabulary_js = round(js_divergence(reference, term_docs[m.task]), 4)
            n_train = training_documents(weighting)
            if n_train and stats.get("n_docs"):
                expected = round(expected_js(reference, n_train, stats["n_docs"]), 4)
        warnings = []
        if oov is not None and oov > settings.max_oov_share:
            warnings.append(f"oov_word_share {oov:.2f} > {settings.max_oov_share}")
        excess = None if vocabulary_js is None else vocabulary_js - (expected or 0.0)
        if excess is not None and excess > settings.max_vocabulary_js:
            than = f" + a same-size training sample's {expected:.2f}" if expected else ""
            warnings.append(
                f"vocabulary_js {vocabulary_js:.2f} > {settings.max_vocabulary_js}{than}"
            )
        tasks[m.task] = {
            "labels": {
                label: {"count": count, "share": round(count / n, 4) if n else 0.0}
                for label, count in sorted(labels.items(), key=lambda kv: -kv[1])
            },
            "low_confidence_threshold": settings.low_confidence,
            "low_confidence_share": round(state.low_confidence.get(m.task, 0) / n, 4) if n else 0,
            "mean_probability": round(state.probability_sum.get(m.task, 0.0) / n, 4) if n else 0,
            "drift": {
                "oov_word_share": None if oov is None else round(oov, 4),
                "oov_words_checked": stats["words"],
                "vocabulary_js": vocabulary_js,
                "vocabulary_js_expected": expected,
                "warning": warnings,
            },
        }
    return {"tasks": tasks}


def job_summary(
    state: JobState,
    term_docs: Mapping[str, np.ndarray],
    models: Sequence[LoadedModel],
    settings: JobSettings,
    source: str | Path,
) -> tuple[dict, dict, dict]:
    """A finished job's counts (``n_input`` = predicted + rejected), its models' identities
    (task -> uri, name, version) and its report: the counts, ``batch_report``'s per-task
    statistics, the models and the source."""
    models_meta = {m.task: {"uri": m.uri, "name": m.name, "version": m.version} for m in models}
    counts = {
        "n_input": state.n_predicted + state.n_rejected,
        "n_predicted": state.n_predicted,
        "n_rejected": state.n_rejected,
        "rejected_by_reason": state.rejected_by_reason,
        "removed_by_rule": state.removed_by_rule,
        "n_truncated": state.n_truncated,
    }
    statistics = batch_report(state, term_docs, models, settings)
    report = {**counts, **statistics, "models": models_meta, "source": str(source)}
    return counts, models_meta, report
