"""Read, parse, clean and de-duplicate articles: the ingest stage.

Every input record ends up either as an :class:`Article` or as a :class:`Reject` with a reason,
so a summary can always show ``input = kept + rejected``.
"""

from __future__ import annotations

import codecs
import fnmatch
import functools
import hashlib
import itertools
import json
import logging
import os
import re
import types
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath

import ftfy
from dateutil import parser as dateparser
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from newsclf.errors import NewsclfError, first_line

log = logging.getLogger(__name__)

TABLE_FORMATS = ("jsonl", "csv", "parquet")
FORMATS = ("txt", *TABLE_FORMATS, "hf", "hf_disk")
_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


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

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}" if self.title else self.body


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


def _is_wide(encoding: str) -> bool:
    """UTF-16 or UTF-32: encodings whose text is not ASCII-compatible bytes."""
    return encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))


@functools.lru_cache(maxsize=32)
def _name_matcher(pattern: str) -> Callable[[str], bool]:
    """``PurePosixPath(relative).match(pattern)``; for a pattern of one name, a compiled regex
    on the last part (a folder of a million files is listed in a second, not in ten)."""
    if "/" in pattern:
        return lambda relative: PurePosixPath(relative).match(pattern)
    name = re.compile(fnmatch.translate(pattern))
    return lambda relative: name.match(relative.rpartition("/")[2]) is not None


def _decode(data: bytes, path: Path | str, encoding: str) -> str:
    wide = _is_wide(encoding)
    if not wide and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NewsclfError(
            f"{path}: UTF-16 text (byte order mark); convert it to UTF-8 or set "
            "source.encoding=utf-16"
        )
    if not wide and b"\x00" in data[:8192]:
        raise NewsclfError(f"{path}: binary file (NUL bytes), not text")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise NewsclfError(
            f"{path}: not {encoding} text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"set source.encoding if the file uses another encoding"
        ) from None
    return text.removeprefix("\ufeff")


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
        if fmt == "jsonl" and _is_wide(self.encoding):  # lines are split at the byte \n
            raise NewsclfError(
                f"source.encoding: JSONL is read as lines of bytes, which {self.encoding} text "
                "is not; convert the files to UTF-8"
            )

    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        path = Path(self.path)
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
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

    def files(self) -> list[Path]:
        """The input files, sorted (a clear error when there are none)."""
        fmt = self.resolved_format()
        path = Path(self.path)
        if not path.exists():
            raise NewsclfError(f"{path}: source path does not exist")
        files = [path] if path.is_file() else self._files(path, fmt)
        if not files:
            raise NewsclfError(f"{path}: no input files (pattern {self.file_pattern(fmt)!r})")
        return files

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
                return sum(_count_lines(f) for f in self.files())
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
            raise NewsclfError(
                f"{file}: missing column(s) {', '.join(missing)} (has: {', '.join(columns)}); "
                "set source.text_column / id_column / title_column"
            )
        if self.date_column and self.date_column not in columns and not self._warned_date:
            # dates are optional, so no error; but a misspelt column must not pass unnoticed
            self._warned_date = True
            log.warning(
                "%s: no date column %r (has: %s); dates are left empty (set source.date_column, "
                "or source.date_column=null to read none)",
                file,
                self.date_column,
                ", ".join(columns),
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
        """A folder read as JSONL by the default pattern (``*.jsonl``) must not hold ``.json``
        files: they count as JSONL when the format is detected, and would be skipped silently."""
        if fmt != "jsonl" or self.pattern != "*.txt":
            return
        skipped = sorted(n for n in names if n.lower().endswith(".json"))
        if skipped:
            raise NewsclfError(
                f"{folder}: holds .json files ({', '.join(skipped[:3])}"
                f"{', ...' if len(skipped) > 3 else ''}) that the default pattern '*.jsonl' "
                "would skip; set source.format=jsonl and source.pattern: '*.json' to read them, "
                "'*.jsonl' to skip them"
            )

    def _read_txt(self, file: Path) -> Record:
        text = _decode(file.read_bytes(), file, self.encoding)
        return parse_txt(text, article_id=file.stem, source=str(file))

    def _table_records(self, file: Path, fmt: str) -> Iterator[Callable[[], Record]]:
        """One function per record that builds it, so skipped records cost no conversion."""
        reader = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt]
        checked = False
        for record_no, row in reader(file, self):
            where = f"{file}:{record_no}"
            if "__reject__" in row:
                problem = row["__reject__"]
                record_id = row.get("__id__") or place_id(where)
                yield functools.partial(Reject, record_id, where, "malformed_record", problem)
                continue
            if not checked:
                self.check_columns(file, row.keys())
                checked = True
            yield functools.partial(self.row_to_record, row, where)

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
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise NewsclfError(f"{self.path}: cannot load Hugging Face dataset: {exc}") from None
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
        it) -> its Article, or a ``wrong_type`` Reject when the text, title or id is not a
        string (``on_error=raise``: a NewsclfError naming ``source``, the file and record).
        Every engine converts rows here, so all treat bad rows alike."""

        def cell(column: str | None) -> str:
            value = row.get(column) if column else None
            return "" if value is None else str(value)

        for column in (self.text_column, self.title_column, self.id_column):
            value = row.get(column) if column else None
            if value is not None and not isinstance(value, str):
                # str() of a number, a list or bytes would be predicted as if it were text
                problem = (
                    f"{source}: column {column!r} holds {type(value).__name__} "
                    f"{_preview(value)}, not a string"
                )
                if self.on_error == "raise":
                    raise NewsclfError(problem)
                # the id, when it is a readable string, names the reject; else its place
                raw_id = row.get(self.id_column) if self.id_column else None
                readable = raw_id.strip() if isinstance(raw_id, str) else ""
                return Reject(readable or place_id(source), source, "wrong_type", problem)
        title, body = cell(self.title_column), cell(self.text_column)
        article_id = cell(self.id_column).strip() or content_id(title, body)
        return Article(
            id=article_id,
            title=title.strip(),
            body=body,
            date=parse_date(cell(self.date_column)),
            source=source,
            meta={c: cell(c) for c in self._meta_columns},
        )


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


UTF16_JSONL = "UTF-16 text (byte order mark); convert it to UTF-8"


def _jsonl_rows(file: Path, source: Source) -> Iterator[tuple[int, dict]]:
    if _head(file, 2) in (b"\xff\xfe", b"\xfe\xff"):  # one unreadable file, not a reject a line
        raise NewsclfError(f"{file}: {UTF16_JSONL}")
    with file.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            row = jsonl_row(raw, f"{file}:{line_no}", source.encoding, source.on_error)
            if row is not None:
                yield line_no, row


def jsonl_row(raw: bytes, where: str, encoding: str, on_error: str = "raise") -> dict | None:
    """One JSONL line as read (bytes, in ``encoding``) -> its row, None for a blank line; a line
    that cannot be decoded or parsed raises a NewsclfError naming ``where`` (file:line), or with
    ``on_error=reject`` is the row ``{"__reject__": problem}`` (every engine reads lines here)."""
    try:
        line = _decode(raw, where, encoding).strip()
    except NewsclfError as exc:  # one undecodable line is one record, not the file
        if on_error == "raise":
            raise
        return {"__reject__": str(exc)}
    if not line:
        return None
    return json_row(line, where, on_error)


def json_row(line: str, where: str, on_error: str = "raise") -> dict:
    """One non-blank JSONL line -> its row; a line that is not a JSON object raises a
    NewsclfError naming ``where`` (file:line), or with ``on_error=reject`` is the row
    ``{"__reject__": problem}``: a broken line is one lost record, not a lost file."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        at = "" if exc.msg.endswith(" at") else " at"  # "Unterminated string starting at"
        problem = f"{where}: malformed JSON line ({exc.msg}{at} column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # valid JSON beyond Python's limits
        problem = f"{where}: unreadable JSON line ({first_line(exc)})"
    else:
        if not isinstance(row, dict):
            problem = f"{where}: JSON line is not an object"
        elif ("\\ud" in line or "\\uD" in line) and _has_lone_surrogate(row):
            # JSON may escape half a UTF-16 pair; such text cannot be written as UTF-8
            problem = f"{where}: JSON line holds an unpaired \\u surrogate escape, not text"
        else:
            return row
    if on_error == "raise":
        raise NewsclfError(problem)
    return {"__reject__": problem}


