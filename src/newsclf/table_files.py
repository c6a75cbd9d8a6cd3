"""Input files' bytes made text, and JSONL, CSV and Parquet files read record by record for
``articles.Source``: each record as (its number, its fields), or a reject marker naming what is
wrong with it, so one broken record never stops a file."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from newsclf.errors import NewsclfError, first_line

if TYPE_CHECKING:
    from newsclf.articles import Source

UTF16_JSONL = "UTF-16 text (byte order mark); convert it to UTF-8"


def is_wide(encoding: str) -> bool:
    """UTF-16 or UTF-32: encodings whose text is not ASCII-compatible bytes."""
    return encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))


def decode(data: bytes, path: Path | str, encoding: str) -> str:
    """The text of a file's bytes: a UTF-16 byte order mark, NUL bytes or bytes that are not
    ``encoding`` are one line naming the file."""
    wide = is_wide(encoding)
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


def jsonl_rows(file: Path, source: Source) -> Iterator[tuple[int, dict]]:
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
        line = decode(raw, where, encoding).strip()
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


ASCII_BYTES = bytes(range(0x80))


def non_ascii_chars(text: str) -> str:
    """The non-ASCII characters of ``text``, in order. Deleting the ASCII bytes of its UTF-8
    keeps every multi-byte character whole (its bytes are all >= 0x80); a byte translation
    does it several times faster than a regex scans the text (lone surrogates, from
    undecodable input, pass through as they are)."""
    data = text.encode("utf-8", "surrogatepass").translate(None, ASCII_BYTES)
    return data.decode("utf-8", "surrogatepass")


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


def csv_rows(file: Path, source: Source) -> Iterator[tuple[int, dict]]:
    """Rows of a CSV file as strings, streamed line by line, each numbered by its first line.

    Quoted fields may hold newlines. A record that cannot be parsed (an unclosed quote, bytes
    that are not ``source.encoding``, a wrong number of fields) stops the read with its line
    named (``on_error: raise``) or is rejected alone. Reading goes on after the record's
    last line, or, when it could not be parsed (its end is unknown), after its first line.
    """
    import csv

    head = _head(file)
    wide = is_wide(source.encoding)
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
    namesakes, so the other would be lost without a word. A JSON record is no header."""
    if header and header[0].lstrip().startswith("{"):
        raise NewsclfError(
            f"{file}:{line}: read as CSV, but this line is a JSON record; set source.format=jsonl"
        )
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


def count_lines(file: Path) -> int:
    """Non-empty lines of a text file, counted in binary blocks (for progress totals)."""
    lines, last = 0, b"\n"
    with file.open("rb") as fh:
        while block := fh.read(1 << 24):
            lines += block.count(b"\n") - block.count(b"\n\n")
            last = block[-1:]
    return lines + (last != b"\n")


def parquet_rows(file: Path, source: Source) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        # pre_buffer (pyarrow's default) keeps every row group's buffers alive while
        # iterating: memory would grow with the file (80 MB per 100k articles measured)
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 20)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise NewsclfError(f"{file}: not a readable Parquet file ({first_line(exc)})") from None
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
