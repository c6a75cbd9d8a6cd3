"""Read, parse, clean and de-duplicate articles: the ingest stage (the cleaning itself is
``newsclf.cleaning``).

Every input record ends up either as an :class:`Article` or as a :class:`Reject` with a reason,
so a summary can always show ``input = kept + rejected``.
"""

from __future__ import annotations

import codecs
import fnmatch
import functools
import hashlib
import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dateutil import parser as dateparser

from newsclf.errors import NewsclfError, first_line
from newsclf.table_files import (
    count_lines,
    csv_rows,
    decode,
    is_wide,
    jsonl_rows,
    parquet_rows,
)

if TYPE_CHECKING:
    from newsclf.cleaning import Cleaner, Removal

log = logging.getLogger(__name__)

TABLE_FORMATS = ("jsonl", "csv", "parquet")
FORMATS = ("txt", *TABLE_FORMATS, "hf", "hf_disk")
_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}

# a URI: a scheme of two or more characters, then ":/" (hdfs://, s3a://, file:/x, file:///x);
# a Windows drive letter (C:/x) and a relative name with a colon (preds:v1) are plain paths
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


@dataclass(frozen=True)
class Article:
    """One news article. ``text`` (title + body) is what models read; ``body`` is what makes
    two articles the same text (de-duplication: syndicated copies carry other headlines)."""

    id: str
    title: str
    body: str
    date: str | None = None  # ISO date, when known
    source: str = ""  # file (and record) it came from
    meta: Mapping[str, str] = field(default_factory=dict)  # extra configured columns
    unread_date: str = ""  # a date value that could not be read (``date`` is None): counted

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}" if self.title else self.body


