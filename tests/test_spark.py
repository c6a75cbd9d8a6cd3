"""engine=spark gives exactly the local engine's labels (one small local Spark session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from newsclf.articles import Reject, Source
from newsclf.batch import JobSettings
from newsclf.cli.predict import load_models, prepared_models, run_prediction
from newsclf.errors import NewsclfError
from newsclf.spark import run_spark_job
from tests.conftest import ROOT
from tests.predict_support import article_rows, predict_config, register_models


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark")
    store = register_models(folder)
    rows = article_rows(400)
    rows[300] = {**rows[12], "text": "A repeated id with other words: tank market."}
    rows[301]["text"] = " \n "
    rows[302]["id"] = None  # id from the content, as the local engine derives it
    rows[303]["text"] = "rouble inflation exports gas prices market. " * 5000  # truncated
    for row in rows[:40:3]:  # boilerplate, recorded by both engines
        row["text"] += "\n\nShare this: Facebook Twitter Email\n\nAdvertisement"
    for row in rows[50:56]:  # a title that reads as boilerplate once it is the text's first line
        row["title"] = "Read more: summit envoy treaty talks"
    half = len(rows) // 2  # two files: order across files matters for duplicates
    (folder / "in").mkdir()
    pd.DataFrame(rows[:half]).to_parquet(folder / "in" / "a.parquet")
    pd.DataFrame(rows[half:]).to_parquet(folder / "in" / "b.parquet")
    return folder, store


def test_spark_gives_the_local_engines_labels(spark, setup):
    folder, store = setup
    overrides = (
        "source=parquet",
        f"source.path={folder / 'in'}",
        "preparation=config",
        "max_chars=20000",
    )
    local = run_prediction(predict_config(store, *overrides, f"output.path={folder}/local.parquet"))
    cfg = predict_config(store, *overrides)
    source = Source(**{k: v for k, v in cfg.source.items() if k != "_target_"})
    models = prepared_models(cfg, load_models(cfg))
    result = run_spark_job(source, models, folder / "spark", JobSettings(), spark=spark)

    ours = pq.read_table(folder / "local.parquet").to_pandas().set_index("id")
    theirs = pd.read_parquet(folder / "spark").set_index("id").loc[ours.index]
    assert len(theirs) == len(ours) == 398
    for task in ("topic", "stance"):
        assert theirs[f"{task}_label"].tolist() == ours[f"{task}_label"].tolist()
        assert (theirs[f"{task}_probability"] - ours[f"{task}_probability"]).abs().max() < 1e-9
    assert theirs["truncated_chars"].tolist() == ours["truncated_chars"].tolist()
    assert (result.n_input, result.rejected_by_reason) == (
        local.n_input,
        local.rejected_by_reason,
    )
    spark_rejects = pd.read_parquet(folder / "spark.rejects")
    local_rejects = pd.read_csv(folder / "local.parquet.rejects.csv")
    columns = ["id", "source", "reason"]  # in input order, as the local engine writes them
    assert spark_rejects[columns].values.tolist() == local_rejects[columns].values.tolist()
    meta = json.loads((folder / "spark" / "_newsclf.json").read_text())
    assert meta["rows"] == meta["n_input"] - meta["n_rejected"] == 398
    report = json.loads((folder / "spark.report.json").read_text())
    assert report["tasks"]["topic"]["labels"] == local.report["tasks"]["topic"]["labels"]
    assert result.removed_by_rule == local.removed_by_rule
    assert {"share_prompt", "advertisement", "truncated"} <= set(local.removed_by_rule)
    spark_removed = pd.read_parquet(folder / "spark.boilerplate").sort_values(
        ["article_id", "rule"]
    )
    local_removed = pd.read_csv(
        folder / "local.parquet.boilerplate.csv", dtype=str, keep_default_na=False
    )
    local_removed = local_removed.sort_values(["article_id", "rule"])
    assert spark_removed.values.tolist() == local_removed.values.tolist()
    assert report["removed_by_rule"] == local.removed_by_rule
    assert not list(folder.glob(".spark*tmp-*"))  # nothing half-written left behind


def test_spark_reads_parquet_only(spark, setup):
    folder, store = setup
    (folder / "in.jsonl").write_text('{"id": "1", "text": "gas"}\n')
    cfg = predict_config(store)
    with pytest.raises(NewsclfError, match="engine=spark reads Parquet, not jsonl"):
        run_spark_job(
            Source(path=str(folder / "in.jsonl")),
            load_models(cfg),
            folder / "x",
            JobSettings(),
            spark=spark,
        )


def test_ctrl_c_ends_a_spark_job_and_gives_the_caller_its_handler_back(setup, tmp_path):
    """A caller in Python (a notebook): Ctrl-C ends the job and the session stays usable; the
    caller's own Ctrl-C handler is back, and a later job's error is that error, not the
    interrupt (newsclf's handler used to stay for the rest of the process). In a process of
    its own, as a notebook's kernel is, with Python's own Ctrl-C handler: a shell without job
    control starts a background job (a CI's) with Ctrl-C ignored, which the job respects."""
    folder, store = setup
    pd.DataFrame(article_rows(30_000)).to_parquet(tmp_path / "big.parquet")
    (tmp_path / "in.jsonl").write_text('{"id": "1", "text": "gas"}\n')
    done = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(folder), store, str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["interrupted"] and result["handler_back"], result
    assert "engine=spark reads Parquet, not jsonl" in result["later_error"]
    assert result["n_input"] == 400
    assert not (tmp_path / "out").exists()


NOTEBOOK = """
import json, signal, sys, threading, time
from pathlib import Path
from newsclf.articles import Source
from newsclf.batch import JobSettings
from newsclf.cli.predict import load_models
from newsclf.errors import NewsclfError
from newsclf.spark import run_spark_job, spark_session
from tests.predict_support import predict_config

signal.signal(signal.SIGINT, signal.default_int_handler)  # a kernel's, whatever it inherited
folder, store, work = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
spark = spark_session("local[2]", "newsclf-test", {"spark.ui.showConsoleProgress": "false"})
models = load_models(predict_config(store))
before = signal.getsignal(signal.SIGINT)

def ctrl_c_once_spark_writes():
    while not list(work.glob(".out*tmp-*")):
        time.sleep(0.05)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

def job(path, output):
    source = Source(path=str(path), format="parquet" if path.is_dir() else "auto")
    return run_spark_job(source, models, work / output, JobSettings(), spark=spark)

result = {"interrupted": False, "later_error": ""}
threading.Thread(target=ctrl_c_once_spark_writes, daemon=True).start()
try:
    job(work / "big.parquet", "out")
except KeyboardInterrupt:
    result["interrupted"] = True
result["handler_back"] = signal.getsignal(signal.SIGINT) is before
try:
    job(work / "in.jsonl", "other")
except NewsclfError as exc:
    result["later_error"] = str(exc)
result["n_input"] = job(folder / "in", "again").n_input
print(json.dumps(result))
"""


def _typed_inputs(folder) -> None:
    """Five Parquet files: strings, then a title, a text and an id column of other types
    (an int title with a null, a list text with a null, a float id), and int ids (read as
    their digits)."""
    rows = article_rows(60, seed=3)
    (folder / "typed").mkdir()

    def write(name: str, part: list[dict], **types) -> None:
        columns = {k: [r[k] for r in part] for k in ("id", "title", "text", "date")}
        schema = pa.schema([(k, types.get(k, pa.string())) for k in columns])
        pq.write_table(pa.table(columns, schema=schema), folder / "typed" / name)

    write("a.parquet", rows[:30])
    ints = [{**r, "title": n} for n, r in enumerate(rows[30:40])]
    ints[4]["title"] = None  # a null title is no title, in any column type
    write("b.parquet", ints, title=pa.int64())
    lists = [{**r, "text": r["text"].split()[:3]} for r in rows[40:50]]
    lists[2]["text"] = None  # no text: empty_text, as locally
    write("c.parquet", lists, text=pa.list_(pa.string()))
    write("d.parquet", [{**r, "id": 7.0 + n} for n, r in enumerate(rows[50:55])], id=pa.float64())
    write("e.parquet", [{**r, "id": 7 + n} for n, r in enumerate(rows[55:])], id=pa.int32())


def test_spark_rejects_wrong_types_as_the_local_engine_does(spark, setup):
    folder, store = setup
    _typed_inputs(folder)
    overrides = ("source=parquet", f"source.path={folder / 'typed'}", "source.on_error=reject")
    local_out = folder / "typed-local.parquet"
    local = run_prediction(predict_config(store, *overrides, f"output.path={local_out}"))
    cfg = predict_config(store, *overrides)
    source = Source(**{k: v for k, v in cfg.source.items() if k != "_target_"})
    models = prepared_models(cfg, load_models(cfg))
    result = run_spark_job(source, models, folder / "typed-spark", JobSettings(), spark=spark)

    assert (
        result.rejected_by_reason
        == local.rejected_by_reason
        == {
            "wrong_type": 23,
            "empty_text": 1,
        }
    )
    assert result.n_input == local.n_input == 60 == result.n_predicted + result.n_rejected
    columns = ["id", "source", "reason", "detail"]  # the same ids: read, or the place
    theirs = pd.read_parquet(folder / "typed-spark.rejects")[columns]
    ours = pd.read_csv(f"{local_out}.rejects.csv", dtype=str)[columns]
    assert sorted(theirs.values.tolist()) == sorted(ours.values.tolist())
    assert theirs["id"].notna().all()
    details = set(theirs["detail"])
    typed = folder / "typed"
    assert f"{typed / 'b.parquet'}:1: column 'title' holds int 0, not a string" in details
    assert any("column 'text' holds list ['" in d for d in details)
    hint = "not a string or an integer (or set source.id_column=null to derive ids)"
    assert f"{typed / 'd.parquet'}:3: column 'id' holds float 9.0, {hint}" in details
    ours = pq.read_table(local_out).to_pandas().set_index("id")
    predicted = pd.read_parquet(folder / "typed-spark").set_index("id").loc[ours.index]
    # a.parquet, the null-title row of b.parquet, e.parquet's int ids as strings
    assert len(predicted) == len(ours) == 36
    assert {"7", "11"} <= set(predicted.index)
    for task in ("topic", "stance"):
        assert predicted[f"{task}_label"].tolist() == ours[f"{task}_label"].tolist()


def test_a_wrong_type_with_on_error_raise_is_one_line_on_spark(spark, setup):
    folder, store = setup
    if not (folder / "typed").exists():
        _typed_inputs(folder)
    path = folder / "typed" / "b.parquet"
    cfg = predict_config(store, "source=parquet", f"source.path={path}", "source.on_error=raise")
    source = Source(**{k: v for k, v in cfg.source.items() if k != "_target_"})
    with pytest.raises(NewsclfError) as caught:
        run_spark_job(source, load_models(cfg), folder / "raise", JobSettings(), spark=spark)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    # the first bad record in input order, as the local engine stops at it
    assert message == f"{path}:1: column 'title' holds int 0, not a string"
    assert not (folder / "raise").exists()


def _spark_run(spark, store, path: str, out, *overrides: str, overwrite: bool = False):
    cfg = predict_config(store, "source=parquet", f"source.path={path}", *overrides)
    source = Source(**{k: v for k, v in cfg.source.items() if k != "_target_"})
    models = prepared_models(cfg, load_models(cfg))
    return run_spark_job(source, models, out, JobSettings(overwrite=overwrite), spark=spark)


def test_a_file_uri_is_read_through_sparks_file_system_as_the_local_path(spark, setup, monkeypatch):
    """source.path=file:///... takes the cluster's code path (listing and Parquet footers
    through Spark's Hadoop FileSystem) and gives what the plain path gives; the plain path
    reads each file's footer once on the driver."""
    folder, store = setup
    opened: list[str] = []
    for name in ("read_metadata", "read_schema", "ParquetFile"):
        real = getattr(pq, name)

        def counted(file, *args, _real=real, **kwargs):
            opened.append(str(file))
            return _real(file, *args, **kwargs)

        monkeypatch.setattr(pq, name, counted)
    plain = _spark_run(spark, store, str(folder / "in"), folder / "plain", "max_chars=20000")
    monkeypatch.undo()
    assert sorted(opened) == sorted(str(f) for f in (folder / "in").glob("*.parquet"))
    uri = _spark_run(spark, store, f"file://{folder / 'in'}", folder / "uri", "max_chars=20000")

    assert (uri.n_input, uri.n_predicted, uri.rejected_by_reason) == (
        plain.n_input,
        plain.n_predicted,
        plain.rejected_by_reason,
    )
    assert uri.removed_by_rule == plain.removed_by_rule
    for suffix in ("", ".rejects", ".boilerplate"):  # rejects name files by path, as locally
        theirs = pd.read_parquet(f"{folder / 'uri'}{suffix}")
        ours = pd.read_parquet(f"{folder / 'plain'}{suffix}")
        key = list(ours.columns)
        theirs = theirs.sort_values(key).reset_index(drop=True)
        assert theirs.equals(ours.sort_values(key).reset_index(drop=True)), suffix
    assert f"{folder / 'in' / 'b.parquet'}:" in " ".join(
        pd.read_parquet(f"{folder}/uri.rejects").source
    )

    missing = f"file://{folder / 'nope'}"
    with pytest.raises(NewsclfError) as caught:
        _spark_run(spark, store, missing, folder / "nope-out")
    assert str(caught.value) == f"{missing}: source path does not exist"


def test_a_file_without_the_columns_is_one_unreadable_record_as_locally(spark, setup):
    """A Parquet file lacking a configured column, and one that is not Parquet, are each one
    ``unreadable`` reject on both engines (on_error=reject); a file without rows is no record;
    on_error=raise stops at the first bad file in input order, as locally."""
    folder, store = setup
    mixed = folder / "mixed"
    mixed.mkdir()
    rows = article_rows(30, seed=5)
    pd.DataFrame(rows[:20]).to_parquet(mixed / "a.parquet")
    pd.DataFrame(rows[20:]).drop(columns=["title"]).to_parquet(mixed / "b.parquet")
    pd.DataFrame({"id": pd.Series([], dtype=str)}).to_parquet(mixed / "c.parquet")  # no rows
    (mixed / "d.parquet").write_bytes(b"not a Parquet file")
    overrides = ("source=parquet", f"source.path={mixed}", "source.on_error=reject")
    local = run_prediction(predict_config(store, *overrides, f"output.path={folder}/m.parquet"))
    for path in (str(mixed), f"file://{mixed}"):  # another source.path: another job
        result = _spark_run(
            spark, store, path, folder / "m-spark", "source.on_error=reject", overwrite=True
        )
        assert result.rejected_by_reason == local.rejected_by_reason == {"unreadable": 2}
        assert result.n_input == local.n_input == 22 == result.n_predicted + result.n_rejected
        columns = ["id", "source", "reason", "detail"]  # an unreadable file: named by its name
        theirs = pd.read_parquet(folder / "m-spark.rejects")[columns]
        ours = pd.read_csv(f"{folder}/m.parquet.rejects.csv", dtype=str)
        assert sorted(theirs.values.tolist()) == sorted(ours[columns].values.tolist())
        assert "d.parquet" in theirs["id"].tolist()
        assert str(mixed / "b.parquet") in theirs["source"].tolist()
        assert any("missing column(s) title" in d for d in theirs["detail"])

    with pytest.raises(NewsclfError) as caught:
        _spark_run(spark, store, f"file://{mixed}", folder / "m-raise", "source.on_error=raise")
    assert str(caught.value).startswith(f"{mixed / 'b.parquet'}: missing column(s) title (has:")
    assert not (folder / "m-raise").exists()


def test_footers_and_lines_read_through_sparks_file_system_are_the_files(
    spark, tmp_path, monkeypatch
):
    """The driver's reads over Hadoop (file:// here, hdfs:// or s3a:// on a cluster): a footer
    longer than one read, a file that is not Parquet (pyarrow's message, as for a local
    path), and a JSONL file's lines across read blocks."""
    from newsclf import spark_input

    big = tmp_path / "big.parquet"
    table = pa.table({"id": [str(i) for i in range(3000)], "text": ["x"] * 3000})
    pq.write_table(table, big, row_group_size=100)  # 30 row groups: a footer of some kB
    (tmp_path / "bad.parquet").write_bytes(b"not a Parquet file")
    lines = b'{"id": "1"}\n\n{"id": "2", "text": "caf\xe9"}\r\n' * 50 + b'{"id": "3"}'
    (tmp_path / "a.jsonl").write_bytes(lines)
    monkeypatch.setattr(spark_input, "CHUNK", 7)  # lines cut across blocks
    monkeypatch.setattr(spark_input, "TAIL", 1000)  # the footer needs a second read

    assert pq.read_metadata(big).serialized_size > spark_input.TAIL
    found = {}
    for path in (str(tmp_path), f"file://{tmp_path}"):
        inputs = spark_input.Inputs(spark, Source(path=path, format="parquet", title_column=None))
        assert [f.shown for f in inputs.files] == [str(tmp_path / "bad.parquet"), str(big)]
        groups, n_rows, errors = inputs.parquet()
        assert (n_rows, [[f.shown for f in g] for g in groups]) == (3000, [[str(big)]])
        found[path] = [e.detail for e in errors]
        assert inputs.footer(inputs.files[1]).schema.to_arrow_schema() == table.schema
        jsonl = spark_input.Inputs(spark, Source(path=path, pattern="*.jsonl", format="jsonl"))
        assert b"".join(jsonl.lines(jsonl.files[0])) == lines
        assert list(jsonl.lines(jsonl.files[0])) == lines.splitlines(keepends=True)
    assert (
        found[str(tmp_path)]
        == found[f"file://{tmp_path}"]
        == [
            f"{tmp_path / 'bad.parquet'}: not a readable Parquet file (Parquet magic bytes not "
            "found in footer. Either the file is corrupted or this is not a parquet file.)"
        ]
    )


def test_an_input_file_rewritten_with_the_same_size_is_other_input(spark, tmp_path):
    """The input's identity (what a resumed job must share with the one it continues) covers
    each file's modification time, on the local and on the Hadoop route: a file rewritten with
    other text of the same length gives a job that starts over, not one that resumes."""
    from newsclf import spark_input

    article = tmp_path / "a.jsonl"
    article.write_text('{"id": "1", "text": "gas prices rise"}\n', encoding="utf-8")
    routes = (str(tmp_path), f"file://{tmp_path}")

    def fingerprints() -> list[str]:
        sources = [Source(path=p, pattern="*.jsonl", format="jsonl") for p in routes]
        return [spark_input.Inputs(spark, s).fingerprint() for s in sources]

    before = fingerprints()
    assert fingerprints() == before  # nothing changed: the same identity
    article.write_text('{"id": "1", "text": "gas prices fall"}\n', encoding="utf-8")
    stat = article.stat()
    os.utime(article, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    after = fingerprints()
    assert after[0] != before[0] and after[1] != before[1]


def test_json_files_a_jsonl_folder_would_skip_are_named_as_locally(spark, tmp_path):
    """The Spark engine lists a folder as the local reader does: .json files beside the
    default *.jsonl pattern are refused with the same line, on both routes."""
    from newsclf import spark_input

    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "gas"}\n', encoding="utf-8")
    (tmp_path / "b.json").write_text('{"id": "2", "text": "oil"}\n', encoding="utf-8")
    with pytest.raises(NewsclfError) as local:
        Source(path=str(tmp_path), format="jsonl").files()
    for path in (str(tmp_path), f"file://{tmp_path}"):
        with pytest.raises(NewsclfError) as caught:
            spark_input.Inputs(spark, Source(path=path, format="jsonl"))
        assert str(caught.value) == str(local.value).replace(str(tmp_path), path, 1)


def test_file_names_match_the_pattern_whatever_their_case_as_locally(spark, tmp_path):
    """The Spark engine lists upper-case names (DATA.JSONL) as the local reader does, on both
    routes."""
    from newsclf import spark_input

    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "gas"}\n', encoding="utf-8")
    (tmp_path / "B.JSONL").write_text('{"id": "2", "text": "oil"}\n', encoding="utf-8")
    local = [f.name for f in Source(path=str(tmp_path), format="jsonl").files()]
    assert local == ["B.JSONL", "a.jsonl"]
    for path in (str(tmp_path), f"file://{tmp_path}"):
        inputs = spark_input.Inputs(spark, Source(path=path, format="jsonl"))
        assert [PurePosixPath(f.shown).name for f in inputs.files] == local


def test_a_utf16_jsonl_file_is_one_unreadable_file_as_locally(spark, tmp_path):
    """A UTF-16 JSONL file (byte order mark) is one unreadable file on both engines, with the
    same detail, not a malformed record per line."""
    from newsclf import spark_input

    (tmp_path / "a.jsonl").write_bytes('{"id": "1", "text": "gas"}\n'.encode("utf-16"))
    source = Source(path=str(tmp_path), format="jsonl", on_error="reject")
    local = [(r.reason, r.detail) for r in source.read()]
    readable, errors = spark_input.Inputs(spark, source).jsonl()
    assert readable == [] and [("unreadable", e.detail) for e in errors] == local
    assert local == [
        (
            "unreadable",
            f"{tmp_path / 'a.jsonl'}: UTF-16 text (byte order mark); convert it to UTF-8",
        )
    ]


def test_a_jsonl_files_records_are_checked_one_by_one_on_both_engines(spark, tmp_path):
    """A JSONL record names its own fields: a file whose first record lacks one is read (not
    one unreadable file, its other records lost), and the record without the text field is
    one malformed record, on the driver's check as in the local reader."""
    from newsclf import spark_input

    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "gas"}\n', encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        '\n{"id": "2", "body": "gas"}\n{"id": "3", "text": "oil"}\n', encoding="utf-8"
    )
    source = Source(path=f"file://{tmp_path}", format="jsonl", on_error="reject")
    readable, errors = spark_input.Inputs(spark, source).jsonl()
    assert [f.shown for f in readable] == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    assert errors == []
    plain = Source(path=str(tmp_path), format="jsonl", on_error="reject")
    records = list(plain.read())
    assert [(r.id, type(r).__name__) for r in records] == [
        ("1", "Article"),
        ("2", "Reject"),
        ("3", "Article"),
    ]
    assert records[1].reason == "malformed_record"


