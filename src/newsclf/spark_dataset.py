"""The Spark engine of ``newsclf-dataset`` (``engine=spark``): pass 1 of the build on Spark.

Parquet or JSONL records are parsed, cleaned and voted on by each task's labelling rules in a
``mapInArrow`` stage, exactly as the local engine does it (the same ``Source.row_to_record``,
``Cleaner`` and ``RuleSet``: a row whose text, title or id is of the wrong type is a
``wrong_type`` reject, or with ``on_error=raise`` one error line naming file and record); ids
and texts (the cleaned bodies, whatever the titles) are de-duplicated keeping the first in
input order (file path, then row). The driver then receives
what the local engine's pass 1 leaves (:class:`newsclf.build.Ingested`): the counts, the rejects
and removed boilerplate as CSV files in input order, the gold-labelled articles, each task's
vote-pattern counts (a Spark ``groupBy``) and the kept articles sorted by id as one staging run.
The label model, the splits and the writing are the local engine's (:mod:`newsclf.build`), so
both engines give the same datasets.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path

import pyarrow as pa

from newsclf.articles import Article, Reject, Source, place_id
from newsclf.build import RUN_BATCH, Ingested, TaskVotes, staging_folder
from newsclf.cleaning import Cleaner, Removal
from newsclf.errors import NewsclfError, first_line
from newsclf.labelling.rules import apply_rule_sets
from newsclf.spark import (
    ctrl_c_cancels_spark,
    executor_error,
    file_path,
    lenient,
    map_inputs,
    mark_duplicates,
    raise_first_bad_record,
    read_parquet,
    size_shuffle,
    spark_session,
)
from newsclf.spark_input import InputFile, Inputs
from newsclf.table_files import jsonl_row

log = logging.getLogger(__name__)

FORMATS = ("parquet", "jsonl")
_ORDER = ("_file", "_row")  # the input order: files in order, rows in each


def _clean_and_vote(
    source: Source, cleaner: Cleaner, rule_sets: Mapping, annotated: Mapping, jsonl: bool
) -> Callable[..., Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: raw rows (JSONL: lines, parsed here as the local engine
    parses them) -> cleaned article (its text and, the duplicate key, its body), removals, each
    task's votes (int8 bytes, as the local engine stages them), target mention and gold
    label."""
    import numpy as np

    reading = lenient(source)  # bad records become rejects; the driver applies on_error

    def run(batches: Iterator[pa.RecordBatch], arrow_schema: pa.Schema) -> Iterator:
        columns = ("id", "date", "title", "text", "body", "empty", "unread_date")
        for batch in batches:
            rows = batch.to_pylist()
            out: dict[str, list] = {k: [] for k in (*columns, "source", "reject", "detail")}
            out["removals"], out["_file"], out["_row"] = [], [], []
            articles: list[Article] = []
            where_kept: list[int] = []
            if jsonl:  # lines decoded and parsed as the local engine does; blank: no record
                rows = [row for row in rows if _parsed(row, source.encoding) is not None]
            for i, row in enumerate(rows):
                # Spark names files by URI; the local engine (and the rejects file) by path
                where = f"{file_path(row['_file'])}:{row['_row'] + 1}"
                if row.get("_error"):  # a file the local engine counts as one record
                    where = file_path(row["_file"])
                    row = {"__unreadable__": row["_error"]}
                elif jsonl:
                    row = row["_parsed"]
                if "__unreadable__" in row:
                    record = Reject(place_id(where), where, "unreadable", row["__unreadable__"])
                elif "__reject__" in row:
                    record: Article | Reject = Reject(
                        place_id(where), where, "malformed_record", row["__reject__"]
                    )
                else:
                    record = reading.row_to_record(row, where)
                removals: list[dict] = []
                if isinstance(record, Article):
                    article, removed = cleaner.clean(record)
                    removals = [{"rule": r.rule, "text": r.text} for r in removed]
                    empty = not article.body.strip()
                    values = [article.id, article.date, article.title, article.text]
                    values += [article.body, empty]  # the body: the duplicate key
                    values.append(article.unread_date if not empty else "")
                    reject, detail = None, None
                    if not empty:
                        articles.append(article)
                        where_kept.append(i)
                else:
                    values = [record.id, None, None, None, None, False, ""]
                    reject, detail = record.reason, record.detail
                for k, v in zip(columns, values, strict=True):
                    out[k].append(v)
                out["source"].append(where)
                out["reject"].append(reject)
                out["detail"].append(detail)
                out["removals"].append(removals)
                out["_file"].append(rows[i]["_file"])
                out["_row"].append(rows[i]["_row"])
            if articles:  # all tasks' rules at once: an article is split into words once
                found_by = {
                    key: rules.mentions_target(articles) for key, rules in rule_sets.items()
                }
                matrices = apply_rule_sets(rule_sets, articles, found_by)
            for key in rule_sets:
                votes: list[bytes | None] = [None] * len(rows)
                mentions: list[bool] = [True] * len(rows)
                if articles:
                    found, matrix = found_by[key], matrices[key].astype(np.int8)
                    for j, i in enumerate(where_kept):
                        votes[i] = matrix[j].tobytes()
                        mentions[i] = True if found is None else bool(found[j])
                out[f"votes_{key}"] = votes
                out[f"mentions_{key}"] = mentions
            for key, gold in annotated.items():  # every task's, with rules or without
                out[f"gold_{key}"] = [gold.get(a, "") if a else "" for a in out["id"]]
            yield pa.RecordBatch.from_pydict(out, schema=arrow_schema)

    return run


