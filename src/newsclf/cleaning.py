"""Clean articles: repair mojibake, normalise Unicode, quotes and whitespace, and drop
boilerplate paragraphs (share prompts, bylines, lorem-ipsum filler), each removal reported.

The ``Cleaner`` is what ``clean=...`` configures, for the dataset build, training and batch
prediction alike. The fast paths below skip ftfy's work where a cheap check shows it would
change nothing; they give ftfy's results exactly.
"""

from __future__ import annotations

import functools
import itertools
import re
import types
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

import ftfy
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from newsclf.articles import Article
from newsclf.errors import NewsclfError
from newsclf.table_files import ASCII_BYTES, non_ascii_chars


@dataclass(frozen=True)
class Removal:
    """A paragraph the boilerplate filter removed, kept for the report."""

    article_id: str
    rule: str
    text: str


UNICODE_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def _check_count(name: str, value: object) -> None:
    """A Cleaner setting that must be a whole number >= 0 (a config typo is a one-line error)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NewsclfError(f"{name}: {value!r} is not a whole number")
    if value < 0:
        raise NewsclfError(f"{name}: {value} must be at least 0")


class Cleaner:
    """Normalise Unicode, quotes and whitespace; drop boilerplate paragraphs and report them.

    ``boilerplate`` maps a rule name to a regex that must match a whole (short) paragraph,
    case-insensitively; ``latin_filler`` drops lorem-ipsum style paragraphs. ``max_chars``
    truncates very long texts (the truncation is reported as a removal).
    """

    def __init__(
        self,
        unicode_form: str = "NFKC",
        fix_text: bool = True,
        straight_quotes: bool = True,
        boilerplate: Mapping[str, str] | None = None,
        latin_filler: bool = True,
        max_paragraph_words: int = 60,
        max_chars: int | None = None,
    ) -> None:
        # checked here, not by the first article cleaned: a bad setting fails before any work
        if unicode_form not in UNICODE_FORMS:
            raise NewsclfError(
                f"clean.unicode_form: {unicode_form!r} is not one of {', '.join(UNICODE_FORMS)}"
            )
        _check_count("clean.max_paragraph_words", max_paragraph_words)
        if max_chars is not None:
            _check_count("clean.max_chars", max_chars)
        self.unicode_form = unicode_form
        self.fix_text = fix_text
        self.straight_quotes = straight_quotes
        self.boilerplate = dict(DEFAULT_BOILERPLATE if boilerplate is None else boilerplate)
        self.latin_filler = latin_filler
        self.max_paragraph_words = max_paragraph_words
        self.max_chars = max_chars
        try:
            self._rules = {
                name: re.compile(rf"\s*(?:{rx})\s*", re.IGNORECASE | re.DOTALL)
                for name, rx in self.boilerplate.items()
            }
        except re.error as exc:
            raise NewsclfError(f"clean.boilerplate: invalid regex ({exc})") from None

    def normalize(self, text: str) -> str:
        """Fix mojibake, normalise Unicode and quotes, collapse whitespace within lines.

        Paragraphs stay separated by a blank line and lines within a paragraph by a newline,
        so the boilerplate filter can look at page-furniture lines one by one.
        """
        if not text:  # an article without a title: nothing to fix
            return text
        if self.fix_text:
            text = _fix_text(text, self.straight_quotes)
        elif self.straight_quotes and _has_curly_quotes(text):
            text = ftfy.fixes.uncurl_quotes(text)
        text = unicodedata.normalize(self.unicode_form, text)
        if "\r" in text:  # found by memchr; the replacements search for two characters
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:  # one line: what the paragraph and line splits below make of it
            return _collapse_spaces(text)
        paragraphs = re.split(r"\n\s*\n", text)
        lines = (
            "\n".join(line for line in map(_collapse_spaces, p.split("\n")) if line)
            for p in paragraphs
        )
        return "\n\n".join(p for p in lines if p)

    def rule_for(self, paragraph: str) -> str | None:
        """The name of the boilerplate rule a paragraph matches, if any."""
        if self.latin_filler and is_latin_filler(paragraph):
            return "latin_filler"
        # at most max_paragraph_words + 1 pieces: a long paragraph is not split whole
        if len(paragraph.split(maxsplit=self.max_paragraph_words)) <= self.max_paragraph_words:
            for name, rule in self._rules.items():
                if rule.fullmatch(paragraph):
                    return name
        return None

    def clean(self, article: Article) -> tuple[Article, list[Removal]]:
        """The article with normalised text and without boilerplate, and what was removed.

        A paragraph is dropped whole when it matches a rule; otherwise its matching lines are
        dropped (scraped pages often glue furniture lines into one block) and the rest joined.
        """
        title = " ".join(self.normalize(article.title).split())
        kept, removed = [], []
        for paragraph in self.normalize(article.body).split("\n\n"):
            rule = self.rule_for(paragraph.replace("\n", " "))
            if rule:
                removed.append(Removal(article.id, rule, paragraph))
                continue
            lines = []
            for line in paragraph.split("\n"):
                if not line.strip():  # nothing there: neither text nor boilerplate
                    continue
                rule = self.rule_for(line) if "\n" in paragraph else None
                if rule is None and not _HAS_TEXT.search(line):
                    rule = "no_text"  # separators such as "━━━━" or "* * *"
                if rule:
                    removed.append(Removal(article.id, rule, line))
                else:
                    lines.append(line)
            if lines:
                kept.append(" ".join(lines))
        body = "\n\n".join(kept)
        if self.max_chars and len(body) > self.max_chars:
            removed.append(Removal(article.id, "truncated", f"{len(body) - self.max_chars} chars"))
            body = body[: self.max_chars]
        return replace(article, title=title, body=body), removed


# ------------------------------------------------------------ boilerplate and filler

# Words of the "lorem ipsum" filler family; a paragraph made mostly of them is page noise.
LOREM_WORDS = frozenset(
    """a ac accumsan adipiscing aenean aliquam aliquet amet ante aptent arcu at auctor augue
    bibendum blandit class commodo condimentum congue consectetur consequat conubia convallis
    cras cubilia curabitur curae cursus dapibus diam dictum dictumst dignissim dis dolor donec
    dui duis efficitur egestas eget eleifend elementum elit enim erat eros est et etiam eu
    euismod ex facilisi facilisis fames faucibus felis fermentum feugiat finibus fringilla fusce
    gravida habitant habitasse hac hendrerit himenaeos iaculis id imperdiet in inceptos integer
    interdum ipsum justo lacinia lacus laoreet lectus leo libero ligula litora lobortis lorem
    luctus maecenas magna magnis malesuada massa mattis mauris maximus metus mi molestie mollis
    montes morbi mus nam nascetur natoque nec neque netus nibh nisi nisl non nostra nulla nullam
    nunc odio orci ornare parturient pellentesque penatibus per pharetra phasellus placerat
    platea porta porttitor posuere potenti praesent pretium primis proin pulvinar purus quam
    quis quisque rhoncus ridiculus risus rutrum sagittis sapien scelerisque sed sem semper
    senectus sit sociosqu sodales sollicitudin suscipit suspendisse taciti tellus tempor tempus
    tincidunt torquent tortor tristique turpis ullamcorper ultrices ultricies urna ut varius
    vehicula vel velit venenatis vestibulum vitae vivamus viverra volutpat vulputate""".split()
)
_LATIN_ENDINGS = (
    "a",
    "o",
    "i",
    "us",
    "um",
    "is",
    "ae",
    "que",
    "it",
    "ur",
    "em",
    "am",
    "ent",
    "unt",
    "at",
    "ant",
    "ex",
    "ix",
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
FILLER_WORDS = 100  # is_latin_filler judges a paragraph by this many words
_NON_ASCII_WORD_CHAR = re.compile(r"[^\W\x00-\x7f]")
_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")
_ASCII_CHAR = re.compile(r"[\x00-\x7f]")
_HIGH_TO_MARK = bytes(b if b < 0x80 else 0x80 for b in range(256))  # non-ASCII bytes to 0x80


def has_non_ascii_word_char(text: str) -> bool:
    """``_NON_ASCII_WORD_CHAR.search(text) is not None``, searching only the non-ASCII
    characters (whether a character is a word character does not depend on its neighbours)."""
    return not text.isascii() and _NON_ASCII_WORD_CHAR.search(non_ascii_chars(text)) is not None


def non_ascii_runs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each maximal run of non-ASCII characters, as ``finditer`` of
    ``[^\x00-\x7f]+`` gives them: Python's regex engine scans for a single character class
    three times faster than for a repeated one, so each run is found by two such scans, its
    start, in a Latin-1 text (one byte a character), by memchr instead."""
    try:
        marked = text.encode("latin-1").translate(_HIGH_TO_MARK)
    except UnicodeEncodeError:
        marked = None
    pos = 0
    while True:
        if marked is not None:
            start = marked.find(0x80, pos)
            if start < 0:
                return
        elif (found := _NON_ASCII_CHAR.search(text, pos)) is not None:
            start = found.start()
        else:
            return
        after = _ASCII_CHAR.search(text, start)
        pos = len(text) if after is None else after.start()
        yield start, pos