def _has_lone_surrogate(row: dict) -> bool:
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


CSV_MAX_FIELD = 64 << 20  # characters: a longer field is an unclosed quote, not an article
CSV_MAX_REPLAY = 64 << 20  # characters of a record kept to re-read it from its second line
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes the decoder could not read (surrogateescape)


class _Lines:
    """The lines of a text file, numbered, that can go back to the line after a record's first.

    A record that cannot be parsed (an unclosed quote swallows the lines after it) is rejected
    with the line it starts on, and reading resumes on the next line: the lines the record
    consumed are replayed from memory, or, past ``CSV_MAX_REPLAY`` characters, by reading the
    file again up to that line. Undecodable bytes are noted per line, not fatal.
    """

    def __init__(self, file: Path, encoding: str) -> None:
        self.file, self.encoding = file, encoding
        self.handle = self._open()
        self.pending: list[str] = []  # lines to hand out again, last first
        self.no = 0  # number of the last line handed out
        self.start = 1  # first line of the current record
        self.record: list[str] | None = []  # its lines (None: too long to keep)
        self.size = 0
        self.bad: list[tuple[int, str]] = []  # (line, undecodable byte) in the current record

    def _open(self):
        utf8 = self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        encoding = "utf-8-sig" if utf8 else self.encoding  # a byte order mark is not a name
        return self.file.open(encoding=encoding, errors="surrogateescape", newline="")

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.pending.pop() if self.pending else next(self.handle)
        self.no += 1
        if self.record is not None:
            self.record.append(line)
            self.size += len(line)
            if self.size > CSV_MAX_REPLAY:
                self.record = None
        # the undecodable bytes are among the line's non-ASCII characters, a short string
        if not line.isascii() and (found := _UNDECODABLE.search(non_ascii_chars(line))):
            self.bad.append((self.no, f"0x{ord(found.group()) - 0xDC00:02x}"))
        return line

    def next_record(self) -> None:
        """The lines handed out so far belong to finished records."""
        self.start, self.record, self.size, self.bad = self.no + 1, [], 0, []

    def resume_after_start(self) -> None:
        """Go back to the line after the current record's first line."""
        if self.record is None:  # too long to have kept: read the file again up to there
            self.handle.close()
            self.handle = self._open()
            for _ in itertools.islice(self.handle, self.start):
                pass
            self.pending = []
        else:
            self.pending.extend(reversed(self.record[1:]))
        self.no = self.start
        self.next_record()

    def close(self) -> None:
        self.handle.close()


