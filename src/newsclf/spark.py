"""The Spark engine of ``newsclf-predict`` (``engine=spark``): Parquet in, Parquet out.

Articles are prepared exactly as by the local engine (each model's
``newsclf.saved_model.Preparation`` in a ``mapInArrow`` stage, boilerplate removals recorded;
a row whose text, title or id is of the wrong type is rejected as ``wrong_type``, as
locally), ids (and, if asked, bodies) are de-duplicated keeping the first in input order
(file path, then row), and each task's model runs through ``mlflow.pyfunc.spark_udf`` on the
prepared texts.
The models given to Spark are verified copies: the skops file passed newsclf's trusted-type
check when the model was loaded, and the model code file is newsclf's own, so executors run no
code that came with the model. Output: a Parquet folder renamed into place when complete, with
``_newsclf.json`` (row counts) inside; rejects as ``<output>.rejects``, the boilerplate removed
as ``<output>.boilerplate`` (Parquet folders) and the report as ``<output>.report.json``, on
a local path or through Spark's Hadoop FileSystem (``newsclf.spark_output``). A killed Spark
job starts over cleanly when run again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from newsclf.articles import Article, Reject, Source, place_id
from newsclf.batch import JobResult, JobSettings, JobState, job_fingerprint, overwrite_refused
from newsclf.errors import NewsclfError, first_line
from newsclf.launch import not_from_py4j
from newsclf.predict import same_text
from newsclf.report import job_summary
from newsclf.saved_model import LoadedModel, Preparation, verified_model_copy
from newsclf.spark_input import FileError, InputFile, Inputs, wanted_columns
from newsclf.spark_input import shown_name as file_path
from newsclf.spark_output import Output, check_outside_input, output_for

log = logging.getLogger(__name__)

RESULT_TYPE = "label string, probability double"


def spark_session(master: str = "local[*]", app_name: str = "newsclf-predict", conf=None):
    """A Spark session for ``master``; executors run this Python (the one with newsclf).

    The caller's Ctrl-C handler stays in place of the one a new session installs: pyspark's
    calls into the JVM from inside the handler, while the main thread waits on the JVM, and
    py4j logs three tracebacks. newsclf's jobs cancel theirs (:func:`ctrl_c_cancels_spark`)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise NewsclfError("engine=spark needs pyspark: pip install 'newsclf[spark]'") from None
    builder = SparkSession.builder.master(master).appName(app_name)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    for key, value in (conf or {}).items():
        builder = builder.config(key, str(value))
    if "spark.sql.shuffle.partitions" in (conf or {}):
        builder = builder.config("spark.newsclf.userShufflePartitions", "true")
    in_main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if in_main_thread else None
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing, master unreachable, ...
        message = first_line(exc)
        raise NewsclfError(f"spark.master {master}: cannot start Spark ({message})") from None
    finally:
        if handler is not None and _from_pyspark(signal.getsignal(signal.SIGINT)):
            signal.signal(signal.SIGINT, handler)
    return spark


@contextmanager
def ctrl_c_cancels_spark() -> Iterator[None]:
    """For the length of a Spark job, Ctrl-C cancels the Spark jobs, calls the handler in place
    before (the console scripts': later Ctrl-Cs ignored) and raises KeyboardInterrupt; an error
    of the job's clean-up after it (a call into a stopping JVM) is the interrupt too. The
    handler and py4j's logging are put back when the job ends; the JVM's log stays off (its
    errors about the tasks it dropped would follow the interrupt: ``setLogLevel`` turns it on).
    """
    previous = signal.getsignal(signal.SIGINT)
    if (
        threading.current_thread() is not threading.main_thread()
        or previous is None  # a handler set outside Python: left alone
        or previous is signal.SIG_IGN
    ):
        yield
        return
    interrupted = threading.Event()
    py4j = logging.getLogger("py4j")
    py4j_level = py4j.level

    def ignore(signum: int, frame: object) -> None:
        """A second Ctrl-C while the first one is handled."""

    def cancel_then_interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, ignore)
        interrupted.set()
        py4j.setLevel(logging.CRITICAL)
        logging.getLogger().addFilter(not_from_py4j)  # py4j logs the interrupt on the root
        # from a thread with a JVM connection of its own: the main thread waits on one
        cancelling = threading.Thread(target=_cancel_jobs, daemon=True)
        cancelling.start()
        cancelling.join(timeout=10)  # a JVM that does not answer: the job closes all the same
        if callable(previous) and not _from_pyspark(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, cancel_then_interrupt)
    try:
        yield
    except Exception:
        if interrupted.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        try:
            if signal.getsignal(signal.SIGINT) in (cancel_then_interrupt, ignore):
                signal.signal(signal.SIGINT, previous)  # unless the previous handler replaced it
        finally:
            py4j.setLevel(py4j_level)
            logging.getLogger().removeFilter(not_from_py4j)