def test_an_output_uri_is_written_through_sparks_file_system_as_a_plain_path(
    spark, setup, monkeypatch
):
    """output.path=file:///... takes the cluster's code path (checks, temporary folders, rename
    into place and sidecars through Spark's Hadoop FileSystem, as for hdfs:// or s3a://) and
    gives what a plain path gives; a missing parent folder is created (output.mkdir)."""
    from newsclf import tracking

    folder, store = setup
    plain = _spark_run(spark, store, str(folder / "in"), folder / "out-plain", "max_chars=20000")
    uri = f"file://{folder}/made/out"
    result = _spark_run(spark, store, str(folder / "in"), uri, "max_chars=20000")

    assert (result.path, result.report_path) == (uri, f"file:{folder}/made/out.report.json")
    out = folder / "made" / "out"
    assert (result.n_input, result.n_predicted, result.rejected_by_reason) == (
        plain.n_input,
        plain.n_predicted,
        plain.rejected_by_reason,
    )
    for suffix in ("", ".rejects", ".boilerplate"):
        theirs = pd.read_parquet(f"{out}{suffix}")
        ours = pd.read_parquet(f"{folder / 'out-plain'}{suffix}")
        key = list(ours.columns)
        theirs = theirs.sort_values(key).reset_index(drop=True)
        assert theirs.equals(ours.sort_values(key).reset_index(drop=True)), suffix
    meta = json.loads((out / "_newsclf.json").read_text())
    assert meta == json.loads((folder / "out-plain" / "_newsclf.json").read_text())
    assert meta["rows"] == meta["n_input"] - meta["n_rejected"] == result.n_predicted == 398
    report = json.loads((folder / "made" / "out.report.json").read_text())
    assert report == result.report
    assert report["tasks"] == plain.report["tasks"]
    assert not [p.name for p in (folder / "made").glob(".out*") if not p.name.endswith(".crc")]

    monkeypatch.chdir(folder)  # the experiment's artifacts go beside the test's store
    tracking.configure(store)
    run_id = tracking.log_batch_report("newsclf-predict-uri", result.report, result.report_path)
    logged = tracking.mlflow.artifacts.load_text(f"runs:/{run_id}/out.report.json")
    assert json.loads(logged) == report


