"""newsclf-dataset engine=spark gives the local engine's datasets (one local Spark session)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra import compose, initialize_config_dir

from newsclf import datasets
from newsclf.cli.dataset import build_datasets
from newsclf.errors import NewsclfError
from tests.conftest import ROOT, STANCE_WORDS, TOPIC_WORDS, error_line, run_cli
from tests.predict_support import article_rows, write_jsonl


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """240 articles in two Parquet files and one JSONL file, with a repeated id, a repeated
    text, an empty text, boilerplate and dates that cannot be read; gold labels for every third
    article."""
    folder = tmp_path_factory.mktemp("spark-dataset")
    rows = article_rows(240)
    for i, row in enumerate(rows):
        if i % 4 == 0:  # stance rules vote on articles about Russia only
            row["text"] = "Russia " + row["text"]
    rows[200] = {**rows[12], "text": "A repeated id with other words: tank market."}
    rows[201]["text"] = " \n "
    rows[202] = {**rows[30], "id": "copy-of-30"}  # the same text under another id
    for row in rows[:40:3]:
        row["text"] += "\n\nShare this: Facebook Twitter Email\n\nAdvertisement"
    # counted: an article's, one in the second file's, the repeated id's; not: the empty text's
    for i, date in ((5, "yesterday"), (150, "31 February 2023"), (200, "never"), (201, "soon")):
        rows[i]["date"] = date
    topics, stances = list(TOPIC_WORDS), list(STANCE_WORDS)
    labels = ["article_id,topic,stance"]
    labels += [f"a{i:06d},{topics[i % 6]},{stances[i // 3 % 3]}" for i in range(0, 198, 3)]
    (folder / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")
    (folder / "parquet").mkdir()
    pd.DataFrame(rows[:120]).to_parquet(folder / "parquet" / "a.parquet")
    pd.DataFrame(rows[120:]).to_parquet(folder / "parquet" / "b.parquet")
    write_jsonl(folder / "articles.jsonl", rows)
    return folder


def _config(folder, fmt: str, out: str, *overrides: str):
    path = folder / ("parquet" if fmt == "parquet" else "articles.jsonl")
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(
            "dataset",
            overrides=[
                f"source={fmt}",
                f"source.path={path}",
                f"annotations.path={folder / 'labels.csv'}",
                f"output_dir={folder / out}",
                "log_to_mlflow=false",
                "chunk_size=50",
                "n_jobs=1",
                *overrides,
            ],
        )


@pytest.mark.parametrize(
    ("fmt", "uri"), [("parquet", False), ("jsonl", False), ("parquet", True), ("jsonl", True)]
)
def test_spark_engine_gives_the_local_engines_labels_and_splits(spark, inputs, fmt, uri):
    """Also with source.path a file:// URI: listed and read through Spark's Hadoop
    FileSystem, the code path of hdfs://, s3a://, gs://, abfs:// on a cluster."""
    local = build_datasets(_config(inputs, fmt, f"local-{fmt}"))
    spark_cfg = _config(inputs, fmt, f"spark-{fmt}", "engine=spark")
    if uri:
        spark_cfg.source.path = f"file://{spark_cfg.source.path}"
    on_spark = build_datasets(spark_cfg)
    for task in ("topic", "stance"):
        a, b = local[task], on_spark[task]
        assert a.fingerprint == b.fingerprint
        assert a.n_weak > 0 and a.n_gold > 0
        for key in ("n_input", "n_kept", "n_rejected", "rejected_by_reason", "removed_by_rule"):
            assert getattr(a, key) == getattr(b, key), key
        assert a.n_input == 240 == a.n_kept + a.n_rejected
        assert a.unread_dates == b.unread_dates == 3
        dd_a, _ = datasets.load(a.path)
        dd_b, _ = datasets.load(b.path)
        for split in datasets.SPLITS:
            assert dd_a[split].to_list() == dd_b[split].to_list()
        for name in ("rejects.csv", "boilerplate.csv", "votes.csv", "labeling_report.md"):
            local_file = (inputs / f"local-{fmt}" / task / name).read_text(encoding="utf-8")
            spark_file = (inputs / f"spark-{fmt}" / task / name).read_text(encoding="utf-8")
            assert local_file == spark_file, name
        report = json.loads((inputs / f"spark-{fmt}" / task / "labeling_report.json").read_text())
        assert report["n_articles"] == a.n_kept