# ASCII letters to lower case, every other byte to a space: a split then gives the [A-Za-z] runs
_LOWER_LETTERS = bytes(b + 32 if 65 <= b <= 90 else b if 97 <= b <= 122 else 32 for b in range(256))
_STOP_WORDS_BYTES = frozenset(w.encode("ascii") for w in ENGLISH_STOP_WORDS)
_HAS_TEXT = re.compile(r"[^\W_]", re.UNICODE)

_LINK_NOUNS = "articles?|stories|content|coverage|links|posts|reading|topics"  # "Related ..."
DEFAULT_BOILERPLATE = {
    "share_prompt": r"(share|tweet|email|print)( this( article| story| page)?)?\b"
    r"[\s:|·\-]*((facebook|twitter|x|email|e-mail|print|linkedin|whatsapp|telegram|reddit|"
    r"copy link)\b[\s|·,]*)*",
    "newsletter": r".{0,80}\b(sign up|subscribe)\b.{0,120}\b(newsletter|inbox|briefing)\b.{0,80}",
    "advertisement": r"(advertisement|advert|sponsored( content)?|ad)\W*",
    # "Related:" or "Related stories", never a sentence that opens with the word "Related"
    "related_links": rf"(related(\s+({_LINK_NOUNS}|news))?\s*[:|»›>–—-]|related\s+({_LINK_NOUNS})\b"
    r"|read more\b|see also\b|more on this story\b|most read\b).{0,160}",
    "cookie_notice": r".{0,80}\b(cookies?)\b.{0,160}\b(accept|consent|policy|settings)\b.{0,80}",
    # a copyright line, never a sentence about copyright ("Copyright lawsuits grew ...")
    "copyright": r"(©|\(c\)|copyright\s*(©|\(c\)|\d{4}\b)).{0,120}"
    r"|.{0,120}\ball rights reserved\b.{0,40}",
}