def _csv_rows(file: Path, source: Source) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file as strings, streamed line by line, each numbered by its first line.

    Quoted fields may hold newlines. A record that cannot be parsed (an unclosed quote, bytes
    that are not ``source.encoding``, a wrong number of fields) stops the read with its line
    named (``on_error: raise``) or is rejected alone. Reading goes on after the record's
    last line, or, when it could not be parsed (its end is unknown), after its first line.
    """
    import csv

    head = _head(file)
    wide = _is_wide(source.encoding)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not wide:
        raise NewsclfError(
            f"{file}: UTF-16 text (byte order mark); convert it to UTF-8 or set "
            "source.encoding=utf-16"
        )
    if not wide and b"\x00" in head[:8192]:
        raise NewsclfError(f"{file}: binary file (NUL bytes), not text")
    if not head.strip():
        raise NewsclfError(f"{file}: empty CSV file")
    if csv.field_size_limit() < CSV_MAX_FIELD:
        csv.field_size_limit(CSV_MAX_FIELD)
    lines = _Lines(file, source.encoding)
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    try:
        while True:
            problem = None
            parsed = True  # the record's end is known (its lines are its own)
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                eof = "unexpected end of data" in str(exc)
                problem = f"malformed CSV record ({'a quote is never closed' if eof else exc})"
                parsed = False
            except UnicodeDecodeError as exc:  # UTF-16 bytes surrogateescape cannot map
                # the decoder lost its place: no later record can be read (or counted)
                raise NewsclfError(  # the decoder reads ahead: the line is a lower bound
                    f"{file}: not {source.encoding} text at or after line {lines.start} "
                    f"({exc.reason})"
                ) from None
            start = lines.start
            if problem is None and lines.bad:
                line_no, byte = lines.bad[0]
                problem = (
                    f"not {source.encoding} text (byte {byte} on line {line_no}); "
                    "set source.encoding if the file uses another encoding"
                )
            elif problem is None and header is not None and row and len(row) != len(header):
                problem = (
                    f"{len(row)} fields where the header has {len(header)}: {','.join(row)[:80]!r}"
                )
            if problem is None:
                lines.next_record()
                if not row:  # a blank line
                    continue
                if header is None:
                    header = row
                    _check_header(file, start, header, source)
                    continue
                yield start, dict(zip(header, row, strict=True))
                continue
            if header is None:
                raise NewsclfError(f"{file}:{start}: unreadable CSV header ({problem})")
            error = NewsclfError(f"{file}:{start}: {problem}")
            if source.on_error == "raise":
                raise error
            yield start, {"__reject__": str(error)}
            # only a record that did not parse may have swallowed later records' lines: a
            # parsed one (bad bytes, wrong field count) owns its lines, re-reading them would
            # make phantom records of a quoted field's lines
            if not parsed and lines.no > start:
                lines.resume_after_start()
            else:
                lines.next_record()
    finally:
        lines.close()
    if header is None:
        raise NewsclfError(f"{file}: empty CSV file")


def _check_header(file: Path, line: int, header: list[str], source: Source) -> None:
    """A column the source reads must be named once: a row keeps only the last of its
    namesakes, so the other would be lost without a word."""
    used = {source.text_column, source.id_column, source.title_column, source.date_column}
    repeated = sorted(
        {c for c in header if c in used | set(source.meta_columns)}
        & {c for c in header if header.count(c) > 1}
    )
    if repeated:
        raise NewsclfError(
            f"{file}:{line}: the CSV header names column {', '.join(map(repr, repeated))} more "
            "than once; rename the columns so each is named once"
        )


def _head(file: Path, size: int = 1 << 20) -> bytes:
    with file.open("rb") as fh:
        return fh.read(size)


def _count_lines(file: Path) -> int:
    """Non-empty lines of a text file, counted in binary blocks (for progress totals)."""
    lines, last = 0, b"\n"
    with file.open("rb") as fh:
        while block := fh.read(1 << 24):
            lines += block.count(b"\n") - block.count(b"\n\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _parquet_rows(file: Path, source: Source) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        # pre_buffer (pyarrow's default) keeps every row group's buffers alive while
        # iterating: memory would grow with the file (80 MB per 100k articles measured)
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise NewsclfError(f"{file}: not a readable Parquet file ({exc})") from None
    # only the columns the source reads: others are never converted (nor can they fail)
    wanted = (source.text_column, source.title_column, source.id_column, source.date_column)
    names = set(parquet.schema_arrow.names)
    columns = [c for c in dict.fromkeys([*wanted, *source.meta_columns]) if c and c in names]
    batches = parquet.iter_batches(batch_size=source.chunk_rows, columns=columns, use_threads=False)
    row_no = 0
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            try:
                rows = batch.to_pylist()
            except UnicodeDecodeError:  # a string cell that is not UTF-8: find its row
                rows = _parquet_rows_cell_by_cell(batch, file, row_no, source)
        except NewsclfError:
            raise
        except (OSError, ValueError, OverflowError) as exc:  # ArrowException: OSError, ValueError
            raise NewsclfError(
                f"{file}: unreadable Parquet data after row {row_no} ({first_line(exc)})"
            ) from None
        if rows and row_no == 0:  # named by all the file's columns, as the other readers do
            source.check_columns(file, parquet.schema_arrow.names)
        for row in rows:
            row_no += 1
            yield row_no, row


def _parquet_rows_cell_by_cell(batch, file: Path, row_no: int, source: Source) -> list[dict]:
    """The rows of a batch that ``to_pylist`` cannot convert, its string columns decoded cell
    by cell: a row with a cell that is not UTF-8 is the row ``{"__reject__": problem}`` (with
    its id, ``"__id__"``, when that cell can be read), or with ``on_error=raise`` a
    NewsclfError naming ``file:row``: one bad cell costs one row, not the batch. ``row_no``:
    the rows read before the batch."""
    import pyarrow as pa

    columns: dict[str, list] = {}
    text: set[str] = set()  # the string columns, read as bytes (a binary column stays bytes)
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            text.add(name)
            binary = pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()
            columns[name] = column.view(binary).to_pylist()  # raw bytes: decoded below
        else:
            columns[name] = column.to_pylist()
    rows: list[dict] = []
    for i in range(batch.num_rows):
        row: dict = {}
        for name, values in columns.items():
            value = values[i]
            if name in text and value is not None:
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problem = (
                        f"{file}:{row_no + i + 1}: column {name!r} is not UTF-8 text "
                        f"(byte 0x{value[exc.start]:02x} at offset {exc.start})"
                    )
                    if source.on_error == "raise":
                        raise NewsclfError(problem) from None
                    row = {"__reject__": problem, "__id__": _readable_id(columns, i, source)}
                    break
            row[name] = value
        rows.append(row)
    return rows


def _readable_id(columns: dict[str, list], i: int, source: Source) -> str | None:
    """Row ``i``'s id from the raw ``columns``, if it has one that is UTF-8 text (or a number),
    stripped as :meth:`Source.row_to_record` strips an article's id; blank is no id."""
    value = columns.get(source.id_column or "", [None] * (i + 1))[i]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None if value is None else str(value).strip() or None


