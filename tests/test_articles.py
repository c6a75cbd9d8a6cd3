import json
import tracemalloc
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from newsclf.articles import (
    Article,
    Reject,
    Source,
    clean_and_dedupe,
    id_unknown,
    ingest,
    parse_date,
    parse_txt,
)
from newsclf.cleaning import Cleaner, is_latin_filler
from newsclf.errors import NewsclfError
from tests.conftest import SEED_ARTICLE


def test_seed_article_parses_date_title_and_body():
    article = parse_txt(SEED_ARTICLE.read_text(encoding="utf-8"), "seed")
    assert article.date == "2017-03-05"
    assert article.title.startswith("Boris Johnson Is Set To Become First Foreign Secretary")
    assert article.body.lstrip().startswith("Boris Johnson")
    assert "Sources have denied" in article.body


def test_seed_lorem_filler_is_removed_and_reported():
    article = parse_txt(SEED_ARTICLE.read_text(encoding="utf-8"), "seed")
    cleaned, removed = Cleaner().clean(article)
    assert [r.rule for r in removed] == ["latin_filler"]
    assert removed[0].text.startswith("Etiam at libero iaculis")
    assert "Etiam" not in cleaned.body
    assert cleaned.body.endswith("views on the country.")


def test_missing_date_line_keeps_first_line_as_title():
    article = parse_txt("A headline without a date\n\nBody text here.", "x")
    assert article.date is None
    assert article.title == "A headline without a date"
    assert article.body.strip() == "Body text here."


@pytest.mark.parametrize("first_line", ["May 9", "9/11", "29 February", "Sunday, 5 March"])
def test_first_line_with_a_yearless_date_is_the_title(first_line):
    # such a line parses to no date: taking it as the date line would lose the title
    article = parse_txt(f"{first_line}\n\nBody text here.", "x")
    assert article.date is None
    assert article.title == first_line
    assert article.body.strip() == "Body text here."


@pytest.mark.parametrize(("first_line", "date"), [("2022", "2022"), ("March 2022", "2022-03")])
def test_date_line_without_a_day_is_still_the_date(first_line, date):
    article = parse_txt(f"{first_line}\nThe title\n\nBody text here.", "x")
    assert (article.date, article.title) == (date, "The title")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sunday, 5 March 2017", "2017-03-05"),
        ("2022-02-24", "2022-02-24"),
        ("", None),
        ("not a date", None),
        # parts the text leaves out are not taken from today: the same text, the same date
        ("March 2017", "2017-03"),
        ("2017", "2017"),
        ("5 March", None),
        ("Sunday, 5 March", None),
    ],
)
def test_parse_date(value, expected):
    assert parse_date(value) == expected


def test_normalize_quotes_unicode_and_whitespace():
    cleaner = Cleaner()
    text = "“Quoted”  text\u00a0with   spaces\r\nand ﬁ ligature\n\n\n‘single’"
    assert cleaner.normalize(text) == "\"Quoted\" text with spaces\nand fi ligature\n\n'single'"
    cleaned, _ = cleaner.clean(Article("a", "T", text))
    assert cleaned.body == "\"Quoted\" text with spaces and fi ligature\n\n'single'"


def test_mojibake_is_fixed():
    assert Cleaner().normalize("Itâ€™s") == "It's"


@pytest.mark.parametrize(
    "paragraph",
    [
        "Share this article",
        "Sign up for our daily newsletter to get the briefing in your inbox.",
        "Advertisement",
        "Related: Kremlin denies involvement in the blast",
        "We use cookies to improve your experience. Accept all or manage settings.",
        "Related stories",
        "Related posts: The sanctions that backfired",
        "©2022 Example Media L.P.",
        "Copyright 2023 Example News. All rights reserved.",
    ],
)
def test_boilerplate_rules_match_page_noise(paragraph):
    assert Cleaner().rule_for(paragraph) is not None


def test_prose_is_not_boilerplate():
    cleaner = Cleaner()
    prose = (
        "The minister said the talks would resume next week, and that the share of gas "
        "imports from Russia had fallen to a record low, according to a newsletter."
    )
    assert cleaner.rule_for(prose) is None
    # short wire paragraphs that open with a rule's word are news, not page furniture
    for sentence in (
        "Related sanctions on Russian banks were announced on Monday by the EU.",
        "Copyright lawsuits against Russian state media grew in 2023.",
    ):
        assert cleaner.rule_for(sentence) is None, sentence
    assert not is_latin_filler("Et tu, Brute? The senate met in Rome on Tuesday to discuss it.")


def test_custom_boilerplate_rule_and_invalid_regex():
    cleaner = Cleaner(boilerplate={"promo": r"buy now.*"}, latin_filler=False)
    assert cleaner.rule_for("Buy now and save") == "promo"
    with pytest.raises(NewsclfError, match="invalid regex"):
        Cleaner(boilerplate={"bad": "("})


def test_max_chars_truncates_and_reports():
    cleaned, removed = Cleaner(max_chars=10).clean(Article("a", "T", "x" * 50))
    assert len(cleaned.body) == 10
    assert removed[0].rule == "truncated"