def _schema(rule_sets: Mapping, annotated: Mapping) -> str:
    tasks = "".join(f"votes_{k} binary, mentions_{k} boolean, " for k in rule_sets)
    tasks += "".join(f"gold_{k} string, " for k in annotated)
    return (
        "id string, date string, title string, text string, body string, empty boolean, "
        "unread_date string, source string, "
        "reject string, detail string, removals array<struct<rule: string, text: string>>, "
        f"{tasks}_file string, _row long"
    )


@ctrl_c_cancels_spark()
def ingest_on_spark(
    source: Source,
    cleaner: Cleaner,
    dedupe_text: bool,
    rule_sets: Mapping,
    annotated: Mapping[str, Mapping[str, str]],
    output_dir: Path,
    spark_conf: Mapping | None = None,
    spark=None,
    named_ids: Collection[str] = (),
) -> Ingested:
    """Pass 1 of the dataset build on Spark; returns what :func:`newsclf.build.ingest` does."""
    fmt = source.resolved_format()
    if fmt not in FORMATS:
        raise NewsclfError(
            f"{source.path}: engine=spark reads Parquet or JSONL, not {fmt} "
            "(convert the input, or use engine=local)"
        )
    if spark is None:
        conf = dict(spark_conf or {})
        spark = spark_session(
            conf.get("master", "local[*]"),
            conf.get("app_name", "newsclf-dataset"),
            conf.get("conf"),
        )
    result = Ingested(staging_folder(output_dir))
    try:
        _ingest(spark, result, source, fmt, cleaner, dedupe_text, rule_sets, annotated, named_ids)
    except BaseException:
        result.close()
        raise
    return result


def _ingest(
    spark, result, source, fmt, cleaner, dedupe_text, rule_sets, annotated, named_ids=()
) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.perf_counter()
    inputs = Inputs(spark, source)
    run = _clean_and_vote(source, cleaner, rule_sets, annotated, fmt == "jsonl")
    if fmt == "parquet":
        groups, n_rows, errors = inputs.parquet()
        parts = read_parquet(spark, source, groups)
    else:
        files, errors = inputs.jsonl()
        n_rows = inputs.jsonl_rows(files)
        parts = [_jsonl_frame(spark, source, files)] if files else []
    size_shuffle(spark, n_rows + len(errors))
    staged = map_inputs(spark, parts, errors, inputs, run, _schema(rule_sets, annotated))
    gold = F.lit(False)  # of articles with the same text, one with a gold label is kept
    for key in annotated:
        gold = gold | (F.col(f"gold_{key}") != "")
    # the same text is the same body, as locally (a retitled copy is a duplicate)
    marked = mark_duplicates(staged, dedupe_text, first_id=True, preferred=gold, text="body")
    marked = marked.drop("body")
    marked = marked.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        if source.on_error == "raise":
            raise_first_bad_record(marked, F)
        _collect(result, marked, rule_sets, annotated, F, named_ids)
    except NewsclfError:
        raise
    except Exception as exc:  # a bad record on an executor: its one-line newsclf error
        error = executor_error(exc)
        if error is None:
            raise
        raise error from None
    finally:
        marked.unpersist()
    result.seconds = time.perf_counter() - started


