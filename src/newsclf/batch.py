"""Resumable batch prediction jobs: chunks in, one complete predictions file out.

A job streams the source in chunks of ``chunk_size`` records, cleans and predicts them in
``n_jobs`` worker processes, de-duplicates ids in input order, and commits each chunk as part
files plus a checkpoint in a hidden folder beside the output. A job killed half way and started
again with the same arguments resumes after its last committed chunk; with other arguments or
changed input it starts over. The predictions file, its rejects and its report are assembled
from the parts at the end and renamed into place, so a predictions file that exists is complete.
A lock file keeps a second job off the same output path.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from newsclf.articles import Record, Reject, Source
from newsclf.atomic import atomic_path, temporary
from newsclf.errors import NewsclfError, all_rejected
from newsclf.predict import (
    ChunkResult,
    in_input_order,
    prediction_columns,
    process_chunk,
    text_key,
)
from newsclf.report import job_summary
from newsclf.saved_model import SKOPS_FILE, LoadedModel

T = TypeVar("T")
log = logging.getLogger(__name__)

OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
INTEGER_COLUMNS = ("truncated_chars",)

# 2: a committed chunk's _text_key digests the cleaned body, no longer title + body; a job
# an older newsclf left half done starts over rather than mix the two kinds of key
STATE_VERSION = 2
_NOT_IDENTITY = ("n_jobs", "resume", "mkdir", "overwrite", "max_oov_share", "max_vocabulary_js")
REJECT_COLUMNS = ["id", "source", "reason", "detail"]
REMOVAL_COLUMNS = ["article_id", "rule", "text"]


@dataclass(frozen=True)
class JobSettings:
    """How a job runs. All but ``_NOT_IDENTITY`` are part of the job's identity: a job resumes
    only with the same values."""

    chunk_size: int = 2000
    n_jobs: int = 1
    dedupe_text: bool = False
    oov_sample: int = 100  # articles per chunk whose words are checked against the vocabulary
    low_confidence: float = 0.5
    output_format: str = "auto"
    mkdir: bool = True
    overwrite: bool = False  # replace a finished predictions file written by another job
    resume: bool = True
    max_oov_share: float = 0.5  # report thresholds for a drift warning
    max_vocabulary_js: float = 0.25

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise NewsclfError(f"chunk_size: must be at least 1, got {self.chunk_size}")


@dataclass
class JobState:
    """The checkpoint: what the committed chunks hold, summed."""

    fingerprint: str
    chunks: int = 0
    records: int = 0
    n_predicted: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    removed_by_rule: dict[str, int] = field(default_factory=dict)
    n_truncated: int = 0
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    low_confidence: dict[str, int] = field(default_factory=dict)
    probability_sum: dict[str, float] = field(default_factory=dict)
    stats: dict[str, dict] = field(default_factory=dict)  # ModelStats without term_docs
    version: int = STATE_VERSION
    # a digest of each part of the job's identity: what differs when a rerun starts over
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


@dataclass
class JobResult:
    path: Path | str  # str: a URI (engine=spark writing through Hadoop)
    n_input: int
    n_predicted: int
    n_rejected: int
    rejected_by_reason: dict[str, int]
    removed_by_rule: dict[str, int]
    n_truncated: int
    seconds: float
    resumed_records: int
    report: dict
    report_path: Path | str
    models: dict[str, dict[str, str]]

    @property
    def rate(self) -> float:
        done = self.n_input - self.resumed_records
        return done / self.seconds if self.seconds > 0 else 0.0


class HashSet64:
    """A set of 64-bit digests in bounded memory: a sorted array plus a small recent set.

    Eight bytes per member (10 million ids take 80 MB); two different ids share a digest with
    probability about n^2 / 2^65 (3e-6 for ten million).
    """

    def __init__(self, merge_at: int = 1 << 16) -> None:
        self.base = np.empty(0, dtype=np.uint64)
        self.recent: set[int] = set()
        self.merge_at = merge_at

    def __len__(self) -> int:
        return len(self.base) + len(self.recent)

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        """Add keys in order; True where a key was not yet in the set (first occurrence)."""
        found = self._in_base(keys)
        new = np.zeros(len(keys), dtype=bool)
        for i, key in enumerate(keys.tolist()):
            if not found[i] and key not in self.recent:
                self.recent.add(key)
                new[i] = True
        if len(self.recent) >= self.merge_at:
            self._merge()
        return new

    def extend(self, keys: np.ndarray) -> None:
        """Add keys known to be distinct (rebuilding the set from committed parts)."""
        self.base = np.union1d(self.base, keys.astype(np.uint64))

    def _in_base(self, keys: np.ndarray) -> np.ndarray:
        if not len(self.base):
            return np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(self.base, keys), len(self.base) - 1)
        return self.base[at] == keys

    def _merge(self) -> None:
        # The recent keys are distinct and none is in base: insert each where it sorts.
        # np.union1d (concatenate, copy, sort, mask) held four copies of base at each merge,
        # and the freed blocks stayed resident: 82 MiB for two sets of a million, not 16.
        recent = np.sort(np.fromiter(self.recent, dtype=np.uint64, count=len(self.recent)))
        self.base = np.insert(self.base, np.searchsorted(self.base, recent), recent)
        self.recent.clear()


def id_keys(ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((text_key(i) for i in ids), dtype=np.uint64)


# --------------------------------------------------------------------------- files


def sidecar(path: Path, suffix: str) -> Path:
    """A file beside the predictions: ``p.parquet`` -> ``p.parquet.rejects.csv``."""
    return path.with_name(path.name + suffix)


def _parts_dir(path: Path) -> Path:
    return path.with_name(f".{path.name}.parts")


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _write_error(path: Path, exc: OSError) -> NewsclfError:
    # pyarrow's OSErrors carry the errno only in their text: "... [errno 28] No space ..."
    found = re.search(r"\[errno (\d+)\]", str(exc))
    code = exc.errno or (int(found.group(1)) if found else None)
    reason = os.strerror(code) if code else str(exc)
    return NewsclfError(
        f"{path}: cannot write ({reason}); committed chunks are kept, so the same command "
        "resumes once the problem is fixed"
    )


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as exc:
        raise _write_error(path, exc) from None


def _atomic_write_text(text: str, path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _write_error(path, exc) from None


def _prepare_output(path: Path, settings: JobSettings) -> None:
    output_format(path, settings.output_format)  # an unknown format fails before any work
    folder = path.parent
    if not folder.is_dir():
        if folder.exists():
            raise NewsclfError(f"{folder}: output folder is not a folder")
        if not settings.mkdir:
            raise NewsclfError(f"{folder}: output folder does not exist (or set output.mkdir=true)")
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise NewsclfError(f"{folder}: cannot create output folder ({exc.strerror})") from None
    if path.is_dir():
        raise NewsclfError(f"{path}: output path is a folder, not a file")


# --------------------------------------------------------------------------- the job


def job_fingerprint(
    source: Source,
    models: Sequence[LoadedModel],
    settings: JobSettings,
    extra: Mapping[str, object],
    input_identity: str | None = None,
) -> str:
    """What a resumed job must share with the one it continues: input, models, settings.
    ``input_identity`` stands for the input files (default ``source.fingerprint()``, which
    reads local files only)."""
    return _digest(job_identity(source, models, settings, extra, input_identity))


def job_identity(
    source: Source,
    models: Sequence[LoadedModel],
    settings: JobSettings,
    extra: Mapping[str, object],
    input_identity: str | None = None,
) -> dict[str, object]:
    """The parts :func:`job_fingerprint` hashes."""
    model_ids = []
    for m in models:
        skops = Path(m.local_path) / SKOPS_FILE
        digest = hashlib.sha256(skops.read_bytes()).hexdigest() if skops.exists() else ""
        model_ids.append([m.task, m.uri, m.name, m.version, digest, m.preparation.key])
    identity = {
        "state_version": STATE_VERSION,
        "input": source.fingerprint() if input_identity is None else input_identity,
        "source": {k: v for k, v in asdict(source).items() if k != "chunk_rows"},
        "models": model_ids,
        "settings": {k: v for k, v in asdict(settings).items() if k not in _NOT_IDENTITY},
        "extra": dict(extra),
    }
    return identity


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


_PARTS = {  # what a changed part of a job's identity is called in the "starting over" line
    "input": "input files",
    "source": "source settings",
    "models": "models",
    "settings": "settings",
    "extra": "settings",
    "state_version": "newsclf version",
}


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last may be shorter): ``itertools.batched`` of Python 3.12."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def run_job(
    source: Source,
    models: Sequence[LoadedModel],
    output: str | Path,
    settings: JobSettings,
    config: Mapping[str, object] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> JobResult:
    """Run (or resume) a prediction job; returns the counts, report and where files went.

    Each model prepares articles as its ``preparation`` says. ``config`` (other settings of
    the caller) joins the job's fingerprint; ``on_progress`` is
    called with (records done, total or -1) after each chunk and once at the start.
    """
    path = Path(output)
    source.check_output_outside(path, "output.path")  # before a folder or lock is made there
    _prepare_output(path, settings)
    lock = FileLock(str(_lock_path(path)), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        if not _lock_path(path).exists():  # filelock says Timeout when it cannot create it
            raise NewsclfError(
                f"{path.parent}: output folder is not writable (cannot create "
                f"{_lock_path(path).name})"
            ) from None
        raise NewsclfError(
            f"{path}: another newsclf-predict job is writing this file (lock "
            f"{_lock_path(path)} is held); wait for it to finish or choose another output.path"
        ) from None
    except OSError as exc:
        raise NewsclfError(
            f"{path.parent}: output folder is not writable ({exc.strerror})"
        ) from None
    try:
        _clear_stale(path)
        return _run_locked(source, models, path, settings, config or {}, on_progress)
    finally:
        lock.release()


def _clear_stale(path: Path) -> None:
    """Remove the temporary files (``.<name>[.<sidecar>].tmp-<pid>``) a killed job left beside
    output ``path``: those of a process that has ended on this host. Called with the output's
    lock held, so no live job of ours is writing them; another output's are not matched."""
    stale = re.compile(
        re.escape(f".{path.name}") + r"(?:\.rejects\.csv|\.boilerplate\.csv|\.report\.json)?"
        r"\.tmp-(?P<pid>\d+)"
    )
    for file in path.parent.iterdir():
        found = stale.fullmatch(file.name)
        if found and not psutil.pid_exists(int(found["pid"])):
            with contextlib.suppress(OSError):  # a leftover that stays harms no result
                file.unlink()


