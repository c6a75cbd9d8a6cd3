"""The cleaner skips ``ftfy.fix_text`` for text (and lines) it cannot change, and skips the rest
of the latin-filler test for English prose: both must give exactly what the full computation
gives."""

from __future__ import annotations

import re
import string
import unicodedata
from unittest import mock

import ftfy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from newsclf import cleaning
from newsclf.articles import Article, parse_txt
from newsclf.cleaning import (
    _BADNESS_WIDTH,
    _LATIN_ENDINGS,
    _WORD,
    FILLER_WORDS,
    LOREM_WORDS,
    Cleaner,
    _fix_text,
    _ftfy_is_noop,
    _has_curly_quotes,
    _is_bad,
    is_latin_filler,
)
from newsclf.table_files import non_ascii_chars
from tests.conftest import SEED_ARTICLE

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# All of ASCII, with the characters ftfy acts on (entities, controls, escapes) made frequent.
ASCII = st.text(st.characters(max_codepoint=0x7F), max_size=80)
PIECES = st.sampled_from(
    [
        *["&amp;", "&lt;", "&#39;", "&#x2019;", "&EACUTE;", "&nbsp", "&", ";", "#", "<", ">"],
        *["\r\n", "\r", "\x1b[36m", "\x1b", "\x0b", "\x0c", "\x7f", "\t", "\n", "\x00"],
        *["\x85", "Ã©", "â€™", "Â£", "ﬁ", "Ｌ", "“", "’", "\u2028", "e\u0301", "é", "£"],
    ]
)
TEXT = st.lists(st.one_of(ASCII, PIECES), max_size=12).map("".join)


class AlwaysFtfyCleaner(Cleaner):
    """The cleaner as it was before the fast path: ftfy.fix_text on every whole text."""

    def normalize(self, text: str) -> str:
        def fix_text(text: str, uncurl: bool) -> str:
            return ftfy.fix_text(text, uncurl_quotes=uncurl)

        with mock.patch.object(cleaning, "_fix_text", fix_text):
            return super().normalize(text)


@SETTINGS
@given(lines=st.lists(TEXT, max_size=6), uncurl=st.booleans())
def test_line_by_line_fix_equals_ftfy_fix_text(lines, uncurl):
    text = "\n".join(lines)
    assert _fix_text(text, uncurl) == ftfy.fix_text(text, uncurl_quotes=uncurl)


def test_html_unescaping_stops_after_the_first_tag_as_in_ftfy():
    text = "ok\n<b>bold</b> caf\u00c3\u00a9\nAT&amp;T \u00c3\u00a9"
    assert _fix_text(text, True) == ftfy.fix_text(text) == "ok\n<b>bold</b> café\nAT&amp;T é"


@SETTINGS
@given(text=TEXT, uncurl=st.booleans())
def test_ftfy_leaves_text_unchanged_when_the_fast_path_skips_it(text, uncurl):
    if _ftfy_is_noop(text):
        assert ftfy.fix_text(text, uncurl_quotes=uncurl) == text


@pytest.mark.parametrize(
    "text",
    ["AT&amp;T", "it&#39;s", "a\r\nb", "a\rb", "\x1b[1mbold\x1b[0m", "bell\x07", "del\x7f", "Â£5"],
)
def test_text_ftfy_changes_is_not_skipped(text):
    assert not _ftfy_is_noop(text)
    assert ftfy.fix_text(text) != text


@SETTINGS
@given(text=TEXT, uncurl=st.booleans(), form=st.sampled_from(["NFKC", "NFC"]))
def test_normalize_equals_always_calling_ftfy(text, uncurl, form):
    fast = Cleaner(straight_quotes=uncurl, unicode_form=form)
    slow = AlwaysFtfyCleaner(straight_quotes=uncurl, unicode_form=form)
    assert fast.normalize(text) == slow.normalize(text)