def test_an_output_is_replaced_by_its_own_job_or_with_output_overwrite(spark, setup):
    """A rerun of the same job replaces its output; a job with other input refuses to (the
    older output intact, as the local engine refuses) unless output.overwrite=true, and then
    replaces the predictions folder and its sidecars whole (nothing of the older one is left
    in it), on the URI route as for a plain path."""
    folder, store = setup
    uri = f"file://{folder}/again"
    small = str(folder / "in" / "a.parquet")
    first = _spark_run(spark, store, small, uri)
    (folder / "again" / "left-over.txt").write_text("from the older job")
    rerun = _spark_run(spark, store, small, uri)
    assert rerun.report["job_fingerprint"] == first.report["job_fingerprint"]
    assert not (folder / "again" / "left-over.txt").exists()
    (folder / "again" / "left-over.txt").write_text("from the older job")

    with pytest.raises(NewsclfError) as caught:
        _spark_run(spark, store, str(folder / "in"), uri)
    assert str(caught.value) == (
        f"{uri}: exists, written by another job (other input, models or settings); set "
        "output.overwrite=true to replace it, or choose another output.path"
    )
    assert (folder / "again" / "left-over.txt").exists()
    assert json.loads((folder / "again" / "_newsclf.json").read_text())["n_input"] == 200

    result = _spark_run(spark, store, str(folder / "in"), uri, overwrite=True)
    assert result.n_input == 400
    meta = json.loads((folder / "again" / "_newsclf.json").read_text())
    assert meta["n_input"] == 400 and meta["rows"] == result.n_predicted
    assert (
        meta["job_fingerprint"]
        == result.report["job_fingerprint"]
        != first.report["job_fingerprint"]
    )
    assert len(pd.read_parquet(folder / "again")) == result.n_predicted
    assert not (folder / "again" / "left-over.txt").exists()
    assert json.loads((folder / "again.report.json").read_text())["n_input"] == 400
    rejects = pd.read_parquet(folder / "again.rejects")
    assert len(rejects) == result.n_rejected
    assert not [p.name for p in folder.glob(".again*") if not p.name.endswith(".crc")]