def _parsed(row: dict, encoding: str) -> dict | None:
    """A raw JSONL row (``value``: the line's bytes) with its parsed ``_parsed`` row, or None
    for a blank line (a file error row passes as it is)."""
    if row.get("_error"):
        return row
    where = f"{file_path(row['_file'])}:{row['_row'] + 1}"
    row["_parsed"] = jsonl_row(row["value"], where, encoding, "reject")
    return row if row["_parsed"] is not None else None


def _jsonl_frame(spark, source: Source, files: list[InputFile]):
    """The JSONL files' lines (``value``: their bytes, decoded in ``source.encoding`` by the
    ``mapInArrow`` stage as the local engine decodes them), ``_file`` and ``_row`` (the line's
    index within its file: a split's first line is numbered after the lines of the file's
    earlier splits, counted in a first pass over the text). Lines are parsed in the
    ``mapInArrow`` stage, as the local engine parses them: Spark's JSON reader would turn a
    number among strings into text."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    try:  # lines keep their order within a file (a file's splits are in order)
        # split on "\n" only, as a binary file is iterated (Spark also splits on "\r")
        raw = spark.read.option("lineSep", "\n").text([f.name for f in files])
    except Exception as exc:
        raise NewsclfError(
            f"{source.path}: Spark cannot read it as jsonl ({first_line(exc)})"
        ) from None
    raw = raw.select(
        F.col("value").cast("binary").alias("value"),  # the line's bytes, as Spark read them
        F.col("_metadata.file_path").alias("_file"),
        F.spark_partition_id().alias("_split"),
        F.monotonically_increasing_id().alias("_id"),  # increasing within a split
    )
    # Spark may put several small files in one split, and a big file in several
    splits = raw.groupBy("_file", "_split").agg(
        F.min("_id").alias("_first"), F.count("*").alias("n")
    )
    before = (
        Window.partitionBy("_file").orderBy("_first").rowsBetween(Window.unboundedPreceding, -1)
    )
    splits = splits.select(
        "_file",
        "_split",
        (F.coalesce(F.sum("n").over(before), F.lit(0)) - F.col("_first")).alias("_shift"),
    )
    return raw.join(F.broadcast(splits), ["_file", "_split"]).select(
        "value", "_file", (F.col("_id") + F.col("_shift")).alias("_row")
    )


def _collect(
    result: Ingested,
    marked,
    rule_sets: Mapping,
    annotated: Mapping,
    F,
    named_ids: Collection[str] = (),
) -> None:
    """Bring pass 1's outcome to the driver, streaming the big parts in order."""
    gold_ids = set().union(*annotated.values(), named_ids)
    _count(result, marked, F)
    _write_rejects(result, marked, F, gold_ids)
    _write_removals(result, marked, F)
    kept = marked.filter(F.col("reason").isNull())
    _collect_votes_and_gold(result, kept, rule_sets, annotated, F)
    _stage_kept(result, kept, rule_sets, gold_ids)


def _count(result: Ingested, marked, F) -> None:
    """The input, kept and unread-date counts, in one job; unread dates as locally: of the
    articles read and not empty, before de-duplication."""
    unread = F.col("unread_date") != ""
    counts = marked.agg(
        F.count(F.lit(1)).alias("input"),
        F.count(F.when(F.col("reason").isNull(), 1)).alias("kept"),
        F.count(F.when(unread, 1)).alias("unread"),
    ).first()
    result.n_input, result.n_kept = counts["input"], counts["kept"]
    result.unread_dates = counts["unread"]
    if result.unread_dates:
        first = marked.filter(unread).orderBy(*_ORDER).select("source", "unread_date").first()
        result.first_unread_date = f"{first['source']}: {first['unread_date']!r}"