def _run_locked(
    source: Source,
    models: Sequence[LoadedModel],
    path: Path,
    settings: JobSettings,
    config: Mapping[str, object],
    on_progress: Callable[[int, int], None] | None,
) -> JobResult:
    identity = job_identity(source, models, settings, config)  # reads the input's metadata
    fingerprint = _digest(identity)  # job_fingerprint's value
    digests = {key: _digest(value) for key, value in identity.items()}
    _check_overwrite(path, fingerprint, settings)
    parts = _parts_dir(path)
    state, term_docs = _load_state(parts, fingerprint) if settings.resume else (None, {})
    if state is None:
        if parts.exists():
            log.warning("%s: %s; starting over", path, _why_not_resumed(parts, digests, models))
            shutil.rmtree(parts)
        state, term_docs = JobState(fingerprint, identity=digests), {}
        try:
            parts.mkdir()
        except OSError as exc:
            raise _write_error(parts, exc) from None
    else:
        log.info("%s: resuming after %d records (%d chunks)", path, state.records, state.chunks)
    _drop_uncommitted(parts, state.chunks)
    seen_ids, seen_texts = HashSet64(), HashSet64()
    if state.chunks:  # what the committed chunks kept, to reject later repeats
        # read a part at a time: memory holds the 8-byte digests, not every id as a string
        id_digests, text_digests = [], []
        for i in range(state.chunks):
            done = pq.read_table(parts / f"part-{i:06d}.parquet", columns=["id", "_text_key"])
            id_digests.append(id_keys(done.column("id").to_pylist()))
            text_digests.append(done.column("_text_key").to_numpy())
            # an article rejected for its text still claimed its id: a later one with that id
            # is a duplicate_id, resumed or not
            id_digests.append(id_keys(_duplicate_text_ids(parts, i)))
        seen_ids.extend(np.concatenate(id_digests))
        seen_texts.extend(np.concatenate(text_digests))
        del id_digests, text_digests
    total = source.count()
    if on_progress:
        on_progress(state.records, -1 if total is None else total)
    resumed = state.records
    started = time.perf_counter()
    n_jobs = resolve_n_jobs(settings.n_jobs)
    chunks = batched(source.read(skip=state.records), settings.chunk_size)
    initargs = (models, settings.oov_sample)
    try:
        for result in ordered_map(worker_process_chunk, chunks, n_jobs, init_worker, initargs):
            frame, dup_rejects = _dedupe(result, seen_ids, seen_texts, settings.dedupe_text)
            _commit_chunk(parts, state, term_docs, result, frame, dup_rejects, settings, models)
            if on_progress:
                on_progress(state.records, -1 if total is None else total)
    except KeyboardInterrupt:  # Ctrl-C: the committed chunks stay; say how to go on
        raise KeyboardInterrupt(
            f"interrupted after {state.chunks} chunks ({state.records} records); rerun the "
            "same command to resume"
        ) from None
    seconds = time.perf_counter() - started
    n_input = state.n_predicted + state.n_rejected
    if state.records == 0:
        raise NewsclfError(f"{source.path}: source is empty (no articles)")
    if n_input != state.records:  # the promise of this module; fail loudly if ever broken
        raise NewsclfError(f"{path}: internal count mismatch ({n_input} != {state.records})")
    if state.n_predicted == 0:
        _nothing_predicted(path, parts, state)
    counts, models_meta, report = job_summary(state, term_docs, models, settings, source.path)
    report["job_fingerprint"] = fingerprint  # lets a rerun of this job replace its own output
    report_path = _assemble(path, parts, state, models, settings, report)
    shutil.rmtree(parts, ignore_errors=True)
    return JobResult(
        path=path,
        seconds=seconds,
        resumed_records=resumed,
        report=report,
        report_path=report_path,
        models=models_meta,
        **counts,
    )