def test_a_bad_output_uri_is_one_error_line(spark, setup):
    """A missing parent folder (output.mkdir=false), a file in the way, a scheme Spark has no
    connector for, a folder that is no newsclf output or another job's output (without
    output.overwrite): one line naming the output, before any Spark work."""
    folder, store = setup
    cfg = predict_config(store, "source=parquet", f"source.path={folder / 'in'}")
    source = Source(**{k: v for k, v in cfg.source.items() if k != "_target_"})
    models = load_models(cfg)
    (folder / "a-file").write_text("in the way")
    (folder / "not-ours").mkdir()
    (folder / "not-ours" / "data.txt").write_text("the user's")
    (folder / "theirs").mkdir()
    (folder / "theirs" / "_newsclf.json").write_text('{"job_fingerprint": "another job"}')
    not_ours = (
        ": exists and is not a newsclf-predict output (no _newsclf.json); set "
        "output.overwrite=true to replace it, or choose another output.path"
    )
    cases = {
        str(folder / "not-ours"): f"{folder / 'not-ours'}{not_ours}",
        f"file://{folder}/not-ours": f"file://{folder}/not-ours{not_ours}",
        str(folder / "theirs"): (
            f"{folder / 'theirs'}: exists, written by another job (other input, models or "
            "settings); set output.overwrite=true to replace it, or choose another output.path"
        ),
        f"file://{folder}/missing/out": f"file://{folder}/missing: output folder does not exist",
        f"file://{folder}/a-file": (
            f"file://{folder}/a-file: engine=spark writes a Parquet folder; a file is in the way"
        ),
        "nosuch://bucket/out": (
            "nosuch://bucket/out: cannot write it on Spark (org.apache.hadoop.fs."
            'UnsupportedFileSystemException: No FileSystem for scheme "nosuch")'
        ),
    }
    for output, expected in cases.items():
        with pytest.raises(NewsclfError) as caught:
            run_spark_job(source, models, output, JobSettings(mkdir=False), spark=spark)
        assert str(caught.value) == expected
    assert not (folder / "missing").exists()
    assert (folder / "not-ours" / "data.txt").read_text() == "the user's"


