"""Labelled evaluation sets: articles from any source plus an annotations file, prepared with
each model's own preparation exactly as ``newsclf-predict`` prepares articles for that model,
and a model's scores on them (metrics, calibration, the misclassified articles).

Used by ``newsclf-evaluate`` (registered models x sets) and by ``newsclf-train`` (the fitted
model on configured sets, before registering).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from newsclf import evaluation, saved_model
from newsclf.articles import Article, Record, Reject, Source, id_unknown
from newsclf.atomic import atomic_path
from newsclf.errors import NewsclfError
from newsclf.labelling.gold import load_annotations
from newsclf.predict import in_input_order, prepare_records
from newsclf.saved_model import LoadedModel, Preparation
from newsclf.tasks import Task

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """One labelled evaluation set as one model preparation makes it: kept articles (in input
    order), the records that were not kept, and the annotations file to read gold labels
    from."""

    name: str
    articles: list[Article]
    rejects: list[Reject]
    annotations: str | list[str]
    id_column: str = "id"
    source: str = ""
    _gold: dict = field(default_factory=dict)

    @property
    def n_input(self) -> int:
        return len(self.articles) + len(self.rejects)

    def reject_counts(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.rejects))

    def gold(self, task: Task) -> dict[str, str]:
        """Article id -> gold label of ``task`` (empty when the file has none for it).

        Labels outside the task's labels and ids that are neither articles nor rejects of the
        set raise a NewsclfError naming the file, the line, the id and the value. When some
        record could not be read at all (no id known), an annotation naming a missing id may
        belong to it, so it is counted as not scored instead.
        """
        key = (task.name, task.annotation_column, tuple(task.label_names))
        if key not in self._gold:
            seen = {a.id for a in self.articles}
            seen |= {r.id for r in self.rejects if r.id and not id_unknown(r)}
            unnamed = sum(id_unknown(r) for r in self.rejects)
            known = None if unnamed else seen
            with set_keys(self.name):
                gold = load_annotations(self.annotations, [task], self.id_column, known)
            gold = gold[task.name]
            missing = sorted(set(gold) - seen)
            if missing:  # a typo in the labels file would otherwise pass without a word
                log.warning(
                    "%s: %d %s label(s) name ids not among the set's articles (%s%s); they may "
                    "be among its %d records that could not be read, and are not scored",
                    self.name,
                    len(missing),
                    task.name,
                    ", ".join(missing[:3]),
                    ", ..." if len(missing) > 3 else "",
                    unnamed,
                )
            self._gold[key] = gold
        return self._gold[key]


@dataclass
class RawSet:
    """One evaluation set as read: its records (articles and unreadable ones, in input order),
    read once, and the annotations file. :meth:`prepare` makes the :class:`EvalSet` a model
    sees, with the model's own preparation."""

    name: str
    records: list[Record]
    annotations: list[str]
    id_column: str = "id"
    source: str = ""
    _prepared: dict[str, EvalSet] = field(default_factory=dict)
    _gold: dict = field(default_factory=dict)  # shared by the prepared sets (same ids)

    def prepare(self, preparation: Preparation) -> EvalSet:
        """The set as a model with ``preparation`` sees it, exactly as newsclf-predict prepares
        its articles (:func:`newsclf.predict.prepare_records`): what is empty after cleaning
        and cutting is rejected, repeated ids after their first article. Computed once per
        distinct preparation."""
        key = preparation.key
        if key not in self._prepared:
            kept, rejects, _ = prepare_records(
                self.records, preparation.cleaner, preparation.max_chars
            )
            # the repeated ids go among the other rejects where they were read, not after
            # them all (rejects.csv lists records in input order)
            position = {id(record): i for i, record in enumerate(self.records)}
            kept_at = [position[id(p.original)] for p in kept]
            articles, seen, repeated = [], set(), []
            for prepared, at in zip(kept, kept_at, strict=True):
                a = prepared.article
                if a.id in seen:
                    reason = "id seen earlier in the set"
                    repeated.append((at, Reject(a.id, a.source, "duplicate_id", reason)))
                    continue
                seen.add(a.id)
                articles.append(a)
            rejects = in_input_order(len(self.records), kept_at, rejects, repeated)
            self._prepared[key] = EvalSet(
                self.name,
                articles,
                rejects,
                self.annotations,
                self.id_column,
                self.source,
                _gold=self._gold,
            )
        return self._prepared[key]

    @property
    def prepared(self) -> dict[str, EvalSet]:
        """The prepared sets made so far, by preparation key."""
        return dict(self._prepared)


SHARED_DATA_DEFAULT = "../shared/data"  # configs/evaluation: NEWSCLF_SHARED_DATA's default


def load_set(name: str, cfg: Mapping[str, Any]) -> RawSet:
    """Read an evaluation set (``{source: <Source config>, annotations: {path, id_column}}``);
    each model prepares its articles with its own preparation (:meth:`RawSet.prepare`)."""
    with set_keys(name):
        return _load_set(name, cfg)


