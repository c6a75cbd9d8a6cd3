"""The dataset build in chunks, with memory flat in the corpus size (``newsclf-dataset``).

Pass 1 reads the source ``chunk_size`` records at a time: each chunk is cleaned, de-duplicated
(64-bit digests of ids and bodies, :class:`newsclf.batch.HashSet64`), labelled by each task's
rules, and its kept articles are written, sorted by id, to a staging run (an Arrow file) with
their votes. Rejects and removed boilerplate go straight to CSV files. What stays in memory:
the digests (8 bytes per article), the articles that have a gold label, and per task a count of
each distinct (vote pattern, target mention, gold label): the label model is fitted on those
counts, which is the same EM as on the full label matrix, in memory bounded by the number of
distinct vote patterns rather than the number of articles. Of articles with the same text
(the same cleaned body, whatever the title), a gold one is kept: an unlabelled copy staged
before it is found in the runs at the end of the pass and rejected then (its votes taken out
of the counts, its reject put in input order).

Pass 2 merges the runs in id order and writes each task's splits chunk by chunk (Hugging Face
Arrow files and Parquet), hashing the dataset fingerprint on the way: the rows, their order
and so the fingerprint are those of :func:`newsclf.datasets.build` on the same input (gold
articles split as before, weak-only articles appended to train sorted by id).
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import itertools
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from newsclf.articles import Article, Record, Reject, body_of, id_unknown
from newsclf.cleaning import Cleaner, Removal
from newsclf.errors import NewsclfError
from newsclf.tasks import Task

log = logging.getLogger(__name__)

CHUNK_SIZE = 1_000
# Rows per Arrow batch of a staging run: what the merge holds per run. MERGE_FAN_IN runs are
# merged at once (more in rounds), so the merge holds MERGE_FAN_IN x RUN_BATCH rows, decoded:
# with 256 rows that was 16,384 articles (tens of MiB) as soon as a build had 64 runs (64,000
# articles), the most of pass 2's peak.
RUN_BATCH = 64
MERGE_FAN_IN = 64  # runs merged at once; more runs are merged in rounds (bounded memory)
WRITE_BATCH = 1_000  # rows buffered per split before they are written
ABSTAIN = -1  # labelling.rules.ABSTAIN, not imported here: the labelling modules load lazily


# --------------------------------------------------------------------------- pass 1


@dataclass
class TaskVotes:
    """One task's rules' votes over the whole corpus, as counts of distinct rows."""

    key: str
    n_rules: int
    # (votes as int8 bytes, mentions a target, gold label or "") -> number of articles
    patterns: Counter = field(default_factory=Counter)


@dataclass
class Ingested:
    """What pass 1 leaves: counts, the staging runs and the small in-memory part."""

    folder: Path  # the staging folder (deleted by :meth:`close`)
    n_input: int = 0
    n_kept: int = 0
    reject_counts: Counter = field(default_factory=Counter)
    removed_by_rule: Counter = field(default_factory=Counter)
    runs: list[Path] = field(default_factory=list)
    gold_articles: dict[str, Article] = field(default_factory=dict)
    gold_votes: dict[str, dict[str, bytes]] = field(default_factory=dict)  # task -> id -> votes
    votes: dict[str, TaskVotes] = field(default_factory=dict)
    # ids the annotation files name (labelled or blank) that were found in the input
    seen_annotated: set[str] = field(default_factory=set)
    # staged articles rejected at the end of pass 1: a later copy of their text has a gold label
    displaced: set[str] = field(default_factory=set)
    unnamed_rejects: int = 0  # records rejected before their id was known
    first_unnamed: Reject | None = None  # the first of them (named in the annotations' error)
    first_reject: Reject | None = None
    # articles whose date value could not be read (left empty), before de-duplication
    unread_dates: int = 0
    first_unread_date: str = ""  # where, and the value
    seconds: float = 0.0

    @property
    def n_rejected(self) -> int:
        return sum(self.reject_counts.values())

    def add_reject(self, writer: Any, reject: Reject, gold_ids: Collection[str]) -> None:
        """Write ``reject`` to rejects.csv (``writer``) and count it, by both engines."""
        writer.writerow([reject.id, reject.source, reject.reason, reject.detail])
        self.reject_counts[reject.reason] += 1
        self.first_reject = self.first_reject or reject
        if id_unknown(reject):  # an annotation of an id not read may be this record
            self.unnamed_rejects += 1
            self.first_unnamed = self.first_unnamed or reject
        elif reject.id in gold_ids:
            self.seen_annotated.add(reject.id)

    @property
    def rejects_csv(self) -> Path:
        return self.folder / "rejects.csv"

    @property
    def boilerplate_csv(self) -> Path:
        return self.folder / "boilerplate.csv"

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def staging_folder(output_dir: Path) -> Path:
    """A fresh hidden folder beside the datasets, on the same file system (atomic renames)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NewsclfError(f"output_dir: {output_dir} is a file, not a folder") from None
    except OSError as exc:
        raise NewsclfError(f"output_dir: cannot create {output_dir} ({exc.strerror})") from None
    folder = output_dir / f".build-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