@contextmanager
def _viewfs(spark, folder: Path) -> Iterator[None]:
    """Spark's default file system made ``viewfs://newsclftest/`` (as ``hdfs://`` on YARN), its
    ``/data`` mounted on ``folder``: a plain path goes through Hadoop, not the local one."""
    conf = spark._jsc.hadoopConfiguration()
    default = conf.get("fs.defaultFS")
    conf.set("fs.viewfs.mounttable.newsclftest.link./data", f"file://{folder}")
    conf.set("fs.defaultFS", "viewfs://newsclftest/")
    try:
        yield
    finally:
        conf.set("fs.defaultFS", default)


def test_a_plain_output_on_another_default_file_system_reports_its_uri(
    spark, setup, tmp_path, monkeypatch
):
    """With Spark's default file system not the local one, a plain output.path goes through
    Hadoop: its report is named by its full URI (the plain path is no local file), and MLflow
    gets a copy of it, not a traceback."""
    from newsclf import tracking
    from newsclf.spark_output import HadoopOutput, output_for

    folder, store = setup
    report = {"n_input": 3, "n_predicted": 3, "n_rejected": 0, "source": "x"}
    with _viewfs(spark, tmp_path):
        out = output_for(spark, "/data/preds")
        assert isinstance(out, HadoopOutput)
        report_path = out.write_sidecar(".report.json", json.dumps(report))
    assert report_path == "viewfs://newsclftest/data/preds.report.json"
    assert json.loads((tmp_path / "preds.report.json").read_text()) == report

    monkeypatch.chdir(folder)  # the experiment's artifacts go beside the test's store
    tracking.configure(store)
    run_id = tracking.log_batch_report("newsclf-predict-viewfs", report, report_path)
    logged = tracking.mlflow.artifacts.load_text(f"runs:/{run_id}/preds.report.json")
    assert json.loads(logged) == report


