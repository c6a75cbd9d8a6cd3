"""One Hugging Face ``DatasetDict`` per task: splits, fingerprint, dataset card, save and load."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import datasets as hf
import numpy as np

from newsclf.articles import Article, Reject, body_of
from newsclf.cleaning import Removal
from newsclf.errors import NewsclfError
from newsclf.tasks import Task

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of each label's articles that go to validation and test; the rest train."""

    validation: float = 0.15
    test: float = 0.15
    seed: int = 42

    def __post_init__(self) -> None:
        if not (0 <= self.validation < 1 and 0 < self.test < 1 and self.validation + self.test < 1):
            raise NewsclfError(
                f"split: validation={self.validation}, test={self.test} must be fractions "
                "with test > 0 and validation + test < 1"
            )


def stratified_split(
    labels: Sequence[int], cfg: SplitConfig, groups: Sequence[Hashable] | None = None
) -> list[str]:
    """Assign each position a split name, per label, deterministically from ``cfg.seed``.

    Unlike ``train_test_split(stratify=...)`` this works for labels with one or two examples:
    a label's first example goes to train, its second to test, its third to validation.
    Positions with the same ``groups`` value (the same body) share the split of the first of
    them, which is split by its label; without repeated groups the result is the same as
    without ``groups``.
    """
    if groups is not None:
        first: dict[Hashable, int] = {}
        leader = [first.setdefault(g, i) for i, g in enumerate(groups)]
        leaders = list(first.values())  # in order of position
        shared = stratified_split([labels[i] for i in leaders], cfg)
        of_leader = dict(zip(leaders, shared, strict=True))
        return [of_leader[i] for i in leader]
    rng = np.random.default_rng(cfg.seed)
    out = [""] * len(labels)
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        members = [members[i] for i in rng.permutation(len(members))]
        n = len(members)
        n_test = max(1 if n >= 2 else 0, round(n * cfg.test))
        n_val = max(1 if n >= 3 and cfg.validation > 0 else 0, round(n * cfg.validation))
        n_val = min(n_val, n - n_test - 1) if n > n_test else 0
        for rank, i in enumerate(members):
            out[i] = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
    return out


def features(task: Task) -> hf.Features:
    return hf.Features(
        {
            "id": hf.Value("string"),
            "date": hf.Value("string"),
            "title": hf.Value("string"),
            "text": hf.Value("string"),
            "label": hf.ClassLabel(names=task.label_names),
            "label_source": hf.Value("string"),  # gold or weak
            "label_confidence": hf.Value("float64"),  # 1.0 for gold, the label model's for weak
        }
    )


def build(
    articles: Sequence[Article],
    gold: Mapping[str, str],
    task: Task,
    split: SplitConfig,
    weak: Mapping[str, tuple[str, float]] | None = None,
    gold_in_train: bool = True,
) -> hf.DatasetDict:
    """The task's labelled articles, split into train / validation / test. Gold first:

    gold-labelled articles are split (stratified); validation and test hold gold labels only.
    ``weak`` labels (article id -> (label, confidence)), already filtered by confidence, add
    the articles without a gold label to train. With ``gold_in_train=False`` the training
    split uses weak labels only (gold train articles get their weak label or are left out),
    to measure what the rules alone are worth on the same gold test split.

    Articles are ordered by id first, so the result does not depend on input order.
    """
    weak = dict(weak or {})
    names = task.label_names
    labelled = sorted((a for a in articles if a.id in gold), key=lambda a: a.id)
    counts = Counter(gold[a.id] for a in labelled)
    weak_only = sorted((a for a in articles if a.id in weak and a.id not in gold), key=_id)
    if len(counts) == 1 or (not counts and len({weak[a.id][0] for a in weak_only}) < 2):
        raise NewsclfError(
            f"task {task.name}: needs at least two labels present in the annotations, "
            f"found {dict(counts) or 'none'} among {len(articles)} articles"
            + (f" (and {len(weak_only)} weak labels)" if weak else "")
        )
    labels = [names.index(gold[a.id]) for a in labelled]
    # grouped by body, as duplicates are found: a retitled copy is the same text
    assignment = stratified_split(labels, split, [a.body for a in labelled])
    held_out = {a.body for a, name in zip(labelled, assignment, strict=True) if name != "train"}
    rows = {name: {k: [] for k in features(task)} for name in SPLITS}

    def add(name: str, article: Article, label: str, source: str, confidence: float) -> None:
        row = rows[name]
        row["id"].append(article.id)
        row["date"].append(article.date)
        row["title"].append(article.title)
        row["text"].append(article.text)
        row["label"].append(names.index(label))
        row["label_source"].append(source)
        row["label_confidence"].append(float(confidence))

    for article, name in zip(labelled, assignment, strict=True):
        if name == "train" and not gold_in_train:
            if article.id in weak:
                add(name, article, weak[article.id][0], "weak", weak[article.id][1])
            continue
        add(name, article, gold[article.id], "gold", 1.0)
    for article in weak_only:
        if article.body not in held_out:  # a copy of a test body (dedupe_text=false)
            add("train", article, weak[article.id][0], "weak", weak[article.id][1])
    feats = features(task)
    info = hf.DatasetInfo(description=task.description, features=feats)
    dd = hf.DatasetDict(
        {name: hf.Dataset.from_dict(rows[name], features=feats, info=info) for name in SPLITS}
    )
    _check_disjoint(dd)
    return dd