def _load_set(name: str, cfg: Mapping[str, Any]) -> RawSet:
    from hydra.utils import instantiate

    if "source" not in cfg or "annotations" not in cfg:
        raise NewsclfError(
            f"evaluation.{name}: needs 'source' and 'annotations' keys, has {sorted(cfg)}"
        )
    annotations = cfg["annotations"] or {}
    path = annotations.get("path")
    if not path:
        raise NewsclfError(f"evaluation.{name}.annotations.path: no annotations file given")
    source: Source = instantiate(cfg["source"])
    if str(source.path).startswith(SHARED_DATA_DEFAULT) and not Path(str(source.path)).exists():
        raise NewsclfError(
            f"{source.path}: source path does not exist; evaluation set {name} is read from the "
            f"shared data folder: set NEWSCLF_SHARED_DATA to it (default {SHARED_DATA_DEFAULT}, "
            "from the working folder)"
        )
    records = list(source.read())
    if not records:
        raise NewsclfError(f"{source.path}: evaluation set {name} is empty (no articles)")
    if not any(isinstance(r, Article) for r in records):  # e.g. a mistyped text_column
        raise NewsclfError(
            f"{source.path}: evaluation set {name}: no article could be read ({records[0].detail})"
        )
    paths = [path] if isinstance(path, str) else [str(p) for p in path]
    return RawSet(
        name=name,
        records=records,
        annotations=paths,
        id_column=str(annotations.get("id_column") or "id"),
        source=str(source.path),
    )


# a config key the source's and annotations' errors name ("set source.text_column"), not a
# file name (source.csv)
_SET_KEY = re.compile(
    r"(?<![^\s(])((?:source|annotations)\.(?:path|format|pattern|encoding|\w+_column|"
    r"meta_columns|split|name|on_error|chunk_rows)\b)"
)


@contextmanager
def set_keys(name: str) -> Iterator[None]:
    """Errors of a source or annotations name their keys as an evaluation set's:
    ``source.text_column`` is ``evaluation.<name>.source.text_column`` there."""
    try:
        yield
    except Exception as exc:
        # Hydra wraps the errors of Source's constructor (source.format=xml)
        error = exc if isinstance(exc, NewsclfError) else exc.__cause__
        if not isinstance(error, NewsclfError):
            raise
        raise NewsclfError(_SET_KEY.sub(rf"evaluation.{name}.\1", str(error))) from None


def load_sets(sets: Mapping[str, Mapping[str, Any]] | None) -> dict[str, RawSet]:
    """Every configured evaluation set by name (``evaluation.<name>``), read, in config order."""
    return {name: load_set(name, cfg) for name, cfg in (sets or {}).items()}