@dataclass
class Prepared:
    """One chunk cleaned and voted on (by a worker process or in-process): per record a
    reject, or a cleaned article with each task's votes (int8 bytes) and target mention."""

    n_records: int
    items: list  # Reject | (Article, {task: (votes, mentions)})
    removals: list[tuple[str, str, str]]  # (article id, rule, text), in input order


def prepare_chunk(records: Sequence[Record], cleaner: Cleaner, rule_sets: Mapping) -> Prepared:
    """Clean a chunk and apply every task's rules to its non-empty articles."""
    items: list = []
    removals: list[tuple[str, str, str]] = []
    articles: list[Article] = []
    for record in records:
        if isinstance(record, Reject):
            items.append(record)
            continue
        article, removed = cleaner.clean(record)
        removals += [(r.article_id, r.rule, r.text) for r in removed]
        if not article.body.strip():
            items.append(
                Reject(article.id, article.source, "empty_text", "no body text after cleaning")
            )
            continue
        items.append((article, {}))
        articles.append(article)
    if articles:
        from newsclf.labelling.rules import apply_rule_sets

        at = [i for i, item in enumerate(items) if isinstance(item, tuple)]
        mentions = {key: rules.mentions_target(articles) for key, rules in rule_sets.items()}
        # all tasks' rules at once: an article is split into words once for all of them
        matrices = apply_rule_sets(rule_sets, articles, mentions)
        for key in rule_sets:
            matrix, found = matrices[key].astype(np.int8), mentions[key]
            for j, i in enumerate(at):
                items[i][1][key] = (
                    matrix[j].tobytes(),
                    True if found is None else bool(found[j]),
                )
    return Prepared(len(records), items, removals)


_WORKER: dict = {}


def _init_worker(cleaner: Cleaner, rule_sets: Mapping) -> None:
    _WORKER.update(cleaner=cleaner, rule_sets=rule_sets)


def _worker_prepare(records: Sequence[Record]) -> Prepared:
    return prepare_chunk(records, _WORKER["cleaner"], _WORKER["rule_sets"])


def ingest(
    records: Iterable[Record],
    cleaner: Cleaner,
    dedupe_text: bool,
    rule_sets: Mapping,
    annotated: Mapping[str, Mapping[str, str]],
    output_dir: Path,
    chunk_size: int = CHUNK_SIZE,
    n_jobs: int = 1,
    named_ids: Collection[str] = (),
) -> Ingested:
    """Pass 1 over ``records``: clean, de-duplicate and vote in chunks (see the module doc).

    ``annotated`` maps each task key to its gold labels (article id -> label), so gold articles
    are kept in memory for the splits. ``n_jobs`` worker processes clean and vote (at most two
    chunks each in flight); de-duplication and staging stay in this process, in input order.
    ``named_ids`` are further ids the annotation files name without a label (blank rows): they
    are looked for in the input (``Ingested.seen_annotated``) but are not gold articles.
    """
    from newsclf.batch import batched, ordered_map, resolve_n_jobs

    if chunk_size < 1:
        raise NewsclfError(f"chunk_size: {chunk_size} must be at least 1")
    result = Ingested(staging_folder(output_dir))
    try:
        prepared = ordered_map(
            _worker_prepare,
            batched(records, chunk_size),
            resolve_n_jobs(n_jobs),
            _init_worker,
            (cleaner, rule_sets),
        )
        _ingest(result, prepared, dedupe_text, rule_sets, annotated, named_ids)
    except BaseException:
        result.close()
        raise
    return result