# --------------------------------------------------------------------------- cleaning

# Words of the "lorem ipsum" filler family; a paragraph made mostly of them is page noise.
LOREM_WORDS = frozenset(
    """a ac accumsan adipiscing aenean aliquam aliquet amet ante aptent arcu at auctor augue
    bibendum blandit class commodo condimentum congue consectetur consequat conubia convallis
    cras cubilia curabitur curae cursus dapibus diam dictum dictumst dignissim dis dolor donec
    dui duis efficitur egestas eget eleifend elementum elit enim erat eros est et etiam eu
    euismod ex facilisi facilisis fames faucibus felis fermentum feugiat finibus fringilla fusce
    gravida habitant habitasse hac hendrerit himenaeos iaculis id imperdiet in inceptos integer
    interdum ipsum justo lacinia lacus laoreet lectus leo libero ligula litora lobortis lorem
    luctus maecenas magna magnis malesuada massa mattis mauris maximus metus mi molestie mollis
    montes morbi mus nam nascetur natoque nec neque netus nibh nisi nisl non nostra nulla nullam
    nunc odio orci ornare parturient pellentesque penatibus per pharetra phasellus placerat
    platea porta porttitor posuere potenti praesent pretium primis proin pulvinar purus quam
    quis quisque rhoncus ridiculus risus rutrum sagittis sapien scelerisque sed sem semper
    senectus sit sociosqu sodales sollicitudin suscipit suspendisse taciti tellus tempor tempus
    tincidunt torquent tortor tristique turpis ullamcorper ultrices ultricies urna ut varius
    vehicula vel velit venenatis vestibulum vitae vivamus viverra volutpat vulputate""".split()
)
_LATIN_ENDINGS = (
    "a",
    "o",
    "i",
    "us",
    "um",
    "is",
    "ae",
    "que",
    "it",
    "ur",
    "em",
    "am",
    "ent",
    "unt",
    "at",
    "ant",
    "ex",
    "ix",
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
FILLER_WORDS = 100  # is_latin_filler judges a paragraph by this many words
_NON_ASCII_WORD_CHAR = re.compile(r"[^\W\x00-\x7f]")
_ASCII_BYTES = bytes(range(0x80))
_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")
_ASCII_CHAR = re.compile(r"[\x00-\x7f]")
_HIGH_TO_MARK = bytes(b if b < 0x80 else 0x80 for b in range(256))  # non-ASCII bytes to 0x80


def non_ascii_chars(text: str) -> str:
    """The non-ASCII characters of ``text``, in order. Deleting the ASCII bytes of its UTF-8
    keeps every multi-byte character whole (its bytes are all >= 0x80); a byte translation
    does it several times faster than a regex scans the text (lone surrogates, from
    undecodable input, pass through as they are)."""
    data = text.encode("utf-8", "surrogatepass").translate(None, _ASCII_BYTES)
    return data.decode("utf-8", "surrogatepass")


def has_non_ascii_word_char(text: str) -> bool:
    """``_NON_ASCII_WORD_CHAR.search(text) is not None``, searching only the non-ASCII
    characters (whether a character is a word character does not depend on its neighbours)."""
    return not text.isascii() and _NON_ASCII_WORD_CHAR.search(non_ascii_chars(text)) is not None


def non_ascii_runs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each maximal run of non-ASCII characters, as ``finditer`` of
    ``[^\x00-\x7f]+`` gives them: Python's regex engine scans for a single character class
    three times faster than for a repeated one, so each run is found by two such scans, its
    start, in a Latin-1 text (one byte a character), by memchr instead."""
    try:
        marked = text.encode("latin-1").translate(_HIGH_TO_MARK)
    except UnicodeEncodeError:
        marked = None
    pos = 0
    while True:
        if marked is not None:
            start = marked.find(0x80, pos)
            if start < 0:
                return
        elif (found := _NON_ASCII_CHAR.search(text, pos)) is not None:
            start = found.start()
        else:
            return
        after = _ASCII_CHAR.search(text, start)
        pos = len(text) if after is None else after.start()
        yield start, pos


# ASCII letters to lower case, every other byte to a space: a split then gives the [A-Za-z] runs
_LOWER_LETTERS = bytes(b + 32 if 65 <= b <= 90 else b if 97 <= b <= 122 else 32 for b in range(256))
_STOP_WORDS_BYTES = frozenset(w.encode("ascii") for w in ENGLISH_STOP_WORDS)
_HAS_TEXT = re.compile(r"[^\W_]", re.UNICODE)

_LINK_NOUNS = "articles?|stories|content|coverage|links|posts|reading|topics"  # "Related ..."
DEFAULT_BOILERPLATE = {
    "share_prompt": r"(share|tweet|email|print)( this( article| story| page)?)?\b"
    r"[\s:|·\-]*((facebook|twitter|x|email|e-mail|print|linkedin|whatsapp|telegram|reddit|"
    r"copy link)\b[\s|·,]*)*",
    "newsletter": r".{0,80}\b(sign up|subscribe)\b.{0,120}\b(newsletter|inbox|briefing)\b.{0,80}",
    "advertisement": r"(advertisement|advert|sponsored( content)?|ad)\W*",
    # "Related:" or "Related stories", never a sentence that opens with the word "Related"
    "related_links": rf"(related(\s+({_LINK_NOUNS}|news))?\s*[:|»›>–—-]|related\s+({_LINK_NOUNS})\b"
    r"|read more\b|see also\b|more on this story\b|most read\b).{0,160}",
    "cookie_notice": r".{0,80}\b(cookies?)\b.{0,160}\b(accept|consent|policy|settings)\b.{0,80}",
    # a copyright line, never a sentence about copyright ("Copyright lawsuits grew ...")
    "copyright": r"(©|\(c\)|copyright\s*(©|\(c\)|\d{4}\b)).{0,120}"
    r"|.{0,120}\ball rights reserved\b.{0,40}",
}


def is_latin_filler(paragraph: str) -> bool:
    """True for a paragraph of lorem-ipsum style filler (or other non-English filler).

    Real lorem-ipsum words, or Latin-looking words with almost no English function words,
    judged by the paragraph's first ``FILLER_WORDS`` words: filler is filler from its start,
    and a long paragraph (a whole article without paragraph breaks) costs no more than a short
    one.
    """
    words, stop_words = _filler_words(paragraph)
    if len(words) < 6:
        return False
    share = lambda hits: sum(hits) / len(words)  # noqa: E731
    english = share(map(stop_words.__contains__, words))
    if english >= 0.3:  # ordinary prose cannot pass either test below
        return False
    if stop_words is _STOP_WORDS_BYTES:  # rare: filler-like text, decided on str words
        words = [w.decode("ascii") for w in words]
    if share(map(LOREM_WORDS.__contains__, words)) >= 0.6:
        return True
    return english <= 0.15 and share(w.endswith(_LATIN_ENDINGS) for w in words) >= 0.3


# Characters of a paragraph's start that hold its first FILLER_WORDS words in ordinary text
_FILLER_PREFIX = 12 * FILLER_WORDS


def _filler_words(paragraph: str) -> tuple[list, frozenset]:
    """The first ``FILLER_WORDS`` words of a paragraph, lower case, and the stop words to
    look them up in (bytes or str, as the words are). Found in the paragraph's first
    ``_FILLER_PREFIX`` characters when those hold more words: all but the last of them are
    whole words (only the last can run on beyond the cut), so a long paragraph costs no more
    than a short one."""
    if len(paragraph) > _FILLER_PREFIX:
        words, stop_words = _first_words(paragraph[:_FILLER_PREFIX], FILLER_WORDS + 1)
        if len(words) > FILLER_WORDS:
            return words[:FILLER_WORDS], stop_words
    return _first_words(paragraph, FILLER_WORDS)


def _first_words(text: str, n: int) -> tuple[list, frozenset]:
    """At most ``n`` first words (runs of letters) of ``text``, lower case, with their stop
    words."""
    if not has_non_ascii_word_char(text):
        # The same words, found faster: the word characters are all ASCII, so the words are
        # the runs of [A-Za-z], which a byte translation and split find (as bytes)
        data = text.encode("utf-8").translate(_LOWER_LETTERS)
        return data.split(None, n)[:n], _STOP_WORDS_BYTES  # the last item: the rest
    found = itertools.islice(_WORD.finditer(text), n)
    return [m.group().lower() for m in found], ENGLISH_STOP_WORDS


# ASCII text that ``ftfy.fix_text`` provably returns unchanged lacks all of these: its fixes
# for ASCII are HTML entities (``&amp;``; only entities ending in ";" are decoded), terminal
# escapes and control characters (C0 but tab, newline, form feed; DEL) and "\r" line breaks.
# Every other fix (mojibake, C1 controls, ligatures, width, curly quotes, surrogates, Unicode
# normalisation) needs a non-ASCII character. tests/test_articles.py checks it against ftfy.
# (Two regexes: a character class alone is searched several times faster than an alternation.)
_FTFY_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0b\r\x0e-\x1f\x7f]")
# ASCII bytes that are not such controls: deleting them leaves the controls (a byte
# translation, several times faster than the regex's search of a whole article)
_NOT_FTFY_CONTROLS = bytes(b for b in range(0x80) if not _FTFY_ASCII_CONTROLS.match(chr(b)))
_FTFY_ASCII_ENTITIES = re.compile(r"&#?[0-9A-Za-z]{1,24};")


def _ftfy_is_noop(text: str) -> bool:
    """True when ``ftfy.fix_text`` cannot change ``text`` (whatever its options), so the call
    can be skipped: ftfy costs milliseconds per article, this check microseconds."""
    return (
        text.isascii()
        and not text.encode("ascii").translate(None, _NOT_FTFY_CONTROLS)
        and ("&" not in text or _FTFY_ASCII_ENTITIES.search(text) is None)
    )


def _has_curly_quotes(text: str) -> bool:
    """Whether ``ftfy.fixes.uncurl_quotes`` can change ``text`` (its quotes are not ASCII)."""
    return not text.isascii() and _FTFY_ACTS_ON["uncurl_quotes"].search(text) is not None


def _fix_text(text: str, uncurl_quotes: bool) -> str:
    """``ftfy.fix_text(text, uncurl_quotes=...)``, skipping the lines it cannot change.

    ftfy fixes a text in independent segments ending at newlines; this is its loop (with its
    rule that a "<" turns HTML unescaping off for the rest of the text), so an article with
    mojibake in one paragraph does not pay for the others.
    """
    if _ftfy_is_noop(text):
        return text
    config = ftfy.TextFixerConfig(explain=False, uncurl_quotes=uncurl_quotes)
    out, pos = [], 0
    while pos < len(text):
        end = min(text.find("\n", pos) + 1 or len(text), pos + config.max_decode_length)
        segment = text[pos:end]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        if not _ftfy_is_noop(segment):
            segment = _fix_segment(segment, config)
        out.append(segment)
        pos = end
    return "".join(out)


# ftfy.fix_and_explain's fixers after fix_encoding, in its order (ftfy 6), each with the
# characters it acts on: a fixer returns text holding none of them unchanged. Each of them scans
# the whole text (three are str.translate, a dictionary lookup per character), so they run only
# when a regex character class finds one of their characters, and none runs when one class of
# all their characters finds nothing. tests/test_clean_fast_path.py checks the classes.
def _char_class(table: Iterable[int]) -> str:
    return "".join(re.escape(chr(c)) for c in sorted(table))


_FTFY_TRIGGERS = {
    "fix_c1_controls": "\x80-\x9f",  # chardata.C1_CONTROL_RE
    "fix_latin_ligatures": _char_class(ftfy.fixes.LIGATURES),
    "fix_character_width": _char_class(ftfy.fixes.WIDTH_MAP),
    "uncurl_quotes": "\u02bc\u2018-\u201f",  # chardata.SINGLE_QUOTE_RE, DOUBLE_QUOTE_RE
    "fix_line_breaks": "\r\u2028\u2029\x85",
    "fix_surrogates": "\ud800-\udfff",  # fixes.SURROGATE_RE
    "remove_terminal_escapes": "\x1b",  # fixes.ANSI_RE starts with it
    "remove_control_chars": _char_class(ftfy.fixes.CONTROL_CHARS),
}
_FTFY_FIXERS = tuple(_FTFY_TRIGGERS)
_FTFY_ACTS_ON = {name: re.compile(f"[{chars}]") for name, chars in _FTFY_TRIGGERS.items()}
_FTFY_ANY_FIXER = re.compile("[" + "".join(_FTFY_TRIGGERS.values()) + "]")
# ASCII bytes no fixer acts on, and the non-ASCII bytes
_NO_FIXER_ASCII = bytes(b for b in range(0x80) if not _FTFY_ANY_FIXER.match(chr(b)))
_HIGH_BYTES = bytes(range(0x80, 0x100))


# _fix_segment's last round checks the text its previous round ended with again
@functools.lru_cache(maxsize=8)
def _any_fixer_acts_on(text: str) -> bool:
    """``_FTFY_ANY_FIXER.search(text) is not None``, found faster: deleting the ASCII bytes
    no fixer acts on from the text's UTF-8 leaves the ASCII ones a fixer acts on (any at all
    decides) and the non-ASCII characters whole, a short string for the regex."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, _NO_FIXER_ASCII)
    if rest.translate(None, _HIGH_BYTES):
        return True
    return _FTFY_ANY_FIXER.search(rest.decode("utf-8", "surrogatepass")) is not None


