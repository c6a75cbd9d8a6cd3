"""Gold annotations: the labels people gave, read from CSV or JSONL annotation files."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.tasks import Task

log = logging.getLogger(__name__)

# the default annotations.path (${newsclf.seeds:}/labels.csv), named in errors when left in place
BUNDLED_LABELS = (Path(__file__).resolve().parent.parent / "seeds" / "labels.csv").resolve()


class UnknownArticleError(NewsclfError):
    """An annotation names an article that is not among those read."""

    def __init__(self, message: str, article_id: str, bundled: bool) -> None:
        super().__init__(message)
        self.article_id = article_id
        self.bundled = bundled  # named by the bundled corpus's labels, the default path


def load_annotations(
    path: str | Path | Sequence[str | Path] | None,
    tasks: Sequence[Task],
    id_column: str = "article_id",
    known_ids: Collection[str] | None = None,
    named: set[str] | None = None,
    skipped: list[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Read gold labels: ``{task name: {article id: label}}``.

    ``path`` is one annotations file, a list of them (e.g. the labels so far plus a file
    exported by ``newsclf-annotate`` and filled in), or None for no gold labels at all.
    Empty cells mean "not annotated for this task". Unknown article ids (when ``known_ids`` is
    given), labels outside a task's taxonomy and conflicting rows (in one file or across
    files) are errors. ``named``, when given, receives every article id the files name,
    labelled or blank (the ids to look for in the input). With ``skipped`` given, an unknown
    article id is no error: its row is left out and named there (``file:line 'id'``).
    """
    gold: dict[str, dict[str, str]] = {task.name: {} for task in tasks}
    if path is None:
        return gold
    paths = [path] if isinstance(path, str | Path) else list(path)
    for one in paths:
        _read_annotations(Path(one), tasks, id_column, known_ids, gold, named, skipped)
    return gold


def _read_annotations(
    path: Path,
    tasks: Sequence[Task],
    id_column: str,
    known_ids: Collection[str] | None,
    gold: dict[str, dict[str, str]],
    named: set[str] | None = None,
    skipped: list[str] | None = None,
) -> None:
    for line_no, row in _numbered_rows(path):
        if id_column not in row:  # a CSV's header (line 1), or one JSONL record
            where = f"{path}:{line_no if path.suffix.lower() in ('.jsonl', '.json') else 1}"
            raise NewsclfError(
                f"{where}: no '{id_column}' column (has: {', '.join(map(str, row))}); set "
                "annotations.id_column to the column of article ids"
            )
        article_id = str(row[id_column]).strip()
        if known_ids is not None and article_id not in known_ids:
            if skipped is not None:
                skipped.append(f"{path}:{line_no} {article_id!r}")
                continue
            bundled = path.resolve() == BUNDLED_LABELS  # the default, left for other articles
            hint = (
                " (the bundled corpus's labels, the default annotations.path: set it to your "
                "own labels file, or annotations.path=null)"
                if bundled
                else ""
            )
            raise UnknownArticleError(
                f"{path}:{line_no}: annotation names unknown article {article_id!r}{hint}",
                article_id,
                bundled,
            )
        if named is not None:
            named.add(article_id)
        for task in tasks:
            value = row.get(task.annotation_column)
            label = "" if value is None else str(value).strip()
            if not label:
                continue
            if label not in task.labels:
                hint = " (a quote left open? the field runs over lines)" if "\n" in label else ""
                raise NewsclfError(
                    f"{path}:{line_no}: unknown {task.name} label {label!r} for {article_id} "
                    f"(allowed: {', '.join(task.labels)}){hint}"
                )
            previous = gold[task.name].setdefault(article_id, label)
            if previous != label:
                raise NewsclfError(
                    f"{path}:{line_no}: {article_id} is annotated twice for {task.name} "
                    f"({previous!r} and {label!r})"
                )