def test_spark_engine_without_labelling_rules_keeps_the_gold_labels(spark, inputs):
    """With weak labelling off, the Spark engine looked for gold labels only in the tasks that
    have rules, found none, and failed ("needs at least two labels present")."""
    local = build_datasets(_config(inputs, "parquet", "gold-only-local", "weak.enabled=false"))
    on_spark = build_datasets(
        _config(inputs, "parquet", "gold-only-spark", "weak.enabled=false", "engine=spark")
    )
    for task in ("topic", "stance"):
        a, b = local[task], on_spark[task]
        assert a.n_gold > 0 and a.n_weak == 0
        assert (a.fingerprint, a.n_gold, a.n_kept) == (b.fingerprint, b.n_gold, b.n_kept)


def _labelled_rows(folder: Path) -> tuple[list[dict], dict[str, dict]]:
    """90 article rows (a quarter about Russia) and their ids; every third is labelled in
    ``folder/labels.csv``."""
    rows = article_rows(90)
    for i, row in enumerate(rows):
        if i % 4 == 0:
            row["text"] = "Russia " + row["text"]
    by_id = {row["id"]: row for row in rows}  # labelled: every third
    topics, stances = list(TOPIC_WORDS), list(STANCE_WORDS)
    labels = ["article_id,topic,stance"]
    labels += [f"a{i:06d},{topics[i % 6]},{stances[i // 3 % 3]}" for i in range(0, 90, 3)]
    (folder / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return rows, by_id


def _two_parquet_files(folder: Path, rows: list[dict]) -> None:
    """``rows`` in two Parquet files, a.parquet (the first 40) and b.parquet."""
    folder.mkdir(parents=True)
    pd.DataFrame(rows[:40]).to_parquet(folder / "a.parquet")
    pd.DataFrame(rows[40:]).to_parquet(folder / "b.parquet")


def test_both_engines_keep_the_gold_copy_of_a_repeated_text(spark, tmp_path):
    """Of articles with the same text, the one with a gold label is kept, wherever it comes:
    an unlabelled copy before it (in the same file and in an earlier one) is the reject."""
    rows, by_id = _labelled_rows(tmp_path)  # labelled: every third
    rows.insert(0, {**by_id["a000063"], "id": "copy-first"})  # a000063: in the next file
    rows.insert(5, {**by_id["a000006"], "id": "copy-same-file"})
    rows.append({**by_id["a000063"], "id": "copy-last"})
    _two_parquet_files(tmp_path / "parquet", rows)
    local = build_datasets(_config(tmp_path, "parquet", "local"))
    on_spark = build_datasets(_config(tmp_path, "parquet", "spark", "engine=spark"))
    for task in ("topic", "stance"):
        a, b = local[task], on_spark[task]
        assert a.fingerprint == b.fingerprint
        assert (a.n_gold, a.n_kept, a.n_rejected) == (b.n_gold, b.n_kept, b.n_rejected)
        assert a.n_gold == 30 and a.n_input == 93 == a.n_kept + a.n_rejected
        for name in ("rejects.csv", "votes.csv", "labeling_report.md"):
            local_file = (tmp_path / "local" / task / name).read_text(encoding="utf-8")
            spark_file = (tmp_path / "spark" / task / name).read_text(encoding="utf-8")
            assert local_file == spark_file, name
        rejects = pd.read_csv(tmp_path / "local" / task / "rejects.csv")
        assert rejects[["id", "detail"]].values.tolist() == [
            ["copy-first", "same text as a000063"],
            ["copy-same-file", "same text as a000006"],
            ["copy-last", "same text as a000063"],
        ]


def test_both_engines_reject_a_body_repeated_under_another_title(spark, tmp_path):
    """Syndicated copies under other headlines (or none) repeat the body: each is a
    duplicate_text naming the article kept, on both engines (Spark hashed title + body), and
    the datasets are those built without the copies."""
    rows, by_id = _labelled_rows(tmp_path)
    _two_parquet_files(tmp_path / "parquet", rows)
    reference = build_datasets(_config(tmp_path, "parquet", "reference"))
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "labels.csv").write_text((tmp_path / "labels.csv").read_text(), encoding="utf-8")
    # a copy of gold a000063 (in the next file) first, of unlabelled ones later
    rows.insert(0, {**by_id["a000063"], "id": "retitled-gold", "title": "Another outlet"})
    rows.insert(20, {**by_id["a000010"], "id": "retitled-same-file", "title": "Wire copy"})
    rows.append({**by_id["a000020"], "id": "untitled", "title": ""})
    _two_parquet_files(copies / "parquet", rows)
    local = build_datasets(_config(copies, "parquet", "local"))
    on_spark = build_datasets(_config(copies, "parquet", "spark", "engine=spark"))
    for task in ("topic", "stance"):
        a, b, ref = local[task], on_spark[task], reference[task]
        assert a.fingerprint == b.fingerprint == ref.fingerprint
        assert (a.n_gold, a.n_kept, a.n_rejected) == (b.n_gold, b.n_kept, b.n_rejected)
        assert (a.n_gold, a.n_kept) == (ref.n_gold, ref.n_kept)
        assert a.n_input == 93 == a.n_kept + a.n_rejected and a.n_rejected == 3
        for name in ("rejects.csv", "votes.csv", "labeling_report.md"):
            local_file = (copies / "local" / task / name).read_text(encoding="utf-8")
            spark_file = (copies / "spark" / task / name).read_text(encoding="utf-8")
            assert local_file == spark_file, name
        rejects = pd.read_csv(copies / "local" / task / "rejects.csv")
        assert rejects[["id", "reason", "detail"]].values.tolist() == [
            ["retitled-gold", "duplicate_text", "same text as a000063"],
            ["retitled-same-file", "duplicate_text", "same text as a000010"],
            ["untitled", "duplicate_text", "same text as a000020"],
        ]