@SETTINGS
@given(text=TEXT)
def test_uncurling_is_skipped_only_where_it_changes_nothing(text):
    """With fix_text off, quotes are straightened only in text holding a curly one."""
    if not _has_curly_quotes(text):
        assert ftfy.fixes.uncurl_quotes(text) == text
    fast = Cleaner(fix_text=False).normalize(text)
    with mock.patch.object(cleaning, "_has_curly_quotes", lambda _: True):  # as before
        assert fast == Cleaner(fix_text=False).normalize(text)


def test_curly_quotes_are_straightened_without_fix_text():
    assert _has_curly_quotes("“no”, he said") and not _has_curly_quotes("café")
    assert Cleaner(fix_text=False).normalize("“no”, it’s") == '"no", it\'s'


def test_bundled_corpus_cleans_exactly_as_with_ftfy_everywhere():
    folder = SEED_ARTICLE.parent
    articles = [
        parse_txt(p.read_text(encoding="utf-8"), p.stem) for p in sorted(folder.glob("*.txt"))
    ]
    extra = ["Plain ASCII &amp; entity", "Mojibake Â£5m and itâ€™s", "Clean £5m and “quotes”"]
    articles += [Article(f"x{i}", "Title", body) for i, body in enumerate(extra)]
    assert len(articles) > 10
    for article in articles:
        assert Cleaner().clean(article) == AlwaysFtfyCleaner().clean(article)


def _latin_filler_reference(paragraph: str) -> bool:
    words = [w.lower() for w in _WORD.findall(paragraph)][:FILLER_WORDS]
    if len(words) < 6:
        return False
    share = lambda hits: sum(hits) / len(words)  # noqa: E731
    english = share(w in ENGLISH_STOP_WORDS for w in words)
    if share(w in LOREM_WORDS for w in words) >= 0.6 and english < 0.3:
        return True
    return english <= 0.15 and share(w.endswith(_LATIN_ENDINGS) for w in words) >= 0.3


WORDS = st.sampled_from(
    sorted(LOREM_WORDS)[:40] + sorted(ENGLISH_STOP_WORDS)[:40] + ["news", "Minister", "vita", "Ünï"]
)


@SETTINGS
@given(words=st.lists(st.one_of(WORDS, st.text(string.ascii_letters, max_size=8)), max_size=30))
def test_latin_filler_early_exit_matches_the_full_test(words):
    paragraph = " ".join(words)
    assert is_latin_filler(paragraph) == _latin_filler_reference(paragraph)


@SETTINGS
@given(
    words=st.lists(st.one_of(WORDS, st.text(string.ascii_letters, max_size=8)), max_size=250),
    accent=st.booleans(),
)
def test_latin_filler_judges_a_long_paragraph_by_its_first_words(words, accent):
    paragraph = " ".join(words) + (" Ünï" if accent else "")  # both ways of finding words
    assert is_latin_filler(paragraph) == _latin_filler_reference(paragraph)


def test_latin_filler_of_a_long_paragraph_is_its_start():
    lorem = "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor. "
    prose = "The minister said that the talks would resume in the spring of next year. "
    assert is_latin_filler(lorem * 10 + prose * 30)  # 100 filler words, then prose
    assert not is_latin_filler(prose * 8 + lorem * 30)


def test_every_ascii_character_the_fast_path_skips_is_left_alone():
    for char in map(chr, range(128)):
        for text in (char, f"a{char}b", f"&amp{char}", f"&#{char}9;", f"x\n{char}\r"):
            if _ftfy_is_noop(text):
                assert ftfy.fix_text(text) == text, repr(text)


def test_mojibake_check_searches_only_around_non_ascii_characters():
    # None would mean ftfy's regex changed so that a match may be all ASCII: no shortcut then
    assert _BADNESS_WIDTH is not None and _BADNESS_WIDTH < 20


@SETTINGS
@given(text=TEXT)
def test_mojibake_check_equals_ftfys(text):
    assert _is_bad(text) == ftfy.badness.is_bad(text)


@SETTINGS
@given(text=st.text(string.printable + "Ünï£—’\u00a0", max_size=200))
def test_latin_filler_on_punctuated_text_matches_the_full_test(text):
    assert is_latin_filler(text) == _latin_filler_reference(text)


ALL_CHARACTERS = "".join(map(chr, range(0x110000)))


