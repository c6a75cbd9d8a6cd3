"""Where ``newsclf-predict`` on Spark writes: the output folder's checks, the temporary folders
the executors write, and the moves into place, on the local file system or through Spark's own
Hadoop FileSystem.

A plain path (when Spark's default file system is the local one) is checked, locked against a
second job and moved into place with local file-system calls. An ``output.path`` with a scheme
(``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``, ``file://``), or a plain path when Spark's
default file system is another (HDFS on YARN), goes through the FileSystem Spark writes it with
(its connector and the credentials in the Spark configuration): the same checks, temporary
folders beside the output, Hadoop ``rename`` into place and the sidecar files written through
it, and a lock file beside the output that a second job, on any host, finds there (another
name than a local path's lock: the same output given once as a path and once as a URI is not
locked against itself).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psutil
from filelock import FileLock, Timeout

from newsclf.articles import Source, output_in_input
from newsclf.batch import sidecar
from newsclf.errors import NewsclfError, first_line
from newsclf.spark_input import through_hadoop

T = TypeVar("T")


class LocalOutput:
    """A Parquet folder on the local file system (a mount the executors share)."""

    def __init__(self, given: str | Path) -> None:
        self.path = Path(given)
        self.name = str(self.path)

    def check(self, mkdir: bool) -> None:
        """Fail for a file in the way or a missing parent folder (created with ``mkdir``)."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise NewsclfError(
                f"{path}: engine=spark writes a Parquet folder; a file is in the way"
            )
        if not path.parent.is_dir():
            if not mkdir:
                raise NewsclfError(f"{path.parent}: output folder does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held while the job writes: a second job for the same output fails at once."""
        path = self.path
        try:
            with FileLock(str(path.with_name(f".{path.name}.lock")), timeout=0):
                yield
        except Timeout:
            raise NewsclfError(
                f"{path}: another newsclf-predict job is writing this output; wait for it to "
                "finish or choose another output.path"
            ) from None

    def temporary(self, suffix: str = "") -> str:
        """The hidden folder beside the output where Spark writes ``<output><suffix>``."""
        return str(self.path.with_name(f".{self.path.name}{suffix}.tmp-{os.getpid()}"))

    def clear_stale(self) -> None:
        """Clear what a killed job left beside the output: its temporary folders go, an older
        output it had moved aside goes back into place if nothing took it (else goes)."""
        for found, leftover in _leftovers(self.path.name, self.path.parent.iterdir()):
            target = sidecar(self.path, found["suffix"] or "")
            if found["kind"] == "old" and not target.exists():
                os.replace(leftover, target)
            elif leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def exists(self) -> bool:
        """Whether something is at the output path."""
        return self.path.exists()

    def read_inside(self, name: str) -> str | None:
        """The text of the file ``name`` in the output folder; None if there is none."""
        path = self.path / name
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    def write_inside(self, folder: str, name: str, text: str) -> None:
        """A text file ``name`` in the (temporary) ``folder``."""
        (Path(folder) / name).write_text(text, encoding="utf-8")

    def write_sidecar(self, suffix: str, text: str) -> Path:
        """``<output><suffix>``, a text file beside the output, written whole under a hidden
        name and renamed into place; returns its path."""
        path = sidecar(self.path, suffix)
        new = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        new.write_text(text, encoding="utf-8")
        os.replace(new, path)
        return path

    def replace(self, new: str, suffix: str = "") -> None:
        """Move the finished folder ``new`` to ``<output><suffix>``, replacing an older one
        (put back if the new one cannot take its place)."""
        target = sidecar(self.path, suffix)
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        moved_aside = target.exists()
        if moved_aside:
            os.replace(target, old)
        try:
            os.replace(new, target)
        except OSError as exc:
            if moved_aside:
                os.replace(old, target)
            raise NewsclfError(
                f"{target}: cannot move the new output into place ({exc.strerror or exc})"
            ) from None
        shutil.rmtree(old, ignore_errors=True)


class HadoopOutput:
    """A Parquet folder on a Hadoop FileSystem (HDFS, S3, GCS, ADLS, or ``file://``)."""

    def __init__(self, spark, given: str) -> None:
        self.name = self.path = given.rstrip("/") or given  # sidecars are named after it
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._io = jvm.org.apache.commons.io.IOUtils
        try:
            target = self._Path(given)
            self._fs = target.getFileSystem(spark._jsc.hadoopConfiguration())
            self._target = self._fs.makeQualified(target)  # a relative path: the user's folder
        except Exception as exc:  # no connector for the scheme, a malformed URI, ...
            raise self._error(exc) from None
        self._parent = self._target.getParent()
        if self._parent is None:
            raise NewsclfError(f"{given}: is the root of its file system; give a folder in it")

    def _error(self, exc: Exception) -> NewsclfError:
        return NewsclfError(f"{self.name}: cannot write it on Spark ({first_line(exc)})")

    def _parent_name(self) -> str:
        """The parent folder as the user wrote the output (``hdfs:///a/b`` -> ``hdfs:///a``)."""
        head, slash, _ = self.name.rstrip("/").rpartition("/")
        return head if slash and not head.endswith(("/", ":")) else str(self._parent.toString())

    def _child(self, name: str):
        return self._Path(self._parent, name)

    def check(self, mkdir: bool) -> None:
        """Fail for a file in the way or a missing parent folder (created with ``mkdir``)."""
        fs = self._fs
        try:
            if fs.exists(self._target) and not fs.getFileStatus(self._target).isDirectory():
                raise NewsclfError(
                    f"{self.name}: engine=spark writes a Parquet folder; a file is in the way"
                )
            if not (fs.exists(self._parent) and fs.getFileStatus(self._parent).isDirectory()):
                if not mkdir:
                    raise NewsclfError(f"{self._parent_name()}: output folder does not exist")
                if not fs.mkdirs(self._parent):
                    raise NewsclfError(f"{self._parent_name()}: cannot create the output folder")
        except NewsclfError:
            raise
        except Exception as exc:  # no credentials, no permission, a file where a folder goes
            raise self._error(exc) from None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held while the job writes: ``.<output>.spark.lock`` beside the output, created only
        where none is (the file system's create-if-absent), naming the host and process. A second
        job, on any host, fails at once; a lock left by a process of this host that has ended
        is taken over; one of another host is named, to delete by hand if its job is gone."""
        lock = self._child(f".{self._target.getName()}.spark.lock")
        shown = f"{self._parent_name()}/.{self._target.getName()}.spark.lock"
        owner = f"{socket.gethostname()} {os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}"
        if not self._create_lock(lock, owner):
            held = self._read(lock) or ""
            if not _ended_here(held) or not self._fs.delete(lock, False):
                raise NewsclfError(
                    f"{self.name}: another newsclf-predict job is writing this output (lock "
                    f"{shown}: {held.strip() or 'no owner written'}); wait for it to finish or "
                    "choose another output.path, or delete the lock if that job is gone"
                )
            if not self._create_lock(lock, owner):  # another job took it meanwhile
                raise NewsclfError(
                    f"{self.name}: another newsclf-predict job is writing this output (lock "
                    f"{shown}); wait for it to finish or choose another output.path"
                )
        try:
            yield
        finally:
            try:
                if self._read(lock) == owner:  # ours still: never another job's
                    self._fs.delete(lock, False)
            except Exception:  # the job's result stands; the lock is named if it blocks one
                pass

    def _create_lock(self, lock, owner: str) -> bool:
        """Create ``lock`` holding ``owner`` unless a file is there; whether it was created."""
        try:
            stream = self._fs.create(lock, False)  # fails where a file exists
        except Exception as exc:
            if "FileAlreadyExists" in str(exc) or self._fs.exists(lock):
                return False
            raise self._error(exc) from None
        _put(stream, owner)
        return True

    def _read(self, path) -> str | None:
        """The text of the file at ``path``; None if there is none."""
        try:
            if not (self._fs.exists(path) and self._fs.getFileStatus(path).isFile()):
                return None
            stream = self._fs.open(path)
            try:
                return bytes(self._io.toByteArray(stream)).decode("utf-8", errors="replace")
            finally:
                stream.close()
        except Exception as exc:
            raise self._error(exc) from None

    def _hidden(self, suffix: str, kind: str) -> str:
        return f".{self._target.getName()}{suffix}.{kind}-{os.getpid()}"

    def temporary(self, suffix: str = "") -> str:
        """The hidden folder beside the output where Spark writes ``<output><suffix>``."""
        return str(self._child(self._hidden(suffix, "tmp")).toString())

    def clear_stale(self) -> None:
        """Clear what a killed job left beside the output: its temporary folders go, an older
        output it had moved aside goes back into place if nothing took it (else goes)."""
        fs, name = self._fs, str(self._target.getName())
        try:
            paths = {str(s.getPath().getName()): s.getPath() for s in fs.listStatus(self._parent)}
            for found, leftover in _leftovers(name, paths):
                target = self._child(f"{name}{found['suffix'] or ''}")
                if found["kind"] == "old" and not fs.exists(target):
                    fs.rename(paths[leftover], target)
                else:
                    fs.delete(paths[leftover], True)
        except Exception as exc:
            raise self._error(exc) from None

    def exists(self) -> bool:
        """Whether something is at the output path."""
        try:
            return bool(self._fs.exists(self._target))
        except Exception as exc:
            raise self._error(exc) from None

    def read_inside(self, name: str) -> str | None:
        """The text of the file ``name`` in the output folder; None if there is none."""
        return self._read(self._Path(self._target, name))

    def _write(self, path, text: str) -> None:
        try:
            _put(self._fs.create(path, True), text)
        except Exception as exc:
            raise self._error(exc) from None

    def write_inside(self, folder: str, name: str, text: str) -> None:
        """A text file ``name`` in the (temporary) ``folder``."""
        self._write(self._Path(self._Path(folder), name), text)

    def write_sidecar(self, suffix: str, text: str) -> str:
        """``<output><suffix>``, a text file beside the output, written whole under a hidden
        name and renamed into place; returns its qualified URI (``hdfs://nn/a/p.report.json``
        for a plain ``a/p``: a plain path there names no local file)."""
        new = self._child(self._hidden(suffix, "tmp"))
        self._write(new, text)
        self._rename(new, suffix)
        return str(self._child(f"{self._target.getName()}{suffix}").toString())

    def replace(self, new: str, suffix: str = "") -> None:
        """Move the finished folder ``new`` to ``<output><suffix>``, replacing an older one."""
        self._rename(self._Path(new), suffix)

    def _rename(self, new, suffix: str) -> None:
        """``new`` to ``<output><suffix>``, an older one moved aside first (a Hadoop rename
        onto an existing folder moves into it), deleted after, put back if the new one cannot
        take its place."""
        fs, shown = self._fs, self.name + suffix
        target = self._child(f"{self._target.getName()}{suffix}")
        old = self._child(self._hidden(suffix, "old"))
        try:
            moved_aside = fs.exists(target)
            if moved_aside and not fs.rename(target, old):
                raise NewsclfError(f"{shown}: cannot move the older output aside")
            try:
                if not fs.rename(new, target):
                    raise NewsclfError(f"{shown}: cannot move the new output into place")
            except Exception:
                if moved_aside and not fs.exists(target):
                    fs.rename(old, target)
                raise
            if moved_aside:
                fs.delete(old, True)
        except NewsclfError:
            raise
        except Exception as exc:
            raise self._error(exc) from None


Output = LocalOutput | HadoopOutput


def _ended_here(owner: str) -> bool:
    """Whether a lock's ``owner`` line (host, pid, start) names a process of this host that
    has ended."""
    parts = owner.split()
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    return not psutil.pid_exists(int(parts[1]))


def _put(stream, text: str) -> None:
    """``text`` (UTF-8) into a Hadoop output stream, which is closed."""
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def _leftovers(name: str, names: Iterable[T]) -> Iterator[tuple[re.Match, T]]:
    """Of ``names`` (paths or names in the output's folder), those a job into output ``name``
    leaves while it runs: its temporaries and the older output it moved aside, each with its
    ``suffix`` and ``kind`` (``tmp`` or ``old``). Not another output's (``<name>.v2``)."""
    stale = re.compile(
        re.escape(f".{name}") + r"(?P<suffix>\.rejects|\.boilerplate|\.report\.json)?"
        r"\.(?P<kind>tmp|old)-\d+"
    )
    for item in sorted(names, key=str):
        found = stale.fullmatch(getattr(item, "name", item))
        if found:
            yield found, item


def check_outside_input(spark, source: Source, out: Output) -> None:
    """Refuse an output in the input's folder, as the local engine does, comparing the paths
    as Spark's file systems qualify them when either is on one (``hdfs://``, ``file://``)."""
    if isinstance(out, LocalOutput) and not through_hadoop(spark, str(source.path)):
        source.check_output_outside(out.path, "output.path")
        return
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path
    conf = spark._jsc.hadoopConfiguration()

    def qualified(name: str) -> str:
        path = hadoop_path(name)
        return str(path.getFileSystem(conf).makeQualified(path).toUri().toString()).rstrip("/")

    try:
        inputs, target = qualified(str(source.path)), qualified(str(out.name))
    except Exception:  # the input's own errors come, clearer, when it is listed
        return
    if target == inputs or target.startswith(inputs + "/"):
        raise output_in_input(out.name, source.path, "output.path", inside=target != inputs)


def output_for(spark, given: str | Path) -> Output:
    """The output of a Spark job: through Hadoop when Spark writes ``given`` through a file
    system other than the local one, or ``given`` is a URI."""
    if not through_hadoop(spark, str(given)):
        return LocalOutput(given)
    return HadoopOutput(spark, str(given))


__all__ = ["HadoopOutput", "LocalOutput", "Output", "check_outside_input", "output_for"]