def test_a_bad_record_on_spark_is_one_newsclf_error(spark, inputs):
    bad = inputs / "bad"
    bad.mkdir()
    pd.DataFrame({"id": ["x", "y"], "title": [1, 2], "text": ["a b c", "d e f"]}).to_parquet(
        bad / "bad.parquet"
    )
    cfg = _config(inputs, "parquet", "bad-out", "engine=spark", "source.on_error=raise")
    cfg.source.path = str(bad)
    with pytest.raises(NewsclfError, match=r"column 'title' holds int"):
        build_datasets(cfg)


def test_wrong_types_are_rejected_as_by_the_local_engine(spark, inputs):
    """A Parquet file set whose title, text or id column has another type in some files (an
    int title with a null, a list text, a float id; int ids are read as their digits): the
    same wrong_type rejects, counts and datasets on both engines, with source.on_error=reject."""
    rows = article_rows(240)
    typed = inputs / "typed"
    typed.mkdir()

    def write(name: str, part: list[dict], **types) -> None:
        columns = {k: [r[k] for r in part] for k in ("id", "title", "text", "date")}
        schema = pa.schema([(k, types.get(k, pa.string())) for k in columns])
        pq.write_table(pa.table(columns, schema=schema), typed / name)

    write("a.parquet", rows[:200])
    ints = [{**r, "title": n} for n, r in enumerate(rows[200:215])]
    ints[3]["title"] = None  # no title: kept
    write("b.parquet", ints, title=pa.int64())
    write(
        "c.parquet", [{**r, "text": [r["text"]]} for r in rows[215:230]], text=pa.list_(pa.string())
    )
    write(
        "d.parquet", [{**r, "id": float(n)} for n, r in enumerate(rows[230:235])], id=pa.float64()
    )
    write("e.parquet", [{**r, "id": n} for n, r in enumerate(rows[235:])], id=pa.int64())
    overrides = (f"source.path={typed}", "source.on_error=reject")
    local = build_datasets(_config(inputs, "parquet", "typed-local", *overrides))
    on_spark = build_datasets(_config(inputs, "parquet", "typed-spark", "engine=spark", *overrides))
    for task in ("topic", "stance"):
        a, b = local[task], on_spark[task]
        assert a.rejected_by_reason == b.rejected_by_reason == {"wrong_type": 34}
        assert a.n_input == b.n_input == 240 == b.n_kept + b.n_rejected
        assert a.fingerprint == b.fingerprint
        for name in ("rejects.csv", "votes.csv"):
            local_file = (inputs / "typed-local" / task / name).read_text(encoding="utf-8")
            spark_file = (inputs / "typed-spark" / task / name).read_text(encoding="utf-8")
            assert local_file == spark_file, name
    rejects = (inputs / "typed-spark" / "topic" / "rejects.csv").read_text(encoding="utf-8")
    assert f"{typed / 'b.parquet'}:1: column 'title' holds int 0, not a string" in rejects
    assert f"{typed / 'd.parquet'}:2: column 'id' holds float 1.0, not a string" in rejects
    votes = (inputs / "typed-spark" / "topic" / "votes.csv").read_text(encoding="utf-8")
    assert "\n4," in votes  # e.parquet's last int id, an article of the dataset