def score(classifier: Any, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Every class's probability for each text and the class names: the one place where
    evaluation scores texts, through the classifier newsclf-predict uses."""
    texts = list(texts)
    if hasattr(classifier, "scores"):
        if not texts:
            return np.zeros((0, len(classifier.labels))), list(classifier.labels)
        probabilities, classes, _ = classifier.scores(texts)
        return np.asarray(probabilities, dtype=float), classes
    # A pickle-format pyfunc model gives one label (and maybe its probability) per text.
    out = classifier.predict(texts)
    classes = sorted(set(out["label"]))
    matrix = np.zeros((len(texts), len(classes)))
    for row, (label, p) in enumerate(zip(out["label"], out["probability"], strict=True)):
        matrix[row, classes.index(label)] = 1.0 if np.isnan(p) else p
    return matrix, classes


@dataclass
class SetScore:
    """A model's scores on one evaluation set for one task."""

    set_name: str
    task: str
    labels: list[str]
    n_scored: int
    n_gold: int  # annotated articles of the task, scored or not
    metrics: dict[str, float]
    predictions: pd.DataFrame  # id, title, gold, predicted, probability, p_<class>...
    bins: list[dict]
    n_unlabelled: int = 0  # kept articles without a gold label of the task (readers disagreed)

    @property
    def n_not_scored(self) -> int:
        """Annotated articles that were rejected (unreadable, empty, repeated id)."""
        return self.n_gold - self.n_scored

    @property
    def misclassified(self) -> pd.DataFrame:
        """Wrong predictions, the most confident first."""
        wrong = self.predictions[self.predictions["gold"] != self.predictions["predicted"]]
        columns = ["id", "title", "gold", "predicted", "probability", "gold_probability"]
        return wrong[columns].sort_values(
            ["probability", "id"], ascending=[False, True], kind="stable"
        )


def model_task(model: LoadedModel, tasks: Mapping[str, Task]) -> Task:
    """The model's task: its own label names, with the annotations column of the configured
    task of the same name (the task name itself otherwise)."""
    configured = tasks.get(model.task)
    labels = list(model.classifier.labels) or (configured.label_names if configured else [])
    descriptions = configured.labels if configured else {}
    return Task(
        name=model.task,
        labels={label: descriptions.get(label, "") for label in labels},
        column=configured.annotation_column if configured else model.task,
    )


def evaluate(classifier: Any, task: Task, evalset: EvalSet, n_bins: int = 10) -> SetScore | None:
    """Score ``classifier`` (a ``newsclf.saved_model.Classifier``) on the articles of ``evalset``
    that have a gold label of ``task``; None when the set has no label of that task."""
    gold = evalset.gold(task)
    if not gold:
        return None
    articles = [a for a in evalset.articles if a.id in gold]
    labels = task.label_names
    probabilities, classes = score(classifier, [a.text for a in articles])
    best = probabilities.argmax(axis=1) if len(articles) else np.zeros(0, dtype=int)
    predicted = [classes[i] for i in best]
    y_true = [gold[a.id] for a in articles]
    top = probabilities[np.arange(len(articles)), best] if len(articles) else np.zeros(0)
    column = {c: i for i, c in enumerate(classes)}
    frame = pd.DataFrame(
        {
            "id": [a.id for a in articles],
            "title": [_title(a) for a in articles],
            "gold": y_true,
            "predicted": predicted,
            "probability": top.astype(float),
            "gold_probability": [
                float(probabilities[i, column[g]]) if g in column else 0.0
                for i, g in enumerate(y_true)
            ],
        }
    )
    for i, c in enumerate(classes):
        frame[f"p_{c}"] = probabilities[:, i].astype(float)
    scores: dict[str, float] = {}
    bins: list[dict] = []
    if articles:
        # Macro-F1 over the labels the set has: a set without pro_russia articles (NYT) would
        # otherwise average in a zero for that label, whatever the model does.
        present = labels_present(labels, y_true)
        scores = evaluation.metrics(y_true, predicted, present)
        bins = evaluation.confidence_bins(y_true, predicted, top, n_bins)
        scores["ece"] = evaluation.expected_calibration_error(bins)
        scores["log_loss"] = evaluation.log_loss(y_true, probabilities, classes)
    scores["n"] = len(articles)
    unlabelled = len(evalset.articles) - len(articles)
    return SetScore(
        evalset.name, task.name, labels, len(articles), len(gold), scores, frame, bins, unlabelled
    )


def n_in_training(scored: SetScore, evalset: EvalSet, hashes: np.ndarray | None) -> int | None:
    """How many of the articles ``scored`` holds are among a model's training articles
    (``hashes``: ``saved_model.text_hashes`` of their bodies); None when they are not known."""
    if hashes is None:
        return None
    bodies = {a.id: a.body for a in evalset.articles}
    return saved_model.count_seen(hashes, (bodies[i] for i in scored.predictions["id"]))


def overlap_warning(scored: SetScore, n_seen: int | None, model: str) -> str | None:
    """The line to print when a set's scored articles include ``model``'s training texts."""
    if not n_seen:
        return None
    return (
        f"{scored.set_name}: {n_seen} of {scored.n_scored} scored articles are among the texts "
        f"{model} was trained on; its {scored.task} scores there are not held out"
    )


def labels_present(labels: Sequence[str], gold: Sequence[str]) -> list[str]:
    """The task's ``labels`` that ``gold`` has, in task order: what a set's macro-F1 (and its
    report) averages over, so a set without pro_russia articles is not scored as if a zero."""
    have = set(gold)
    return [label for label in labels if label in have]


def _title(article: Article) -> str:
    """The title, or the body's first line when the source has no title column."""
    return article.title or article.body.split("\n", 1)[0][:200]


ARTIFACTS = ("report.txt", "confusion_matrix.png", "reliability.png")  # when articles scored


def write_artifacts(
    result: SetScore, folder: Path, title: str, rejects: Sequence[Reject] = ()
) -> list[Path]:
    """The files of one model x set: confusion matrix and reliability PNGs, the predictions and
    the misclassified articles as CSV, scikit-learn's report (over the labels the set has, as
    its macro-F1), and the set's rejects with their reasons. Returns their paths; files of an
    earlier evaluation that this one does not write are removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NewsclfError(
            f"{folder}: cannot write the evaluation files ({exc.strerror})"
        ) from None
    frame = result.predictions
    reject_rows = pd.DataFrame(
        [(r.id, r.source, r.reason, r.detail) for r in rejects],
        columns=["id", "source", "reason", "detail"],
    )
    paths = [
        _atomic_csv(frame, folder / "predictions.csv"),
        _atomic_csv(result.misclassified, folder / "misclassified.csv"),
        _atomic_csv(reject_rows, folder / "rejects.csv"),
    ]
    if result.n_scored:
        gold, predicted = frame["gold"].tolist(), frame["predicted"].tolist()
        report = evaluation.report(gold, predicted, labels_present(result.labels, gold))
        (folder / "report.txt").write_text(report, encoding="utf-8")
        paths += [
            folder / "report.txt",
            evaluation.plot_confusion_matrix(
                gold, predicted, result.labels, folder / "confusion_matrix.png", title
            ),
            evaluation.plot_reliability(result.bins, folder / "reliability.png", title),
        ]
    else:
        for name in ARTIFACTS:
            (folder / name).unlink(missing_ok=True)
    return paths


def _atomic_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8")
    return path