def _duplicate_text_ids(parts: Path, chunk: int) -> list[str]:
    """The ids of a committed chunk's articles rejected as ``duplicate_text``."""
    rejects = pq.read_table(parts / f"rejects-{chunk:06d}.parquet", columns=["id", "reason"])
    ids = rejects.column("id").to_pylist()
    reasons = rejects.column("reason").to_pylist()
    return [i for i, reason in zip(ids, reasons, strict=True) if reason == "duplicate_text"]


def _check_overwrite(path: Path, fingerprint: str, settings: JobSettings) -> None:
    """Refuse to replace a finished predictions file of another job (unless told to)."""
    if settings.overwrite or not path.exists():
        return
    try:
        report = json.loads(sidecar(path, ".report.json").read_text(encoding="utf-8"))
    except OSError:  # no report beside it: a file newsclf-predict did not write
        report_name = sidecar(path, ".report.json").name
        raise NewsclfError(
            f"{path}: exists and is no newsclf-predict output (no {report_name} beside it); set "
            "output.overwrite=true to replace it, or choose another output.path"
        ) from None
    except ValueError:
        report = {}
    if report.get("job_fingerprint") != fingerprint:
        raise overwrite_refused(path)


def overwrite_refused(output: str | Path) -> NewsclfError:
    """The error for an existing output of another job that a job will not replace."""
    return NewsclfError(
        f"{output}: exists, written by another job (other input, models or settings); set "
        "output.overwrite=true to replace it, or choose another output.path"
    )