def dropped_defaults(boilerplate: Mapping[str, str] | None) -> list[str]:
    """The default rules a configured rule set leaves out: ``clean.boilerplate`` replaces them
    all, and ``+clean.boilerplate.promo=...`` reads as adding one rule (an empty set, the
    filter turned off, is deliberate and drops nothing worth saying)."""
    if not boilerplate:
        return []
    return [name for name in DEFAULT_BOILERPLATE if name not in boilerplate]


def is_latin_filler(paragraph: str) -> bool:
    """True for a paragraph of lorem-ipsum style filler (or other non-English filler).

    Real lorem-ipsum words, or Latin-looking words with almost no English function words,
    judged by the paragraph's first ``FILLER_WORDS`` words: filler is filler from its start,
    and a long paragraph (a whole article without paragraph breaks) costs no more than a short
    one.
    """
    words, stop_words = _filler_words(paragraph)
    if len(words) < 6:
        return False
    share = lambda hits: sum(hits) / len(words)  # noqa: E731
    english = share(map(stop_words.__contains__, words))
    if english >= 0.3:  # ordinary prose cannot pass either test below
        return False
    if stop_words is _STOP_WORDS_BYTES:  # rare: filler-like text, decided on str words
        words = [w.decode("ascii") for w in words]
    if share(map(LOREM_WORDS.__contains__, words)) >= 0.6:
        return True
    return english <= 0.15 and share(w.endswith(_LATIN_ENDINGS) for w in words) >= 0.3


# Characters of a paragraph's start that hold its first FILLER_WORDS words in ordinary text
_FILLER_PREFIX = 12 * FILLER_WORDS