def _from_pyspark(handler: object) -> bool:
    """pyspark's own handler, of a session made elsewhere: it would call into the JVM."""
    return (getattr(handler, "__module__", None) or "").startswith("pyspark")


def _cancel_jobs() -> None:
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is not None:
        with suppress(Exception):  # the JVM may be gone already
            context.setLogLevel("OFF")
            context.cancelAllJobs()


def _preparations(models: Sequence[LoadedModel]) -> list[Preparation]:
    """The models' distinct text preparations, the first model's first (it decides the
    removals reported; an article empty under any of them is rejected)."""
    distinct: dict[str, Preparation] = {}
    for m in models:
        distinct.setdefault(m.preparation.key, m.preparation)
    return list(distinct.values())


def map_inputs(
    spark, parts: Sequence, errors: Sequence[FileError], inputs: Inputs, function, schema
):
    """``function`` (Arrow batches of raw rows with ``_file`` and ``_row`` -> Arrow batches of
    ``schema``) over each raw frame of ``parts`` and over the files in ``errors`` (rows with
    only ``_error``, ``_file`` and ``_row``: ``function`` makes each one ``unreadable``
    reject, as the local engine counts such a file), as one frame."""
    frames = [map_arrow(spark, raw, function, schema) for raw in parts]
    if errors:
        # row 0: the file's one reject comes before any record of it, as locally
        rows = [(e.detail, inputs.spark_uri(e.file), 0) for e in errors]
        raw = spark.createDataFrame(rows, "_error string, _file string, _row long")
        frames.append(map_arrow(spark, raw, function, schema))
    if not frames:  # only files without rows
        return spark.createDataFrame([], schema)
    return functools.reduce(lambda a, b: a.unionByName(b), frames)


def read_parquet(spark, source: Source, groups: Sequence[Sequence[InputFile]]) -> list:
    """The Parquet files as raw frames of the wanted columns, ``_file`` and ``_row``: each group
    of column types (:meth:`Inputs.parquet`) read on its own, so every row reaches
    ``Source.row_to_record`` with its own types (one frame would fail, or cast to text, a file
    whose text is a number among files whose text is a string)."""
    from pyspark.sql import functions as F

    wanted = wanted_columns(source)
    parts = []
    for group in groups:
        try:
            raw = spark.read.parquet(*[f.name for f in group])
        except Exception as exc:
            raise NewsclfError(
                f"{source.path}: Spark cannot read it as Parquet ({first_line(exc)})"
            ) from None
        parts.append(
            raw.select(
                *[F.col(c) for c in wanted if c in raw.columns],
                F.col("_metadata.file_path").alias("_file"),
                F.col("_metadata.row_index").alias("_row"),
            )
        )
    return parts