def _ingest(
    result: Ingested,
    prepared: Iterable[Prepared],
    dedupe_text: bool,
    rule_sets: Mapping,
    annotated: Mapping[str, Mapping[str, str]],
    named_ids: Collection[str] = (),
) -> None:
    from newsclf.batch import HashSet64, text_key

    labelled = set().union(*annotated.values())
    gold_ids = labelled | set(named_ids)
    result.votes = {key: TaskVotes(key, len(r.rules)) for key, r in rule_sets.items()}
    result.gold_votes = {key: {} for key in rule_sets}
    seen_ids, seen_texts = HashSet64(), HashSet64()
    duplicates: dict[int, list[int]] = {}  # body digest -> rows of rejects.csv to fix
    # Of articles with the same body, one with a gold label is kept, else the first: so a body
    # digest -> the id of the gold article kept with it (as few as the annotations), and the
    # digests whose first, unlabelled copy was staged before a gold copy came (the copy is
    # found in the runs and rejected at the end)
    gold_texts: dict[int, str] = {}
    displacing: dict[int, str] = {}
    started = time.perf_counter()
    with (
        result.rejects_csv.open("w", encoding="utf-8", newline="") as rejects_fh,
        result.boilerplate_csv.open("w", encoding="utf-8", newline="") as removals_fh,
    ):
        rejects = csv.writer(rejects_fh)
        rejects.writerow(list(Reject.__annotations__))
        removals = csv.writer(removals_fh)
        removals.writerow(list(Removal.__annotations__))
        n_reject_rows = 0
        for chunk in prepared:
            result.n_input += chunk.n_records
            removals.writerows(chunk.removals)
            for _, rule, _ in chunk.removals:
                result.removed_by_rule[rule] += 1
            candidates = [item for item in chunk.items if isinstance(item, tuple)]
            for article, _ in candidates:
                if article.unread_date:
                    result.unread_dates += 1
                    result.first_unread_date = result.first_unread_date or (
                        f"{article.source}: {article.unread_date!r}"
                    )
            keys = np.fromiter((text_key(a.id) for a, _ in candidates), np.uint64)
            new_id = seen_ids.add_new(keys)
            verdict: dict[int, Reject] = {}
            text_keys: dict[int, int] = {}
            if dedupe_text:
                unique = [a for (a, _), new in zip(candidates, new_id, strict=True) if new]
                # the body, as articles.clean_and_dedupe: a retitled copy is the same text
                digests = np.fromiter((text_key(a.body) for a in unique), np.uint64)
                new_text = iter(seen_texts.add_new(digests).tolist())
                key_of = iter(digests.tolist())
            for (article, _), new in zip(candidates, new_id, strict=True):
                if not new:
                    verdict[id(article)] = Reject(
                        article.id, article.source, "duplicate_id", "id seen earlier in the input"
                    )
                elif dedupe_text:
                    key, is_new = next(key_of), next(new_text)
                    text_keys[id(article)] = key
                    if article.id in labelled and key not in gold_texts:
                        gold_texts[key] = article.id
                        if not is_new:  # the copy kept so far has no gold label
                            displacing[key] = article.id
                    elif not is_new:
                        # the first article with this text is known at the end (its id is not
                        # kept in memory): the detail is filled in then
                        verdict[id(article)] = Reject(
                            article.id, article.source, "duplicate_text", f"\x00{key}"
                        )
            kept: list[tuple[Article, dict]] = []
            places: list[tuple[int, int]] = []  # (rejects before it, input position)
            first = result.n_input - chunk.n_records
            for at, item in enumerate(chunk.items, first):
                if isinstance(item, tuple):
                    bad = verdict.get(id(item[0]))
                    if bad is None:
                        kept.append(item)
                        places.append((n_reject_rows, at))
                        continue
                    item = bad
                if item.reason == "duplicate_text":
                    duplicates.setdefault(int(item.detail[1:]), []).append(n_reject_rows)
                result.add_reject(rejects, item, gold_ids)
                n_reject_rows += 1
            keys_kept = [text_keys.get(id(a), 0) for a, _ in kept]
            _stage(result, kept, keys_kept, places, rule_sets, annotated, gold_ids)
            log.info("%d records read, %d kept", result.n_input, result.n_kept)
    late = _displace(result, displacing, rule_sets) if displacing else []
    if duplicates or late:
        _name_duplicates(result, duplicates, displacing, late)
    result.seconds = time.perf_counter() - started