def _filler_words(paragraph: str) -> tuple[list, frozenset]:
    """The first ``FILLER_WORDS`` words of a paragraph, lower case, and the stop words to
    look them up in (bytes or str, as the words are). Found in the paragraph's first
    ``_FILLER_PREFIX`` characters when those hold more words: all but the last of them are
    whole words (only the last can run on beyond the cut), so a long paragraph costs no more
    than a short one."""
    if len(paragraph) > _FILLER_PREFIX:
        words, stop_words = _first_words(paragraph[:_FILLER_PREFIX], FILLER_WORDS + 1)
        if len(words) > FILLER_WORDS:
            return words[:FILLER_WORDS], stop_words
    return _first_words(paragraph, FILLER_WORDS)


def _first_words(text: str, n: int) -> tuple[list, frozenset]:
    """At most ``n`` first words (runs of letters) of ``text``, lower case, with their stop
    words."""
    if not has_non_ascii_word_char(text):
        # The same words, found faster: the word characters are all ASCII, so the words are
        # the runs of [A-Za-z], which a byte translation and split find (as bytes)
        data = text.encode("utf-8").translate(_LOWER_LETTERS)
        return data.split(None, n)[:n], _STOP_WORDS_BYTES  # the last item: the rest
    found = itertools.islice(_WORD.finditer(text), n)
    return [m.group().lower() for m in found], ENGLISH_STOP_WORDS


# -------------------------------------------------- mojibake: ftfy's results, with less work

# ASCII text that ``ftfy.fix_text`` provably returns unchanged lacks all of these: its fixes
# for ASCII are HTML entities (``&amp;``; only entities ending in ";" are decoded), terminal
# escapes and control characters (C0 but tab, newline, form feed; DEL) and "\r" line breaks.
# Every other fix (mojibake, C1 controls, ligatures, width, curly quotes, surrogates, Unicode
# normalisation) needs a non-ASCII character. tests/test_clean_fast_path.py checks it against ftfy.
# (Two regexes: a character class alone is searched several times faster than an alternation.)
_FTFY_ASCII_CONTROLS = re.compile(r"[\x00-\x08\x0b\r\x0e-\x1f\x7f]")
# ASCII bytes that are not such controls: deleting them leaves the controls (a byte
# translation, several times faster than the regex's search of a whole article)
_NOT_FTFY_CONTROLS = bytes(b for b in range(0x80) if not _FTFY_ASCII_CONTROLS.match(chr(b)))
_FTFY_ASCII_ENTITIES = re.compile(r"&#?[0-9A-Za-z]{1,24};")


def _ftfy_is_noop(text: str) -> bool:
    """True when ``ftfy.fix_text`` cannot change ``text`` (whatever its options), so the call
    can be skipped: ftfy costs milliseconds per article, this check microseconds."""
    return (
        text.isascii()
        and not text.encode("ascii").translate(None, _NOT_FTFY_CONTROLS)
        and ("&" not in text or _FTFY_ASCII_ENTITIES.search(text) is None)
    )


def _has_curly_quotes(text: str) -> bool:
    """Whether ``ftfy.fixes.uncurl_quotes`` can change ``text`` (its quotes are not ASCII)."""
    return not text.isascii() and _FTFY_ACTS_ON["uncurl_quotes"].search(text) is not None


def _fix_text(text: str, uncurl_quotes: bool) -> str:
    """``ftfy.fix_text(text, uncurl_quotes=...)``, skipping the lines it cannot change.

    ftfy fixes a text in independent segments ending at newlines; this is its loop (with its
    rule that a "<" turns HTML unescaping off for the rest of the text), so an article with
    mojibake in one paragraph does not pay for the others.
    """
    if _ftfy_is_noop(text):
        return text
    config = ftfy.TextFixerConfig(explain=False, uncurl_quotes=uncurl_quotes)
    out, pos = [], 0
    while pos < len(text):
        end = min(text.find("\n", pos) + 1 or len(text), pos + config.max_decode_length)
        segment = text[pos:end]
        if config.unescape_html == "auto" and "<" in segment:
            config = config._replace(unescape_html=False)
        if not _ftfy_is_noop(segment):
            segment = _fix_segment(segment, config)
        out.append(segment)
        pos = end
    return "".join(out)