def _badness_window() -> int | None:
    """The longest match of ftfy's mojibake regex, if every match of it must contain a
    non-ASCII character (else None: no shortcut). Then a search around the text's non-ASCII
    characters finds a match exactly when a search of the whole text does."""
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    from ftfy.badness import BADNESS_RE

    parsed = sre_parse.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    if len(parsed.data) != 1 or parsed.data[0][0] != sre_parse.BRANCH:
        return None

    def non_ascii(op: object, arg: object) -> bool:
        if op == sre_parse.LITERAL:
            return arg > 0x7F
        if op == sre_parse.IN:
            return all(
                (o == sre_parse.LITERAL and a > 0x7F) or (o == sre_parse.RANGE and a[0] > 0x7F)
                for o, a in arg
            )
        return False

    for branch in parsed.data[0][1][1]:
        if not any(non_ascii(op, arg) for op, arg in branch.data):
            return None
    return parsed.getwidth()[1]


_BADNESS_WIDTH = _badness_window()


# A repaired text is checked again by the same fix_encoding loop and by the next round of
# _fix_segment's loop (the same string twice, at tens of microseconds a check): the last few
# answers are kept (a hit costs a string comparison).
@functools.lru_cache(maxsize=8)
def _is_bad(text: str) -> bool:
    """``ftfy.badness.is_bad(text)``, searching only around non-ASCII characters: ftfy's
    regex scans the whole text at a millisecond per article; every match it can make holds a
    non-ASCII character and spans at most ``_BADNESS_WIDTH`` characters."""
    from ftfy.badness import BADNESS_RE

    if _BADNESS_WIDTH is None:
        return ftfy.badness.is_bad(text)
    reach = _BADNESS_WIDTH - 1
    for start, end in non_ascii_runs(text):
        if BADNESS_RE.search(text, max(start - reach, 0), end + reach):
            return True
    return False