def size_shuffle(spark, n_rows: int) -> None:
    """Size Spark's shuffle partitions from the input, unless the user set them: Spark's
    default of 200 makes small jobs crawl; about 20,000 articles per partition keeps tasks
    short and memory per task bounded."""
    if spark.conf.get("spark.newsclf.userShufflePartitions", None):
        return
    parallelism = spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(max(parallelism, n_rows // 20_000)))


def map_arrow(spark, raw, function, schema: str):
    """``raw.mapInArrow``: rows reach ``function`` with the types pyarrow gives the local
    engine (pandas would turn an int column with a null into floats, a list into an array);
    ``function`` gets the Arrow schema to build its output batches with."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import _parse_datatype_string

    struct = _parse_datatype_string(schema)
    large = spark.conf.get("spark.sql.execution.arrow.useLargeVarTypes", "false") == "true"
    arrow_schema = to_arrow_schema(struct, prefers_large_types=large)
    parallelism = spark.sparkContext.defaultParallelism
    if raw.rdd.getNumPartitions() < parallelism:  # a small file is one split: use every core
        raw = raw.repartition(parallelism)
    return raw.mapInArrow(functools.partial(function, arrow_schema=arrow_schema), struct)


def lenient(source: Source) -> Source:
    """The source with ``on_error=reject``, for executors: a bad record raised in a task would
    fail it with Spark's log of the Python traceback (and whichever task failed first would
    decide the message); the driver raises for the first bad record instead."""
    return dataclasses.replace(source, on_error="reject")


def raise_first_bad_record(frame, F) -> None:
    """With ``on_error=raise``: a NewsclfError naming the first record (in input order) that
    was rejected before cleaning (``reject``: wrong_type, malformed_record), as the local
    engine stops at it."""
    bad = frame.filter(F.col("reject").isNotNull()).orderBy("_file", "_row").select("detail")
    first = bad.first()
    if first is not None:
        raise NewsclfError(first["detail"])


def executor_error(exc: Exception) -> NewsclfError | None:
    """The one-line NewsclfError a Python task raised (a bad record with on_error=raise), out
    of the Java exception that carries it; None for any other failure."""
    found = re.search(r"NewsclfError: (.+)", str(exc))
    return NewsclfError(found.group(1).strip()) if found else None


def mark_duplicates(
    frame, dedupe_text: bool, first_id: bool = False, preferred=None, text: str = "text"
):
    """``frame`` (id, text, empty, reject, _file, _row) with ``dup_id``, ``dup_text`` and the
    ``reason`` a row is not kept (``reject``, empty_text, duplicate_id, duplicate_text), as the
    local engines decide them: of rows with the same id, or with ``dedupe_text`` the same text,
    the first in input order is kept; of the same text, the first row where the boolean column
    ``preferred`` is true, if any (the dataset build's gold articles). With ``first_id``, also
    the id of the row kept with the same text (the one a duplicate_text row repeats). ``text``
    names the column compared: the cleaned body (under each model's preparation), as the local
    engines compare, not title + body."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = ["_file", "_row"]
    named = F.col("reject").isNull() & ~F.col("empty")  # a row that can be a duplicate
    by_id = Window.partitionBy("id", named).orderBy(*order)
    marked = frame.withColumn("dup_id", named & (F.row_number().over(by_id) > 1))
    marked = marked.withColumn("dup_text", F.lit(False))
    if first_id:
        marked = marked.withColumn("first_id", F.lit(None))
    if dedupe_text:
        fresh = named & ~F.col("dup_id")
        first = [] if preferred is None else [preferred.desc()]  # true before false
        by_text = Window.partitionBy(F.sha2(text, 256), fresh).orderBy(*first, *order)
        marked = marked.withColumn("dup_text", fresh & (F.row_number().over(by_text) > 1))
        if first_id:
            marked = marked.withColumn("first_id", F.first("id").over(by_text))
    return marked.withColumn(
        "reason",
        F.when(F.col("reject").isNotNull(), F.col("reject"))
        .when(F.col("empty"), "empty_text")
        .when(F.col("dup_id"), "duplicate_id")
        .when(F.col("dup_text"), "duplicate_text"),
    )


def _clean_batches(
    source: Source, preparations: Sequence[Preparation], dedupe_text: bool = False
) -> Callable[..., Iterator]:
    """The ``mapInArrow`` function: raw rows -> id, the text of each preparation, the
    duplicate key (``_same``: with ``dedupe_text`` the bodies under each, joined as
    ``predict.same_text`` joins them; else empty), emptiness, truncation, position, the
    boilerplate removed (as the local engine reports it) and the reason a row is rejected
    before cleaning (``wrong_type``)."""

    def clean(batches: Iterator, arrow_schema) -> Iterator:
        import pyarrow as pa

        columns = ["id", "empty", "truncated_chars", "source", "removals", "reject", "detail"]
        columns += ["_same"]
        texts = [f"text_{i}" for i in range(len(preparations))]
        reading = lenient(source)  # bad records become rejects; the driver applies on_error
        for batch in batches:
            rows = batch.to_pylist()
            out = {k: [] for k in [*columns, *texts]}
            for row in rows:
                if row.get("_error"):  # a file the local engine counts as one record
                    where = file_path(row["_file"])
                    record = Reject(place_id(where), where, "unreadable", row["_error"])
                else:
                    where = f"{file_path(row['_file'])}:{row['_row'] + 1}"
                    record = reading.row_to_record(row, where)
                if not isinstance(record, Article):  # nothing to predict: no text
                    # its id as locally (read, or its place): never a duplicate (mark_duplicates)
                    values = (record.id, False, 0, where, [], record.reason, record.detail, "")
                    for k, v in zip([*columns, *texts], [*values, *[""] * len(texts)], strict=True):
                        out[k].append(v)
                    continue
                out["reject"].append(None)
                out["detail"].append(None)
                prepared = preparations[0].prepare(record)
                out["id"].append(prepared.article.id)
                out["text_0"].append(prepared.article.text)
                bodies = [prepared.article.body]
                empty = not prepared.article.body.strip()
                out["truncated_chars"].append(prepared.truncated_chars)
                out["source"].append(where)
                out["removals"].append(
                    [{"rule": r.rule, "text": r.text} for r in prepared.removals]
                )
                for i, other in enumerate(preparations[1:], start=1):
                    article = other.prepare(record).article
                    blank = not article.body.strip()
                    empty = empty or blank  # empty under any model's preparation, as locally
                    out[f"text_{i}"].append("" if blank else article.text)
                    bodies.append("" if blank else article.body)
                out["empty"].append(empty)
                # bodies, not texts: a retitled copy is a duplicate (predict.process_chunk);
                # nothing without dedupe_text, so the bodies do not cross to Spark twice
                out["_same"].append(same_text(bodies) if dedupe_text else "")
            out["_file"] = batch.column("_file")
            out["_row"] = batch.column("_row")
            yield pa.RecordBatch.from_pydict(out, schema=arrow_schema)

    return clean


@ctrl_c_cancels_spark()
def run_spark_job(
    source: Source,
    models: Sequence[LoadedModel],
    output: str | Path,
    settings: JobSettings,
    spark_conf: Mapping | None = None,
    spark=None,
) -> JobResult:
    """Predict a Parquet source on Spark into a Parquet folder; same labels as the local engine."""
    if source.resolved_format() != "parquet":
        raise NewsclfError(
            f"{source.path}: engine=spark reads Parquet, not {source.resolved_format()} "
            "(convert the input, or use engine=local)"
        )
    spark_conf = dict(spark_conf or {})
    if spark is None:  # first: it decides which file system a plain output path is on
        spark = spark_session(
            spark_conf.get("master", "local[*]"),
            spark_conf.get("app_name", "newsclf-predict"),
            spark_conf.get("conf"),
        )
    out = output_for(spark, output)
    check_outside_input(spark, source, out)  # before a folder is made there
    out.check(settings.mkdir)
    with ExitStack() as stack:
        stack.enter_context(out.lock())
        out.clear_stale()  # first: a killed job's older output, moved aside, is put back
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="newsclf-models-")))
        model_paths = {m.task: verified_model_copy(m, tmp) for m in models}
        return _run(spark, source, models, model_paths, out, settings)