def _outputs(spark, folder: Path) -> dict:
    """The output ``folder/preds`` as each class writes it (the URI one through Hadoop)."""
    from newsclf.spark_output import HadoopOutput, LocalOutput

    return {
        "local": LocalOutput(folder / "preds"),
        "hadoop": HadoopOutput(spark, f"file://{folder}/preds"),
    }


@pytest.mark.parametrize("kind", ["local", "hadoop"])
def test_a_failed_move_into_place_puts_the_older_output_back(spark, tmp_path, kind):
    """The older output moved aside returns when the new one cannot take its place."""
    out = _outputs(spark, tmp_path)[kind]
    (tmp_path / "preds").mkdir()
    (tmp_path / "preds" / "part.parquet").write_text("older")
    with pytest.raises(
        NewsclfError, match=r"preds: cannot (move the new output into place|write it)"
    ):
        out.replace(str(tmp_path / ".preds.tmp-1"))  # nothing there to move
    assert (tmp_path / "preds" / "part.parquet").read_text() == "older"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".preds")]


@pytest.mark.parametrize("kind", ["local", "hadoop"])
def test_a_killed_jobs_leftovers_are_cleared_and_its_older_output_put_back(spark, tmp_path, kind):
    """At a job's start: this output's temporaries go; an older output moved aside returns
    where nothing took its place, else goes; another output's temporaries stay."""
    out = _outputs(spark, tmp_path)[kind]
    for name in (".preds.old-7", ".preds.rejects.old-7", "preds.rejects", ".preds.tmp-7"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part.parquet").write_text(name)
    (tmp_path / ".preds.report.json.tmp-7").write_text("{}")
    (tmp_path / ".preds.v2.tmp-9").mkdir()  # a job into preds.v2, still running
    (tmp_path / ".preds.v2.old-9").mkdir()
    out.clear_stale()
    assert (tmp_path / "preds" / "part.parquet").read_text() == ".preds.old-7"
    assert (tmp_path / "preds.rejects" / "part.parquet").read_text() == "preds.rejects"
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".crc"))
    assert left == [".preds.v2.old-9", ".preds.v2.tmp-9", "preds", "preds.rejects"]


