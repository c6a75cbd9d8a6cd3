"""Metrics, plots and the validation gate that decides whether a model becomes champion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots go to files

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision / recall / F1 (flat names for MLflow).

    Macro-F1 averages over the ``labels`` that ``y_true`` has, as ``newsclf-evaluate`` does: a
    label a small split lacks would count as an F1 of 0 however good the model."""
    labels = list(labels)
    gold = set(y_true)
    averaged = [label for label in labels if label in gold] or labels
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=averaged, average="macro", zero_division=0)
        ),
    }
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    for i, label in enumerate(labels):
        out[f"precision_{label}"] = float(precision[i])
        out[f"recall_{label}"] = float(recall[i])
        out[f"f1_{label}"] = float(f1[i])
        out[f"support_{label}"] = int(support[i])
    return out


def report(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> str:
    """scikit-learn's text classification report."""
    return classification_report(y_true, y_pred, labels=list(labels), zero_division=0, digits=3)


def plot_confusion_matrix(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], path: Path, title: str
) -> Path:
    """Save the confusion matrix (counts) as a PNG."""
    cm = confusion_matrix(y_true, y_pred, labels=list(labels))
    size = max(5.0, 0.9 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(cm, display_labels=list(labels)).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45
    )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class GateDecision:
    """Whether a new model version is promoted to champion, and why."""

    promote: bool
    reason: str


def gate(
    score: float,
    min_score: float,
    champion_score: float | None,
    external: Mapping[str, float] | None = None,
    external_min: Mapping[str, float] | None = None,
    champion_external: Mapping[str, float] | None = None,
    champion_note: str | None = None,
    must_compare: bool = False,
) -> GateDecision:
    """Promote when ``score`` (test macro-F1) reaches ``min_score`` and is not worse than the
    current champion's score on the same test set.

    With evaluation sets (``external``: set name -> macro-F1), every minimum of
    ``external_min`` must be reached too, and the mean macro-F1 over the sets must not be worse
    than the champion's on the same sets (``champion_external``). ``champion_note`` says why
    there is no champion score to compare with (default: there is no champion). With
    ``must_compare`` (a champion exists and was to be compared), a version compared with it on
    nothing is not promoted: a champion is never replaced unseen."""
    if np.isnan(score):  # a dataset of weak labels alone has no (gold) test split
        return GateDecision(False, "no test score (the test split is empty: no gold labels)")
    if score < min_score:
        return GateDecision(False, f"test macro-F1 {score:.4f} below the minimum {min_score:.4f}")
    ok, why = external_minimums(external or {}, external_min)
    if not ok:
        return GateDecision(False, why)
    if champion_score is not None and score < champion_score:
        return GateDecision(
            False, f"test macro-F1 {score:.4f} worse than the champion's {champion_score:.4f}"
        )
    shared = sorted(set(external or {}) & set(champion_external or {}))
    extra = ""
    if shared:
        mine = float(np.mean([external[s] for s in shared]))
        theirs = float(np.mean([champion_external[s] for s in shared]))
        if mine < theirs:
            return GateDecision(
                False,
                f"mean macro-F1 on {', '.join(shared)} {mine:.4f} worse than the champion's "
                f"{theirs:.4f}",
            )
        extra = f"; mean macro-F1 on {', '.join(shared)} {mine:.4f} >= champion's {theirs:.4f}"
    if champion_score is None:
        note = champion_note or "no champion yet"
        if must_compare and not shared:
            return GateDecision(
                False,
                f"{note}, and no evaluation set is shared to compare on: the champion stays "
                "(evaluation=... compares them; gate.compare_to_champion=false replaces it)",
            )
        return GateDecision(True, f"test macro-F1 {score:.4f} >= {min_score:.4f}, {note}{extra}")
    return GateDecision(
        True,
        f"test macro-F1 {score:.4f} >= champion's {champion_score:.4f} and the minimum{extra}",
    )


def external_minimums(
    scores: Mapping[str, float], minimums: Mapping[str, float] | None
) -> tuple[bool, str]:
    """Whether every minimum macro-F1 on an evaluation set (``gate.external``) is reached, and
    why not. A minimum for a set that was not scored fails: the gate cannot be checked."""
    failures = []
    for name, minimum in (minimums or {}).items():
        value = scores.get(name)
        if value is None or np.isnan(value):
            failures.append(f"{name} macro-F1 not measured (minimum {float(minimum):.4f})")
        elif value < float(minimum):
            failures.append(f"{name} macro-F1 {value:.4f} below the minimum {float(minimum):.4f}")
    return not failures, "; ".join(failures)


# --------------------------------------------------------------------------- calibration


def confidence_bins(
    y_true: Sequence[str], y_pred: Sequence[str], confidence: Sequence[float], n_bins: int = 10
) -> list[dict]:
    """Predictions grouped by the probability of the predicted label into ``n_bins``
    equal-width bins, right-closed ((0.1, 0.2], ...; 0 goes to the first): per bin its range,
    count, mean confidence and accuracy (None for an empty bin)."""
    conf = np.asarray(confidence, dtype=float)
    right = np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object)
    index = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        inside = index == b
        n = int(inside.sum())
        bins.append(
            {
                "low": b / n_bins,
                "high": (b + 1) / n_bins,
                "count": n,
                "confidence": float(conf[inside].mean()) if n else None,
                "accuracy": float(right[inside].mean()) if n else None,
            }
        )
    return bins


def expected_calibration_error(bins: Sequence[dict]) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    total = sum(b["count"] for b in bins)
    if not total:
        return float("nan")
    return float(
        sum(b["count"] * abs(b["confidence"] - b["accuracy"]) for b in bins if b["count"]) / total
    )


def log_loss(
    y_true: Sequence[str], probabilities: np.ndarray, classes: Sequence[str], eps: float = 1e-15
) -> float:
    """Mean negative log of the probability given to the gold label (clipped to ``eps``, so a
    gold label the model never learned costs -log(eps) instead of infinity)."""
    if not len(y_true):
        return float("nan")
    column = {c: i for i, c in enumerate(classes)}
    probabilities = np.asarray(probabilities, dtype=float)
    given = np.array(
        [probabilities[row, column[g]] if g in column else 0.0 for row, g in enumerate(y_true)]
    )
    return float(-np.log(np.clip(given, eps, 1.0)).mean())


def plot_reliability(bins: Sequence[dict], path: Path, title: str) -> Path:
    """Save a reliability diagram (accuracy against confidence per bin, with counts) as a PNG."""
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    used = [b for b in bins if b["count"]]
    ax.bar(
        [b["low"] for b in used],
        [b["accuracy"] for b in used],
        width=width,
        align="edge",
        edgecolor="black",
        color="#4c72b0",
        label="accuracy",
    )
    ax.plot(
        [b["confidence"] for b in used],
        [b["confidence"] for b in used],
        "o",
        color="#dd8452",
        label="mean confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for b in used:
        ax.annotate(
            str(b["count"]),
            (b["low"] + width / 2, b["accuracy"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("probability of the predicted label")
    ax.set_ylabel("share correct")
    ax.set_title(f"{title}\nECE {expected_calibration_error(bins):.3f}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