@pytest.mark.parametrize("name", cleaning._FTFY_FIXERS)
def test_each_ftfy_fixer_leaves_text_without_its_characters_alone(name):
    others = cleaning._FTFY_ACTS_ON[name].sub("", ALL_CHARACTERS)
    assert ftfy.FIXERS[name](others) == others
    assert ftfy.FIXERS[name](others[::-1]) == others[::-1]


def test_the_all_fixers_class_is_the_union_of_theirs():
    each = set().union(*(r.findall(ALL_CHARACTERS) for r in cleaning._FTFY_ACTS_ON.values()))
    assert set(cleaning._FTFY_ANY_FIXER.findall(ALL_CHARACTERS)) == each


def test_the_mojibake_repair_step_uses_the_fast_check_and_leaves_ftfy_alone():
    step = cleaning._fix_encoding_step
    assert step.__globals__["is_bad"] is _is_bad
    assert isinstance(step.__globals__["chardata"].ALTERED_UTF8_RE, cleaning._LeadByteSearch)
    assert ftfy._fix_encoding_one_step_and_explain.__globals__["chardata"] is ftfy.chardata
    assert ftfy._fix_encoding_one_step_and_explain.__globals__["is_bad"] is ftfy.badness.is_bad
    for text in ("Â£5m and itâ€™s", "café", "plain", "Ã©tÃ©\nnaÃ¯ve"):
        assert cleaning._fix_encoding(text) == ftfy.fix_encoding(text)


# Any character at all, lone surrogates (from undecodable input) included, in short runs.
ANY_TEXT = st.text(
    st.one_of(st.characters(max_codepoint=0x7F), st.characters(blacklist_categories=())),
    max_size=60,
)


@SETTINGS
@given(text=ANY_TEXT)
def test_non_ascii_helpers_equal_the_regexes_they_replace(text):
    assert non_ascii_chars(text) == "".join(re.findall(r"[^\x00-\x7f]", text))
    expected_word = re.search(r"[^\W\x00-\x7f]", text) is not None
    assert cleaning.has_non_ascii_word_char(text) == expected_word
    runs = [m.span() for m in re.finditer(r"[^\x00-\x7f]+", text)]
    assert list(cleaning.non_ascii_runs(text)) == runs


def test_non_ascii_helpers_on_surrogates_words_and_runs_at_the_ends():
    assert non_ascii_chars("a\udcff b£") == "\udcff£"
    assert cleaning.has_non_ascii_word_char("£ — \udcff") is False
    assert cleaning.has_non_ascii_word_char("ab £ é") is True
    assert list(cleaning.non_ascii_runs("Â£5 ££")) == [(0, 2), (4, 6)]
    assert list(cleaning.non_ascii_runs("plain")) == []


def test_every_whitespace_character_but_space_is_unprintable():
    # what lets _collapse_spaces return a printable line without single spaces doubled as is
    spaces = [c for c in ALL_CHARACTERS if c.isspace()]
    assert " " in spaces and len(spaces) > 20
    assert all(not c.isprintable() for c in spaces if c != " ")


def test_printable_equals_isprintable_for_every_character():
    for c in ALL_CHARACTERS:
        assert cleaning._printable(f"ab{c}") == f"ab{c}".isprintable(), hex(ord(c))


@SETTINGS
@given(text=st.text(st.sampled_from(" ab\t\n\xa0\u2028\u3000\x1c\x7f\u200b.é"), max_size=30))
def test_collapse_spaces_equals_split_and_join(text):
    assert cleaning._collapse_spaces(text) == " ".join(text.split())


ALTERED = ftfy.chardata.ALTERED_UTF8_RE
BYTES = st.lists(
    st.one_of(st.binary(max_size=4), st.sampled_from([b" ", b"\xc2", b"\xe2", b"\xf0", b"\x80"])),
    max_size=20,
).map(b"".join)


@SETTINGS
@given(data=BYTES)
def test_lead_byte_search_finds_what_the_regex_search_finds(data):
    leads = cleaning._lead_bytes(ALTERED)
    assert leads is not None
    fast = cleaning._LeadByteSearch(ALTERED, leads).search(data)
    slow = ALTERED.search(data)
    assert (fast and fast.span()) == (slow and slow.span())