def test_clean_and_dedupe_rejects_with_reasons():
    records = [
        Article("a", "Title", "Same body."),
        Article("b", "Title", "Same body."),
        Article("a", "Other", "Different body."),
        Article("c", "Empty", "   "),
        Reject(None, "f.jsonl:3", "malformed_record", "bad"),
    ]
    out = list(clean_and_dedupe(records, Cleaner()))
    kept = [r for r in out if isinstance(r, Article)]
    reasons = sorted(r.reason for r in out if isinstance(r, Reject))
    assert [a.id for a in kept] == ["a"]
    assert reasons == ["duplicate_id", "duplicate_text", "empty_text", "malformed_record"]
    assert len(kept) + len(reasons) == len(records)


def test_a_body_repeated_under_another_title_is_a_duplicate_text():
    """Syndicated copies carry another outlet's headline. The key was title + body, so the
    copy was kept and the same body could land in train and test; now the body decides."""
    records = [
        Article("a", "Kyiv talks resume", "Same body.\n\nSecond paragraph."),
        Article("b", "Talks resume in Kyiv", "Same body.\n\nSecond paragraph."),
        Article("c", "Kyiv talks resume", "A different body."),
    ]
    out = [r for r in clean_and_dedupe(records, Cleaner()) if isinstance(r, Article | Reject)]
    assert [r.id for r in out if isinstance(r, Article)] == ["a", "c"]
    assert [(r.id, r.reason, r.detail) for r in out if isinstance(r, Reject)] == [
        ("b", "duplicate_text", "same text as a")
    ]
    assert len(out) == len(records)  # kept + rejected = input
    kept = clean_and_dedupe(records, Cleaner(), dedupe_text=False)
    assert [r.id for r in kept if isinstance(r, Article)] == ["a", "b", "c"]


def test_txt_folder_ids_are_file_stems(tmp_path):
    (tmp_path / "b.txt").write_text("Monday, 1 May 2023\nB\n\nBody b.", encoding="utf-8")
    (tmp_path / "a.txt").write_text("Monday, 1 May 2023\nA\n\nBody a.", encoding="utf-8")
    result = ingest(Source(path=str(tmp_path)), Cleaner())
    assert [a.id for a in result.articles] == ["a", "b"]
    assert result.n_input == 2


def test_bom_and_crlf_are_handled(tmp_path):
    (tmp_path / "a.txt").write_bytes(
        "\ufeffMonday, 1 May 2023\r\nTitle\r\n\r\nBody line.\r\n".encode()
    )
    article = ingest(Source(path=str(tmp_path)), Cleaner()).articles[0]
    assert (article.date, article.title, article.body) == ("2023-05-01", "Title", "Body line.")


def test_missing_and_empty_sources_fail_clearly(tmp_path):
    with pytest.raises(NewsclfError, match="does not exist"):
        ingest(Source(path=str(tmp_path / "nope")), Cleaner())
    with pytest.raises(NewsclfError, match="no input files"):
        ingest(Source(path=str(tmp_path)), Cleaner())
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "gas"}\n', encoding="utf-8")
    # the csv preset's pattern left in place after source.format=jsonl: say so
    with pytest.raises(NewsclfError, match=r"\(pattern '\*\.csv': it names csv files, source\.f"):
        ingest(Source(path=str(tmp_path), format="jsonl", pattern="*.csv"), Cleaner())
    (tmp_path / "a.jsonl").unlink()
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(NewsclfError, match="empty"):
        ingest(Source(path=str(tmp_path / "empty.jsonl")), Cleaner())