def _numbered_rows(path: Path) -> list[tuple[int, dict]]:
    """Rows of a CSV or JSONL annotations file with their line numbers."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            if path.suffix.lower() not in (".jsonl", ".json"):
                reader = csv.DictReader(fh)
                if reader.fieldnames is None:  # not even a header: most likely a mistake
                    raise NewsclfError(f"{path}: empty annotations file (no header row)")
                # numbered by the line a record starts on: a quote left open makes the record
                # run on, and csv counts the line where it ends (blank lines are skipped, and
                # a quote open at the end of the file takes in the last line break too)
                rows, end = [], reader.line_num
                for row in reader:
                    rows.append((max(end + 1, reader.line_num - _newlines(row)), row))
                    end = reader.line_num
                return rows
            rows = []
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise NewsclfError(
                        f"{path}:{line_no}: malformed JSON line ({exc.msg} at column {exc.colno})"
                    ) from None
                if not isinstance(row, dict):
                    raise NewsclfError(f"{path}:{line_no}: JSON line is not an object")
                rows.append((line_no, row))
            return rows
    except FileNotFoundError:
        raise NewsclfError(f"{path}: annotations file does not exist") from None
    except IsADirectoryError:
        raise NewsclfError(f"{path}: annotations path is a folder, not a file") from None
    except OSError as exc:  # e.g. no permission: one line, not a traceback
        raise NewsclfError(f"{path}: cannot read annotations ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise NewsclfError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _newlines(row: dict) -> int:
    """Line breaks inside a CSV record's quoted fields (extra fields included)."""
    values = [v for v in row.values() if isinstance(v, str)]
    values += [x for v in row.values() if isinstance(v, list) for x in v]
    return sum(v.count("\n") for v in values)


def missing_column(path: str | Path | Sequence[str | Path] | None, task: Task) -> str:
    """Why the annotation files give ``task`` no label, when the reason is its column: each
    file without it, with the columns it has ("" when a file has the column)."""
    if path is None:
        return "no annotations file (annotations.path=null)"
    paths = [path] if isinstance(path, str | Path) else list(path)
    column, reasons = task.annotation_column, []
    for one in paths:
        rows = _numbered_rows(Path(one))
        if not rows:
            reasons.append(f"{one} has no annotation rows")
            continue
        columns = sorted({key for _, row in rows for key in row})
        if column in columns:
            return ""
        reasons.append(f"{one} has no {column!r} column (has: {', '.join(columns)})")
    return "; ".join(reasons)


def unknown_ids_setting(annotations: Mapping) -> str:
    """``annotations.unknown_ids``: ``error`` (the default) or ``ignore``, checked before any
    article is read."""
    value = annotations.get("unknown_ids") or "error"
    if value not in ("error", "ignore"):
        raise NewsclfError(f"annotations.unknown_ids: {value!r} is not one of error, ignore")
    return value


def load_source_annotations(
    path: str | Sequence[str] | None,
    tasks: Sequence[Task],
    id_column: str,
    known_ids: Collection[str],
    unknown_ids: str,
    source: object,
) -> dict[str, dict[str, str]]:
    """The gold labels of the articles read from ``source`` (``known_ids``). An annotation
    of another article is an :class:`UnknownArticleError`, or, with ``unknown_ids`` ignore,
    left out with one warning that counts them."""
    skipped: list[str] | None = [] if unknown_ids == "ignore" else None
    gold = load_annotations(path, tasks, id_column, known_ids, skipped=skipped)
    if skipped:
        log.warning(
            "%d annotations name articles not in %s: skipped (annotations.unknown_ids=ignore); "
            "first: %s",
            len(skipped),
            source,
            skipped[0],
        )
    return gold


def annotation_paths(value) -> str | list[str] | None:
    """``annotations.path``: one file, a list of files, or null (no gold labels)."""
    if value is None or isinstance(value, str):
        return value
    return [str(v) for v in value]


def text_copies(rejects_csv: Path, ids: Collection[str]) -> Iterator[tuple[str, str]]:
    """(copy, kept article) for each article of ``ids`` that a dataset build rejected as a
    copy of another's text (``duplicate_text``, "same text as <id>" in ``rejects.csv``)."""
    from newsclf.articles import kept_copy_id  # scikit-learn's import: only when used

    with rejects_csv.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["id"] in ids and (kept := kept_copy_id(row["reason"], row["detail"])):
                yield row["id"], kept


def merge_copies(
    gold: Mapping[str, str], copies: Iterable[tuple[str, str]]
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """One task's gold labels of articles kept in place of their text's copies: the labels
    the kept articles lack, taken from their first labelled copy, and the conflicts, copies
    whose label differs from the kept article's (which stays). ``copies`` are (copy, kept
    article) pairs in input order."""
    taken: dict[str, str] = {}
    conflicts: list[dict[str, str]] = []
    for copy, kept in copies:
        label = gold.get(copy)
        if label is None:
            continue
        kept_label = gold.get(kept) or taken.get(kept)
        if kept_label is None:
            taken[kept] = label
        elif kept_label != label:
            conflicts.append(
                {"kept_id": kept, "kept_label": kept_label, "copy_id": copy, "copy_label": label}
            )
    return taken, conflicts