def _write_rejects(result: Ingested, marked, F, gold_ids: Collection[str]) -> None:
    """``rejects.csv`` in input order, and the reject counts."""
    detail = (
        F.when(F.col("reject").isNotNull(), F.col("detail"))
        .when(F.col("empty"), "no body text after cleaning")
        .when(F.col("dup_id"), "id seen earlier in the input")
        .otherwise(F.concat(F.lit("same text as "), F.col("first_id")))
    )
    rejects = marked.filter(F.col("reason").isNotNull()).orderBy(*_ORDER)
    with result.rejects_csv.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(Reject.__annotations__))
        for row in rejects.select("id", "source", "reason", detail.alias("d")).toLocalIterator():
            reject = Reject(row["id"], row["source"], row["reason"], row["d"])
            result.add_reject(writer, reject, gold_ids)


def _write_removals(result: Ingested, marked, F) -> None:
    """``boilerplate.csv`` in input order, and the counts per cleaning rule."""
    removals = marked.select(*_ORDER, "id", F.posexplode("removals").alias("i", "r"))
    removals = removals.orderBy(*_ORDER, "i").select("id", "r.rule", "r.text")
    with result.boilerplate_csv.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(Removal.__annotations__))
        for row in removals.toLocalIterator():
            writer.writerow([row["id"], row["rule"], row["text"]])
            result.removed_by_rule[row["rule"]] += 1


def _collect_votes_and_gold(
    result: Ingested, kept, rule_sets: Mapping, annotated: Mapping, F
) -> None:
    """Each task's vote patterns with their counts, and the gold articles with their votes."""
    for key, rules in rule_sets.items():
        votes = TaskVotes(key, len(rules.rules))
        groups = kept.groupBy(f"votes_{key}", f"mentions_{key}", f"gold_{key}").count()
        for row in groups.collect():
            pattern = bytes(row[f"votes_{key}"])
            votes.patterns[(pattern, bool(row[f"mentions_{key}"]), row[f"gold_{key}"])] += int(
                row["count"]
            )
        result.votes[key] = votes
        result.gold_votes[key] = {}
    any_gold = F.lit(False)  # a gold label in any task, with rules or without
    for key in annotated:
        any_gold = any_gold | (F.col(f"gold_{key}") != "")
    for row in kept.filter(any_gold).collect():  # the gold articles: as few as the annotations
        article = Article(row["id"], row["title"], "", row["date"])
        result.gold_articles[row["id"]] = _with_text(article, row["text"])
        for key in rule_sets:
            if row[f"gold_{key}"]:
                result.gold_votes[key][row["id"]] = bytes(row[f"votes_{key}"])
    result.seen_annotated |= set(result.gold_articles)


def _stage_kept(result: Ingested, kept, rule_sets: Mapping, gold_ids: Collection[str]) -> None:
    """The kept articles sorted by id: one staging run, streamed partition by partition."""
    task_columns = [c for k in rule_sets for c in (f"votes_{k}", f"mentions_{k}")]
    sorted_rows = kept.select("id", "date", "title", "text", *task_columns).orderBy("id")
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("date", pa.string()),
            ("title", pa.string()),
            ("text", pa.string()),
            ("text_key", pa.uint64()),
            *[(c, pa.binary() if c.startswith("votes_") else pa.bool_()) for c in task_columns],
        ]
    )
    path = result.folder / "run-000000.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        batch: list[dict] = []
        for row in sorted_rows.toLocalIterator():
            record = row.asDict()
            record["text_key"] = 0
            if record["id"] in gold_ids:  # also blank annotation rows' articles (not gold)
                result.seen_annotated.add(record["id"])
            for c in task_columns:
                if c.startswith("votes_"):
                    record[c] = bytes(record[c])
            batch.append(record)
            if len(batch) >= RUN_BATCH:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
    result.runs.append(path)


def _with_text(article: Article, text: str) -> Article:
    """An article whose ``text`` is ``text`` (stored as title + body by the local engine)."""
    title = article.title
    body = text[len(title) + 2 :] if title and text.startswith(f"{title}\n\n") else text
    return Article(article.id, title, body, article.date)


__all__ = ["ingest_on_spark", "spark_session"]
