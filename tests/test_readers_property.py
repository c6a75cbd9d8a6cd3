"""Property-based tests of the article parser and the readers: arbitrary Unicode text, random
line structures and line ends, random CSV quoting. Whatever is written is read back."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsclf.articles import Article, Source, content_id, parse_txt

# NUL marks a binary file (rejected by design); everything else of Unicode may appear.
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
LINE = TEXT.map(lambda s: s.replace("\n", " ").replace("\r", " "))
EOL = st.sampled_from(["\n", "\r\n", "\r"])
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _read(path: Path, **options) -> list:
    return list(Source(path=str(path), **options).read())


@SETTINGS
@given(
    title=LINE.map(str.strip).filter(bool),
    body=st.lists(LINE, max_size=6),
    eol=EOL,
    blank_lines=st.integers(0, 3),
)
def test_parse_txt_recovers_date_title_and_body(title, body, eol, blank_lines):
    raw = eol.join(["Monday, 1 May 2023", *[""] * blank_lines, title, *body])
    article = parse_txt(raw, "x")
    assert article.date == "2023-05-01"
    assert article.title == title
    assert article.body == "\n".join(body)


@SETTINGS
@given(raw=TEXT)
def test_parse_txt_never_fails_and_loses_no_text(raw):
    article = parse_txt(raw, "x")
    normalised = raw.replace("\r\n", "\n").replace("\r", "\n")
    assert article.body in normalised
    assert article.title in normalised


@SETTINGS
@given(
    rows=st.lists(st.tuples(LINE, TEXT), min_size=1, max_size=8),
    eol=st.sampled_from(["\n", "\r\n"]),
    blank=st.lists(st.booleans(), min_size=8, max_size=8),
    ascii_only=st.booleans(),
)
def test_jsonl_round_trip(rows, eol, blank, ascii_only):
    lines = []
    for i, (title, text) in enumerate(rows):
        lines.append(
            json.dumps({"id": f"r{i}", "title": title, "text": text}, ensure_ascii=ascii_only)
        )
        if blank[i]:
            lines.append("   ")  # blank lines between records are not records
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.jsonl"
        path.write_text(eol.join(lines) + eol, encoding="utf-8", newline="")
        articles = _read(path)
    assert [(a.id, a.title, a.body) for a in articles] == [
        (f"r{i}", title.strip(), text) for i, (title, text) in enumerate(rows)
    ]


@SETTINGS
@given(
    rows=st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=8),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    eol=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
)
def test_csv_round_trip_with_any_quoting(rows, quoting, eol, bom):
    if quoting == csv.QUOTE_MINIMAL:
        # Python's writer leaves a lone CR unquoted when lines end in LF alone: a CSV no
        # reader can read back, so minimal quoting is written with CRLF (as RFC 4180 says).
        eol = "\r\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=quoting, lineterminator=eol)
    writer.writerow(["id", "title", "text"])
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.csv"
        path.write_bytes((("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8"))
        records = _read(path)
    assert all(isinstance(r, Article) for r in records)
    expected = [(i.strip() or content_id(t, x), t.strip(), x) for i, t, x in rows]
    assert [(a.id, a.title, a.body) for a in records] == expected


@SETTINGS
@given(texts=st.lists(TEXT, min_size=1, max_size=20), skip=st.integers(0, 25))
def test_skip_drops_exactly_the_first_records(texts, skip):
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.parquet"
        pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_parquet(path)
        everything = _read(path, title_column=None)
        rest = list(Source(path=str(path), title_column=None).read(skip=skip))
    assert [a.body for a in everything] == texts
    assert rest == everything[skip:]