def _stage(
    result: Ingested,
    kept: list[tuple[Article, dict]],
    text_keys: list[int],
    places: list[tuple[int, int]],
    rule_sets: Mapping,
    annotated: Mapping[str, Mapping[str, str]],
    named: Collection[str] = (),
) -> None:
    """Count a chunk's kept articles' votes and write them, sorted by id, as a staging run."""
    if not kept:
        return
    result.n_kept += len(kept)
    columns: dict[str, list] = {
        "id": [a.id for a, _ in kept],
        "date": [a.date for a, _ in kept],
        "title": [a.title for a, _ in kept],
        "text": [a.text for a, _ in kept],
        "text_key": text_keys,  # the body's digest (0 without dedupe_text)
        # where its reject would go, should a later gold copy of its text displace it
        "source": [a.source for a, _ in kept],
        "reject_at": [r for r, _ in places],
        "input_at": [i for _, i in places],
    }
    for a, _ in kept:
        if any(a.id in gold for gold in annotated.values()):
            result.gold_articles[a.id] = a
            result.seen_annotated.add(a.id)
        elif a.id in named:  # a blank annotation row's article: in the input, not gold
            result.seen_annotated.add(a.id)
    for key in rule_sets:
        gold = annotated.get(key, {})
        counter = result.votes[key].patterns
        votes, mentions = [], []
        for a, by_task in kept:
            v, m = by_task[key]
            label = gold.get(a.id, "")
            counter[(v, m, label)] += 1
            if label:
                result.gold_votes[key][a.id] = v
            votes.append(v)
            mentions.append(m)
        columns[f"votes_{key}"] = votes
        columns[f"mentions_{key}"] = mentions
    order = sorted(range(len(kept)), key=columns["id"].__getitem__)
    # fixed types: a chunk without any date would otherwise type `date` as null, and a merge
    # round (which writes with its first run's schema) would then fail on a dated row
    types = {
        "id": pa.string(),
        "date": pa.string(),
        "title": pa.string(),
        "text": pa.string(),
        "text_key": pa.uint64(),
        "source": pa.string(),
        "reject_at": pa.uint64(),
        "input_at": pa.uint64(),
    }
    table = pa.table(
        {k: pa.array([v[i] for i in order], type=types.get(k)) for k, v in columns.items()}
    )
    path = result.folder / f"run-{len(result.runs):06d}.arrow"
    _write_run(path, table.to_batches(max_chunksize=RUN_BATCH), table.schema)
    result.runs.append(path)