_FTFY_DEFAULTS = ftfy.TextFixerConfig()


def _lead_bytes(pattern: re.Pattern) -> bytes | None:
    """The bytes every match of a bytes regex starts with, when each of its branches starts
    with a class of single bytes (else None)."""
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    if pattern.flags & re.IGNORECASE or len(parsed.data) != 1:
        return None
    op, arg = parsed.data[0]
    branches = arg[1] if op == sre_parse.BRANCH else [parsed]
    leads: set[int] = set()
    for branch in branches:
        if not branch.data:
            return None
        first_op, first_arg = branch.data[0]
        items = [(first_op, first_arg)] if first_op == sre_parse.LITERAL else first_arg
        if first_op not in (sre_parse.LITERAL, sre_parse.IN):
            return None
        for item_op, item_arg in items:
            if item_op == sre_parse.LITERAL:
                leads.add(item_arg)
            elif item_op == sre_parse.RANGE:
                leads.update(range(item_arg[0], item_arg[1] + 1))
            else:
                return None
    return bytes(sorted(leads))


class _LeadByteSearch:
    """``pattern.search(data)`` for a bytes regex whose matches all start with one of
    ``leads``: a match is tried only where such a byte is, leftmost first (a regex of
    alternatives is searched a position at a time, ten times slower). The lead bytes present
    are found by one byte deletion and their places by ``bytes.find`` (memchr): mojibake's
    lead bytes are few in a text, where a scan for a class of them took 15 us a BBC article."""

    def __init__(self, pattern: re.Pattern, leads: bytes) -> None:
        self.pattern = pattern
        self.not_leads = bytes(b for b in range(256) if b not in leads)

    def search(self, data: bytes) -> re.Match | None:
        for at in self._lead_positions(data):
            if (found := self.pattern.match(data, at)) is not None:
                return found
        return None

    def _lead_positions(self, data: bytes) -> list[int]:
        """Where a lead byte is in ``data``, in order."""
        positions = []
        for lead in set(data.translate(None, self.not_leads)):
            at = data.find(lead)
            while at >= 0:
                positions.append(at)
                at = data.find(lead, at + 1)
        return sorted(positions)


