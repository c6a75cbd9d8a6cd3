"""The annotation loop: pick the articles most worth labelling next and export them in the
annotations format, so label -> rebuild -> retrain is one loop.

Two ways to rank articles that have no gold label yet:

- ``least_confident``: the current models' least confident predictions (1 - probability);
- ``conflict``: the most conflicting rule votes (entropy of the votes an article got).

With several tasks, an article's score is the mean of its per-task scores.
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from newsclf.articles import Article, Reject, kept_copy_id
from newsclf.atomic import atomic_path
from newsclf.errors import NewsclfError
from newsclf.labelling.rules import ABSTAIN, RuleSet
from newsclf.tasks import Task

STRATEGIES = ("least_confident", "conflict")


@dataclass
class Candidate:
    """An article with its score (higher = more worth labelling) and what each task said."""

    article: Article
    score: float
    hints: dict[str, str]  # column -> value, for the context file
    support: float = 0.0  # tie-break: fewer rule votes first (0 for model scores)


def vote_entropy(votes: Sequence[int]) -> float:
    """Normalised entropy of the labels voted (abstains ignored): 0 = agreement, 1 = even split."""
    counts = Counter(v for v in votes if v != ABSTAIN)
    total = sum(counts.values())
    if len(counts) < 2:
        return 0.0
    h = -sum(c / total * math.log(c / total) for c in counts.values())
    return h / math.log(len(counts))


def conflict_scores(articles: Sequence[Article], rule_sets: Mapping[str, RuleSet]) -> list[dict]:
    """Per article and task: the vote entropy, the votes as text ("neutral:2 anti_russia:1")
    and the number of votes."""
    out: list[dict] = [{} for _ in articles]
    for key, rules in rule_sets.items():
        names = rules.task.label_names
        matrix = rules.apply(articles)
        for i, row in enumerate(matrix):
            counts = Counter(names[v] for v in row if v != ABSTAIN)
            out[i][key] = (
                vote_entropy(row.tolist()),
                " ".join(f"{lab}:{n}" for lab, n in counts.most_common()),
                sum(counts.values()),
            )
    return out


def model_scores(
    articles: Sequence[Article], models: Mapping[str, object], batch_size: int = 1000
) -> list[dict]:
    """Per article and task: 1 - the model's probability, and its guess ("economy 0.41")."""
    out: list[dict] = [{} for _ in articles]
    for key, model in models.items():
        for start in range(0, len(articles), batch_size):
            chunk = articles[start : start + batch_size]
            frame = model.classifier.predict([a.text for a in chunk])
            pairs = zip(frame["label"], frame["probability"], strict=True)
            for i, (label, prob) in enumerate(pairs):
                out[start + i][key] = (1.0 - float(prob), f"{label} {float(prob):.2f}", 0)
    return out


def with_text_copies(
    articles: Sequence[Article],
    rejects: Sequence[Reject],
    annotated: Mapping[str, Collection[str]],
) -> dict[str, set[str]]:
    """``annotated`` (task key -> labelled ids) plus the articles whose text a labelled
    article repeats: a copy rejected as ``duplicate_text`` ("same text as <id>") or, with
    ``dedupe_text=false``, another article kept with it. Their text needs no label again.
    The same text is the same body, whatever the title, as de-duplication has it."""
    ids_by_text: dict[str, list[str]] = defaultdict(list)
    for article in articles:
        ids_by_text[article.body].append(article.id)
    text_of = {article.id: article.body for article in articles}
    out = {key: set(ids) for key, ids in annotated.items()}
    for key, ids in annotated.items():
        for r in rejects:
            if r.id in ids and (kept := kept_copy_id(r.reason, r.detail)):
                out[key].add(kept)
        for i in ids:
            if i in text_of:
                out[key].update(ids_by_text[text_of[i]])
    return out


def rank(
    articles: Sequence[Article],
    scores: list[dict],
    k: int,
    annotated: Mapping[str, Collection[str]],
) -> list[Candidate]:
    """The ``k`` highest-scoring articles that still lack a label for some task
    (``annotated``: task key -> ids labelled for it), each scored on the tasks it lacks; ties
    go to the article with fewer rule votes (less support), then by id."""
    candidates = []
    for article, scored in zip(articles, scores, strict=True):
        per_task = {
            key: value for key, value in scored.items() if article.id not in annotated.get(key, ())
        }
        if not per_task:
            continue
        score = float(np.mean([s for s, _, _ in per_task.values()]))
        support = float(np.mean([n for _, _, n in per_task.values()]))
        hints = {key: hint for key, (_, hint, _) in per_task.items()}
        candidates.append(Candidate(article, score, hints, support))
    candidates.sort(key=lambda c: (-c.score, c.support, c.article.id))
    return candidates[:k]


def write_export(
    candidates: Sequence[Candidate],
    tasks: Sequence[Task],
    path: str | Path,
    id_column: str = "article_id",
    overwrite: bool = False,
    excerpt_chars: int = 400,
    gold: Mapping[str, Mapping[str, str]] | None = None,
    task_keys: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Write the annotations CSV (exactly ``id_column`` + one column per task, what
    ``load_annotations`` reads back) and a context CSV beside it for the annotator. A task's
    cell holds the article's label from ``gold`` (task name -> id -> label) where it has one,
    so only the empty cells are left to fill. The context's hint columns are named by the
    tasks' config keys (``task_keys``, in the order of ``tasks``; their names by default).

    An existing file is kept (it may hold labels already typed in) unless ``overwrite``.
    """
    path = Path(path)
    context = path.with_name(f"{path.stem}.context.csv")
    check_output(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [id_column, *(t.annotation_column for t in tasks)]
    gold = gold or {}
    rows = [
        [c.article.id, *(gold.get(t.name, {}).get(c.article.id, "") for t in tasks)]
        for c in candidates
    ]
    _atomic_csv(path, columns, rows)
    found = {key for c in candidates for key in c.hints}
    keys = list(task_keys) if task_keys is not None else [t.name for t in tasks]
    hint_columns = [k for k in keys if k in found] + sorted(found - set(keys))  # tasks' order
    rows = [
        [
            c.article.id,
            f"{c.score:.4f}",
            c.article.date or "",
            c.article.title,
            *(c.hints.get(key, "") for key in hint_columns),
            " ".join(c.article.body.split())[:excerpt_chars],
        ]
        for c in candidates
    ]
    header = [id_column, "score", "date", "title", *hint_columns, "excerpt"]
    _atomic_csv(context, header, rows)
    return path, context


def check_output(path: str | Path, overwrite: bool = False) -> None:
    """Refuse to replace an export that may already hold labels typed in."""
    if Path(path).exists() and not overwrite:
        raise NewsclfError(
            f"{path}: already exists (it may hold your labels); add it to annotations.path and "
            "choose another output.path, or set output.overwrite=true"
        )


def _atomic_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")  # as labels.csv and pandas write them
        writer.writerow(header)
        writer.writerows(rows)