def _nothing_predicted(path: Path, parts: Path, state: JobState) -> None:
    """Every record was rejected (a wrong column, say): keep the rejects, fail clearly.

    An output already at ``path`` is another job's that this one may replace (the overwrite
    check passed): it goes, so its predictions and report never sit beside these rejects."""
    for stale in (path, sidecar(path, ".report.json"), sidecar(path, ".boilerplate.csv")):
        stale.unlink(missing_ok=True)
    rejects = sidecar(path, ".rejects.csv")
    _concat_csv(parts, "rejects", REJECT_COLUMNS, rejects, state.chunks)
    first = pq.read_table(parts / "rejects-000000.parquet").slice(0, 1).to_pylist()[0]
    shutil.rmtree(parts, ignore_errors=True)
    raise NewsclfError(
        f"nothing to predict: {all_rejected(state.n_rejected)} "
        f"({', '.join(f'{k} {v}' for k, v in state.rejected_by_reason.items())}; first: "
        f"{first['detail'] or first['reason']}); see {rejects}"
    )


def _dedupe(
    result: ChunkResult, seen_ids: HashSet64, seen_texts: HashSet64, dedupe_text: bool
) -> tuple[pd.DataFrame, list[Reject]]:
    """Reject ids (and, if asked, texts) seen earlier in the input: the first one wins."""
    frame = result.frame
    keep = seen_ids.add_new(id_keys(frame["id"]))
    rejects = [
        Reject(i, source, "duplicate_id", "id seen earlier in the input")
        for i, source in zip(frame["id"][~keep], frame["_source"][~keep], strict=True)
    ]
    if dedupe_text:
        texts = seen_texts.add_new(frame["_text_key"].to_numpy()[keep])
        dup = np.flatnonzero(keep)[~texts]
        rejects += [
            Reject(i, source, "duplicate_text", "same text as an earlier article")
            for i, source in zip(frame["id"].iloc[dup], frame["_source"].iloc[dup], strict=True)
        ]
        keep[dup] = False
    return frame[keep], rejects