def test_a_uri_is_a_scheme_then_a_slash(spark):
    """A scheme of two or more letters then ":/" is a URI; a drive letter or a relative name
    with a colon is a plain (local) path, as it was before URIs were supported."""
    from newsclf.spark_input import through_hadoop

    for uri in ("hdfs://nn/a", "s3a://bucket/a", "file:/tmp/a", "file:///tmp/a"):
        assert through_hadoop(spark, uri), uri
    for plain in ("preds:v1", "out/preds:v1", "C:/data/out", "C:\\data\\out", "preds"):
        assert not through_hadoop(spark, plain), plain


def test_a_uri_output_is_locked_against_a_second_job_on_any_host(spark, tmp_path):
    """An output written through Hadoop is locked by a file beside it (a lock on one host
    would not stop a job on another, and a second job's start clears the first's temporary
    folders): a second job fails at once naming the lock; the lock goes when the job ends; one
    left by an ended process of this host is taken over, one of another host is named."""
    import socket
    import subprocess
    import sys

    from newsclf.spark_output import HadoopOutput

    uri = f"file://{tmp_path}/preds"
    lock = tmp_path / ".preds.spark.lock"
    with HadoopOutput(spark, uri).lock():
        assert lock.read_text().split()[:2] == [socket.gethostname(), str(os.getpid())]
        second = HadoopOutput(spark, uri)
        with pytest.raises(NewsclfError, match=r"another newsclf-predict job is writing this"):
            second.lock().__enter__()
        assert lock.exists()  # the failed job left the first one's lock alone
    assert not lock.exists()

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    lock.write_text(f"{socket.gethostname()} {ended} 2026-01-01T00:00:00")
    with HadoopOutput(spark, uri).lock():
        assert lock.read_text().split()[1] == str(os.getpid())
    lock.write_text(f"other-host.example {ended} 2026-01-01T00:00:00")
    with pytest.raises(
        NewsclfError, match=r"preds\.spark\.lock: other-host\.example .*delete the lock"
    ):
        HadoopOutput(spark, uri).lock().__enter__()


def _models_that_prepare_differently(store: str, folder: Path):
    """The source of ``folder`` and the registered topic and stance models, the stance one
    preparing articles with one more boilerplate rule ("Statement from the ministry...")."""
    import dataclasses

    from newsclf.cleaning import DEFAULT_BOILERPLATE
    from newsclf.saved_model import Preparation

    cfg = predict_config(store, "source=parquet", f"source.path={folder}")
    source = Source(**{k: v for k, v in cfg.source.items() if k != "_target_"})
    topic, stance = prepared_models(cfg, load_models(cfg))
    rule = {**DEFAULT_BOILERPLATE, "statement": r"statement from the ministry.*"}
    return (
        source,
        topic,
        dataclasses.replace(stance, preparation=Preparation({"boilerplate": rule})),
    )