def _run(spark, source, models, model_paths, out: Output, settings) -> JobResult:
    from pyspark import StorageLevel

    started = time.perf_counter()
    inputs = Inputs(spark, source)
    fingerprint = job_fingerprint(
        source, models, settings, {"engine": "spark"}, inputs.fingerprint()
    )
    check_overwrite(out, fingerprint, settings)  # before reading any data
    # every file's footer read once (types and rows) and its columns checked, as locally
    groups, n_rows, errors = inputs.parquet()
    n_input = n_rows + len(errors)  # a file the local engine cannot read is one record
    size_shuffle(spark, n_input)
    scored = _scored(spark, inputs, groups, errors, models, model_paths, settings)
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        state = _write_outputs(scored, source, models, out, settings)
    finally:
        scored.unpersist()
    if state.n_predicted + state.n_rejected != n_input:
        raise NewsclfError(f"{out.name}: internal count mismatch on Spark")
    seconds = time.perf_counter() - started
    return _finish(state, source, models, out, settings, fingerprint, seconds)


def _scored(spark, inputs: Inputs, groups, errors, models, model_paths, settings):
    """Every input row prepared, marked when rejected, and scored by each model; the texts
    dropped, so what Spark caches does not grow with them."""
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    source = inputs.source
    preparations = _preparations(models)
    schema = (
        "id string, empty boolean, truncated_chars long, source string, "
        "removals array<struct<rule: string, text: string>>, reject string, detail string, "
        "_same string, "
        + "".join(f"text_{i} string, " for i in range(len(preparations)))
        + "_file string, _row long"
    )
    parts = read_parquet(spark, source, groups)
    clean = _clean_batches(source, preparations, settings.dedupe_text)
    cleaned = map_inputs(spark, parts, errors, inputs, clean, schema)
    cleaned = cleaned.withColumnRenamed("text_0", "text")
    texts = ["text", *(f"text_{i}" for i in range(1, len(preparations)))]
    # a duplicate repeats the body under every preparation (predict.same_text)
    scored = mark_duplicates(cleaned, settings.dedupe_text, text="_same").drop("_same")
    # every row is scored once, rejects too: far fewer than the rest
    keys = [p.key for p in preparations]
    for m in models:
        i = keys.index(m.preparation.key)
        text = F.col("text" if i == 0 else f"text_{i}").alias("text")
        udf = mlflow.pyfunc.spark_udf(
            spark,
            model_paths[m.task],
            result_type=RESULT_TYPE,
            env_manager="local",
            # the texts are prepared above, as the model itself would
            model_config={"prepared_input": True, "trusted_types": list(m.trusted_types)},
        )
        scored = scored.withColumn(f"_{m.task}", udf(F.struct(text)))
    return scored.drop(*texts)