def test_wrong_types_and_bad_lines_in_jsonl_as_by_the_local_engine(spark, inputs):
    """Two JSONL files with a number text, a list title, a float id and an int id (read as its
    digits) among string rows, a malformed line and a blank line: Spark's JSON reader would
    make the number text "5"; both engines give the same rejects (file:line, reason, detail)
    and counts, with on_error=reject.
    Spark is made to cut each file into several splits and to put pieces of both files in one:
    lines are still numbered per file."""
    rows = article_rows(240)
    rows[5]["text"] = 5
    rows[110]["title"] = ["a", "list"]  # (rows 0, 3, 6, ... have gold labels)
    rows[113]["id"] = 12.5
    rows[116]["id"] = 13
    lines = [json.dumps(r) for r in rows]
    lines[120:120] = ['{"id": "broken", "text": ', ""]  # a malformed line, then a blank one
    folder = inputs / "typed-jsonl"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(lines[:100]) + "\n", encoding="utf-8")
    (folder / "b.jsonl").write_text("\n".join(lines[100:]) + "\n", encoding="utf-8")
    overrides = (f"source.path={folder}", "source.on_error=reject")
    local = build_datasets(_config(inputs, "jsonl", "jsonl-typed-local", *overrides))
    small = {"spark.sql.files.maxPartitionBytes": "4000", "spark.sql.files.openCostInBytes": "0"}
    saved = {k: spark.conf.get(k) for k in small}
    for key, value in small.items():
        spark.conf.set(key, value)
    try:
        on_spark = build_datasets(
            _config(inputs, "jsonl", "jsonl-typed-spark", "engine=spark", *overrides)
        )
        splits = spark.read.text(str(folder)).rdd.getNumPartitions()
    finally:
        for key, value in saved.items():
            spark.conf.set(key, value)
    assert splits > 4  # ~15 kB per file
    a, b = local["topic"], on_spark["topic"]
    assert a.rejected_by_reason == b.rejected_by_reason == {"wrong_type": 3, "malformed_record": 1}
    assert a.n_input == b.n_input == 241 == b.n_kept + b.n_rejected
    assert a.fingerprint == b.fingerprint
    local_file = (inputs / "jsonl-typed-local" / "topic" / "rejects.csv").read_text()
    spark_file = (inputs / "jsonl-typed-spark" / "topic" / "rejects.csv").read_text()
    assert local_file == spark_file
    assert f"{folder / 'a.jsonl'}:6: column 'text' holds int 5, not a string" in spark_file
    assert f"{folder / 'b.jsonl'}:11: column 'title' holds list ['a', 'list']" in spark_file
    assert f"{folder / 'b.jsonl'}:14: column 'id' holds float 12.5, not a string" in spark_file
    votes = (inputs / "jsonl-typed-spark" / "topic" / "votes.csv").read_text(encoding="utf-8")
    assert "\n13," in votes
    assert f"{folder / 'b.jsonl'}:21: malformed JSON line" in spark_file


def test_a_wrong_type_with_on_error_raise_is_one_error_line_from_the_cli(inputs):
    """newsclf-dataset engine=spark: exit 2, one error line naming the first bad record in
    input order, no traceback (not even Spark's log of a failed task)."""
    folder = inputs / "raise-cli"
    folder.mkdir()
    pq.write_table(
        pa.table({"id": ["z"], "title": ["ok"], "text": ["market"]}), folder / "a.parquet"
    )
    bad = {"id": ["x", "y"], "title": [7, 8], "text": ["gas prices", "tank fired"]}
    pq.write_table(pa.table(bad), folder / "b.parquet")
    proc = run_cli(
        inputs,
        "newsclf-dataset",
        "engine=spark",
        "source=parquet",
        f"source.path={folder}",
        "source.on_error=raise",
        f"output_dir={inputs / 'raise-cli-out'}",
        "log_to_mlflow=false",
        "spark.master='local[1]'",
        ok=False,
    )
    line = error_line(proc)
    assert line.endswith(
        f"error: {folder / 'b.parquet'}:1: column 'title' holds int 7, not a string"
    )


