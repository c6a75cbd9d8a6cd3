"""The input files of the Spark engines, listed and read through Spark's own Hadoop FileSystem.

A ``source.path`` with a scheme (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``file://``)
is listed with the file system Spark reads it with (so the connectors and credentials in the
Spark configuration apply), and the driver reads the little it needs (Parquet footers, a JSONL
file's first record, the first bytes of a few JSONL files to estimate their lines) through it
too: nothing else to install or configure on a cluster. A plain path on the local file system
is listed and read as by the local engine. Files are named in messages and rejects as the local
engine names them (a ``file:`` URI by its path).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TypeVar

from newsclf.articles import URI_SCHEME, Source, input_stat, unreadable_error
from newsclf.errors import NewsclfError, first_line
from newsclf.table_files import UTF16_JSONL, jsonl_row

MAGIC = b"PAR1"
TAIL = 1 << 16  # bytes read from a Parquet file's end: its footer, in one read mostly
CHUNK = 1 << 20  # bytes read at a time while looking for a JSONL file's first record
READERS = 8  # files read at once on the driver over Hadoop
# JSONL records are not counted before Spark reads them: lines are counted in the first
# SAMPLE_BYTES of up to SAMPLE_FILES files spread over the input, to size the shuffle
SAMPLE_FILES = 32
SAMPLE_BYTES = 1 << 18
T = TypeVar("T")


@dataclass(frozen=True)
class InputFile:
    """One input file: ``name`` as given to Spark's reader, ``shown`` as named in messages;
    ``mtime`` its modification time (file system units: a resumed job compares it for equality)."""

    name: str
    shown: str
    size: int
    mtime: int = 0


@dataclass(frozen=True)
class FileError:
    """A file the local engine counts as one ``unreadable`` record (with ``on_error=reject``)."""

    file: InputFile
    detail: str


class Inputs:
    """The files of a source as the Spark engines see them, and reads of their bytes."""

    def __init__(self, spark, source: Source) -> None:
        self.source = source
        jvm = spark._jvm
        self._path = jvm.org.apache.hadoop.fs.Path
        self._conf = spark._jsc.hadoopConfiguration()
        self._io = jvm.org.apache.commons.io.IOUtils
        self.hadoop = through_hadoop(spark, str(source.path))
        self.files = self._hadoop_files() if self.hadoop else self._local_files()

    def _local_files(self) -> list[InputFile]:
        files = []
        for f in self.source.files():
            stat = input_stat(f)  # a link whose target is gone: the link's own
            files.append(InputFile(str(f), str(f), stat.st_size, stat.st_mtime_ns))
        return files

    def _hadoop_files(self) -> list[InputFile]:
        """As :meth:`Source.files`: the file, or the folder's files matching the pattern
        (recursively), sorted as the local engine sorts paths; the same errors."""
        raw = str(self.source.path)
        try:
            root = self._path(raw)
            fs = root.getFileSystem(self._conf)
            root = fs.makeQualified(root)  # a relative path: in the user's folder there
            self._fs = fs  # every file is under the root: one file system reads them all
            if not fs.exists(root):
                raise NewsclfError(f"{raw}: source path does not exist")
            status = fs.getFileStatus(root)
            if status.isFile():
                statuses = [status]
            else:
                pattern = self.source.file_pattern(self.source.resolved_format())
                base = PurePosixPath(root.toUri().getPath())
                statuses, names, found = [], [], fs.listFiles(root, True)
                while found.hasNext():
                    item = found.next()
                    relative = PurePosixPath(item.getPath().toUri().getPath()).relative_to(base)
                    names.append(relative.name)
                    if self.source.matches(relative.as_posix(), pattern):
                        statuses.append(item)
                self.source.check_no_json_skipped(raw, names, self.source.resolved_format())
                if not statuses:
                    raise self.source.no_files_error(raw, pattern, self.source.resolved_format())
        except NewsclfError:
            raise
        except Exception as exc:  # no connector for the scheme, no credentials, ...
            raise NewsclfError(f"{raw}: cannot list it on Spark ({first_line(exc)})") from None
        files = [
            InputFile(
                str(s.getPath().toString()),
                shown_name(str(s.getPath().toUri().toString())),
                int(s.getLen()),
                int(s.getModificationTime()),
            )
            for s in statuses
        ]
        return sorted(files, key=lambda f: PurePosixPath(f.shown))

    def fingerprint(self) -> str:
        """A digest of the listed files' names, sizes and modification times: the input's part
        of a job's identity (``Source.fingerprint`` reads local files only). A file rewritten
        with the same size is other input: a job on it starts over instead of resuming."""
        digest = hashlib.sha256()
        for file in self.files:
            digest.update(f"{file.shown}|{file.size}|{file.mtime}\n".encode())
        return digest.hexdigest()

    def spark_uri(self, file: InputFile) -> str:
        """The file's URI as Spark's ``_metadata.file_path`` gives it (the order of rows)."""
        path = self._path(file.name)
        return str(path.getFileSystem(self._conf).makeQualified(path).toUri().toString())

    def read(self, file: InputFile, offset: int, size: int) -> bytes:
        """``size`` bytes of ``file`` from ``offset``."""
        if not self.hadoop:
            with open(file.name, "rb") as fh:
                fh.seek(offset)
                return fh.read(size)
        stream = self._fs.open(self._path(file.name))
        try:
            stream.seek(offset)
            return bytes(self._io.toByteArray(stream, size))
        finally:
            stream.close()

    def lines(self, file: InputFile) -> Iterator[bytes]:
        """The file's lines as bytes, each with its newline (as a binary file iterates)."""
        if not self.hadoop:
            with open(file.name, "rb") as fh:
                yield from fh
            return
        rest, offset = b"", 0
        while offset < file.size:
            block = self.read(file, offset, min(CHUNK, file.size - offset))
            offset += len(block)
            *complete, rest = (rest + block).split(b"\n")
            for line in complete:
                yield line + b"\n"
        if rest:
            yield rest

    def footer(self, file: InputFile):
        """The file's Parquet metadata (schema and row count), read once: its footer only."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.hadoop:
            return pq.read_metadata(file.name)
        # pyarrow's messages, so a file is named alike on both routes
        if file.size < 8:
            raise ValueError(
                f"Parquet file size is {file.size} bytes, smaller than the minimum file footer "
                "(8 bytes)"
            )
        tail = self.read(file, max(0, file.size - TAIL), min(TAIL, file.size))
        if tail[-4:] != MAGIC:
            raise ValueError(
                "Parquet magic bytes not found in footer. Either the file is corrupted or this "
                "is not a parquet file."
            )
        length = int.from_bytes(tail[-8:-4], "little")
        if length + 12 > file.size:
            raise ValueError(f"footer of {length} bytes is longer than the file")
        if length + 8 > len(tail):
            tail = self.read(file, file.size - 8 - length, length + 8)
        # pyarrow parses a footer from its bytes: the leading magic makes them a whole "file"
        return pq.read_metadata(pa.BufferReader(MAGIC + tail[-(length + 8) :]))

    def parquet(self) -> tuple[list[list[InputFile]], int, list[FileError]]:
        """The Parquet files grouped by the types of the columns the source reads, the number of
        rows in them, and the files the local engine rejects as ``unreadable`` (not Parquet, or
        a configured column missing; a file without rows has no record to reject)."""
        groups: dict[tuple, list[InputFile]] = {}
        wanted = wanted_columns(self.source)
        n_rows, errors = 0, []

        def footer(file: InputFile):
            try:
                return self.footer(file)
            except Exception as exc:  # pyarrow raises several types for a non-Parquet file
                return f"{file.shown}: not a readable Parquet file ({first_line(exc)})"

        for file, metadata in zip(self.files, self._each(footer), strict=True):
            if isinstance(metadata, str):
                errors.append(FileError(file, metadata))
                continue
            schema = metadata.schema.to_arrow_schema()
            try:
                self.source.check_columns(file.shown, schema.names)
            except NewsclfError as exc:
                if metadata.num_rows:
                    errors.append(FileError(file, str(exc)))
                continue
            key = tuple(str(schema.field(c).type) if c in schema.names else None for c in wanted)
            groups.setdefault(key, []).append(file)
            n_rows += metadata.num_rows
        return list(groups.values()), n_rows, errors

    def jsonl(self) -> tuple[list[InputFile], list[FileError]]:
        """The JSONL files Spark reads, and those the local engine rejects as ``unreadable``
        (UTF-16 text). A record's fields are checked record by record, as locally."""
        readable, errors = [], []
        for file, error in zip(self.files, self._each(self._check_jsonl_file), strict=True):
            if error is None:
                readable.append(file)
            else:
                errors.append(error)
        return readable, errors

    def jsonl_rows(self, files: list[InputFile]) -> int:
        """An estimate of the lines (records) in the JSONL ``files``: each sampled file's
        lines scaled by its size (a short file counted exactly), the other files' at the
        samples' pooled bytes per line. A news article is 2-5 kB, a headline tens of bytes:
        no one constant fits both."""
        if not files:
            return 0
        n = min(SAMPLE_FILES, len(files))
        sampled = [files[i * len(files) // n] for i in range(n)]  # spread over the list
        samples = list(self._each(self._sample_lines, sampled))
        estimate = sum(_scaled(f, *sample) for f, sample in zip(sampled, samples, strict=True))
        read, lines = sum(r for r, _ in samples), sum(k for _, k in samples)
        rest = sum(f.size for f in files) - sum(f.size for f in sampled)
        return estimate + (rest * lines // read if read else 0)

    def _sample_lines(self, file: InputFile) -> tuple[int, int]:
        """The bytes read from the start of ``file`` (up to SAMPLE_BYTES) and the lines in
        them (a whole file's last line without its newline counted too)."""
        data = self.read(file, 0, min(SAMPLE_BYTES, file.size))
        lines = data.count(b"\n")
        if len(data) == file.size and data and not data.endswith(b"\n"):
            lines += 1
        return len(data), lines

    def _each(
        self, function: Callable[[InputFile], T], files: list[InputFile] | None = None
    ) -> Iterator[T]:
        """``function`` of each file (of ``files``, or all the source's), in order; over
        Hadoop in threads, as each read waits on the network (an object store answers in tens
        of milliseconds)."""
        files = self.files if files is None else files
        if not self.hadoop or len(files) < 2:
            return map(function, files)
        with ThreadPoolExecutor(READERS) as pool:
            return iter(list(pool.map(function, files)))

    def _check_jsonl_file(self, file: InputFile) -> FileError | None:
        """The local engine's check of a JSONL file: a UTF-16 byte order mark makes it one
        unreadable file; a missing date field warns as the local engine does (its first
        records looked at, ``DateFieldScan``)."""
        dates = self.source.date_field_scan(file.shown)
        try:
            if self.read(file, 0, min(2, file.size)) in (b"\xff\xfe", b"\xfe\xff"):
                return FileError(file, f"{file.shown}: {UTF16_JSONL}")
            for index, raw in enumerate(self.lines(file)):
                row = jsonl_row(raw, f"{file.shown}:{index + 1}", self.source.encoding, "reject")
                if row is not None and "__reject__" not in row and dates.add(row):
                    return None
        except OSError as exc:  # a link whose target is gone, a file without permissions
            return FileError(file, str(unreadable_error(file.shown, exc)))
        dates.finish()
        return None


def through_hadoop(spark, name: str) -> bool:
    """Whether Spark reaches ``name`` through a Hadoop FileSystem other than the local one: a
    URI, or a plain path when Spark's default file system is another (HDFS on YARN)."""
    if URI_SCHEME.match(name):
        return True
    try:
        path = spark._jvm.org.apache.hadoop.fs.Path(name)
        qualified = path.getFileSystem(spark._jsc.hadoopConfiguration()).makeQualified(path)
        return str(qualified.toUri().getScheme()) != "file"
    except Exception:  # not a Hadoop path (a colon in a relative name): a local one
        return False


def wanted_columns(source: Source) -> list[str]:
    """The input columns a source reads (id, title, date, text, meta), each once."""
    wanted = [c for c in (source.id_column, source.title_column, source.date_column) if c]
    return list(dict.fromkeys([*wanted, source.text_column, *source.meta_columns]))


def shown_name(uri: str) -> str:
    """A file as the local engine names it, from the URI Spark names it by."""
    from urllib.parse import unquote

    return unquote(uri).removeprefix("file://").removeprefix("file:")


def _scaled(file: InputFile, read: int, lines: int) -> int:
    """A sampled file's lines: counted when it was read whole, else scaled by its size (a
    file with bytes has a line, even one longer than the sample)."""
    if read >= file.size:
        return lines
    return max(1, lines * file.size // read)


__all__ = ["FileError", "InputFile", "Inputs", "shown_name", "through_hadoop", "wanted_columns"]
