"""Metrics, plots and the validation gate that decides whether a model becomes champion."""

from __future__ import annotations

from collections.abc import Sequence
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
    """Accuracy, macro-F1 and per-class precision / recall / F1 (flat names for MLflow)."""
    labels = list(labels)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
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


def gate(score: float, min_score: float, champion_score: float | None) -> GateDecision:
    """Promote when ``score`` (test macro-F1) reaches ``min_score`` and is not worse than the
    current champion's score on the same test set."""
    if np.isnan(score) or score < min_score:
        return GateDecision(False, f"test macro-F1 {score:.4f} below the minimum {min_score:.4f}")
    if champion_score is not None and score < champion_score:
        return GateDecision(
            False, f"test macro-F1 {score:.4f} worse than the champion's {champion_score:.4f}"
        )
    if champion_score is None:
        return GateDecision(True, f"test macro-F1 {score:.4f} >= {min_score:.4f}, no champion yet")
    return GateDecision(
        True, f"test macro-F1 {score:.4f} >= champion's {champion_score:.4f} and the minimum"
    )