def _write_outputs(scored, source, models, out: Output, settings) -> JobState:
    """The predictions, rejects and boilerplate removed, each written into its temporary
    folder (``out.temporary``), and the counts."""
    from pyspark.sql import functions as F

    columns = [F.col("id")]
    for m in models:
        columns += [
            F.col(f"_{m.task}.label").alias(f"{m.task}_label"),
            F.col(f"_{m.task}.probability").alias(f"{m.task}_probability"),
            F.lit(m.name).alias(f"{m.task}_model"),
            F.lit(m.version).alias(f"{m.task}_version"),
        ]
    predictions = scored.filter(F.col("reason").isNull()).select(*columns, F.col("truncated_chars"))
    if source.on_error == "raise":
        raise_first_bad_record(scored, F)
    predictions.write.parquet(out.temporary())
    detail = (
        F.when(F.col("reject").isNotNull(), F.col("detail"))
        .when(F.col("empty"), "no body text after cleaning")
        .when(F.col("dup_id"), "id seen earlier in the input")
        .otherwise("same text as an earlier article")
    )
    # in input order, as the local engine writes them (few rows: the sort is cheap)
    scored.filter(F.col("reason").isNotNull()).orderBy("_file", "_row").select(
        "id", "source", "reason", detail.alias("detail")
    ).write.parquet(out.temporary(".rejects"))
    removals = scored.select(
        F.col("id").alias("article_id"), F.explode("removals").alias("r")
    ).select("article_id", "r.rule", "r.text")
    removals.write.parquet(out.temporary(".boilerplate"))
    state = _state(scored, predictions, models, settings, F)
    state.removed_by_rule = {
        r["rule"]: int(r["count"]) for r in removals.groupBy("rule").count().collect()
    }
    return state


def _finish(state: JobState, source, models, out: Output, settings, fingerprint, seconds):
    """The summary and report written, and the outputs moved into place, predictions last."""
    counts, models_meta, report = job_summary(state, {}, models, settings, source.path)
    report["engine"] = "spark"
    report["job_fingerprint"] = fingerprint  # lets a rerun of this job replace its own output
    meta = {
        **counts,
        "rows": state.n_predicted,
        "models": models_meta,
        "source": str(source.path),
        "job_fingerprint": fingerprint,
    }
    out.write_inside(out.temporary(), "_newsclf.json", json.dumps(meta, indent=2))
    report_path = out.write_sidecar(".report.json", json.dumps(report, indent=2) + "\n")
    out.replace(out.temporary(".rejects"), ".rejects")
    out.replace(out.temporary(".boilerplate"), ".boilerplate")
    out.replace(out.temporary())  # last: a predictions folder that exists is complete
    return JobResult(
        path=out.path,
        seconds=seconds,
        resumed_records=0,
        report=report,
        report_path=report_path,
        models=models_meta,
        **counts,
    )


def check_overwrite(out: Output, fingerprint: str, settings: JobSettings) -> None:
    """Refuse to replace what is at the output (unless ``output.overwrite``) but an output of
    this same job, as the local engine refuses: a folder that is no newsclf output (the
    user's input, say) or the output of another job."""
    if settings.overwrite or not out.exists():
        return
    text = out.read_inside("_newsclf.json")
    if text is None:
        raise NewsclfError(
            f"{out.name}: exists and is not a newsclf-predict output (no _newsclf.json); set "
            "output.overwrite=true to replace it, or choose another output.path"
        )
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("job_fingerprint") != fingerprint:
        raise overwrite_refused(out.name)


def _state(scored, predictions, models, settings, F) -> JobState:
    """Counts for the summary and the report, from the persisted frame."""
    state = JobState(fingerprint="")
    for row in scored.filter(F.col("reason").isNotNull()).groupBy("reason").count().collect():
        state.rejected_by_reason[row["reason"]] = int(row["count"])
    state.n_predicted = predictions.count()
    state.n_truncated = predictions.filter(F.col("truncated_chars") > 0).count()
    for m in models:
        label, probability = f"{m.task}_label", f"{m.task}_probability"
        state.labels[m.task] = {
            r[label]: int(r["count"]) for r in predictions.groupBy(label).count().collect()
        }
        sums = predictions.agg(
            F.sum(probability).alias("total"),
            F.sum((F.col(probability) < settings.low_confidence).cast("long")).alias("low"),
        ).first()
        state.probability_sum[m.task] = float(sums["total"] or 0.0)
        state.low_confidence[m.task] = int(sums["low"] or 0)
    return state