def _in_input_order(result: ChunkResult, dup_rejects: list[Reject]) -> list[Reject]:
    """The chunk's rejects in input order: the duplicates found among its predicted rows were
    written after all its other rejects (a duplicate id on line 2 after an empty text on line
    4). ``result.rejects`` are the records missing from ``result.frame``, in input order; a
    duplicate goes where its row (the same id and source) was."""
    if not dup_rejects:
        return result.rejects
    frame = result.frame
    row_at = dict(zip(zip(frame["id"], frame["_source"], strict=True), frame["_at"], strict=True))
    later = [(row_at[(r.id, r.source)], r) for r in dup_rejects]
    return in_input_order(result.n_records, frame["_at"].tolist(), result.rejects, later)


def _commit_chunk(
    parts: Path,
    state: JobState,
    term_docs: dict[str, np.ndarray],
    result: ChunkResult,
    frame: pd.DataFrame,
    dup_rejects: list[Reject],
    settings: JobSettings,
    models: Sequence[LoadedModel],
) -> None:
    """Write the chunk's parts, then the checkpoint that makes them count (atomically)."""
    i = state.chunks
    rejects = _in_input_order(result, dup_rejects)
    _atomic_write_table(
        pa.Table.from_pandas(frame, preserve_index=False), parts / f"part-{i:06d}.parquet"
    )
    _atomic_write_table(
        pa.table(
            {c: [getattr(r, c) for r in rejects] for c in REJECT_COLUMNS},
            schema=pa.schema([(c, pa.string()) for c in REJECT_COLUMNS]),
        ),
        parts / f"rejects-{i:06d}.parquet",
    )
    if result.removals:
        _atomic_write_table(
            pa.table({c: [getattr(r, c) for r in result.removals] for c in REMOVAL_COLUMNS}),
            parts / f"removals-{i:06d}.parquet",
        )
    state.chunks += 1
    state.records += result.n_records
    state.n_predicted += len(frame)
    _add(state.rejected_by_reason, Counter(r.reason for r in rejects))
    _add(state.removed_by_rule, Counter(r.rule for r in result.removals))
    state.n_truncated += int((frame["truncated_chars"] > 0).sum())
    for m in models:
        labels = frame[f"{m.task}_label"]
        probability = frame[f"{m.task}_probability"]
        _add(state.labels.setdefault(m.task, {}), Counter(labels.tolist()))
        low = int((probability < settings.low_confidence).sum())
        state.low_confidence[m.task] = state.low_confidence.get(m.task, 0) + low
        state.probability_sum[m.task] = state.probability_sum.get(m.task, 0.0) + float(
            probability.fillna(0).sum()
        )
        stats = result.stats[m.task]
        before = state.stats.get(m.task, {"n_docs": 0, "oov_words": 0, "words": 0})
        state.stats[m.task] = {k: before[k] + getattr(stats, k) for k in before}
        if stats.term_docs is not None:
            if m.task in term_docs:
                term_docs[m.task] += stats.term_docs
            else:
                term_docs[m.task] = stats.term_docs.copy()
    _save_state(parts, state, term_docs)


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for key, n in more.items():
        total[key] = total.get(key, 0) + int(n)