def test_lead_bytes_of_patterns_with_and_without_a_class_first():
    assert cleaning._lead_bytes(re.compile(b"[a-c]x|dy")) == b"abcd"
    assert cleaning._lead_bytes(re.compile(b"a*b")) is None
    assert cleaning._lead_bytes(re.compile(b"x|.y")) is None


@SETTINGS
@given(
    text=st.lists(
        st.one_of(ASCII, PIECES, st.sampled_from(["Ã ", "â€ ", "Â ", "ð\u009f\u0098 ", "Ã\xa0"])),
        max_size=12,
    ).map("".join)
)
def test_mojibake_repair_equals_ftfys_fix_encoding(text):
    assert cleaning._fix_encoding(text) == ftfy.fix_encoding(text)


@SETTINGS
@given(text=ASCII)
def test_ascii_control_check_by_byte_translation_equals_the_regex(text):
    found = bool(text.encode("ascii").translate(None, cleaning._NOT_FTFY_CONTROLS))
    assert found == (cleaning._FTFY_ASCII_CONTROLS.search(text) is not None)


@SETTINGS
@given(text=st.one_of(ANY_TEXT, TEXT))
def test_any_fixer_check_by_byte_translation_equals_the_regex(text):
    expected = cleaning._FTFY_ANY_FIXER.search(text) is not None
    assert cleaning._any_fixer_acts_on(text) == expected


@SETTINGS
@given(text=st.one_of(ANY_TEXT, st.text(st.sampled_from("ab\x1a\n£Â€é\ufffd\x81"), max_size=20)))
def test_possible_encoding_of_the_non_ascii_characters_equals_ftfys(text):
    for encoding in ftfy.chardata.ENCODING_REGEXES:
        expected = ftfy.chardata.possible_encoding(text, encoding)
        assert cleaning._possible_encoding(text, encoding) == expected, encoding


def test_the_mojibake_repair_step_checks_encodings_by_the_non_ascii_characters():
    chardata = cleaning._fix_encoding_step.__globals__["chardata"]
    assert chardata.possible_encoding is cleaning._possible_encoding
    assert ftfy.chardata.possible_encoding is not cleaning._possible_encoding


@SETTINGS
@given(
    words=st.lists(
        st.one_of(WORDS, st.text(string.ascii_letters, min_size=8, max_size=30)), max_size=150
    ),
    accent=st.sampled_from(["", " Ünï", "£ "]),
)
def test_latin_filler_of_long_words_past_the_prefix_matches_the_full_test(words, accent):
    # long words: the first words run on beyond the prefix read first, which then holds fewer
    paragraph = accent + " ".join(words)
    assert is_latin_filler(paragraph) == _latin_filler_reference(paragraph)


@SETTINGS
@given(text=st.text(st.sampled_from("ab \n\x7f\x80\xa0£Âé\xff"), max_size=40))
def test_non_ascii_runs_of_latin_1_text_equal_the_regexs(text):
    runs = [m.span() for m in re.finditer(r"[^\x00-\x7f]+", text)]
    assert list(cleaning.non_ascii_runs(text)) == runs


def _split_and_joined(text: str) -> str:
    """What Cleaner.normalize's paragraph and line splits make of a normalised text."""
    paragraphs = re.split(r"\n\s*\n", text)
    lines = (
        "\n".join(line for line in map(cleaning._collapse_spaces, p.split("\n")) if line)
        for p in paragraphs
    )
    return "\n\n".join(p for p in lines if p)


@SETTINGS
@given(text=st.one_of(TEXT, st.text(st.sampled_from(" a\t\xa0\u2028\x0b\x0c\x1c.é"), max_size=30)))
def test_normalize_of_one_line_equals_the_paragraph_and_line_splits(text):
    text = text.replace("\n", " ").replace("\r", " ")  # one line
    cleaner = Cleaner(fix_text=False, straight_quotes=False)
    expected = _split_and_joined(unicodedata.normalize("NFKC", text))
    assert cleaner.normalize(text) == expected