def _id(article: Article) -> str:
    return article.id


def _check_disjoint(dd: hf.DatasetDict) -> None:
    seen: dict[str, str] = {}
    for name in SPLITS:
        for title, text in zip(dd[name]["title"], dd[name]["text"], strict=True):
            # by body, as duplicates are found: a retitled copy is the same text
            other = seen.setdefault(body_of(title, text), name)
            if other != name:  # cannot happen after de-duplication; guards against leaks
                raise NewsclfError(f"the same text is in both {other} and {name} splits")


def fingerprint(dd: hf.DatasetDict) -> str:
    """A content hash of the splits: same articles, labels and splits give the same value."""
    h = hashlib.sha256()
    for name in SPLITS:
        split = dd[name]
        h.update(json.dumps(split.features["label"].names).encode())
        columns = ["id", "text", "label", "label_source", "label_confidence"]
        for row in split.select_columns(columns):
            row["label_confidence"] = round(row["label_confidence"], 6)
            h.update(name.encode())
            h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()[:16]


def label_counts(dd: hf.DatasetDict) -> dict[str, dict[str, int]]:
    """``{label: {split: count}}`` for every label of the task, zeros included."""
    names = dd["train"].features["label"].names
    counts = {label: dict.fromkeys(SPLITS, 0) for label in names}
    for split in SPLITS:
        for label, n in Counter(dd[split]["label"]).items():
            counts[names[label]][split] = n
    return counts


@dataclass(frozen=True)
class WeakSummary:
    """The manifest's account of a build's weak labels: settings and how they did."""

    rules: str
    label_model: str
    min_confidence: float
    gold_in_train: bool
    coverage: float | None = None
    accuracy: float | None = None  # None when no gold label to check against
    # weak rows in the training split: with gold_in_train=false these include the weak
    # labels of gold train articles, which the report's n_train (no gold) does not count
    n_train: int = 0


@dataclass(frozen=True)
class Manifest:
    """What a dataset folder holds and how it was built (``manifest.json``): the task, the
    fingerprint, the source and annotations, the split, the cleaning the models trained on it
    repeat, and every input counted (read = kept + rejected; labelled = gold + weak).

    Only task, labels and fingerprint are required: folders written by older newsclf
    versions (or by benchmarks/out_of_core.py) may lack the rest."""

    task: str
    labels: list[str]
    fingerprint: str
    source: str = ""
    annotations: str | list[str] | None = None
    split: dict = field(default_factory=dict)
    # the models trained on it clean raw articles the same way (newsclf-train); None: unknown
    clean: dict | None = None
    n_input: int = 0
    n_kept: int = 0
    n_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    n_labelled: int = 0
    n_gold: int = 0
    n_weak: int = 0
    n_unlabelled: int = 0
    removed_by_rule: dict[str, int] = field(default_factory=dict)
    unread_dates: int = 0  # articles read whose date value could not be read (left empty)
    rows: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    weak: WeakSummary | None = None
    path: str | None = None  # the folder it was read from or saved to; not written

    def to_dict(self) -> dict:
        """The ``manifest.json`` mapping (every field but ``path``)."""
        data = asdict(self)
        del data["path"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping, path: str | None = None) -> Manifest:
        """A manifest from its JSON mapping; keys it does not know are ignored."""
        known = {f.name for f in fields(cls)} - {"path"}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("weak") is not None:
            weak_known = {f.name for f in fields(WeakSummary)}
            values["weak"] = WeakSummary(
                **{k: v for k, v in values["weak"].items() if k in weak_known}
            )
        missing = sorted({"task", "labels", "fingerprint"} - set(values))
        if missing:
            raise NewsclfError(f"{path or 'manifest'}: manifest.json lacks {', '.join(missing)}")
        return cls(**values, path=path)


def split_stats(dd) -> tuple[dict[str, int], dict[str, dict[str, int]], dict[str, Counter]]:
    """Rows per split, ``label_counts`` and label sources per split: of a DatasetDict, or as
    counted while writing (an object with ``rows``, ``label_counts`` and ``sources``, such as
    :class:`newsclf.build.Written`)."""
    if not isinstance(dd, hf.DatasetDict):
        return dd.rows, dd.label_counts, dd.sources
    rows = {s: dd[s].num_rows for s in SPLITS}
    return rows, label_counts(dd), {s: Counter(dd[s]["label_source"]) for s in SPLITS}