# ftfy.fix_and_explain's fixers after fix_encoding, in its order (ftfy 6), each with the
# characters it acts on: a fixer returns text holding none of them unchanged. Each of them scans
# the whole text (three are str.translate, a dictionary lookup per character), so they run only
# when a regex character class finds one of their characters, and none runs when one class of
# all their characters finds nothing. tests/test_clean_fast_path.py checks the classes.
def _char_class(table: Iterable[int]) -> str:
    return "".join(re.escape(chr(c)) for c in sorted(table))


_FTFY_TRIGGERS = {
    "fix_c1_controls": "\x80-\x9f",  # chardata.C1_CONTROL_RE
    "fix_latin_ligatures": _char_class(ftfy.fixes.LIGATURES),
    "fix_character_width": _char_class(ftfy.fixes.WIDTH_MAP),
    "uncurl_quotes": "\u02bc\u2018-\u201f",  # chardata.SINGLE_QUOTE_RE, DOUBLE_QUOTE_RE
    "fix_line_breaks": "\r\u2028\u2029\x85",
    "fix_surrogates": "\ud800-\udfff",  # fixes.SURROGATE_RE
    "remove_terminal_escapes": "\x1b",  # fixes.ANSI_RE starts with it
    "remove_control_chars": _char_class(ftfy.fixes.CONTROL_CHARS),
}
_FTFY_FIXERS = tuple(_FTFY_TRIGGERS)
_FTFY_ACTS_ON = {name: re.compile(f"[{chars}]") for name, chars in _FTFY_TRIGGERS.items()}
_FTFY_ANY_FIXER = re.compile("[" + "".join(_FTFY_TRIGGERS.values()) + "]")
# ASCII bytes no fixer acts on, and the non-ASCII bytes
_NO_FIXER_ASCII = bytes(b for b in range(0x80) if not _FTFY_ANY_FIXER.match(chr(b)))
_HIGH_BYTES = bytes(range(0x80, 0x100))


# _fix_segment's last round checks the text its previous round ended with again
@functools.lru_cache(maxsize=8)
def _any_fixer_acts_on(text: str) -> bool:
    """``_FTFY_ANY_FIXER.search(text) is not None``, found faster: deleting the ASCII bytes
    no fixer acts on from the text's UTF-8 leaves the ASCII ones a fixer acts on (any at all
    decides) and the non-ASCII characters whole, a short string for the regex."""
    rest = text.encode("utf-8", "surrogatepass").translate(None, _NO_FIXER_ASCII)
    if rest.translate(None, _HIGH_BYTES):
        return True
    return _FTFY_ANY_FIXER.search(rest.decode("utf-8", "surrogatepass")) is not None


def _badness_window() -> int | None:
    """The longest match of ftfy's mojibake regex, if every match of it must contain a
    non-ASCII character (else None: no shortcut). Then a search around the text's non-ASCII
    characters finds a match exactly when a search of the whole text does."""
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    from ftfy.badness import BADNESS_RE

    parsed = sre_parse.parse(BADNESS_RE.pattern, BADNESS_RE.flags)
    if len(parsed.data) != 1 or parsed.data[0][0] != sre_parse.BRANCH:
        return None

    def non_ascii(op: object, arg: object) -> bool:
        if op == sre_parse.LITERAL:
            return arg > 0x7F
        if op == sre_parse.IN:
            return all(
                (o == sre_parse.LITERAL and a > 0x7F) or (o == sre_parse.RANGE and a[0] > 0x7F)
                for o, a in arg
            )
        return False

    for branch in parsed.data[0][1][1]:
        if not any(non_ascii(op, arg) for op, arg in branch.data):
            return None
    return parsed.getwidth()[1]


_BADNESS_WIDTH = _badness_window()


# A repaired text is checked again by the same fix_encoding loop and by the next round of
# _fix_segment's loop (the same string twice, at tens of microseconds a check): the last few
# answers are kept (a hit costs a string comparison).
@functools.lru_cache(maxsize=8)
def _is_bad(text: str) -> bool:
    """``ftfy.badness.is_bad(text)``, searching only around non-ASCII characters: ftfy's
    regex scans the whole text at a millisecond per article; every match it can make holds a
    non-ASCII character and spans at most ``_BADNESS_WIDTH`` characters."""
    from ftfy.badness import BADNESS_RE

    if _BADNESS_WIDTH is None:
        return ftfy.badness.is_bad(text)
    reach = _BADNESS_WIDTH - 1
    for start, end in non_ascii_runs(text):
        if BADNESS_RE.search(text, max(start - reach, 0), end + reach):
            return True
    return False