def test_binary_and_non_utf8_files_fail_naming_the_file(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(NewsclfError, match=r"bin\.txt: binary file"):
        ingest(Source(path=str(tmp_path)), Cleaner())
    (tmp_path / "bin.txt").unlink()
    (tmp_path / "latin.txt").write_bytes("Monday, 1 May 2023\nCaf\xe9\n\nBody".encode("latin-1"))
    with pytest.raises(NewsclfError, match=r"latin\.txt: not utf-8 text \(byte 0xe9"):
        ingest(Source(path=str(tmp_path)), Cleaner())
    latin = ingest(Source(path=str(tmp_path), encoding="latin-1"), Cleaner())
    assert latin.articles[0].title == "Café"


def test_unreadable_file_becomes_reject_when_configured(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01")
    (tmp_path / "ok.txt").write_text("Monday, 1 May 2023\nOk\n\nBody.", encoding="utf-8")
    result = ingest(Source(path=str(tmp_path), on_error="reject"), Cleaner())
    assert [a.id for a in result.articles] == ["ok"]
    assert [r.reason for r in result.rejects] == ["unreadable"]


def _rows():
    return [
        {"id": "x1", "title": "One", "date": "2020-01-02", "text": "First body.", "outlet": "A"},
        {"id": "x2", "title": "Two", "date": "", "text": "Second body.", "outlet": "B"},
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_table_formats_read_columns(tmp_path, fmt):
    path = tmp_path / f"articles.{fmt}"
    frame = pd.DataFrame(_rows())
    if fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    result = ingest(Source(path=str(path), meta_columns=["outlet"]), Cleaner())
    first = result.articles[0]
    assert (first.id, first.title, first.date, first.body) == (
        "x1",
        "One",
        "2020-01-02",
        "First body.",
    )
    assert first.meta == {"outlet": "A"}
    assert result.articles[1].date is None


def _arrow_peak_while_reading(path, fmt: str, n: int) -> int:
    """Write ``n`` 1 kB articles as ``fmt``, stream them back, return the peak Arrow memory."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)  # varied text: Parquet must not compress it to nothing
    words = np.array([f"w{k}" for k in range(5000)])
    pool = [" ".join(words[rng.integers(0, 5000, 170)]) for _ in range(3000)]
    texts = [f"{pool[i % 3000]} {i}" for i in range(n)]
    table = pa.table({"id": [f"a{i}" for i in range(n)], "title": ["T"] * n, "text": texts})
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=5000)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        pd.DataFrame(table.to_pydict()).to_json(path, orient="records", lines=True)
    del table
    if fmt == "csv":  # read line by line in Python: its own allocations are what count
        tracemalloc.start()
        count = sum(1 for _ in Source(path=str(path)).read())
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == n
        return peak
    before, peak, count = pa.total_allocated_bytes(), 0, 0
    for _ in Source(path=str(path), chunk_rows=1000).read():
        count += 1
        if count % 500 == 0:
            peak = max(peak, pa.total_allocated_bytes() - before)
    assert count == n
    return peak


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_streaming_read_memory_does_not_grow_with_the_file(tmp_path, fmt):
    # Pre-buffered Parquet row groups and pyarrow's CSV read-ahead on a path once held
    # memory in proportion to the file (15 -> 32 MB and 17 -> 49 MB here). The CSV reader
    # holds a record's lines at a time (Python memory, traced instead): 1 MB of slack.
    small = _arrow_peak_while_reading(tmp_path / f"small.{fmt}", fmt, 15_000)
    large = _arrow_peak_while_reading(tmp_path / f"large.{fmt}", fmt, 45_000)
    bound = 1.25 * small + (1 << 20)
    assert large <= bound, f"{small:,} -> {large:,} bytes of Arrow memory"


def test_configurable_columns_and_content_ids(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame({"headline": ["H"], "content": ["Body"]}).to_csv(path, index=False)
    source = Source(
        path=str(path),
        id_column=None,
        title_column="headline",
        date_column=None,
        text_column="content",
    )
    first = ingest(source, Cleaner()).articles[0]
    again = ingest(source, Cleaner()).articles[0]
    assert first.id == again.id and len(first.id) == 16
    assert first.title == "H"


def test_integer_ids_are_read_as_their_digits(tmp_path):
    """Database ids are integers: a JSONL, Parquet or CSV id 42 is the article id "42" (as
    annotations name it), in every format, not a wrong_type reject of every record."""
    rows = [{"id": 42, "title": "t", "text": "Gas prices rose."}, {"id": 7, "text": "Oil fell."}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "b.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    for name, pattern in (("a.jsonl", "*.jsonl"), ("b.parquet", "*.parquet"), ("c.csv", "*.csv")):
        source = Source(path=str(tmp_path / name), pattern=pattern, date_column=None)
        result = ingest(source, Cleaner())
        assert [a.id for a in result.articles] == ["42", "7"], name
        assert not result.rejects, name


def test_csv_without_text_column_names_file_and_column(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame({"id": ["1"], "body": ["x"]}).to_csv(path, index=False)
    with pytest.raises(NewsclfError, match=r"a\.csv: missing column\(s\) text"):
        ingest(Source(path=str(path)), Cleaner())


def test_malformed_jsonl_line_is_named_or_rejected(tmp_path):
    path = tmp_path / "a.jsonl"
    good = json.dumps({"id": "1", "title": "t", "text": "body"})
    path.write_text(f"{good}\n{{broken\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"a\.jsonl:2: malformed JSON line \(.* at column 2\)"):
        ingest(Source(path=str(path)), Cleaner())
    path.write_text(f'{good}\n{{"text": "no end\n', encoding="utf-8")
    message = r"a\.jsonl:2: malformed JSON line \(Unterminated string starting at column 10\)$"
    with pytest.raises(NewsclfError, match=message):
        ingest(Source(path=str(path)), Cleaner())
    path.write_text(f"{good}\n{{broken\n", encoding="utf-8")
    result = ingest(Source(path=str(path), on_error="reject"), Cleaner())
    assert len(result.articles) == 1
    assert result.rejects[0].reason == "malformed_record"
    assert result.rejects[0].source.endswith("a.jsonl:2")


def test_hf_dataset_from_disk(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(_rows())
    ds.save_to_disk(str(tmp_path / "ds"))
    result = ingest(Source(path=str(tmp_path / "ds"), format="hf_disk"), Cleaner())
    assert [a.id for a in result.articles] == ["x1", "x2"]
    assert Source(path=str(tmp_path / "ds")).resolved_format() == "hf_disk"
    datasets.DatasetDict({"train": ds, "validation": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(NewsclfError, match=r"dd: no split 'test' \(has: train, validation\)"):
        ingest(Source(path=str(tmp_path / "dd"), format="hf_disk", split="test"), Cleaner())


def test_hf_load_dataset_by_path(tmp_path):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    pd.DataFrame(_rows()).to_json(folder / "train.jsonl", orient="records", lines=True)
    result = ingest(Source(path=str(folder), format="hf", split="train"), Cleaner())
    assert sorted(a.id for a in result.articles) == ["x1", "x2"]
    with pytest.raises(NewsclfError, match="cannot load Hugging Face dataset"):
        ingest(Source(path=str(tmp_path / "missing"), format="hf"), Cleaner())


def test_hf_load_errors_are_one_line(tmp_path, monkeypatch):
    # a hub name that cannot be fetched was a 62-line ConnectionError traceback
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without the hub: no waiting
    with pytest.raises(NewsclfError) as err:
        ingest(Source(path="some-user/no-such-dataset", format="hf"), Cleaner())
    assert str(err.value).startswith(
        "some-user/no-such-dataset: cannot load Hugging Face dataset: "
    ) and "\n" not in str(err.value)
    # a save_to_disk folder read as a hub dataset: the format that reads it
    import datasets

    datasets.Dataset.from_list(_rows()).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(NewsclfError, match=r"is read with source\.format=hf_disk$"):
        ingest(Source(path=str(tmp_path / "ds"), format="hf"), Cleaner())


@pytest.mark.parametrize("path", ["", "  ", None])
def test_an_empty_or_null_source_path_is_refused(path, tmp_path, monkeypatch):
    # '' (source.path=$UNSET) read the working folder, .venv and all; None was a TypeError
    monkeypatch.chdir(tmp_path)
    (tmp_path / "LICENSE.txt").write_text("Not an article at all.")
    with pytest.raises(NewsclfError, match=r"^source\.path: .* is not a path; set it to"):
        Source(path=path)


def test_bad_source_options():
    with pytest.raises(NewsclfError, match="on_error"):
        Source(path="x", on_error="ignore")
    with pytest.raises(NewsclfError, match="format"):
        Source(path="x", format="xml")
    with pytest.raises(NewsclfError, match=r"source\.encoding: 'utf8x' is not a known encoding"):
        Source(path="x", encoding="utf8x")


def test_jsonl_lines_beyond_pythons_limits_are_named_or_rejected(tmp_path):
    """Valid JSON that Python will not read (an integer of 5,000 digits, arrays nested 100,000
    deep) is one bad line, like malformed JSON: rejected with its reason, or named."""
    path = tmp_path / "a.jsonl"
    good = json.dumps({"id": "1", "title": "t", "text": "body"})
    huge = '{"id": ' + "9" * 5000 + ', "text": "x"}'
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text(f"{huge}\n{good}\n{deep}\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"a\.jsonl:1: unreadable JSON line \(Exceeds the"):
        ingest(Source(path=str(path)), Cleaner())
    result = ingest(Source(path=str(path), on_error="reject"), Cleaner())
    assert [a.id for a in result.articles] == ["1"]
    assert [r.source.rsplit(":", 1)[1] for r in result.rejects] == ["1", "3"]
    assert "maximum recursion depth" in result.rejects[1].detail


def test_jsonl_text_with_half_a_surrogate_pair_is_one_bad_line(tmp_path):
    """JSON may escape half of a UTF-16 pair ("\\ud800"), which is no text: such a line is
    rejected or named like a malformed one (it used to fail later, when the text was hashed
    or written, with a bare UnicodeEncodeError); a whole pair is an emoji, kept."""
    path = tmp_path / "a.jsonl"
    lines = [
        '{"title": "t", "text": "half \\ud800 a pair"}',
        '{"title": "t", "text": "a whole pair \\ud83d\\ude00"}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"a\.jsonl:1: JSON line holds an unpaired"):
        list(Source(path=str(path), id_column=None).read())
    result = ingest(Source(path=str(path), id_column=None, on_error="reject"), Cleaner())
    assert [r.reason for r in result.rejects] == ["malformed_record"]
    assert [a.body for a in result.articles] == ["a whole pair \U0001f600"]


def test_utf16_csv_that_stops_decoding_ends_the_file_with_one_error(tmp_path):
    """A UTF-16 decoder that hits a bad byte loses its place: the read stops with an error
    saying so (the records before it kept), instead of repeating the reject without end or
    skipping records silently."""
    path = tmp_path / "u16.csv"
    path.write_bytes("id,title,text\n1,t,A\n2,t,B\n".encode("utf-16") + b"\x41")
    source = Source(path=str(path), encoding="utf-16", on_error="reject")
    read = []
    with pytest.raises(NewsclfError) as caught:
        for record in source.read():
            read.append(record)
            assert len(read) < 10, "the reader repeats itself"
    assert [r.id for r in read] == ["1", "2"]
    assert "u16.csv: not utf-16 text at or after line 4 (truncated data)" in str(caught.value)
    assert "stopped after 2 records" in str(caught.value)


def test_parquet_columns_the_source_does_not_read_are_never_converted(tmp_path):
    """A column the source does not read cannot fail the read (a timestamp beyond Python's
    dates here); corrupt data in the file ends the read with one error naming the file and
    the row reached, the records before it kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    crawled = pa.array([0, 400_000_000_000], pa.timestamp("s"))
    table = pa.table({"id": ["a", "b"], "title": ["t", "t"], "text": ["A", "B"], "at": crawled})
    pq.write_table(table, path)
    assert [a.body for a in Source(path=str(path)).read()] == ["A", "B"]

    n = 5000
    rows = {"id": [f"r{i}" for i in range(n)], "title": ["t"] * n}
    rows["text"] = [f"body {i} " * 20 for i in range(n)]
    pq.write_table(pa.table(rows), path, row_group_size=1000, compression="snappy")
    data = bytearray(path.read_bytes())
    for k in range(len(data) // 2, len(data) // 2 + 2000):
        data[k] ^= 0x5A
    path.write_bytes(bytes(data))
    read = []
    with pytest.raises(NewsclfError, match=r"a\.parquet: unreadable Parquet data after row"):
        for record in Source(path=str(path), on_error="reject").read():
            read.append(record.id)
    assert read == [f"r{i}" for i in range(len(read))] and 0 < len(read) < n


def test_hugging_face_stream_failing_mid_way_is_one_error(tmp_path):
    """A streamed Hugging Face dataset whose data breaks after its first batch (a broken JSON
    line near the end of a 15 MB file) ends with one error naming the dataset and the last
    record read, not the loader's traceback."""
    folder = tmp_path / "hub"
    folder.mkdir()
    row = '{{"id": "r{}", "title": "t", "text": "{}"}}\n'
    lines = [row.format(i, "x" * 1000) for i in range(15_000)]
    (folder / "train.jsonl").write_text("".join(lines) + "{broken\n", encoding="utf-8")
    source = Source(path=str(folder), format="hf", on_error="reject")
    read = 0
    with pytest.raises(NewsclfError, match=r"hub: cannot read the Hugging Face dataset after"):
        for _ in source.read():
            read += 1
    assert 0 < read < 15_000


def test_json_files_a_jsonl_folder_would_skip_are_named(tmp_path):
    """.json files count as JSONL when a folder's format is detected, but the pattern *.jsonl
    (the default, and the jsonl source's) skips them: such a folder is refused with the files
    named, not half read; another pattern reads what it says. The jsonl source used to skip
    them without a word."""
    row = json.dumps({"id": "1", "title": "t", "text": "body"})
    (tmp_path / "a.jsonl").write_text(row + "\n", encoding="utf-8")
    (tmp_path / "b.json").write_text(row.replace('"1"', '"2"') + "\n", encoding="utf-8")
    for source in (
        Source(path=str(tmp_path)),
        Source(path=str(tmp_path), format="jsonl", pattern="*.jsonl"),
    ):
        with pytest.raises(NewsclfError, match=r"holds \.json files \(b\.json\) that the pat"):
            list(source.read())
    for pattern, ids in (("*.json", ["2"]), ("*.json*", ["1", "2"])):
        source = Source(path=str(tmp_path), format="jsonl", pattern=pattern)
        assert [a.id for a in source.read()] == ids


def test_utf16_jsonl_is_one_clear_error(tmp_path):
    """JSONL is split into lines at the byte \\n, which UTF-16 text is not: a UTF-16 file is
    one unreadable file (not a malformed record per line), and source.encoding=utf-16 for
    JSONL is refused at once instead of giving wrong counts."""
    path = tmp_path / "a.jsonl"
    path.write_bytes('{"id": "1", "text": "gas"}\n{"id": "2", "text": "oil"}\n'.encode("utf-16"))
    result = list(Source(path=str(path), on_error="reject").read())
    assert [(r.reason, r.detail) for r in result] == [
        ("unreadable", f"{path}: UTF-16 text (byte order mark); convert it to UTF-8")
    ]
    with pytest.raises(NewsclfError, match=r"source\.encoding: JSONL is read as lines of bytes"):
        Source(path=str(path), encoding="utf-16")


def test_csv_header_naming_a_read_column_twice_is_an_error(tmp_path):
    """A row keeps only the last of two same-named columns: when the source reads that
    column, the header is refused (the first would be lost without a word); a repeated
    column it does not read is harmless."""
    path = tmp_path / "a.csv"
    path.write_text("id,title,text,text\n1,T,the body,notes\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"a\.csv:1: the CSV header names column 'text' more"):
        list(Source(path=str(path)).read())
    path.write_text("id,title,text,extra,extra\n1,T,the body,a,b\n", encoding="utf-8")
    assert [a.body for a in Source(path=str(path)).read()] == ["the body"]


def test_furniture_lines_glued_into_one_block_are_removed_line_by_line():
    body = (
        "The treaty talks continue in May.\n\n"
        "━━━━━━━━━━\nAdvertisement\n"
        "Tempora velunt dolorique amaris, sed quibus non fatemur. Ornetis vivandi lacuna.\n"
        "━━━━━━━━━━\nSign up for our Health Check newsletter — fortnightly, free, no spam."
    )
    cleaned, removed = Cleaner().clean(Article("a", "T", body))
    assert cleaned.body == "The treaty talks continue in May."
    assert [r.rule for r in removed] == [
        "no_text",
        "advertisement",
        "latin_filler",
        "no_text",
        "newsletter",
    ]


def test_an_empty_body_is_not_counted_as_boilerplate():
    """Nothing removed from an empty or blank body: the article is rejected as empty_text,
    and the boilerplate counts are of page furniture only."""
    for body in ("", "  \n ", "\n\n\n"):
        cleaned, removed = Cleaner().clean(Article("a", "T", body))
        assert cleaned.body == "" and removed == [], repr(body)


def test_csv_undecodable_byte_after_valid_non_ascii_text_is_named(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("id,text\na1,Café £5 ok\na2,naïve caf".encode() + b"\xe9 \xff\n")
    source = Source(path=str(path), title_column=None, date_column=None, on_error="reject")
    records = list(source.read())
    assert records[0].body == "Café £5 ok"
    assert records[1].reason == "malformed_record"
    assert "byte 0xe9 on line 3" in records[1].detail


def test_file_names_match_the_pattern_whatever_their_case(tmp_path):
    """Files from other systems (NOTES.TXT, DATA.JSONL) are read like their lower-case
    siblings: a case-sensitive glob skipped them without a word, and a folder of upper-case
    JSONL files was taken for a folder of text files with none in it."""
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("Monday, 1 May 2017\nGas\n\nGas prices rose.\n", encoding="utf-8")
    (texts / "B.TXT").write_text("Monday, 1 May 2017\nOil\n\nOil prices fell.\n", encoding="utf-8")
    assert [a.id for a in Source(path=str(texts)).read()] == ["B", "a"]
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "PART-1.JSONL").write_text(
        '{"id": "1", "title": "t", "text": "gas"}\n', encoding="utf-8"
    )
    source = Source(path=str(tables))
    assert source.resolved_format() == "jsonl"
    assert [a.id for a in source.read()] == ["1"]
    with pytest.raises(NewsclfError, match=r"holds \.json files \(C\.JSON\)"):
        (tables / "C.JSON").write_text('{"id": "2", "text": "oil"}\n', encoding="utf-8")
        source.files()


def test_pattern_matching_is_purepath_match_ignoring_case():
    """The compiled matcher answers as PurePath.match does on lower-cased names and patterns,
    for names alone and for patterns naming a folder."""
    names = ["a.txt", "B.TXT", "x/y/a.txt", "x/a.jsonl", "train.csv", "test.csv", "a.txt.bak"]
    names += [".hidden.txt", "dir.txt/file", "tr[1].csv", "sub/part-1.JSONL"]
    patterns = ["*.txt", "*.jsonl", "[tv][ra]*.csv", "*", "a.*", "y/*.txt", "x/*", "?.txt"]
    for name in names:
        for pattern in patterns:
            expected = PurePosixPath(name.lower()).match(pattern.lower())
            assert Source.matches(name, pattern) == expected, (name, pattern)


def test_csv_multiline_record_rejected_after_parsing_consumes_its_lines(tmp_path):
    """A quoted multi-line record that parses but is rejected (an undecodable byte, a wrong
    number of fields) is one reject: its inner lines are not re-read as phantom records."""
    bad_byte = tmp_path / "bad_byte.csv"
    bad_byte.write_bytes(
        b"id,title,text\n"
        b'1,Caf\xe9 report,"First paragraph.\n'
        b'99,Phantom title,Second paragraph"\n'
        b"2,Second,Body of article two.\n"
    )
    few_fields = tmp_path / "few_fields.csv"
    few_fields.write_text(
        'id,title,text\n1,"Title line one\n98,Phantom,inner line"\n2,Second,Body two.\n',
        encoding="utf-8",
    )
    for path, problem in ((bad_byte, "byte 0xe9 on line 2"), (few_fields, "2 fields where")):
        records = list(Source(path=str(path), on_error="reject").read())
        assert [type(r).__name__ for r in records] == ["Reject", "Article"], path
        assert records[0].source.endswith(":2") and problem in records[0].detail
        assert records[1].id == "2" and records[1].source.endswith(":4")


def test_parquet_cell_that_is_not_utf8_costs_its_row_not_the_batch(tmp_path):
    """One string cell that is not UTF-8 made pyarrow's to_pylist fail for the whole batch:
    the batch was lost (or the job stopped) and the error named the batch start. Now that
    row alone is rejected, or with on_error=raise the error names file:row."""
    texts = [f"article {i} about gas".encode() for i in range(10)]
    texts[6] = b"bad \xff bytes"
    path = tmp_path / "a.parquet"
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(10)],
            "title": ["t"] * 10,
            "text": pa.array(texts, pa.binary()).view(pa.string()),
        }
    )
    pq.write_table(table, path)
    records = list(Source(path=str(path), on_error="reject", chunk_rows=4).read())
    assert len(records) == 10
    rejects = [r for r in records if isinstance(r, Reject)]
    assert [r.source for r in rejects] == [f"{path}:7"]
    assert rejects[0].reason == "malformed_record"
    assert rejects[0].id == "r6"  # its id cell could be read
    assert "column 'text' is not UTF-8 text (byte 0xff at offset 4)" in rejects[0].detail
    assert [a.id for a in records if isinstance(a, Article)] == [
        f"r{i}" for i in range(10) if i != 6
    ]
    with pytest.raises(NewsclfError, match=r"a\.parquet:7: column 'text' is not UTF-8"):
        list(Source(path=str(path), chunk_rows=4).read())


@pytest.mark.parametrize(
    ("raw_id", "expected"), [(" r6 ", "r6"), ("", "a.parquet:1"), ("   ", "a.parquet:1")]
)
def test_parquet_reject_id_is_normalised_like_an_article_id(tmp_path, raw_id, expected):
    # a padded id names the reject as the annotations name the article; a blank one: its place
    path = tmp_path / "a.parquet"
    text = pa.array([b"bad \xff bytes"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": [raw_id], "title": ["t"], "text": text}), path)
    [reject] = Source(path=str(path), on_error="reject").read()
    assert (reject.id, reject.reason) == (expected, "malformed_record")


def test_malformed_records_are_named_by_their_file_and_record(tmp_path):
    """A record that cannot be parsed has no id of its own: its reject is named by where it is
    (file name and line), so the rejects file says which record (the id was empty)."""
    jsonl = tmp_path / "a.jsonl"
    good = json.dumps({"id": "1", "title": "t", "text": "body"})
    jsonl.write_text(f"{good}\n{{broken\n", encoding="utf-8")
    csv_path = tmp_path / "b.csv"
    csv_path.write_text("id,title,text\n1,A,gas\n2,B,tank,extra\n", encoding="utf-8")
    for path, place in ((jsonl, "a.jsonl:2"), (csv_path, "b.csv:3")):
        records = list(Source(path=str(path), on_error="reject").read())
        [reject] = [r for r in records if isinstance(r, Reject)]
        assert (reject.id, reject.reason) == (place, "malformed_record")
        assert reject.source == f"{path}:{place.rpartition(':')[2]}"
        assert id_unknown(reject)  # still a record whose own id was never read
    assert not id_unknown(Reject("a1", f"{jsonl}:1", "wrong_type", "bad"))


def test_rejects_keep_the_id_that_could_be_read(tmp_path):
    """A JSONL record with a string or integer id but a field of the wrong type, and an
    undecodable .txt file (its id is its file's stem), are rejected under that id, not an empty
    one; a record whose id itself is of the wrong type is named by its place, an unreadable
    table file by its name."""
    path = tmp_path / "a.jsonl"
    path.write_text(
        '{"id": "a1", "title": 123, "text": "gas"}\n{"id": 7.0, "title": "t", "text": "oil"}\n'
        '{"id": 8, "title": 9, "text": "coal"}\n',
        encoding="utf-8",
    )
    records = list(Source(path=str(path), on_error="reject").read())
    assert [(r.id, r.reason) for r in records] == [
        ("a1", "wrong_type"),
        ("a.jsonl:2", "wrong_type"),
        ("8", "wrong_type"),
    ]
    assert "column 'title' holds int 123" in records[0].detail
    assert records[1].detail.endswith(
        "column 'id' holds float 7.0, not a string or an integer "
        "(or set source.id_column=null to derive ids)"
    )
    assert [id_unknown(r) for r in records] == [False, True, False]  # annotations name 1 and 3
    (tmp_path / "b.jsonl").write_bytes(b"\xff\xfe{}")
    [reject] = Source(path=str(tmp_path / "b.jsonl"), on_error="reject").read()
    assert (reject.id, reject.reason, id_unknown(reject)) == ("b.jsonl", "unreadable", True)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "story-9.txt").write_bytes(b"Monday, 1 May 2017\nGas\n\nCaf\xe9 prices.\n")
    [reject] = Source(path=str(texts), on_error="reject").read()
    assert (reject.id, reject.reason) == ("story-9", "unreadable")


def test_jsonl_records_name_their_own_fields(tmp_path):
    """A JSONL file whose first record had no title (an optional field) was rejected whole as
    one unreadable record, its other records lost; each record is read on its own now, and
    one without the text field is one malformed record naming the field."""
    path = tmp_path / "b.jsonl"
    rows = [{"id": "0", "text": "no title here"}]
    rows += [{"id": str(i), "title": f"T{i}", "text": f"body {i}"} for i in range(1, 4)]
    rows += [{"id": "4", "body": "misnamed"}, {"text": "no id, no title"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    records = list(Source(path=str(path), on_error="reject").read())
    assert [type(r).__name__ for r in records] == ["Article"] * 4 + ["Reject", "Article"]
    assert (records[0].title, records[0].body) == ("", "no title here")
    reject = records[4]
    assert (reject.id, reject.reason) == ("4", "malformed_record")
    assert reject.detail == f"{path}:5: no 'text' field (has: id, body); set source.text_column"
    with pytest.raises(NewsclfError, match=r"b\.jsonl:5: no 'text' field"):
        list(Source(path=str(path), on_error="raise").read())


def test_broken_symlink_in_a_folder_is_counted_not_skipped(tmp_path):
    """A link whose target is gone was left out of the listing (``is_file`` is False for it),
    so the article was lost without a count. It is an input like the others: unreadable."""
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("Monday, 1 May 2017\na\n\nGas prices.\n", encoding="utf-8")
    (texts / "b.txt").symlink_to(tmp_path / "gone.txt")
    source = Source(path=str(texts), on_error="reject")
    assert source.files() == [texts / "a.txt", texts / "b.txt"]
    assert source.count() == 2
    records = list(source.read())
    assert [(r.id, type(r).__name__) for r in records] == [("a", "Article"), ("b", "Reject")]
    assert records[1].reason == "unreadable"
    assert records[1].detail == f"{texts / 'b.txt'}: cannot be read (No such file or directory)"
    gone = r"b\.txt: cannot be read \(No such file or directory\)$"
    with pytest.raises(NewsclfError, match=gone):
        list(Source(path=str(texts)).read())
    before = source.fingerprint()  # the link itself is stat'ed: no traceback
    (tmp_path / "gone.txt").write_text("back\n", encoding="utf-8")
    assert source.fingerprint() != before


def test_file_the_system_will_not_read_is_one_line_or_an_unreadable_record(tmp_path, monkeypatch):
    """An OSError while reading (permissions, a file gone since it was listed) was a traceback.
    Simulated: the tests run as root, whom file permissions do not stop."""
    texts = tmp_path / "texts"
    texts.mkdir()
    for name in ("a", "b", "c"):
        (texts / f"{name}.txt").write_text(f"Monday, 1 May 2017\n{name}\n\nGas prices.\n")
    table = tmp_path / "t.csv"
    table.write_text("id,title,text\n1,t,gas\n", encoding="utf-8")
    real_open, real_read = Path.open, Path.read_bytes

    def refuse(path: Path) -> None:
        if path.name in ("b.txt", "t.csv"):
            raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "open", lambda p, *a, **k: refuse(p) or real_open(p, *a, **k))
    monkeypatch.setattr(Path, "read_bytes", lambda p: refuse(p) or real_read(p))
    records = list(Source(path=str(texts), on_error="reject").read())
    assert [(r.id, type(r).__name__) for r in records] == [
        ("a", "Article"), ("b", "Reject"), ("c", "Article")
    ]  # fmt: skip
    assert records[1].reason == "unreadable"
    assert records[1].detail == f"{texts / 'b.txt'}: cannot be read (Permission denied)"
    with pytest.raises(NewsclfError, match=r"b\.txt: cannot be read \(Permission denied\)$"):
        list(Source(path=str(texts)).read())
    with pytest.raises(NewsclfError, match=r"t\.csv: cannot be read \(Permission denied\)$"):
        list(Source(path=str(table)).read())


def test_a_jsonl_file_warns_of_no_date_only_when_no_record_has_one(tmp_path, caplog):
    def write(name: str, dated: list[bool]) -> None:
        rows = [
            {
                "id": f"{name}{i}",
                "text": f"Gas prices rose {i}.",
                **({"date": "2024-01-02"} if d else {}),
            }
            for i, d in enumerate(dated)
        ]
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    write("first_undated", [False, True, True])  # each record names its own fields
    write("undated", [False] * 3)
    write("long", [False] * 150 + [True])
    messages = {}
    for name in ("first_undated", "undated", "long"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            result = ingest(Source(path=str(tmp_path / name), format="jsonl"), Cleaner())
        messages[name] = [
            r.getMessage() for r in caplog.records if "dates are left empty" in r.getMessage()
        ]
        if name == "first_undated":
            assert [a.date for a in result.articles] == [None, "2024-01-02", "2024-01-02"]
    assert messages["first_undated"] == []  # was: "no date column 'date'" from its first record
    assert len(messages["undated"]) == 1
    assert (
        "a.jsonl: none of its 3 records has a date field 'date' (the first has: id, text)"
        in (messages["undated"][0])
    )
    assert "none of its first 100 records has a date field 'date'" in messages["long"][0]


def test_json_lines_read_as_csv_say_which_format_to_set(tmp_path):
    # the error was the field count of line 2, or every JSON key of line 1 as the "columns"
    path = tmp_path / "crawl.jsonl"
    rows = [{"id": f"a{i}", "title": "T", "text": "Gas prices, rose, again."} for i in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(NewsclfError, match=r"jsonl:1: read as CSV, but this line is a JSON"):
        list(Source(path=str(path), format="csv").read())
    (reject,) = list(Source(path=str(path), format="csv", on_error="reject").read())
    assert reject.reason == "unreadable" and "set source.format=jsonl" in reject.detail
    assert len(list(Source(path=str(path), format="jsonl").read())) == 2


def test_a_missing_date_column_is_one_warning_not_an_error(tmp_path, caplog):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text(
            f"id,title,text,published\n{name},T,Gas prices rose in {name}.,2024-01-01\n",
            encoding="utf-8",
        )
    source = Source(path=str(tmp_path), format="csv", date_column="pubdate")
    with caplog.at_level("WARNING"):
        result = ingest(source, Cleaner())
    assert len(result.articles) == 2 and not any(a.date for a in result.articles)
    warnings = [r.getMessage() for r in caplog.records if "no date column" in r.getMessage()]
    assert len(warnings) == 1 and "'pubdate' (has: id, title, text, published)" in warnings[0]