def test_a_missing_file_uri_is_one_error_line(spark, inputs):
    cfg = _config(inputs, "jsonl", "nope-out", "engine=spark")
    cfg.source.path = f"file://{inputs / 'nope.jsonl'}"
    with pytest.raises(NewsclfError) as caught:
        build_datasets(cfg)
    assert str(caught.value) == f"file://{inputs / 'nope.jsonl'}: source path does not exist"


def _labels(folder, ids) -> str:
    """``annotations.path=...`` of a labels file in ``folder`` for the articles ``a<i>`` of
    ``ids``."""
    topics, stances = list(TOPIC_WORDS), list(STANCE_WORDS)
    rows = [f"a{i:06d},{topics[i % 6]},{stances[i // 3 % 3]}" for i in ids]
    folder.mkdir()
    path = folder / "labels.csv"
    path.write_text("\n".join(["article_id,topic,stance", *rows]) + "\n", encoding="utf-8")
    return f"annotations.path={path}"


def _both_engines(inputs, fmt: str, name: str, *overrides: str) -> tuple[dict, dict]:
    local = build_datasets(_config(inputs, fmt, f"{name}-local", *overrides))
    on_spark = build_datasets(_config(inputs, fmt, f"{name}-spark", "engine=spark", *overrides))
    for task in ("topic", "stance"):
        a, b = local[task], on_spark[task]
        assert a.fingerprint == b.fingerprint
        assert a.n_input == b.n_input == b.n_kept + b.n_rejected
        assert a.rejected_by_reason == b.rejected_by_reason
        for file in ("rejects.csv", "votes.csv"):
            local_file = (inputs / f"{name}-local" / task / file).read_text(encoding="utf-8")
            spark_file = (inputs / f"{name}-spark" / task / file).read_text(encoding="utf-8")
            assert local_file == spark_file, file
    return local, on_spark


def test_jsonl_is_decoded_in_source_encoding_as_by_the_local_engine(spark, inputs):
    """A latin-1 JSONL file (source.encoding=latin-1) gives the local engine's articles on
    Spark, not U+FFFD; read as utf-8, its lines with a byte that is not utf-8 are rejected
    with the local engine's reason and detail. A user's spark.sql.shuffle.partitions stays."""
    rows = article_rows(90, seed=7)
    for row in rows[::4]:
        row["text"] = "Café, Zürich and São Paulo: " + row["text"]
    folder = inputs / "latin1"
    folder.mkdir()
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (folder / "a.jsonl").write_bytes(lines.encode("latin-1"))
    # gold labels for articles that read as utf-8 too (a rejected one's id is unknown)
    labels = _labels(inputs / "latin1-labels", [i for i in range(90) if i % 4 == 1])
    local, on_spark = _both_engines(
        inputs,
        "jsonl",
        "latin1",
        labels,
        f"source.path={folder}",
        "source.encoding=latin-1",
        "source.on_error=reject",
    )
    assert local["topic"].n_kept == 90
    dd, _ = datasets.load(on_spark["topic"].path)
    texts = [t for split in datasets.SPLITS for t in dd[split]["text"]]
    assert sum("Café, Zürich" in t for t in texts) > 10 and not any("\ufffd" in t for t in texts)

    saved = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.newsclf.userShufflePartitions", "true")
    spark.conf.set("spark.sql.shuffle.partitions", "3")
    try:
        local, on_spark = _both_engines(
            inputs,
            "jsonl",
            "latin1-as-utf8",
            labels,
            f"source.path={folder}",
            "source.on_error=reject",
        )
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
    finally:
        spark.conf.unset("spark.newsclf.userShufflePartitions")
        spark.conf.set("spark.sql.shuffle.partitions", saved)
    assert on_spark["topic"].rejected_by_reason == {"malformed_record": 23}
    rejects = (inputs / "latin1-as-utf8-spark" / "topic" / "rejects.csv").read_text()
    assert f"{folder / 'a.jsonl'}:1: not utf-8 text (byte 0xe9 at offset " in rejects