def test_an_article_empty_under_any_models_preparation_is_rejected_as_locally(
    spark, setup, tmp_path
):
    """Models whose preparations differ: an article one of them cleans to nothing is rejected
    as empty_text by both engines, whatever the order of the models."""
    from newsclf.batch import run_job

    _, store = setup
    rows = article_rows(20)
    rows[5]["text"] = "Statement from the ministry on the talks."
    (tmp_path / "in").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "in" / "a.parquet")
    source, topic, stance = _models_that_prepare_differently(store, tmp_path / "in")
    for name, models in (("ts", [topic, stance]), ("st", [stance, topic])):
        local = run_job(source, models, tmp_path / f"{name}.parquet", JobSettings())
        ours = run_spark_job(source, models, tmp_path / name, JobSettings(), spark=spark)
        for result in (local, ours):
            assert (result.n_predicted, result.rejected_by_reason) == (19, {"empty_text": 1})
        assert pd.read_parquet(tmp_path / f"{name}.rejects")["id"].tolist() == ["a000005"]
        assert pd.read_parquet(tmp_path / name)["stance_probability"].notna().all()


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_a_broken_link_is_one_unreadable_file_as_locally(spark, tmp_path, fmt):
    """A link in the input folder whose target is gone is one unreadable file on both engines,
    with the same detail; it was a traceback on Spark (and skipped without a count locally)."""
    from newsclf import spark_input

    folder = tmp_path / "in"
    folder.mkdir()
    rows = [{"id": "1", "title": "t", "text": "gas"}]
    if fmt == "parquet":
        pd.DataFrame(rows).to_parquet(folder / "a.parquet")
    else:
        (folder / "a.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    (folder / f"b.{fmt}").symlink_to(tmp_path / f"gone.{fmt}")
    local = Source(path=str(folder), format=fmt, on_error="reject")
    ours = [(r.source, r.reason, r.detail) for r in local.read() if isinstance(r, Reject)]
    assert [(s, why) for s, why, _ in ours] == [(str(folder / f"b.{fmt}"), "unreadable")]
    # (a file:// URI is listed by Hadoop's local file system, which leaves such links out)
    inputs = spark_input.Inputs(spark, Source(path=str(folder), format=fmt, on_error="reject"))
    assert [f.shown for f in inputs.files] == [str(folder / f"a.{fmt}"), ours[0][0]]
    errors = inputs.parquet()[2] if fmt == "parquet" else inputs.jsonl()[1]
    assert [(e.file.shown, "unreadable", e.detail) for e in errors] == ours


def test_a_broken_link_counts_in_a_spark_job_as_locally(spark, setup):
    """End to end: the link is one unreadable reject and the counts add up on both engines."""
    folder, store = setup
    linked = folder / "linked"
    linked.mkdir()
    pd.DataFrame(article_rows(10, seed=7)).to_parquet(linked / "a.parquet")
    (linked / "b.parquet").symlink_to(folder / "gone.parquet")
    overrides = ("source=parquet", f"source.path={linked}", "source.on_error=reject")
    local = run_prediction(predict_config(store, *overrides, f"output.path={folder}/l.parquet"))
    ours = _spark_run(spark, store, str(linked), folder / "l-spark", "source.on_error=reject")
    assert ours.rejected_by_reason == local.rejected_by_reason == {"unreadable": 1}
    assert ours.n_input == local.n_input == 11 == ours.n_predicted + ours.n_rejected


def test_a_body_repeated_under_another_title_is_a_duplicate_on_both_engines(spark, setup, tmp_path):
    """With dedupe_text, a copy of a body under another headline (or none) is a duplicate_text
    on both engines, for models that prepare alike or not, in either order (the key was the
    text, title included)."""
    from newsclf.batch import run_job

    _, store = setup
    rows = article_rows(12)
    rows[7]["text"] = rows[3]["text"]  # title "Report 7", not "Report 3"
    rows[9]["text"], rows[9]["title"] = rows[3]["text"], ""
    (tmp_path / "in").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "in" / "a.parquet")
    source, topic, stance = _models_that_prepare_differently(store, tmp_path / "in")
    settings = JobSettings(dedupe_text=True)
    for name, models in (("t", [topic]), ("ts", [topic, stance]), ("st", [stance, topic])):
        local = run_job(source, models, tmp_path / f"{name}.parquet", settings)
        ours = run_spark_job(source, models, tmp_path / name, settings, spark=spark)
        for result in (local, ours):
            assert result.rejected_by_reason == {"duplicate_text": 2}, name
            assert result.n_input == 12 == result.n_predicted + result.n_rejected, name
        local_rejects = pd.read_csv(tmp_path / f"{name}.parquet.rejects.csv")
        spark_rejects = pd.read_parquet(tmp_path / f"{name}.rejects")
        for rejects in (local_rejects, spark_rejects):
            assert rejects[["id", "reason"]].values.tolist() == [
                [rows[7]["id"], "duplicate_text"],
                [rows[9]["id"], "duplicate_text"],
            ], name


def test_duplicate_texts_are_the_same_under_every_models_preparation_as_locally(
    spark, setup, tmp_path
):
    """With dedupe_text, a duplicate repeats the text under each model's preparation, on both
    engines and in either order of the models (not the first model's text alone)."""
    from newsclf.batch import run_job

    _, store = setup
    rows = article_rows(12)
    rows[7]["text"] = rows[3]["text"] + "\n\nStatement from the ministry on gas."
    rows[3]["text"] += "\n\nStatement from the ministry on troops."  # equal for stance only
    rows[9]["text"] = rows[3]["text"]  # equal for both
    rows[7]["title"] = rows[9]["title"] = rows[3]["title"]
    (tmp_path / "in").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "in" / "a.parquet")
    source, topic, stance = _models_that_prepare_differently(store, tmp_path / "in")
    settings = JobSettings(dedupe_text=True)
    for name, models in (("ts", [topic, stance]), ("st", [stance, topic])):
        local = run_job(source, models, tmp_path / f"{name}.parquet", settings)
        ours = run_spark_job(source, models, tmp_path / name, settings, spark=spark)
        for result in (local, ours):
            assert result.rejected_by_reason == {"duplicate_text": 1}, name
        assert pd.read_parquet(tmp_path / f"{name}.rejects")["id"].tolist() == [rows[9]["id"]]


def test_an_output_in_the_input_folder_is_refused_before_reading(spark, setup):
    """engine=spark refused nothing: predictions written into the input folder are read as
    articles by the next run. Refused as the local engine refuses them, with a plain path or a
    file:// URI on either side, and nothing is written."""
    folder, store = setup
    inside = folder / "in" / "preds"
    for path, out in (
        (str(folder / "in"), inside),
        (f"file://{folder / 'in'}", inside),
        (str(folder / "in"), f"file://{inside}"),
    ):
        with pytest.raises(NewsclfError) as caught:
            _spark_run(spark, store, path, out, overwrite=True)
        message = str(caught.value)
        assert message.startswith(f"{out}: is in the input (source.path {path})"), message
        assert message.endswith("choose output.path outside it")
        assert sorted(p.name for p in (folder / "in").iterdir()) == ["a.parquet", "b.parquet"]