_FTFY_DEFAULTS = ftfy.TextFixerConfig()


def _lead_bytes(pattern: re.Pattern) -> bytes | None:
    """The bytes every match of a bytes regex starts with, when each of its branches starts
    with a class of single bytes (else None)."""
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    if pattern.flags & re.IGNORECASE or len(parsed.data) != 1:
        return None
    op, arg = parsed.data[0]
    branches = arg[1] if op == sre_parse.BRANCH else [parsed]
    leads: set[int] = set()
    for branch in branches:
        if not branch.data:
            return None
        first_op, first_arg = branch.data[0]
        items = [(first_op, first_arg)] if first_op == sre_parse.LITERAL else first_arg
        if first_op not in (sre_parse.LITERAL, sre_parse.IN):
            return None
        for item_op, item_arg in items:
            if item_op == sre_parse.LITERAL:
                leads.add(item_arg)
            elif item_op == sre_parse.RANGE:
                leads.update(range(item_arg[0], item_arg[1] + 1))
            else:
                return None
    return bytes(sorted(leads))


class _LeadByteSearch:
    """``pattern.search(data)`` for a bytes regex whose matches all start with one of
    ``leads``: a match is tried only where such a byte is, leftmost first (a regex of
    alternatives is searched a position at a time, ten times slower). The lead bytes present
    are found by one byte deletion and their places by ``bytes.find`` (memchr): mojibake's
    lead bytes are few in a text, where a scan for a class of them took 15 us a BBC article."""

    def __init__(self, pattern: re.Pattern, leads: bytes) -> None:
        self.pattern = pattern
        self.not_leads = bytes(b for b in range(256) if b not in leads)

    def search(self, data: bytes) -> re.Match | None:
        for at in self._lead_positions(data):
            if (found := self.pattern.match(data, at)) is not None:
                return found
        return None

    def _lead_positions(self, data: bytes) -> list[int]:
        """Where a lead byte is in ``data``, in order."""
        positions = []
        for lead in set(data.translate(None, self.not_leads)):
            at = data.find(lead)
            while at >= 0:
                positions.append(at)
                at = data.find(lead, at + 1)
        return sorted(positions)


def _fast_fix_encoding_step() -> Callable | None:
    """One step of ftfy.fix_encoding (private in ftfy 6; without it, the public function is
    used), as a copy whose mojibake check is ``_is_bad``: ftfy's own ``is_bad`` scans the whole
    text again, which costs as much as the repair. Its search of the encoded text for a
    byte 0xA0 turned into a space (``chardata.ALTERED_UTF8_RE``) looks only where such a
    sequence can start. ftfy itself is left as it is."""
    step = getattr(ftfy, "_fix_encoding_one_step_and_explain", None)
    if step is None or step.__globals__.get("is_bad") is not ftfy.badness.is_bad:
        return step
    namespace = {**step.__globals__, "is_bad": _is_bad}
    chardata = step.__globals__.get("chardata")
    faster = {}
    altered = getattr(chardata, "ALTERED_UTF8_RE", None)
    leads = _lead_bytes(altered) if isinstance(altered, re.Pattern) else None
    if leads is not None:
        faster["ALTERED_UTF8_RE"] = _LeadByteSearch(altered, leads)
    if _encoding_regexes_take_all_ascii(chardata):
        faster["possible_encoding"] = _possible_encoding
    if faster:
        namespace["chardata"] = types.SimpleNamespace(**{**vars(chardata), **faster})
    return types.FunctionType(step.__code__, namespace, step.__name__, step.__defaults__)


def _encoding_regexes_take_all_ascii(chardata: object) -> bool:
    """Whether ftfy's ``possible_encoding`` is a regex ``^[...]*$`` per encoding that takes
    every ASCII character but ``\x1a`` (which sloppy encodings read as U+FFFD), the ASCII
    one's taking nothing else."""
    regexes = getattr(chardata, "ENCODING_REGEXES", None)
    if not isinstance(regexes, dict) or not callable(getattr(chardata, "possible_encoding", None)):
        return False
    if getattr(regexes.get("ascii"), "pattern", None) != "^[\x00-\x7f]*$":
        return False
    ascii_but_sub = "".join(chr(c) for c in range(0x80) if c != 0x1A)
    return all(
        isinstance(rx, re.Pattern)
        and rx.pattern.startswith("^[")
        and rx.pattern.endswith("]*$")
        and rx.match(ascii_but_sub) is not None
        for rx in regexes.values()
    )