def _save_state(parts: Path, state: JobState, term_docs: dict[str, np.ndarray]) -> None:
    stats_file = parts / f"stats-{state.chunks:06d}.npz"
    try:
        with stats_file.open("wb") as fh:
            np.savez(fh, **term_docs)
    except OSError as exc:
        raise _write_error(stats_file, exc) from None
    _atomic_write_text(json.dumps(asdict(state)), parts / "state.json")  # the commit point
    (parts / f"stats-{state.chunks - 1:06d}.npz").unlink(missing_ok=True)


def _why_not_resumed(parts: Path, digests: Mapping[str, str], models: Sequence[LoadedModel]) -> str:
    """Which part of the job differs from the one whose parts are in ``parts``."""
    try:
        earlier = json.loads((parts / "state.json").read_text(encoding="utf-8"))["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return "earlier parts are from other input or settings"
    changed = list(dict.fromkeys(_PARTS[k] for k in digests if earlier.get(k) != digests[k]))
    if "models" in changed:
        now = ", ".join(f"{m.name} v{m.version}" if m.version else m.uri for m in models)
        changed[changed.index("models")] = f"models (now {now})"
    return f"earlier parts are from other {' and '.join(changed) or 'settings'}"


def _load_state(parts: Path, fingerprint: str) -> tuple[JobState | None, dict[str, np.ndarray]]:
    try:
        raw = json.loads((parts / "state.json").read_text(encoding="utf-8"))
        state = JobState(**raw)
    except (OSError, ValueError, TypeError):
        return None, {}
    if state.fingerprint != fingerprint or state.version != STATE_VERSION:
        return None, {}
    try:
        with np.load(parts / f"stats-{state.chunks:06d}.npz") as npz:
            term_docs = {k: npz[k] for k in npz.files}
    except (OSError, ValueError):
        return None, {}
    return state, term_docs


def _drop_uncommitted(parts: Path, chunks: int) -> None:
    """Remove part files a killed job wrote after its last checkpoint."""
    for file in parts.iterdir():
        stem = file.name.split(".")[0]
        number = stem.rsplit("-", 1)[-1]
        committed = number.isdigit() and (
            int(number) < chunks or (stem.startswith("stats-") and int(number) == chunks)
        )
        if file.name != "state.json" and not committed:
            file.unlink()


def _assemble(
    path: Path,
    parts: Path,
    state: JobState,
    models: Sequence[LoadedModel],
    settings: JobSettings,
    report: dict,
) -> Path:
    """Every file is written whole under a temporary name first. Then an older predictions
    file goes, the rejects, boilerplate and report are renamed into place, and the predictions
    file comes last (its presence means the job finished): a job killed at any point leaves
    the older job's whole set, or no predictions file, never one beside another job's files."""
    report_path = sidecar(path, ".report.json")
    staged: list[tuple[Path, Path]] = []  # (temporary, final), renamed once all are written
    columns = [*prediction_columns([m.task for m in models]), "truncated_chars"]
    writer = PredictionWriter(path, columns, settings.output_format)
    try:
        rejects = sidecar(path, ".rejects.csv")
        staged.append(
            (_write_csv(parts, "rejects", REJECT_COLUMNS, rejects, state.chunks), rejects)
        )
        if state.removed_by_rule:
            removals = sidecar(path, ".boilerplate.csv")
            staged.append(
                (_write_csv(parts, "removals", REMOVAL_COLUMNS, removals, state.chunks), removals)
            )
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        staged.append((_write_temporary_text(text, report_path), report_path))
        for i in range(state.chunks):
            part = pq.ParquetFile(parts / f"part-{i:06d}.parquet")
            for batch in part.iter_batches(batch_size=50_000, columns=columns):
                writer.write(batch.to_pandas())
        meta = {
            k: report[k] for k in ("n_input", "n_predicted", "n_rejected", "rejected_by_reason")
        }
        writer.finish({**meta, "models": report["models"], "source": report["source"]})
        try:
            path.unlink(missing_ok=True)  # first: the older predictions never meet new sidecars
            if not state.removed_by_rule:  # an earlier job's removals must not pass for ours
                sidecar(path, ".boilerplate.csv").unlink(missing_ok=True)
            for tmp, final in staged:
                os.replace(tmp, final)
        except OSError as exc:
            raise _write_error(path, exc) from None
        writer.move_into_place()
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        writer.abort()
        raise
    return report_path


def _write_temporary_text(text: str, target: Path) -> Path:
    """``text`` in the temporary file for ``target``; returns that file."""
    tmp = temporary(target)
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(target, exc) from None
    return tmp


def _write_csv(parts: Path, kind: str, columns: list[str], target: Path, chunks: int) -> Path:
    """The ``kind`` part files as one CSV file, in the temporary file for ``target``; returns
    that file."""
    tmp = temporary(target)
    schema = pa.schema([(c, pa.string()) for c in columns])
    try:
        with pacsv.CSVWriter(tmp, schema) as writer:
            for i in range(chunks):
                file = parts / f"{kind}-{i:06d}.parquet"
                if file.exists():
                    writer.write_table(pq.read_table(file).cast(schema))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(target, exc) from None
    return tmp


def _concat_csv(parts: Path, kind: str, columns: list[str], target: Path, chunks: int) -> None:
    tmp = _write_csv(parts, kind, columns, target, chunks)
    try:
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(target, exc) from None


# --------------------------------------------------------------------------- predictions file


def output_format(path: Path, fmt: str = "auto") -> str:
    fmt = path.suffix.lstrip(".").lower() if fmt == "auto" else fmt
    if fmt not in OUTPUT_FORMATS:
        raise NewsclfError(
            f"{path}: unknown output format {fmt!r} (use .parquet, .csv or .jsonl, "
            "or set output.format)"
        )
    return fmt


class PredictionWriter:
    """Write prediction chunks to a temporary file and rename it into place on ``commit``.

    The final path therefore only ever holds a complete file. Parquet files carry the row count
    in their key-value metadata.
    """

    def __init__(self, path: str | Path, columns: Sequence[str], fmt: str = "auto") -> None:
        self.path = Path(path)
        self.format = output_format(self.path, fmt)
        if not self.path.parent.is_dir():
            raise NewsclfError(f"{self.path.parent}: output folder does not exist")
        if not os.access(self.path.parent, os.W_OK):
            raise NewsclfError(f"{self.path.parent}: output folder is not writable")
        self.tmp = temporary(self.path)
        self.columns = list(columns)
        self.rows = 0
        self._writer: object | None = None
        self._fh = None

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame[self.columns], preserve_index=False)
        table = table.cast(self._schema(table.schema))
        try:
            if self.format == "parquet":
                if self._writer is None:
                    self._writer = pq.ParquetWriter(self.tmp, table.schema)
                self._writer.write_table(table)
            elif self.format == "csv":
                if self._writer is None:
                    self._writer = pacsv.CSVWriter(self.tmp, table.schema)
                self._writer.write_table(table)
            else:
                if self._fh is None:
                    self._fh = self.tmp.open("w", encoding="utf-8")
                # json writes floats in full (shortest round-trip) as parquet and csv keep them;
                # pandas' to_json rounds to 10 (at most 15) digits. Missing values are nulls.
                self._fh.writelines(
                    json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
                    for row in table.to_pylist()
                )
        except OSError as exc:
            self.abort()
            raise NewsclfError(f"{self.path}: cannot write predictions ({exc.strerror})") from None
        self.rows += len(frame)

    def _schema(self, schema: pa.Schema) -> pa.Schema:
        # Fixed types, so an all-numeric id or version column stays a string in every chunk.
        def kind(name: str) -> pa.DataType:
            if name.endswith("_probability"):
                return pa.float64()
            return pa.int64() if name in INTEGER_COLUMNS else pa.string()

        return pa.schema(pa.field(f.name, kind(f.name)) for f in schema)

    def commit(self, metadata: Mapping[str, object]) -> Path:
        """Finish the file (an empty one if nothing was written) and move it into place."""
        self.finish(metadata)
        return self.move_into_place()

    def finish(self, metadata: Mapping[str, object]) -> Path:
        """Complete the temporary file (an empty one if nothing was written), not yet in
        place (``move_into_place``); returns it."""
        try:
            if self.format == "parquet":
                meta = {b"newsclf": json.dumps({**metadata, "rows": self.rows}).encode()}
                if self._writer is None:
                    empty = pa.table({c: pa.array([], pa.string()) for c in self.columns})
                    self._writer = pq.ParquetWriter(self.tmp, self._schema(empty.schema))
                self._writer.add_key_value_metadata(meta)
                self._writer.close()
            elif self.format == "csv":
                if self._writer is None:
                    self.tmp.write_text(",".join(self.columns) + "\n", encoding="utf-8")
                else:
                    self._writer.close()
            else:
                if self._fh is None:
                    self.tmp.write_text("", encoding="utf-8")
                else:
                    self._fh.close()
        except OSError as exc:
            self.abort()
            raise NewsclfError(f"{self.path}: cannot write predictions ({exc.strerror})") from None
        return self.tmp

    def move_into_place(self) -> Path:
        """Rename the finished temporary file to the final path."""
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise NewsclfError(f"{self.path}: cannot write predictions ({exc.strerror})") from None
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the final path is left untouched."""
        for closer in (self._writer, self._fh):
            try:
                if closer is not None:
                    closer.close()
            except Exception:
                pass
        self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- worker pool


def ordered_map(
    fn: Callable, items: Iterable, n_jobs: int, initializer: Callable, initargs: tuple
) -> Iterator:
    """``fn`` over ``items`` in ``n_jobs`` worker processes, results in input order, with at
    most two items per worker in flight (so memory stays bounded); in-process for one job."""
    if n_jobs == 1:
        initializer(*initargs)
        yield from map(fn, items)
        return
    # Objects that exist before the fork go to gc's permanent generation: the workers' garbage
    # collector would otherwise write to every one of them and copy the parent's memory. They
    # return to the collector's care once the workers are gone.
    gc.freeze()
    try:
        with worker_pool(n_jobs, initializer, initargs) as pool:
            pending: deque = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * n_jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        gc.unfreeze()


def worker_pool(
    n_jobs: int, initializer: Callable | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A pool of ``n_jobs`` worker processes that ignore Ctrl-C (the parent reports it) and end
    with a killed parent. Forked where the system can (they start at once and share the loaded
    models copy-on-write; the parent's threads are never used in a worker): create it, and
    submit its first item, from the thread that owns the process's imports."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    initargs = (initializer or _nothing, *initargs)
    return ProcessPoolExecutor(n_jobs, context, _start_worker, initargs)


def _nothing() -> None:
    pass


def _start_worker(initializer: Callable, *initargs: object) -> None:
    # Ctrl-C reaches the whole process group: the parent reports it, once; workers finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        # A worker must not outlive a killed parent: it would keep the job's lock file open.
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        libc = None
    _keep_worker_memory(libc)
    initializer(*initargs)


def _keep_worker_memory(libc: object) -> None:
    """Let a worker reuse its memory from chunk to chunk instead of returning it to the
    kernel and faulting it in again (zeroed) for the next chunk. A chunk's arrays take about
    100 MB; on BBC articles this was 25,000 page faults and 0.05 s of system time per chunk,
    and with transparent huge pages on ("always"), 0.6 s more in a worker's first chunk. The
    worker's peak memory stays the same (408 against 432 MiB, 50,100 BBC articles)."""
    pa.set_memory_pool(pa.system_memory_pool())  # Arrow's buffers from malloc, too
    if libc is None:
        return
    for call in (
        lambda: libc.prctl(41, 1, 0, 0, 0),  # PR_SET_THP_DISABLE: 4 kB pages, no 2 MB zeroing
        lambda: libc.mallopt(-1, 1 << 30),  # M_TRIM_THRESHOLD: keep the freed heap
        lambda: libc.mallopt(-3, 32 << 20),  # M_MMAP_THRESHOLD: arrays up to 32 MB on the heap
    ):
        with contextlib.suppress(AttributeError):  # not glibc / not Linux: defaults stay
            call()


def resolve_n_jobs(n_jobs: int) -> int:
    """``-1`` (or 0) means one worker per core."""
    return max(1, os.cpu_count() or 1) if n_jobs <= 0 else n_jobs


# Worker-process state, set once per worker by ``init_worker``.
_WORKER: dict = {}


def init_worker(models: Sequence[LoadedModel], oov_sample: int) -> None:
    _WORKER.update(models=models, oov_sample=oov_sample)


def worker_process_chunk(records: Sequence[Record]) -> ChunkResult:
    return process_chunk(records, _WORKER["models"], _WORKER["oov_sample"])