def _write_run(path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


def read_run(path: Path, columns: Sequence[str] | None = None) -> Iterator[dict]:
    """The rows of a staging run, one Arrow batch at a time. Read, not memory-mapped: pages of
    a mapped file stay resident (and counted) until the whole run is read."""
    with pa.OSFile(str(path)) as source:
        reader = pa.ipc.open_file(source)
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            if columns is not None:
                batch = batch.select(columns)
            yield from batch.to_pylist()


def _displace(result: Ingested, displacing: Mapping[int, str], rule_sets: Mapping) -> list:
    """Reject the staged articles whose text a later gold article repeats (a scan of the runs):
    they leave the kept count and their votes the label model's counts, and pass 2 skips them.
    Their rejects, (rejects before them, input position, reject), are returned for the file."""
    late = []
    columns = ["id", "text_key", "source", "reject_at", "input_at"]
    columns += [c for key in rule_sets for c in (f"votes_{key}", f"mentions_{key}")]
    for run in result.runs:
        for row in read_run(run, columns):
            gold_id = displacing.get(row["text_key"])
            if gold_id is None or row["id"] == gold_id:
                continue
            result.displaced.add(row["id"])
            result.n_kept -= 1
            for key in rule_sets:
                patterns = result.votes[key].patterns
                pattern = (row[f"votes_{key}"], row[f"mentions_{key}"], "")
                patterns[pattern] -= 1
                if not patterns[pattern]:
                    del patterns[pattern]
            reject = Reject(row["id"], row["source"], "duplicate_text", f"same text as {gold_id}")
            late.append((row["reject_at"], row["input_at"], reject))
            result.reject_counts["duplicate_text"] += 1
    return sorted(late, key=lambda item: item[:2])


def _name_duplicates(
    result: Ingested,
    duplicates: dict[int, list[int]],
    displacing: Mapping[int, str],
    late: list[tuple[int, int, Reject]],
) -> None:
    """Rewrite rejects.csv: fill in ``same text as <id>`` (from a scan of the runs' id and body
    digest, or the gold article that displaced the first copy) and put the displaced articles'
    rejects where they belong in input order."""
    first: dict[int, str] = dict(displacing)
    for run in result.runs:
        for row in read_run(run, ["id", "text_key"]):
            if row["text_key"] in duplicates and row["text_key"] not in first:
                first[row["text_key"]] = row["id"]
    rows = {row: key for key, at in duplicates.items() for row in at}
    fixed = result.folder / "rejects.fixed.csv"
    pending = iter(late)
    following = next(pending, None)
    with (
        result.rejects_csv.open(encoding="utf-8", newline="") as fh,
        fixed.open("w", encoding="utf-8", newline="") as out,
    ):
        reader, writer = csv.reader(fh), csv.writer(out)
        writer.writerow(next(reader))
        for i, row in enumerate(itertools.chain(reader, [None])):
            while following is not None and following[0] <= i:
                r = following[2]
                writer.writerow([r.id, r.source, r.reason, r.detail])
                following = next(pending, None)
            if row is None:
                break
            if i in rows:
                row[3] = f"same text as {first.get(rows[i], 'an earlier article')}"
            writer.writerow(row)
    os.replace(fixed, result.rejects_csv)


# --------------------------------------------------------------------------- label model


@dataclass
class TaskLabels:
    """A task's fitted label model applied to its distinct vote patterns."""

    decide: dict[bytes, tuple[int, float, str]]  # votes -> (label id, confidence, reason)
    labelled: object  # a newsclf.labelling.rules.Labelled over the distinct rows, with weights
    gold: dict[str, str]  # row key -> gold label, for the report


def fit_labels(votes: TaskVotes, n_labels: int, label_model) -> TaskLabels:
    """Fit the label model on the distinct vote patterns weighted by their counts."""
    from newsclf.labelling.label_model import DawidSkene
    from newsclf.labelling.rules import Labelled

    keys = list(votes.patterns)
    matrix = np.array(
        [np.frombuffer(v, dtype=np.int8) for v, _, _ in keys], dtype=np.int64
    ).reshape(len(keys), votes.n_rules)
    weights = np.array([votes.patterns[k] for k in keys], dtype=np.int64)
    distinct = sorted({v for v, _, _ in keys})
    at = {v: i for i, v in enumerate(distinct)}
    d_matrix = np.array(
        [np.frombuffer(v, dtype=np.int8) for v in distinct], dtype=np.int64
    ).reshape(len(distinct), votes.n_rules)
    d_weights = np.zeros(len(distinct), dtype=np.int64)
    for (v, _, _), n in zip(keys, weights, strict=True):
        d_weights[at[v]] += n
    model = label_model.fit(d_matrix, n_labels, weights=d_weights)
    weak = model.weak_labels(d_matrix)
    decide = {
        v: (int(weak.labels[i]), float(weak.confidence[i]), weak.reason[i])
        for i, v in enumerate(distinct)
    }
    rows = [decide[v] for v, _, _ in keys]
    reason = [
        "no_target" if r == "no_votes" and not m else r
        for (_, _, r), (_, m, _) in zip(rows, keys, strict=True)
    ]
    ids = [f"row{i}" for i in range(len(keys))]
    labelled = Labelled(
        ids=ids,
        matrix=matrix,
        labels=np.array([r[0] for r in rows], dtype=np.int64),
        confidence=np.array([r[1] for r in rows], dtype=float),
        reason=reason,
        learned_accuracy=model.rule_precision() if isinstance(model, DawidSkene) else None,
        weights=weights,
    )
    gold = {ids[i]: g for i, (_, _, g) in enumerate(keys) if g}
    return TaskLabels(decide, labelled, gold)


# --------------------------------------------------------------------------- pass 2


@dataclass
class TaskPlan:
    """How pass 2 writes one task: its gold articles and splits, its weak-label decisions."""

    key: str
    task: Task
    folder: Path  # the task's dataset folder being written (swapped into place later)
    gold: dict[str, str]  # kept article id -> gold label
    assignment: dict[str, str]  # gold article id -> split
    labels: TaskLabels | None
    min_confidence: float
    gold_in_train: bool
    votes_names: list[str] = field(default_factory=list)  # rule names, for votes.csv


@dataclass
class Written:
    """What was written for one task."""

    fingerprint: str
    rows: dict[str, int]
    label_counts: dict[str, dict[str, int]]
    sources: dict[str, Counter]  # split -> label_source counts


class _SplitWriter:
    """One split of a task: Hugging Face Arrow file + Parquet file, written in batches."""

    def __init__(self, folder: Path, name: str, features, hasher, label_names) -> None:
        import pyarrow.parquet as pq
        from datasets.arrow_writer import ArrowWriter

        self.name = name
        self.features = features
        self.schema = features.arrow_schema
        (folder / "hf" / name).mkdir(parents=True)
        (folder / "parquet").mkdir(exist_ok=True)
        self.arrow = ArrowWriter(
            features=features, path=str(folder / "hf" / name / "data-00000-of-00001.arrow")
        )
        # no min/max statistics of title and text: one row group per WRITE_BATCH rows, and the
        # writer keeps every row group's statistics (whole articles) in memory until it closes
        self.parquet = pq.ParquetWriter(
            str(folder / "parquet" / f"{name}.parquet"),
            self.schema,
            write_statistics=[c for c in self.schema.names if c not in ("title", "text")],
        )
        self.hasher = hasher
        self.buffer: dict[str, list] = {k: [] for k in features}
        self.n = 0
        self.labels: Counter = Counter()
        self.sources: Counter = Counter()
        hasher.update(json.dumps(list(label_names)).encode())

    def add(self, article_id: str, date, title: str, text: str, label: int, source: str,
            confidence: float) -> None:  # fmt: skip
        row = {
            "id": article_id,
            "date": date,
            "title": title,
            "text": text,
            "label": label,
            "label_source": source,
            "label_confidence": float(confidence),
        }
        for k, v in row.items():
            self.buffer[k].append(v)
        # the fingerprint of newsclf.datasets.fingerprint, row by row
        hashed = {
            "id": article_id,
            "text": text,
            "label": label,
            "label_source": source,
            "label_confidence": round(float(confidence), 6),
        }
        self.hasher.update(self.name.encode())
        self.hasher.update(json.dumps(hashed, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        self.n += 1
        self.labels[label] += 1
        self.sources[source] += 1
        if len(self.buffer["id"]) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.buffer["id"]:
            return
        table = pa.Table.from_pydict(self.buffer, schema=self.schema)
        self.arrow.write_table(table)
        self.parquet.write_table(table)
        self.buffer = {k: [] for k in self.features}

    def close(self, info, fingerprint: str) -> None:
        self.flush()
        if self.n == 0:  # the writers need one table for the schema
            empty = pa.Table.from_pydict({k: [] for k in self.features}, schema=self.schema)
            self.arrow.write_table(empty)
        self.arrow.finalize()
        self.arrow.close()
        self.parquet.close()
        folder = Path(self.arrow._path).parent
        state = {
            "_data_files": [{"filename": "data-00000-of-00001.arrow"}],
            "_fingerprint": hashlib.sha256(f"{fingerprint}/{self.name}".encode()).hexdigest()[:16],
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": None,
        }
        (folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        from datasets.utils.py_utils import asdict as hf_asdict  # handles Features

        data = hf_asdict(info)
        (folder / "dataset_info.json").write_text(
            json.dumps({k: data[k] for k in sorted(data)}, indent=2)
        )


def plan_splits(
    gold: Mapping[str, str], task: Task, split, articles: Mapping[str, Article]
) -> dict[str, str]:
    """Gold article id -> split, as :func:`newsclf.datasets.build` assigns them (stratified,
    articles ordered by id, those with the same body in one split)."""
    from newsclf.datasets import stratified_split

    ids = sorted(gold)
    names = task.label_names
    bodies = [articles[a].body for a in ids]
    assignment = stratified_split([names.index(gold[a]) for a in ids], split, bodies)
    return dict(zip(ids, assignment, strict=True))


def check_labels(plan: TaskPlan, votes: TaskVotes | None, n_articles: int) -> int:
    """:func:`newsclf.datasets.build`'s check (two labels at least, gold or weak); returns
    the number of articles that get a weak label without a gold one."""
    counts = Counter(plan.gold.values())
    weak_labels: set[int] = set()
    n_weak = 0
    if plan.labels is not None and votes is not None:
        for (v, _, g), n in votes.patterns.items():
            lab, conf, _ = plan.labels.decide[v]
            if not g and lab != ABSTAIN and conf >= plan.min_confidence:
                weak_labels.add(lab)
                n_weak += n
    if len(counts) == 1 or (not counts and len(weak_labels) < 2):
        raise NewsclfError(
            f"task {plan.task.name}: needs at least two labels present in the annotations, "
            f"found {dict(counts) or 'none'} among {n_articles} articles"
            + (f" (and {n_weak} weak labels)" if plan.labels is not None else "")
        )
    return n_weak


# staging columns only the end of pass 1 reads (to reject a copy a gold article displaced)
_PLACE_COLUMNS = ("source", "reject_at", "input_at")


def merged(runs: list[Path], folder: Path) -> Iterator[dict]:
    """The rows of all staging runs in id order (runs merged ``MERGE_FAN_IN`` at a time),
    without the columns that place a reject."""
    from newsclf.batch import batched

    runs = list(runs)
    if not runs:
        return
    with pa.OSFile(str(runs[0])) as first:
        schema = pa.ipc.open_file(first).schema
    columns = [name for name in schema.names if name not in _PLACE_COLUMNS]
    schema = pa.schema([schema.field(name) for name in columns])
    round_no = 0
    while len(runs) > MERGE_FAN_IN:
        round_no += 1
        merged_runs = []
        for i in range(0, len(runs), MERGE_FAN_IN):
            group = runs[i : i + MERGE_FAN_IN]
            path = folder / f"merge{round_no}-{i:06d}.arrow"
            rows = heapq.merge(*(read_run(r, columns) for r in group), key=_row_id)
            batches = (
                pa.RecordBatch.from_pylist(batch, schema=schema)
                for batch in batched(rows, RUN_BATCH)
            )
            _write_run(path, batches, schema)
            for r in group:
                r.unlink()
            merged_runs.append(path)
        runs = merged_runs
    yield from heapq.merge(*(read_run(r, columns) for r in runs), key=_row_id)


def _row_id(row: dict) -> str:
    return row["id"]


def write(ingested: Ingested, plans: Sequence[TaskPlan]) -> dict[str, Written]:
    """Pass 2: every task's splits written chunk by chunk from the merged runs."""
    import datasets as hf

    from newsclf.datasets import SPLITS, features

    hashers = {p.key: hashlib.sha256() for p in plans}
    writers: dict[str, dict[str, _SplitWriter]] = {}
    held_out: dict[str, dict[bytes, str]] = {}  # bodies of validation/test (gold, small)
    copies: Counter = Counter()  # weak rows left out of train as copies of those bodies
    votes_files = {}
    for p in plans:
        feats = features(p.task)
        writers[p.key] = {
            s: _SplitWriter(p.folder, s, feats, hashers[p.key], p.task.label_names)
            for s in ("train",)
        }
        names = p.task.label_names
        held_out[p.key] = {
            hashlib.blake2b(ingested.gold_articles[a].body.encode(), digest_size=16).digest(): s
            for a, s in p.assignment.items()
            if s != "train"
        }
        # gold articles first, sorted by id (as datasets.build does)
        for article_id in sorted(p.assignment):
            if p.assignment[article_id] != "train":
                continue
            a = ingested.gold_articles[article_id]
            if p.gold_in_train:
                writers[p.key]["train"].add(
                    a.id, a.date, a.title, a.text, names.index(p.gold[a.id]), "gold", 1.0
                )
            elif p.labels is not None:
                lab, conf = _weak(p, ingested.gold_votes[p.key].get(a.id))
                if lab != ABSTAIN:
                    writers[p.key]["train"].add(a.id, a.date, a.title, a.text, lab, "weak", conf)
        if p.labels is not None:
            fh = (p.folder / "votes.csv").open("w", encoding="utf-8", newline="")
            writer = csv.writer(fh)
            header = ["id", "gold", "weak_label", "weak_confidence", "reason"]
            writer.writerow([*header, *p.votes_names])
            votes_files[p.key] = (fh, writer)
    for row in merged(ingested.runs, ingested.folder):
        if row["id"] in ingested.displaced:
            continue
        for p in plans:
            votes = row.get(f"votes_{p.key}")
            if votes is not None and p.key in votes_files:
                _votes_row(p, votes_files[p.key][1], row, votes)
            if row["id"] in p.gold or p.labels is None:
                continue
            lab, conf = _weak(p, votes)
            if lab == ABSTAIN:
                continue
            text = row["text"]
            body = body_of(row["title"], text)
            digest = hashlib.blake2b(body.encode(), digest_size=16).digest()
            if digest in held_out[p.key]:  # a copy of a test body (dedupe_text=false)
                copies[p.key] += 1
                continue
            train = writers[p.key]["train"]
            train.add(row["id"], row["date"], row["title"], text, lab, "weak", conf)
    for fh, _ in votes_files.values():
        fh.close()
    for key, n in copies.items():
        log.warning(
            "%s: %d weakly labelled articles repeat a validation or test body and are left out "
            "of train (dedupe_text=false)",
            key,
            n,
        )
    out = {}
    for p in plans:
        feats = features(p.task)
        names = p.task.label_names
        for s in ("validation", "test"):
            w = writers[p.key][s] = _SplitWriter(p.folder, s, feats, hashers[p.key], names)
            for article_id in sorted(a for a, x in p.assignment.items() if x == s):
                a = ingested.gold_articles[article_id]
                w.add(a.id, a.date, a.title, a.text, names.index(p.gold[a.id]), "gold", 1.0)
        fingerprint = hashers[p.key].hexdigest()[:16]
        info = hf.DatasetInfo(description=p.task.description, features=feats)
        for w in writers[p.key].values():
            w.close(info, fingerprint)
        (p.folder / "hf" / "dataset_dict.json").write_text(json.dumps({"splits": list(SPLITS)}))
        ws = writers[p.key]
        out[p.key] = Written(
            fingerprint=fingerprint,
            rows={s: ws[s].n for s in SPLITS},
            label_counts={
                label: {s: ws[s].labels.get(k, 0) for s in SPLITS} for k, label in enumerate(names)
            },
            sources={s: ws[s].sources for s in SPLITS},
        )
    return out


def _weak(plan: TaskPlan, votes: bytes | None) -> tuple[int, float]:
    """The article's weak label and confidence, or (-1, 0) below ``min_confidence``."""
    if votes is None or plan.labels is None:
        return ABSTAIN, 0.0
    lab, conf, _ = plan.labels.decide[votes]
    if lab == ABSTAIN or conf < plan.min_confidence:
        return ABSTAIN, 0.0
    return lab, conf


def _votes_row(plan: TaskPlan, writer, row: dict, votes: bytes) -> None:
    """A row of votes.csv (as :func:`newsclf.labelling.report.votes_csv` writes it)."""
    names = plan.task.label_names
    lab, conf, reason = plan.labels.decide[votes]
    if reason == "no_votes" and not row[f"mentions_{plan.key}"]:
        reason = "no_target"
    reason = reason or ("low_confidence" if conf < plan.min_confidence else "")
    cast = [names[v] if v != ABSTAIN else "" for v in np.frombuffer(votes, dtype=np.int8)]
    weak = names[lab] if lab != ABSTAIN else ""
    writer.writerow([row["id"], plan.gold.get(row["id"], ""), weak, f"{conf:.4f}", reason, *cast])