def _fast_fix_encoding_step() -> Callable | None:
    """One step of ftfy.fix_encoding (private in ftfy 6; without it, the public function is
    used), as a copy whose mojibake check is ``_is_bad``: ftfy's own ``is_bad`` scans the whole
    text again, which costs as much as the repair. Its search of the encoded text for a
    byte 0xA0 turned into a space (``chardata.ALTERED_UTF8_RE``) looks only where such a
    sequence can start. ftfy itself is left as it is."""
    step = getattr(ftfy, "_fix_encoding_one_step_and_explain", None)
    if step is None or step.__globals__.get("is_bad") is not ftfy.badness.is_bad:
        return step
    namespace = {**step.__globals__, "is_bad": _is_bad}
    chardata = step.__globals__.get("chardata")
    faster = {}
    altered = getattr(chardata, "ALTERED_UTF8_RE", None)
    leads = _lead_bytes(altered) if isinstance(altered, re.Pattern) else None
    if leads is not None:
        faster["ALTERED_UTF8_RE"] = _LeadByteSearch(altered, leads)
    if _encoding_regexes_take_all_ascii(chardata):
        faster["possible_encoding"] = _possible_encoding
    if faster:
        namespace["chardata"] = types.SimpleNamespace(**{**vars(chardata), **faster})
    return types.FunctionType(step.__code__, namespace, step.__name__, step.__defaults__)


def _encoding_regexes_take_all_ascii(chardata: object) -> bool:
    """Whether ftfy's ``possible_encoding`` is a regex ``^[...]*$`` per encoding that takes
    every ASCII character but ``\x1a`` (which sloppy encodings read as U+FFFD), the ASCII
    one's taking nothing else."""
    regexes = getattr(chardata, "ENCODING_REGEXES", None)
    if not isinstance(regexes, dict) or not callable(getattr(chardata, "possible_encoding", None)):
        return False
    if getattr(regexes.get("ascii"), "pattern", None) != "^[\x00-\x7f]*$":
        return False
    ascii_but_sub = "".join(chr(c) for c in range(0x80) if c != 0x1A)
    return all(
        isinstance(rx, re.Pattern)
        and rx.pattern.startswith("^[")
        and rx.pattern.endswith("]*$")
        and rx.match(ascii_but_sub) is not None
        for rx in regexes.values()
    )


def _possible_encoding(text: str, encoding: str) -> bool:
    """``ftfy.chardata.possible_encoding(text, encoding)``: whether every character of the
    text is one the encoding's regex takes, checked for the characters it may not take only
    (its non-ASCII ones and ``\x1a``): ftfy's regex matches the whole text, several times a
    repair step."""
    if encoding == "ascii":  # its regex: [\x00-\x7f]*
        return text.isascii()
    return ftfy.chardata.possible_encoding(_not_always_encodable(text), encoding)


# a repair step checks one text against several encodings
@functools.lru_cache(maxsize=4)
def _not_always_encodable(text: str) -> str:
    """The characters of ``text`` that an encoding's regex may not take: its non-ASCII ones
    and ``\x1a``."""
    return non_ascii_chars(text) + ("\x1a" if "\x1a" in text else "")


_fix_encoding_step = _fast_fix_encoding_step()


def _fix_encoding(text: str) -> str:
    """``ftfy.fix_encoding(text)``: its loop of steps, each of which returns ASCII text and
    text its regex finds no mojibake in as is (checked here with the faster ``_is_bad``)."""
    if _fix_encoding_step is None:  # pragma: no cover
        return ftfy.fix_encoding(text)
    while True:
        if text.isascii() or not _is_bad(text):
            return text
        previous, text = text, _fix_encoding_step(text, _FTFY_DEFAULTS).text
        if text == previous:
            return text


def _fix_segment(text: str, config: ftfy.TextFixerConfig) -> str:
    """``ftfy.fix_and_explain(text, config).text`` for ``config.explain`` false: its loop,
    with the steps that provably leave the text unchanged skipped (the mojibake repair when
    nothing looks like mojibake, a table translation when no character of the table occurs).
    tests/test_clean_fast_path.py checks it against ftfy."""
    if config.unescape_html == "auto" and "<" in text:
        config = config._replace(unescape_html=False)
    while True:
        original = text
        if config.unescape_html:
            text = ftfy.fixes.unescape_html(text)
        if config.fix_encoding:
            text = _fix_encoding(text)
        if _any_fixer_acts_on(text):
            for name in _FTFY_FIXERS:
                if getattr(config, name) and _FTFY_ACTS_ON[name].search(text):
                    text = ftfy.FIXERS[name](text)
        if config.normalization is not None:
            text = _normalized(config.normalization, text)
        if text == original:
            return text


# _fix_segment's last round normalises the text its previous round ended with again
@functools.lru_cache(maxsize=8)
def _normalized(form: str, text: str) -> str:
    """``unicodedata.normalize(form, text)``, the last few answers kept."""
    return unicodedata.normalize(form, text)


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


_PRINTABLE_ASCII_AND_HIGH = _PRINTABLE_ASCII + _HIGH_BYTES