def test_files_and_records_without_the_columns_are_rejected_as_locally(spark, inputs):
    """A Parquet file lacking a configured column, or not Parquet at all, is one ``unreadable``
    record on both engines with on_error=reject; JSONL records lacking the text field are one
    ``malformed_record`` each; a file without rows is none. Spark's shuffle is sized from the
    input (not Spark's 200 partitions)."""
    rows = article_rows(120, seed=9)
    labels = _labels(inputs / "columns-labels", range(0, 100, 3))  # of the readable files
    for fmt in ("parquet", "jsonl"):
        folder = inputs / f"columns-{fmt}"
        folder.mkdir()
        if fmt == "parquet":
            pd.DataFrame(rows[:100]).to_parquet(folder / "a.parquet")
            pd.DataFrame(rows[100:]).drop(columns=["text"]).to_parquet(folder / "b.parquet")
            pd.DataFrame({"id": pd.Series([], dtype=str)}).to_parquet(folder / "c.parquet")
            (folder / "d.parquet").write_bytes(b"not a Parquet file")
            unreadable = 2
        else:
            write_jsonl(folder / "a.jsonl", rows[:100])
            write_jsonl(
                folder / "b.jsonl", [{"id": r["id"], "body": r["text"]} for r in rows[100:]]
            )
            (folder / "c.jsonl").write_text("\n\n", encoding="utf-8")
        spark.conf.set("spark.sql.shuffle.partitions", "200")
        _, on_spark = _both_engines(
            inputs, fmt, f"columns-{fmt}", labels, f"source.path={folder}", "source.on_error=reject"
        )
        assert spark.conf.get("spark.sql.shuffle.partitions") == str(
            spark.sparkContext.defaultParallelism
        )
        rejects = (inputs / f"columns-{fmt}-spark" / "topic" / "rejects.csv").read_text()
        rejects = rejects.replace('"', "")
        if fmt == "parquet":  # a table's columns are checked per file
            assert on_spark["topic"].rejected_by_reason == {"unreadable": unreadable}
            assert on_spark["topic"].n_input == 100 + unreadable
            detail = f"{folder / 'b.parquet'}: missing column(s) text"
            assert f"{folder / 'b.parquet'},unreadable,{detail}" in rejects
        else:  # a JSONL record's fields per record: each lacks the text field
            assert on_spark["topic"].rejected_by_reason == {"malformed_record": len(rows) - 100}
            assert on_spark["topic"].n_input == len(rows)
            where = f"{folder / 'b.jsonl'}:1"
            detail = f"{where}: no 'text' field (has: id, body)"
            assert f"{rows[100]['id']},{where},malformed_record,{detail}" in rejects


@pytest.mark.parametrize("uri", [False, True])
def test_jsonl_rows_are_estimated_from_sampled_lines(spark, tmp_path, uri):
    """Short JSONL items (some 35 bytes a line): the estimate that sizes Spark's shuffle is
    near the true count, from files read whole, files longer than the sample (scaled by
    size) and files not sampled (at the samples' bytes per line); a bytes-per-article
    constant for news articles would be off more than fifty-fold."""
    from newsclf.articles import Source
    from newsclf.spark_input import SAMPLE_BYTES, SAMPLE_FILES, Inputs

    counts = [(i + 1) * 500 for i in range(SAMPLE_FILES + 8)]  # 500 to 20,000 lines a file
    for i, n in enumerate(counts):
        lines = [json.dumps({"id": f"{i}-{j}", "text": "tank"}) for j in range(n)]
        (tmp_path / f"{i:02d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = f"file://{tmp_path}" if uri else str(tmp_path)
    inputs = Inputs(spark, Source(path=path, format="jsonl"))
    files = inputs.files
    assert inputs.hadoop == uri
    assert len(files) == len(counts) and max(f.size for f in files) > 2 * SAMPLE_BYTES
    true = sum(counts)
    assert sum(f.size for f in files) // 3_000 < true / 50  # what the old constant gave
    assert abs(inputs.jsonl_rows(files) - true) < 0.1 * true
    assert inputs.jsonl_rows(files[:1]) == counts[0]  # shorter than the sample: exact
    assert inputs.jsonl_rows([]) == 0
