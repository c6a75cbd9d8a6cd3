"""The bundled corpus (seeds/): labels complete and valid, minimum counts, no shared spans."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from datetime import date

import pytest
from omegaconf import OmegaConf

from newsclf.articles import Cleaner, parse_txt
from tests.conftest import ROOT, SEEDS

SPAN = 12
SEED_SHA256 = "22da9b349f16c9da7c0251d0cdfc013ee730a8123b3a2ababa1f8e893afa4f14"
RUSSIA_TOPICS = ("diplomacy", "military", "economy", "cyber_disinfo", "human_rights")


def _taxonomy(task: str) -> set[str]:
    return set(OmegaConf.load(ROOT / "configs" / "task" / f"{task}.yaml").labels)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with (SEEDS / "labels.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["article_id", "topic", "stance", "provenance"]
        return list(reader)


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in (SEEDS / "articles").glob("*.txt")}


def test_seed_article_is_verbatim(rows):
    seed = SEEDS / "articles" / "000_31b14feb0c05d0a3.txt"
    digest = hashlib.sha256(seed.read_bytes()).hexdigest()
    assert digest == SEED_SHA256
    original = ROOT.parent / "shared" / "seeds" / seed.name
    if original.exists():  # the workplace copy, where there is one
        assert original.read_bytes() == seed.read_bytes()
    seed_row = next(r for r in rows if r["article_id"] == "000_31b14feb0c05d0a3")
    assert (seed_row["topic"], seed_row["stance"], seed_row["provenance"]) == (
        "diplomacy",
        "anti_russia",
        "seed",
    )


def test_every_file_has_exactly_one_valid_label_row(rows, texts):
    ids = [r["article_id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate rows in labels.csv"
    assert set(ids) == set(texts), "labels.csv and seeds/articles/ differ"
    topics, stances = _taxonomy("topic"), _taxonomy("stance")
    for r in rows:
        assert r["topic"] in topics, r
        assert r["stance"] in stances or (r["stance"] == "" and r["topic"] == "other"), r
        assert r["provenance"] in ("seed", "original"), r


def test_minimum_counts(rows):
    assert len(rows) >= 360
    topic = Counter(r["topic"] for r in rows)
    for t in RUSSIA_TOPICS:
        assert topic[t] >= 45, (t, topic[t])
    assert topic["other"] >= 60
    passing = [r for r in rows if r["topic"] == "other" and r["stance"]]
    assert len(passing) >= 15, "other articles that mention Russia in passing"
    stance = Counter(r["stance"] for r in rows if r["stance"])
    assert stance["anti_russia"] >= 100 and stance["neutral"] >= 80 and stance["pro_russia"] >= 80
    pairs = Counter((r["topic"], r["stance"]) for r in rows if r["topic"] in RUSSIA_TOPICS)
    for t in RUSSIA_TOPICS:
        for s in ("anti_russia", "neutral", "pro_russia"):
            assert pairs[(t, s)] >= 10, (t, s, pairs[(t, s)])


def test_format_length_and_dates(texts):
    cleaner = Cleaner()
    for aid, raw in texts.items():
        article = parse_txt(raw, aid)
        assert article.date, f"{aid}: no date line"
        assert date(2014, 1, 1) <= date.fromisoformat(article.date) <= date(2025, 12, 31), aid
        assert article.title, f"{aid}: no title"
        words = len(cleaner.clean(article)[0].body.split())
        assert 200 <= words <= 900, (aid, words)


def test_some_articles_carry_page_noise(texts):
    cleaner = Cleaner()
    noisy = [a for a, raw in texts.items() if cleaner.clean(parse_txt(raw, a))[1]]
    assert len(noisy) >= len(texts) // 40, f"only {len(noisy)} articles exercise the filter"


def _spans(text: str) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    return {hash(" ".join(words[i : i + SPAN])) for i in range(len(words) - SPAN + 1)}


def test_no_two_articles_share_a_12_word_span(texts):
    owner: dict[int, str] = {}
    clashes = set()
    for aid in sorted(texts):
        for span in _spans(texts[aid]):
            other = owner.setdefault(span, aid)
            if other != aid:
                clashes.add((other, aid))
    assert not clashes, f"articles sharing a {SPAN}-word span: {sorted(clashes)[:10]}"


def test_span_check_catches_a_copy():
    a = "one two three four five six seven eight nine ten eleven twelve thirteen"
    assert _spans(a) & _spans("prefix " + a)
    assert not _spans(a) & _spans(" ".join(reversed(a.split())))