def dataset_card(dd, task: Task, manifest: Manifest) -> str:
    """A Hugging Face dataset card (README.md with YAML front matter) of a DatasetDict or of
    the counts of one written in chunks (see :func:`split_stats`)."""
    rows, counts, sources = split_stats(dd)
    lines = [
        "---",
        "language: [en]",
        "task_categories: [text-classification]",
        f"pretty_name: newsclf {task.name}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *[f"  - split: {s}\n    path: parquet/{s}.parquet" for s in SPLITS],
        "---",
        "",
        f"# newsclf dataset: {task.name}",
        "",
        task.description,
        "",
        f"- fingerprint: `{manifest.fingerprint}`",
        f"- source: `{manifest.source}`",
        f"- split seed: {manifest.split['seed']} "
        f"(validation {manifest.split['validation']}, test {manifest.split['test']})",
        f"- articles read: {manifest.n_input} = {manifest.n_kept} kept + "
        f"{manifest.n_rejected} rejected {manifest.rejected_by_reason}",
        f"- kept articles without a {task.name} label: {manifest.n_unlabelled}",
        *_weak_lines(sources, manifest),
        f"- boilerplate paragraphs removed: {manifest.removed_by_rule}",
        f"- dates that could not be read (left empty): {manifest.unread_dates}",
        "",
        "## Labels",
        "",
        "| label | description | " + " | ".join(SPLITS) + " | total |",
        "|---|---|" + "---:|" * (len(SPLITS) + 1),
    ]
    for label, by_split in counts.items():
        cells = " | ".join(str(by_split[s]) for s in SPLITS)
        lines.append(f"| {label} | {task.labels[label]} | {cells} | {sum(by_split.values())} |")
    totals = " | ".join(str(rows[s]) for s in SPLITS)
    lines += [f"| **all** | | {totals} | {sum(rows.values())} |", ""]
    lines += [
        "## Columns",
        "",
        "`id` (stable article id), `date` (ISO), `title`, `text` (title and cleaned body, "
        "the model input), `label` (ClassLabel), `label_source` (`gold` from the annotations, "
        "`weak` from the labelling rules, training split only), `label_confidence` (1.0 for gold, "
        "the label model's posterior for weak labels).",
        "",
    ]
    return "\n".join(lines)


def _weak_lines(sources: Mapping[str, Counter], manifest: Manifest) -> list[str]:
    """Card lines on label sources, when the build used labelling rules."""
    weak = manifest.weak
    if not weak:
        return []
    per_split = ", ".join(
        f"{s} {sources[s].get('gold', 0)} gold + {sources[s].get('weak', 0)} weak" for s in SPLITS
    )
    return [
        f"- label sources: {per_split} (validation and test are gold only)",
        f"- weak labels: rules `{weak.rules}`, label model {weak.label_model}, "
        f"min confidence {weak.min_confidence}, gold in train: {weak.gold_in_train}; "
        "see `labeling_report.md`",
    ]


def save(
    dd: hf.DatasetDict,
    out_dir: str | Path,
    card: str,
    manifest: Manifest,
    rejects: Sequence[Reject],
    removals: Sequence[Removal],
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write the dataset folder atomically: it appears (or is replaced) only when complete.

    Layout: ``hf/`` (save_to_disk), ``parquet/<split>.parquet``, ``README.md`` (the card),
    ``manifest.json``, ``rejects.csv``, ``boilerplate.csv`` and ``extra_files`` (name -> text,
    e.g. the labelling report).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        dd.save_to_disk(str(tmp / "hf"))
        (tmp / "parquet").mkdir()
        for name in SPLITS:
            dd[name].to_parquet(str(tmp / "parquet" / f"{name}.parquet"))
        (tmp / "README.md").write_text(card, encoding="utf-8")
        (tmp / "manifest.json").write_text(
            json.dumps(manifest.to_dict(), indent=2), encoding="utf-8"
        )
        _write_csv(tmp / "rejects.csv", [asdict(r) for r in rejects], list(Reject.__annotations__))
        _write_csv(
            tmp / "boilerplate.csv", [asdict(r) for r in removals], list(Removal.__annotations__)
        )
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def swap_into_place(tmp: Path, target: Path) -> None:
    """Replace ``target`` by the complete folder ``tmp`` (renames on one file system)."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _write_csv(path: Path, rows: Sequence[Mapping], columns: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def load(path: str | Path) -> tuple[hf.DatasetDict, Manifest]:
    """Load a dataset folder written by :func:`save`: the DatasetDict and its manifest."""
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise NewsclfError(f"{path}: no dataset here (run newsclf-dataset first)")
    data = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    return hf.load_from_disk(str(path / "hf")), Manifest.from_dict(data, str(path))