def _printable(line: str) -> bool:
    """``line.isprintable()``; its ASCII characters checked by a byte deletion, several times
    faster than looking up every character, and only its non-ASCII ones looked up."""
    if line.isascii():
        return not line.encode("ascii").translate(None, _PRINTABLE_ASCII)
    data = line.encode("utf-8", "surrogatepass")
    if data.translate(None, _PRINTABLE_ASCII_AND_HIGH):  # an unprintable ASCII character
        return False
    return data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass").isprintable()


def _collapse_spaces(line: str) -> str:
    """``" ".join(line.split())``: whitespace runs to one space, none at the ends. A line whose
    only whitespace is single spaces between words is returned as it is, without the split
    (every other whitespace character is unprintable; tests/test_clean_fast_path.py checks)."""
    if _printable(line) and "  " not in line and line[:1] != " " and line[-1:] != " ":
        return line
    return " ".join(line.split())


@dataclass(frozen=True)
class Removal:
    """A paragraph the boilerplate filter removed, kept for the report."""

    article_id: str
    rule: str
    text: str


UNICODE_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def _check_count(name: str, value: object) -> None:
    """A Cleaner setting that must be a whole number >= 0 (a config typo is a one-line error)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NewsclfError(f"{name}: {value!r} is not a whole number")
    if value < 0:
        raise NewsclfError(f"{name}: {value} must be at least 0")


class Cleaner:
    """Normalise Unicode, quotes and whitespace; drop boilerplate paragraphs and report them.

    ``boilerplate`` maps a rule name to a regex that must match a whole (short) paragraph,
    case-insensitively; ``latin_filler`` drops lorem-ipsum style paragraphs. ``max_chars``
    truncates very long texts (the truncation is reported as a removal).
    """

    def __init__(
        self,
        unicode_form: str = "NFKC",
        fix_text: bool = True,
        straight_quotes: bool = True,
        boilerplate: Mapping[str, str] | None = None,
        latin_filler: bool = True,
        max_paragraph_words: int = 60,
        max_chars: int | None = None,
    ) -> None:
        # checked here, not by the first article cleaned: a bad setting fails before any work
        if unicode_form not in UNICODE_FORMS:
            raise NewsclfError(
                f"clean.unicode_form: {unicode_form!r} is not one of {', '.join(UNICODE_FORMS)}"
            )
        _check_count("clean.max_paragraph_words", max_paragraph_words)
        if max_chars is not None:
            _check_count("clean.max_chars", max_chars)
        self.unicode_form = unicode_form
        self.fix_text = fix_text
        self.straight_quotes = straight_quotes
        self.boilerplate = dict(DEFAULT_BOILERPLATE if boilerplate is None else boilerplate)
        self.latin_filler = latin_filler
        self.max_paragraph_words = max_paragraph_words
        self.max_chars = max_chars
        try:
            self._rules = {
                name: re.compile(rf"\s*(?:{rx})\s*", re.IGNORECASE | re.DOTALL)
                for name, rx in self.boilerplate.items()
            }
        except re.error as exc:
            raise NewsclfError(f"clean.boilerplate: invalid regex ({exc})") from None

    def normalize(self, text: str) -> str:
        """Fix mojibake, normalise Unicode and quotes, collapse whitespace within lines.

        Paragraphs stay separated by a blank line and lines within a paragraph by a newline,
        so the boilerplate filter can look at page-furniture lines one by one.
        """
        if not text:  # an article without a title: nothing to fix
            return text
        if self.fix_text:
            text = _fix_text(text, self.straight_quotes)
        elif self.straight_quotes and _has_curly_quotes(text):
            text = ftfy.fixes.uncurl_quotes(text)
        text = unicodedata.normalize(self.unicode_form, text)
        if "\r" in text:  # found by memchr; the replacements search for two characters
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:  # one line: what the paragraph and line splits below make of it
            return _collapse_spaces(text)
        paragraphs = re.split(r"\n\s*\n", text)
        lines = (
            "\n".join(line for line in map(_collapse_spaces, p.split("\n")) if line)
            for p in paragraphs
        )
        return "\n\n".join(p for p in lines if p)

    def rule_for(self, paragraph: str) -> str | None:
        """The name of the boilerplate rule a paragraph matches, if any."""
        if self.latin_filler and is_latin_filler(paragraph):
            return "latin_filler"
        # at most max_paragraph_words + 1 pieces: a long paragraph is not split whole
        if len(paragraph.split(maxsplit=self.max_paragraph_words)) <= self.max_paragraph_words:
            for name, rule in self._rules.items():
                if rule.fullmatch(paragraph):
                    return name
        return None

    def clean(self, article: Article) -> tuple[Article, list[Removal]]:
        """The article with normalised text and without boilerplate, and what was removed.

        A paragraph is dropped whole when it matches a rule; otherwise its matching lines are
        dropped (scraped pages often glue furniture lines into one block) and the rest joined.
        """
        title = " ".join(self.normalize(article.title).split())
        kept, removed = [], []
        for paragraph in self.normalize(article.body).split("\n\n"):
            rule = self.rule_for(paragraph.replace("\n", " "))
            if rule:
                removed.append(Removal(article.id, rule, paragraph))
                continue
            lines = []
            for line in paragraph.split("\n"):
                rule = self.rule_for(line) if "\n" in paragraph else None
                if rule is None and not _HAS_TEXT.search(line):
                    rule = "no_text"  # separators such as "━━━━" or "* * *"
                if rule:
                    removed.append(Removal(article.id, rule, line))
                else:
                    lines.append(line)
            if lines:
                kept.append(" ".join(lines))
        body = "\n\n".join(kept)
        if self.max_chars and len(body) > self.max_chars:
            removed.append(Removal(article.id, "truncated", f"{len(body) - self.max_chars} chars"))
            body = body[: self.max_chars]
        return replace(article, title=title, body=body), removed


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