def _possible_encoding(text: str, encoding: str) -> bool:
    """``ftfy.chardata.possible_encoding(text, encoding)``: whether every character of the
    text is one the encoding's regex takes, checked for the characters it may not take only
    (its non-ASCII ones and ``\x1a``): ftfy's regex matches the whole text, several times a
    repair step."""
    if encoding == "ascii":  # its regex: [\x00-\x7f]*
        return text.isascii()
    return ftfy.chardata.possible_encoding(_not_always_encodable(text), encoding)


# a repair step checks one text against several encodings
@functools.lru_cache(maxsize=4)
def _not_always_encodable(text: str) -> str:
    """The characters of ``text`` that an encoding's regex may not take: its non-ASCII ones
    and ``\x1a``."""
    return non_ascii_chars(text) + ("\x1a" if "\x1a" in text else "")


_fix_encoding_step = _fast_fix_encoding_step()


def _fix_encoding(text: str) -> str:
    """``ftfy.fix_encoding(text)``: its loop of steps, each of which returns ASCII text and
    text its regex finds no mojibake in as is (checked here with the faster ``_is_bad``)."""
    if _fix_encoding_step is None:  # pragma: no cover
        return ftfy.fix_encoding(text)
    while True:
        if text.isascii() or not _is_bad(text):
            return text
        previous, text = text, _fix_encoding_step(text, _FTFY_DEFAULTS).text
        if text == previous:
            return text


def _fix_segment(text: str, config: ftfy.TextFixerConfig) -> str:
    """``ftfy.fix_and_explain(text, config).text`` for ``config.explain`` false: its loop,
    with the steps that provably leave the text unchanged skipped (the mojibake repair when
    nothing looks like mojibake, a table translation when no character of the table occurs).
    tests/test_clean_fast_path.py checks it against ftfy."""
    if config.unescape_html == "auto" and "<" in text:
        config = config._replace(unescape_html=False)
    while True:
        original = text
        if config.unescape_html:
            text = ftfy.fixes.unescape_html(text)
        if config.fix_encoding:
            text = _fix_encoding(text)
        if _any_fixer_acts_on(text):
            for name in _FTFY_FIXERS:
                if getattr(config, name) and _FTFY_ACTS_ON[name].search(text):
                    text = ftfy.FIXERS[name](text)
        if config.normalization is not None:
            text = _normalized(config.normalization, text)
        if text == original:
            return text


# _fix_segment's last round normalises the text its previous round ended with again
@functools.lru_cache(maxsize=8)
def _normalized(form: str, text: str) -> str:
    """``unicodedata.normalize(form, text)``, the last few answers kept."""
    return unicodedata.normalize(form, text)


# ------------------------------------------------------------ whitespace

_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


_PRINTABLE_ASCII_AND_HIGH = _PRINTABLE_ASCII + _HIGH_BYTES


def _printable(line: str) -> bool:
    """``line.isprintable()``; its ASCII characters checked by a byte deletion, several times
    faster than looking up every character, and only its non-ASCII ones looked up."""
    if line.isascii():
        return not line.encode("ascii").translate(None, _PRINTABLE_ASCII)
    data = line.encode("utf-8", "surrogatepass")
    if data.translate(None, _PRINTABLE_ASCII_AND_HIGH):  # an unprintable ASCII character
        return False
    return data.translate(None, ASCII_BYTES).decode("utf-8", "surrogatepass").isprintable()


def _collapse_spaces(line: str) -> str:
    """``" ".join(line.split())``: whitespace runs to one space, none at the ends. A line whose
    only whitespace is single spaces between words is returned as it is, without the split
    (every other whitespace character is unprintable; tests/test_clean_fast_path.py checks)."""
    if _printable(line) and "  " not in line and line[:1] != " " and line[-1:] != " ":
        return line
    return " ".join(line.split())