def _saved_to_disk(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()


def body_of(title: str | None, text: str) -> str:
    """The body of an article whose title is ``title`` and ``Article.text`` is ``text``: the
    inverse of ``Article.text``, for rows that keep the text and title only."""
    return text[len(title) + 2 :] if title else text


@dataclass(frozen=True)
class Reject:
    """An input record that was not kept, and why."""

    id: str | None
    source: str
    reason: str  # short code: empty_text, duplicate_id, duplicate_text, unreadable, ...
    detail: str = ""


Record = Article | Reject

_SAME_TEXT = "same text as "
_UNNAMED_FIRST = "an earlier article"  # the first copy's id was not kept (batch prediction)


def place_id(where: str) -> str:
    """The id of a record whose own id could not be read (a ``malformed_record``, a
    ``wrong_type`` id, an ``unreadable`` file): where it is, ``<file name>:<line or row>`` from
    its source ``<file>:<line or row>`` (a whole file: its name), so the rejects file says which
    record (an empty id did not), whichever folder the input was read from."""
    return where.rpartition("/")[2]


# the rejects that can be named by their place instead of an id (see place_id)
_PLACE_NAMED = frozenset({"malformed_record", "wrong_type", "unreadable"})


def id_unknown(reject: Reject) -> bool:
    """Whether ``reject``'s record was rejected before its own id was read: no id, or its place
    as id (:func:`place_id`). An annotation naming an id missing from the input may be it."""
    if reject.id is None:
        return True
    return reject.reason in _PLACE_NAMED and reject.id == place_id(reject.source)


def kept_copy_id(reason: str, detail: str) -> str | None:
    """The id of the article a ``duplicate_text`` reject repeats ("same text as <id>" in its
    detail); None for other rejects and when the first copy is not named."""
    if reason != "duplicate_text" or not detail.startswith(_SAME_TEXT):
        return None
    kept = detail[len(_SAME_TEXT) :]
    return None if kept == _UNNAMED_FIRST else kept


# --------------------------------------------------------------------------- parsing


# Two fill-ins for the parts a written date leaves out, differing in year, month and day: a
# part that comes out differently was not in the text (dateutil would take it from today).
_FILL_INS = (datetime(2000, 1, 1), datetime(2001, 2, 2))


def parse_date(value: str | None) -> str | None:
    """Parse a date in any common written form ('Sunday, 5 March 2017', '2017-03-05') to ISO.

    A date without its day gives the month ('March 2017': '2017-03'), one with only a year the
    year ('2017'); one without a year gives None: the same text always gives the same date.
    """
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:  # ISO first: dayfirst parsing would swap month and day in 2020-01-02
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    try:
        first, second = (dateparser.parse(value, dayfirst=True, default=d) for d in _FILL_INS)
    except (ValueError, OverflowError, TypeError):
        return None
    if first.year != second.year:
        return None
    if first.month != second.month:
        return f"{first.year:04d}"
    if first.day != second.day:
        return f"{first.year:04d}-{first.month:02d}"
    return first.date().isoformat()


def _date_line(line: str) -> str | None:
    """The date of a date line: short, with a digit, parsed entirely (not a title with a year
    in it) to a date that has its year. A line without one ("May 9", "9/11") is no date line,
    so it stays the title, whatever today's date."""
    if len(line) > 40 or not re.search(r"\d", line):
        return None
    return parse_date(line)


def parse_txt(raw: str, article_id: str, source: str = "") -> Article:
    """Parse the seed format: a date line, a title line, then the body.

    A missing date line is tolerated (date None, the first line is the title).
    """
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    if not nonblank:
        return Article(id=article_id, title="", body="", source=source)
    first = nonblank[0]
    article_date = _date_line(lines[first].strip())
    if article_date is not None:
        nonblank = nonblank[1:]
    if not nonblank:
        return Article(id=article_id, title="", body="", date=article_date, source=source)
    title_at = nonblank[0]
    body = "\n".join(lines[title_at + 1 :])
    return Article(
        id=article_id, title=lines[title_at].strip(), body=body, date=article_date, source=source
    )


# --------------------------------------------------------------------------- reading


def _is_broken_link(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def input_stat(path: Path) -> os.stat_result:
    """``path``'s stat, or the link's own when its target is gone (it is listed as an input,
    read as unreadable)."""
    return path.lstat() if _is_broken_link(path) else path.stat()


def unreadable_error(file: Path | str, exc: OSError) -> NewsclfError:
    """The one line for a file the system will not hand over (permissions, a vanished file)."""
    return NewsclfError(f"{file}: cannot be read ({exc.strerror or first_line(exc)})")


@functools.lru_cache(maxsize=32)
def _name_matcher(pattern: str) -> Callable[[str], bool]:
    """``PurePosixPath(relative).match(pattern)``; for a pattern of one name, a compiled regex
    on the last part (a folder of a million files is listed in a second, not in ten)."""
    if "/" in pattern:
        return lambda relative: PurePosixPath(relative).match(pattern)
    name = re.compile(fnmatch.translate(pattern))
    return lambda relative: name.match(relative.rpartition("/")[2]) is not None


def content_id(*parts: str) -> str:
    """A stable id from content, for sources without an id column."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


@dataclass
class Source:
    """Where articles come from, as configured in ``configs/source/*.yaml``.

    ``format`` is one of txt, jsonl, csv, parquet, hf (``datasets.load_dataset``) and hf_disk
    (``datasets.load_from_disk``); ``auto`` picks it from the path. Column names apply to tables
    and HF datasets; ``id_column: null`` derives a stable id from the content. ``meta_columns``
    are carried along (e.g. an outlet column for labelling rules). ``on_error: reject`` records
    unreadable files and records in the rejects instead of stopping.
    """

    path: str
    format: str = "auto"
    pattern: str = "*.txt"
    encoding: str = "utf-8"
    id_column: str | None = "id"
    title_column: str | None = "title"
    date_column: str | None = "date"
    text_column: str = "text"
    meta_columns: Sequence[str] = ()
    split: str = "train"
    name: str | None = None  # config name of a hub dataset (load_dataset's second argument)
    on_error: str = "raise"
    chunk_rows: int = 2_000  # rows per Arrow batch read from Parquet (the reader's working set)

    def __post_init__(self) -> None:
        # read once per record: a plain tuple (Hydra passes a ListConfig, whose iteration
        # costs 20 us a record); the field itself stays as given (it is part of a job's identity)
        self._meta_columns = tuple(self.meta_columns)
        self._warned_date = False  # a source without its date column says so once
        if self.path is None or not str(self.path).strip():  # '' would read the working folder
            raise NewsclfError(
                f"source.path: {self.path!r} is not a path; set it to your articles' file or "
                "folder (source.path=...)"
            )
        if self.on_error not in ("raise", "reject"):
            raise NewsclfError(f"source.on_error: {self.on_error!r} is not one of raise, reject")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise NewsclfError(
                f"source.encoding: {self.encoding!r} is not a known encoding"
            ) from None
        fmt = self.resolved_format()
        if fmt not in FORMATS:
            raise NewsclfError(f"source.format: {fmt!r} is not one of {', '.join(FORMATS)}")
        if fmt == "jsonl" and is_wide(self.encoding):  # lines are split at the byte \n
            raise NewsclfError(
                f"source.encoding: JSONL is read as lines of bytes, which {self.encoding} text "
                "is not; convert the files to UTF-8"
            )

    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        path = Path(self.path)
        if path.is_dir():
            if _saved_to_disk(path):
                return "hf_disk"
            names = [p.name for p in path.iterdir()]
            found = {_EXTENSIONS.get(PurePosixPath(n).suffix.lower()) for n in names} - {None}
            if len(found) == 1 and not any(self.matches(n, self.pattern) for n in names):
                return found.pop()
            return "txt"
        return _EXTENSIONS.get(path.suffix.lower(), "txt")

    def read(self, skip: int = 0) -> Iterator[Record]:
        """Yield raw (uncleaned) articles and rejects, in a stable order, streaming.

        ``skip`` drops the first records without converting them (a resumed job skips what it
        has already predicted); .txt files are skipped without being read.
        """
        fmt = self.resolved_format()
        if fmt in ("hf", "hf_disk"):
            yield from itertools.islice(self._read_hf(fmt), skip, None)
            return
        files = self.files()
        if fmt == "txt":  # one record per file, so whole files can be skipped
            files, skip = files[skip:], 0
        for file in files:
            records = 0
            try:
                if fmt == "txt":
                    yield self._read_txt(file)
                else:
                    for make in self._table_records(file, fmt):
                        records += 1
                        if skip:
                            skip -= 1
                            continue
                        yield make()
            except (NewsclfError, OSError) as error:
                # a file the system will not hand over (permissions, a vanished file) is a bad
                # input like any other: one line, or with on_error=reject an unreadable record
                exc = error if isinstance(error, NewsclfError) else unreadable_error(file, error)
                if self.on_error == "raise":
                    raise exc from None
                if records:  # the rest of the file is unread: its records cannot be counted
                    raise NewsclfError(
                        f"{exc}; stopped after {records} records of {file}, since the rest of "
                        "it cannot be read or counted"
                    ) from None
                if skip:
                    skip -= 1
                    continue
                # a .txt article's id is its file's stem, known even when the file is not;
                # a table file's records are unknown: the reject is named by the file
                file_id = file.stem if fmt == "txt" else place_id(str(file))
                yield Reject(id=file_id, source=str(file), reason="unreadable", detail=str(exc))

    def check_output_outside(self, output: str | Path, key: str) -> None:
        """Refuse an output (config key ``key``) that is the input or in its folder, even with
        overwrite: it would replace the articles it is made from, or be read as articles by
        the next run. Paths on a cluster's file system are compared by the Spark engine."""
        if URI_SCHEME.match(str(self.path)) or URI_SCHEME.match(str(output)):
            return
        inputs, target = Path(str(self.path)).resolve(), Path(output).resolve()
        if target == inputs or (inputs.is_dir() and inputs in target.parents):
            raise output_in_input(output, self.path, key, inside=target != inputs)

    def files(self) -> list[Path]:
        """The input files, sorted (a clear error when there are none)."""
        fmt = self.resolved_format()
        path = Path(self.path)
        if not path.exists():
            raise NewsclfError(f"{path}: source path does not exist")
        files = [path] if path.is_file() else self._files(path, fmt)
        if not files:
            raise self.no_files_error(path, self.file_pattern(fmt), fmt)
        return files

    @staticmethod
    def no_files_error(folder: object, pattern: str, fmt: str) -> NewsclfError:
        """No file in ``folder`` matches ``pattern``; a hint when the pattern names another
        format's files (a preset's pattern left in place after changing source.format)."""
        named = _EXTENSIONS.get(PurePosixPath(pattern.lower()).suffix)
        hint = ""
        if pattern.startswith("*.") and named and named != fmt:
            hint = f": it names {named} files, source.format is {fmt} (source.pattern='*.{fmt}'?)"
        return NewsclfError(f"{folder}: no input files (pattern {pattern!r}{hint})")

    def count(self) -> int | None:
        """The number of input records when cheap to know (for a progress bar), else None."""
        fmt = self.resolved_format()
        try:
            if fmt == "txt":
                return len(self.files())
            if fmt == "parquet":
                import pyarrow.parquet as pq

                return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files())
            if fmt == "jsonl":
                return sum(count_lines(f) for f in self.files())
            if fmt == "hf_disk":
                return len(self._hf_disk())
        except Exception:  # a count is a nicety: reading reports the real problem
            return None
        return None

    def fingerprint(self) -> str:
        """A digest of the input files' names, sizes, inodes and modification and change times
        (or of the hub dataset's name): a resumed job must read the same input. The change
        time catches a file rewritten with the same size and its old modification time put
        back (``cp -p``, ``rsync -t``), which no user tool can set back."""
        digest = hashlib.sha256()
        if self.resolved_format() == "hf":
            digest.update(f"{self.path}|{self.name}|{self.split}".encode())
            return digest.hexdigest()
        path = Path(self.path)
        files = [path] if path.is_file() or self.resolved_format() == "hf_disk" else self.files()
        for file in files:
            for f in sorted(file.rglob("*")) if file.is_dir() else [file]:
                st = input_stat(f)
                digest.update(
                    f"{f}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{st.st_ctime_ns}\n".encode()
                )
        return digest.hexdigest()

    @staticmethod
    def matches(relative: str, pattern: str) -> bool:
        """Whether a file (its path under the folder read) matches the glob ``pattern``, as
        ``PurePath.match`` does but ignoring case: ``*.txt`` takes ``NOTES.TXT`` too (files from
        other systems), which a case-sensitive glob would skip without a word."""
        return _name_matcher(pattern.lower())(relative.lower())

    def file_pattern(self, fmt: str) -> str:
        """The glob that selects a folder's input files of format ``fmt``: ``pattern`` as
        configured, or ``*.<fmt>`` when it is left at its ``*.txt`` default for another format."""
        if fmt == "txt":
            return self.pattern
        return self.pattern if self.pattern != "*.txt" else f"*.{fmt}"

    def check_columns(self, file: Path | str, columns: Iterable[str]) -> None:
        """Raise a NewsclfError naming ``file`` when its ``columns`` lack one the source reads
        (the text, meta, id or title column)."""
        columns = list(columns)
        wanted = [self.text_column, *self.meta_columns]
        wanted += [c for c in (self.id_column, self.title_column) if c]
        missing = [c for c in wanted if c not in columns]
        if missing:
            has = ", ".join(c if len(c) <= 40 else c[:37] + "..." for c in columns[:30])
            raise NewsclfError(
                f"{file}: missing column(s) {', '.join(missing)} (has: {has}"
                f"{', ...' if len(columns) > 30 else ''}); "
                "set source.text_column / id_column / title_column"
            )
        self.check_date_column(file, columns)

    def check_date_column(self, file: Path | str, columns: Iterable[str]) -> None:
        """Warn once when a table's ``columns`` lack the date column: dates are optional, but a
        misspelt column must not pass unnoticed."""
        columns = list(columns)
        if self.date_column and self.date_column not in columns:
            has = ", ".join(columns)
            self._warn_no_date(f"{file}: no date column {self.date_column!r} (has: {has})")

    def date_field_scan(self, file: Path | str) -> DateFieldScan:
        """The check of a JSONL file's date field, record by record (:class:`DateFieldScan`)."""
        return DateFieldScan(self, file)

    def _warn_no_date(self, problem: str) -> None:
        if not self._warned_date:  # once a source: its files are usually alike
            self._warned_date = True
            log.warning(
                "%s; dates are left empty (set source.date_column, or source.date_column=null "
                "to read none)",
                problem,
            )

    # -- helpers

    def _files(self, folder: Path, fmt: str) -> list[Path]:
        # a link whose target is gone is listed too: reading it counts it as unreadable
        files = [p for p in folder.rglob("*") if p.is_file() or _is_broken_link(p)]
        self.check_no_json_skipped(folder, (p.name for p in files), fmt)
        pattern = self.file_pattern(fmt)
        under = "/" in pattern  # else the name alone decides
        return sorted(
            p
            for p in files
            if self.matches(p.relative_to(folder).as_posix() if under else p.name, pattern)
        )

    def check_no_json_skipped(self, folder: Path | str, names: Iterable[str], fmt: str) -> None:
        """A folder read as JSONL by the pattern ``*.jsonl`` (the default, and the ``jsonl``
        source's) must not hold ``.json`` files: they count as JSONL when the format is
        detected, and would be skipped silently."""
        if fmt != "jsonl" or self.file_pattern(fmt) != "*.jsonl":
            return
        skipped = sorted(n for n in names if n.lower().endswith(".json"))
        if skipped:
            raise NewsclfError(
                f"{folder}: holds .json files ({', '.join(skipped[:3])}"
                f"{', ...' if len(skipped) > 3 else ''}) that the pattern '*.jsonl' "
                "would skip; set source.pattern='*.json' to read them (or '*.json*' for both), or "
                "move them out of the folder"
            )

    def _read_txt(self, file: Path) -> Record:
        text = decode(file.read_bytes(), file, self.encoding)
        return parse_txt(text, article_id=file.stem, source=str(file))

    def _table_records(self, file: Path, fmt: str) -> Iterator[Callable[[], Record]]:
        """One function per record that builds it, so skipped records cost no conversion."""
        reader = {"jsonl": jsonl_rows, "csv": csv_rows, "parquet": parquet_rows}[fmt]
        checked = False
        # each JSONL record names its own fields (row_to_record checks the ones it needs)
        dates = self.date_field_scan(file) if fmt == "jsonl" else None
        for record_no, row in reader(file, self):
            where = f"{file}:{record_no}"
            if "__reject__" in row:
                problem = row["__reject__"]
                record_id = row.get("__id__") or place_id(where)
                yield functools.partial(Reject, record_id, where, "malformed_record", problem)
                continue
            if dates is not None and not checked:
                checked = dates.add(row)
            elif not checked:
                self.check_columns(file, row.keys())
                checked = True
            yield functools.partial(self.row_to_record, row, where)
        if dates is not None and not checked:
            dates.finish()

    def _hf_disk(self):
        import datasets

        ds = datasets.load_from_disk(self.path)
        if not isinstance(ds, datasets.DatasetDict):
            return ds
        if self.split not in ds:
            raise NewsclfError(
                f"{self.path}: no split {self.split!r} (has: {', '.join(ds)}); set source.split"
            )
        return ds[self.split]

    def _read_hf(self, fmt: str) -> Iterator[Record]:
        import datasets  # heavy import, only when used

        try:
            if fmt == "hf_disk":
                ds = self._hf_disk()  # memory-mapped Arrow: iterating reads it in pieces
            else:  # streaming: rows arrive as they are read, nothing is materialised
                ds = datasets.load_dataset(self.path, self.name, split=self.split, streaming=True)
            rows = iter(ds)
            first = next(rows, None)
        except (OSError, ValueError, KeyError) as exc:  # OSError: also the hub not answering
            saved = fmt == "hf" and _saved_to_disk(Path(self.path))
            hint = "; a folder saved with save_to_disk is read with source.format=hf_disk"
            raise NewsclfError(
                f"{self.path}: cannot load Hugging Face dataset: {first_line(exc).rstrip('.')}"
                + (hint if saved else "")
            ) from None
        if first is None:
            return
        self.check_columns(Path(self.path), ds.column_names or first.keys())
        row, i = first, 0
        while row is not None:
            yield self.row_to_record(row, f"{self.path}[{self.split}]:{i}")
            i += 1
            try:
                row = next(rows, None)
            except Exception as exc:  # the loaders raise many types for bad data mid-stream
                raise NewsclfError(
                    f"{self.path}: cannot read the Hugging Face dataset after record {i - 1} "
                    f"({first_line(exc)})"
                ) from None

    def row_to_record(self, row: Mapping, source: str) -> Record:
        """One raw row (column -> value, as pyarrow's ``to_pylist`` or ``json.loads`` gives
        it) -> its Article, or a ``wrong_type`` Reject when the text or title is not a
        string or the id neither a string nor an integer, a ``malformed_record`` one when a
        JSONL record has no text field (title, id and meta fields are optional in a record)
        (``on_error=raise``: a NewsclfError naming ``source``, the file and record).
        Every engine converts rows here, so all treat bad rows alike."""

        def cell(column: str | None) -> str:
            value = row.get(column) if column else None
            return "" if value is None else str(value)

        if self.text_column not in row:  # a JSONL record (tables have their columns checked)
            problem = (
                f"{source}: no {self.text_column!r} field (has: {', '.join(map(str, row))}); "
                "set source.text_column"
            )
            if self.on_error == "raise":
                raise NewsclfError(problem)
            return Reject(
                _string_id(row, self.id_column) or place_id(source),
                source,
                "malformed_record",
                problem,
            )

        for column in (self.text_column, self.title_column, self.id_column):
            value = row.get(column) if column else None
            if column == self.id_column and _integer(value):
                continue  # database ids: read as their digits (cell() below)
            if value is not None and not isinstance(value, str):
                # str() of a number, a list or bytes would be predicted as if it were text;
                # a float id (1.0, or NaN where an int column had a gap) has no one spelling
                problem = (
                    f"{source}: column {column!r} holds {type(value).__name__} "
                    f"{_preview(value)}, not a string"
                    + (
                        " or an integer (or set source.id_column=null to derive ids)"
                        if column == self.id_column
                        else ""
                    )
                )
                if self.on_error == "raise":
                    raise NewsclfError(problem)
                # the id, when it is a readable string, names the reject; else its place
                readable = _string_id(row, self.id_column)
                return Reject(readable or place_id(source), source, "wrong_type", problem)
        title, body = cell(self.title_column), cell(self.text_column)
        article_id = cell(self.id_column).strip() or content_id(title, body)
        written_date = cell(self.date_column).strip()
        date = parse_date(written_date)
        return Article(
            id=article_id,
            title=title.strip(),
            body=body,
            date=date,
            source=source,
            meta={c: cell(c) for c in self._meta_columns},
            unread_date=written_date if date is None else "",
        )


class DateFieldScan:
    """Warns when none of a JSONL file's first ``limit`` records has the source's date field.

    Each record names its own fields, so one record without a date says nothing of the others:
    the file is looked at until a record has the field, or ``limit`` records have not."""

    def __init__(self, source: Source, file: Path | str, limit: int = 100) -> None:
        self.source, self.file, self.limit = source, file, limit
        self.n = 0
        self.first: list[str] = []

    def add(self, row: Mapping) -> bool:
        """Look at one more record's fields; True once the file is decided."""
        if not self.source.date_column or self.source.date_column in row:
            return True
        self.first = self.first or list(row)
        self.n += 1
        if self.n >= self.limit:
            self.finish()
            return True
        return False

    def finish(self) -> None:
        """The file ended (or ``limit`` was reached) without a record with the date field."""
        if not self.n:
            return
        if self.n == 1:
            which = "its one record has no"
        else:
            first = "first " if self.n >= self.limit else ""
            which = f"none of its {first}{self.n} records has a"
        self.source._warn_no_date(
            f"{self.file}: {which} date field {self.source.date_column!r} (the first has: "
            f"{', '.join(self.first)})"
        )


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def output_in_input(output: object, source_path: object, key: str, inside: bool) -> NewsclfError:
    """The error for an output that is the input (``inside``: in the input folder)."""
    return NewsclfError(
        f"{output}: is {'in ' if inside else ''}the input (source.path {source_path}); "
        f"choose {key} outside it"
    )


def _string_id(row: Mapping, id_column: str | None) -> str:
    """A raw row's id when it is a string or an integer ("" otherwise): what names its
    reject."""
    raw_id = row.get(id_column) if id_column else None
    if _integer(raw_id):
        return str(raw_id)
    return raw_id.strip() if isinstance(raw_id, str) else ""


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --------------------------------------------------------------------------- the ingest stage


@dataclass
class IngestResult:
    """Kept articles, rejected records and boilerplate removals of one ingest."""

    articles: list[Article]
    rejects: list[Reject]
    removals: list[Removal]

    @property
    def n_input(self) -> int:
        return len(self.articles) + len(self.rejects)

    def reject_counts(self) -> Counter:
        return Counter(r.reason for r in self.rejects)


def clean_and_dedupe(
    records: Iterable[Record], cleaner: Cleaner, dedupe_text: bool = True
) -> Iterator[Record | Removal]:
    """Clean articles; reject empty ones, repeated ids and (optionally) repeated texts: a
    cleaned body seen before, whatever the title (a syndicated copy under another headline).

    Yields kept articles, rejects and boilerplate removals, in input order.
    """
    seen_ids: set[str] = set()
    seen_texts: dict[bytes, str] = {}
    for record in records:
        if isinstance(record, Reject):
            yield record
            continue
        article, removals = cleaner.clean(record)
        yield from removals
        if not article.body.strip():
            yield Reject(article.id, article.source, "empty_text", "no body text after cleaning")
            continue
        if article.id in seen_ids:
            yield Reject(article.id, article.source, "duplicate_id", "id seen earlier in the input")
            continue
        seen_ids.add(article.id)
        if dedupe_text:
            # the body, not title + body: else a retitled copy could sit in train and test
            key = hashlib.blake2b(article.body.encode("utf-8"), digest_size=16).digest()
            if key in seen_texts:
                yield Reject(
                    article.id, article.source, "duplicate_text", f"same text as {seen_texts[key]}"
                )
                continue
            seen_texts[key] = article.id
        yield article


def ingest(source: Source, cleaner: Cleaner, dedupe_text: bool = True) -> IngestResult:
    """Read, clean and de-duplicate all articles of a source into memory."""
    result = IngestResult([], [], [])
    for item in clean_and_dedupe(source.read(), cleaner, dedupe_text):
        if isinstance(item, Article):
            result.articles.append(item)
        elif isinstance(item, Reject):
            result.rejects.append(item)
        else:
            result.removals.append(item)
    if result.n_input == 0:
        raise NewsclfError(f"{source.path}: source is empty (no articles)")
    return result
