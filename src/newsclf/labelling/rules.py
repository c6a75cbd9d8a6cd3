"""Labelling functions declared in config: rules that vote for a label or abstain.

A rule set (``configs/labeling/<task>.yaml``) holds a task's rules and, for stance-like tasks,
the list of target mentions that windowed cue rules count around (with ``require_target``,
articles that never mention a target get no votes at all). Rule types:

- ``keywords``: terms (words or phrases; ``*`` = any word ending, ``?`` = one letter) that
  vote for ``label``;
- ``regex``: regular expressions that vote for ``label``;
- ``lexicon``: terms per label; votes for the label whose terms dominate;
- ``cues``: keywords (or a lexicon) counted only within ``window`` tokens of a target mention;
- ``source``: a column value (e.g. the outlet) -> a label;
- ``model``: a registered model's prediction, when its probability passes ``threshold``.

Text rules may set ``window`` too (then they count near targets only; a rule's own
``targets`` list replaces the file's), ``scope`` (``text``,
``title`` or ``lead`` = the title and the first ``lead_paragraphs`` paragraphs), ``min_count``
(matches needed), ``min_distinct`` (different terms needed), ``min_share`` (lexicons: the
winning label's share of all matches), ``exclude`` (terms that make the rule abstain) and
``quotes`` (``count``, the default, or ``skip``: matches inside quotation marks are someone
else's words, not the article's voice, and do not count).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat

import numpy as np

from newsclf.articles import Article
from newsclf.errors import NewsclfError
from newsclf.tasks import Task

ABSTAIN = -1
TEXT_TYPES = ("keywords", "regex", "lexicon", "cues")
RULE_TYPES = (*TEXT_TYPES, "source", "model")
SCOPES = ("text", "title", "lead")
QUOTES = ("count", "skip")
# Quotations within one paragraph: "...", “...” and ‘...’ (a ’ followed by a letter is an
# apostrophe, so ‘Russia’s war’ is one quotation).
_QUOTED = re.compile(r'"[^"\n]*"|“[^“”\n]*”|‘[^‘\n]*?’(?!\w)')
_TOKEN = re.compile(r"\w+(?:'\w+)*")
_MAX_TARGET_TOKENS = 16  # longest target phrase the window search allows for
_COMMON_KEYS = {"type", "description"}
_TEXT_KEYS = {
    "scope",
    "lead_paragraphs",
    "window",
    "min_count",
    "min_distinct",
    "case_sensitive",
    "exclude",
    "targets",
    "quotes",
}
# what each text rule matches: a lexicon (label -> terms) or one label's terms or patterns; a
# key of another type's (a keywords rule's lexicon) would be ignored without a word
_MATCHED = {
    "keywords": {"label", "terms"},
    "regex": {"label", "patterns"},
    "lexicon": {"lexicon", "min_share"},
    "cues": {"label", "terms", "lexicon", "min_share"},  # one label's terms, or a lexicon
}
_KEYS = {
    **{kind: _TEXT_KEYS | _MATCHED[kind] for kind in TEXT_TYPES},
    "source": {"column", "values"},
    "model": {"uri", "threshold", "trusted_types", "batch_size"},
}

# A model loader: URI, trusted types -> object with .classifier.predict(texts) (label, prob).
ModelLoader = Callable[[str, Sequence[str]], object]


class RuleConfigError(NewsclfError):
    """A bad labelling-rule config: the message names the config file and the key."""


# --------------------------------------------------------------------------- article views


class ArticleView:
    """The parts of an article rules look at, computed once and shared by all rules."""

    def __init__(
        self, article: Article, scanner: Scanner | None = None, shared: ArticleView | None = None
    ) -> None:
        """``shared``: another rule set's view of the same article, whose parts that depend
        on the text alone (scopes, words, token offsets, quotations, target spans) this view
        reuses; the candidates belong to each view's own scanner."""
        self.article = article
        self.scanner = scanner  # the rule set's matchers (None: each matcher finds its own)
        # scope key -> (Scanner.candidates of the text, where the scope's text ends in it)
        self._candidates_in: dict[str, tuple[list, int | None]] = {}
        self._shared = shared
        if shared is not None:
            self.text = shared.text
            self._scopes, self._split = shared._scopes, shared._split
            self._token_starts, self._quoted = shared._token_starts, shared._quoted
            self._target_spans = shared._target_spans  # keyed by the targets' id too
            return
        self.text = article.text
        self._scopes: dict[tuple[str, int], str] = {}
        self._split: tuple | None = None
        self._token_starts: dict[str, list[int]] = {}  # scope key -> token start offsets
        self._target_spans: dict[str, list[tuple[int, int]]] = {}  # scope key -> spans
        self._quoted: dict[str, tuple[list[int], list[int]]] = {}  # scope key -> starts, ends

    def scope(self, name: str, lead_paragraphs: int = 3) -> str:
        """The text a rule reads: the whole text, the title, or the lead."""
        a = self.article
        if name == "title":
            return a.title
        if name == "lead":
            if (name, lead_paragraphs) not in self._scopes:
                paragraphs = [p for p in a.body.split("\n\n") if p.strip()][:lead_paragraphs]
                self._scopes[name, lead_paragraphs] = "\n\n".join([a.title, *paragraphs])
            return self._scopes[name, lead_paragraphs]
        return self.text

    def token_starts(self, text: str, key: str) -> list[int]:
        """Start offsets of the word tokens of a scope's text (for token distances)."""
        if key not in self._token_starts:
            starts = _token_starts(self.split()) if text is self.text else None
            if starts is None:
                starts = [m.start() for m in _TOKEN.finditer(text)]
            self._token_starts[key] = starts
        return self._token_starts[key]

    def split(self) -> tuple:
        """:func:`split_words` of the article's text (once)."""
        if self._split is None:
            self._split = split_words(self.text) if self._shared is None else self._shared.split()
        return self._split

    def token_span(self, text: str, key: str, start: int, end: int) -> tuple[int, int]:
        """First and last token index of the characters ``start:end``."""
        starts = self.token_starts(text, key)
        return bisect.bisect_right(starts, start) - 1, bisect.bisect_left(starts, end) - 1

    def in_quotes(self, text: str, key: str, start: int, end: int) -> bool:
        """Whether the characters ``start:end`` lie inside a quotation."""
        if key not in self._quoted:
            spans = [(m.start(), m.end()) for m in _QUOTED.finditer(text)]
            self._quoted[key] = ([s for s, _ in spans], [e for _, e in spans])
        starts, ends = self._quoted[key]
        i = bisect.bisect_right(starts, start) - 1  # the last quotation opening at or before
        return i >= 0 and end <= ends[i]

    def target_spans(self, text: str, key: str, targets: Matcher) -> list[tuple[int, int]]:
        """Token spans of the target mentions in a scope's text, sorted."""
        cache_key = f"{key}:{id(targets)}"  # rules may bring their own target lists
        if cache_key not in self._target_spans:
            self._target_spans[cache_key] = sorted(
                self.token_span(text, key, s, e) for _, _, s, e in self.find(text, key, targets)
            )
        return self._target_spans[cache_key]

    def find(self, text: str, key: str, matcher: Matcher) -> list[tuple[int, str, int, int]]:
        """``matcher.find`` on a scope's text, with the candidates of the scope's one scan."""
        return matcher.find(text, self._candidates(text, key, matcher))

    def search(self, text: str, key: str, matcher: Matcher) -> bool:
        """``matcher.search`` on a scope's text (as :meth:`find`)."""
        return matcher.search(text, self._candidates(text, key, matcher))

    def _candidates(self, text: str, key: str, matcher: Matcher) -> list | None:
        """The matcher's candidates in a scope's text, from one scan of the article: the
        title and the lead are usually the start of the text, so they take the text's
        candidates before their end (and are scanned on their own when not)."""
        if self.scanner is None or id(matcher) not in self.scanner.slot:
            return None  # the matcher finds them itself
        if key not in self._candidates_in:
            if text is self.text:
                self._candidates_in[key] = (self._text_candidates(), None)
            elif self.text.startswith(text) and not _splits_word(self.text, len(text)):
                self._candidates_in[key] = (self._text_candidates(), len(text))
            else:
                self._candidates_in[key] = (self.scanner.candidates(text), None)
        found, end = self._candidates_in[key]
        found = found[self.scanner.slot[id(matcher)]]
        if end is None or found is None:
            return found
        return found[: bisect.bisect_left(found, end, key=_offset)]

    def _text_candidates(self) -> list:
        if "" not in self._candidates_in:
            self._candidates_in[""] = (self.scanner.candidates(self.text, self.split()), None)
        return self._candidates_in[""][0]


def _offset(candidate: tuple) -> int:
    return candidate[0]


def _splits_word(text: str, at: int) -> bool:
    """Whether ``text[:at]`` ends inside a word."""
    return 0 < at < len(text) and bool(_IS_WORD(text, at - 1)) and bool(_IS_WORD(text, at))


_IS_WORD = re.compile(r"\w").match


# --------------------------------------------------------------------------- patterns


_WORD_START = r"(?<!\w)"


def term_regex(term: str) -> str:
    """A keyword as a regex: whole words, any whitespace between words, ``*`` = any word
    ending, ``?`` = one letter (``defen?e`` matches defence and defense)."""
    words = str(term).strip().split()
    parts = [re.escape(w).replace(r"\*", r"\w*").replace(r"\?", r"\w") for w in words]
    return _WORD_START + r"\s+".join(parts) + r"(?!\w)"


@dataclass
class Matcher:
    """One compiled alternation over many terms; tells which term (and label) each match is."""

    regex: re.Pattern
    owners: list[tuple[int, str]]  # group number - 1 -> (label id, term)
    # per owner: (kind, key, regex source) saying where its term can start (see _term_key);
    # None when a term has no such key (a user regex): then the matcher scans the text
    keys: list[tuple[str, str, str]] | None = None

    @classmethod
    def build(cls, entries: Sequence[tuple[int, str, str]], flags: int) -> Matcher:
        """``entries``: (label id, term as written, regex source)."""
        # Longer alternatives first, so "Russian forces" wins over "Russian" at one position.
        ordered = sorted(entries, key=lambda e: -len(e[2]))
        # Keyword terms all start at a word start; one shared check there and a first-letter
        # lookahead per group of terms let the regex engine skip most alternatives at most
        # positions (about 20x faster than one flat alternation of a hundred terms).
        other, by_letter = [], {}
        for entry in ordered:
            body = entry[2][len(_WORD_START) :] if entry[2].startswith(_WORD_START) else ""
            if body[:1].isalnum():
                by_letter.setdefault(body[0].lower(), []).append((entry, body))
            else:
                other.append((entry, entry[2]))
        groups = [f"(?:{'|'.join(f'({rx})' for _, rx in other)})"] if other else []
        if by_letter:
            letters = "|".join(
                f"(?=[{k}{k.upper()}])(?:{'|'.join(f'({body})' for _, body in items)})"
                for k, items in by_letter.items()
            )
            groups.append(f"{_WORD_START}(?:{letters})")
        final = [entry for entry, _ in other + [i for items in by_letter.values() for i in items]]
        keys = [_term_key(term, rx) for _, term, rx in final]
        if None not in keys:
            keys = [(*key, rx) for key, (_, _, rx) in zip(keys, final, strict=True)]
        return cls(
            re.compile("|".join(groups), flags),
            [(lab, term) for lab, term, _ in final],
            None if None in keys else keys,
        )

    def find(self, text: str, candidates: list | None = None) -> list[tuple[int, str, int, int]]:
        """(label id, term, start, end) of every match, as ``regex.finditer`` finds them.

        ``candidates``: this matcher's list from :meth:`Scanner.candidates` of ``text``.
        """
        if self.keys is None:  # terms the word index cannot find: scan the text
            out = []
            for m in self.regex.finditer(text):
                label, term = self.owners[m.lastindex - 1]
                out.append((label, term, m.start(), m.end()))
            return out
        if candidates is None:
            candidates = self._alone().candidates(text)[0]
        # finditer's matches, tried only where one can start: at each candidate at or after
        # the end of the previous match, the first alternative (in the regex's order) that
        # matches there. No term matches the empty string, so matches end after they start.
        out, end = [], 0
        for start, regex, owners in candidates:
            if start >= end and (m := regex.match(text, start)):
                end = m.end()
                out.append((*owners[m.lastindex - 1], start, end))
        return out

    def search(self, text: str, candidates: list | None = None) -> bool:
        """Whether any term matches ``text`` (``candidates`` as in :meth:`find`)."""
        if self.keys is None:
            return self.regex.search(text) is not None
        if candidates is None:
            candidates = self._alone().candidates(text)[0]
        return any(regex.match(text, start) for start, regex, _ in candidates)

    def _alone(self) -> Scanner:
        scanner = self.__dict__.get("_scanner")
        if scanner is None:
            scanner = self.__dict__["_scanner"] = Scanner([self])
        return scanner


# Where a keyword term can start. A term_regex match starts at the start of a word (a run of
# \w): "exact" = that word is the key (the term's first word up to its first non-word
# character, lowercased); "prefix" = the word starts with the key (cut at a wildcard); "char"
# = the term starts with this ASCII punctuation character instead, anywhere.
_KEY = re.compile(r"\w*")
_SPLIT = re.compile(r"(\W+)")
_WORD = re.compile(r"\w+")


def split_words(text: str) -> tuple[list[int], list[str], list[str] | None]:
    """The lowercased words (runs of \\w) of ``text`` with their offsets, and the non-word
    runs between them (None when lowercasing changed the length: then words only)."""
    low = text.lower()
    if len(low) == len(text):  # one-to-one lowercasing keeps offsets and word-ness
        parts = _SPLIT.split(low)  # word, non-word, word, ..., word ("" at either end)
        return list(accumulate(map(len, parts), initial=0))[::2], parts[::2], parts[1::2]
    found = [(m.start(), m.group().lower()) for m in _WORD.finditer(text)]  # (İ: two letters)
    return [s for s, _ in found], [w for _, w in found], None


def _token_starts(split: tuple[list[int], list[str], list[str] | None]) -> list[int] | None:
    """The offsets of the _TOKEN matches, from :func:`split_words`: each word starts one
    unless a lone apostrophe joins it to the word before (None without separators)."""
    offsets, words, seps = split
    if seps is None:
        return None
    starts = [offsets[0]] if words[0] else []
    # word k >= 1 (never empty, but the last) follows separator k - 1 and word k - 1
    joins = map(str.__ne__, seps, repeat("'"))
    starts += compress(offsets[1:], joins)
    if len(seps) and seps[0] == "'" and not words[0]:  # "'" at the start joins nothing
        starts.insert(0, offsets[1])
    if len(words) > 1 and not words[-1] and starts and starts[-1] == offsets[-1]:
        starts.pop()  # the text ends with a separator: no word after it
    return starts


def _term_key(term: str, regex: str) -> tuple[str, str] | None:
    """How to find where ``term`` can start, or None when only a scan finds it."""
    if regex != term_regex(term):  # a user regex
        return None
    first = str(term).strip().split()[0]
    key = _KEY.match(first).group()
    if key:
        if not key.isascii():  # non-ASCII case folding is the regex engine's business
            return None
        kind = "prefix" if len(key) < len(first) and first[len(key)] in "*?" else "exact"
        return kind, key.lower()
    char = first[0]
    if char.isascii() and char not in "*?":
        return "char", char
    return None


class Scanner:
    """Finds where the terms of several keyword matchers can match in one pass over a text's
    words (a dict lookup per word), instead of one regex scan per matcher over every
    character (the regex engine tries the terms at each position: several times slower).

    Per distinct word, it works out once which matchers have terms that can start there,
    each with a regex of just those terms (in the matcher's order, so the same term wins);
    a matcher then tries only those places. Matchers with a term that has no key (a user
    regex) get no candidates and scan the text."""

    _MAX_WORDS = 200_000  # distinct words remembered (then forgotten, to bound memory)

    def __init__(self, matchers: Sequence[Matcher]) -> None:
        self.matchers = list({id(m): m for m in matchers}.values())
        self.slot = {id(m): i for i, m in enumerate(self.matchers)}
        self.indexed = [i for i, m in enumerate(self.matchers) if m.keys is not None]
        # key -> (slot, term index in the matcher); prefix keys by their length
        self.exact: dict[str, list[tuple[int, int]]] = {}
        self.prefix: dict[int, dict[str, list[tuple[int, int]]]] = {}
        self.chars: dict[str, list[int]] = {}
        for i in self.indexed:
            for j, (kind, key, _) in enumerate(self.matchers[i].keys):
                if kind == "exact":
                    self.exact.setdefault(key, []).append((i, j))
                elif kind == "prefix":
                    self.prefix.setdefault(len(key), {}).setdefault(key, []).append((i, j))
                elif i not in self.chars.setdefault(key, []):
                    self.chars[key].append(i)
        self.words: dict[str, list] = {}  # lowercased word -> (slot, regex, owners) to try
        self._regexes: dict[tuple[int, tuple[int, ...]], re.Pattern] = {}

    def candidates(self, text: str, split: tuple | None = None) -> list[list | None]:
        """Per matcher: (offset, regex, owners) where one of its terms may match, by offset (a
        superset of its matches' starts); None for matchers that scan. ``split``:
        :func:`split_words` of ``text``, when known."""
        out: list[list | None] = [None] * len(self.matchers)
        for i in self.indexed:
            out[i] = []
        offsets, words, _ = split_words(text) if split is None else split
        hits = list(map(self.words.get, words))
        if None in hits:  # words not seen before
            if len(self.words) > self._MAX_WORDS:
                self.words.clear()
            for k in [k for k, hit in enumerate(hits) if hit is None]:
                hit = self.words.get(words[k])  # (learnt earlier in this text?)
                hits[k] = self._learn(words[k]) if hit is None else hit
        for k in compress(range(len(hits)), hits):
            start = offsets[k]
            for i, regex, owners in hits[k]:
                out[i].append((start, regex, owners))
        for char, slots in self.chars.items():
            at = [m.start() for m in re.finditer(re.escape(char), text)]
            for i in slots if at else ():
                matcher = self.matchers[i]
                at_char = [(s, matcher.regex, matcher.owners) for s in at]
                out[i] = sorted([*out[i], *at_char], key=_offset)
        return out

    def _learn(self, word: str) -> list:
        """What to try where ``word`` starts (and remember it)."""
        if not word:
            entry = []
        elif not word.isascii():  # letters that match ASCII ones ignoring case (K, ſ): all
            entry = [(i, self.matchers[i].regex, self.matchers[i].owners) for i in self.indexed]
        else:
            fit: dict[int, list[int]] = {}
            for i, j in self.exact.get(word, ()):
                fit.setdefault(i, []).append(j)
            for n, keys in self.prefix.items():
                for i, j in keys.get(word[:n], ()) if len(word) >= n else ():
                    fit.setdefault(i, []).append(j)
            entry = []
            for i, terms in sorted(fit.items()):
                terms = tuple(sorted(terms))  # the matcher's order: the same term wins
                regex = self._regexes.get((i, terms))
                if regex is None:
                    matcher = self.matchers[i]
                    source = "|".join(f"({matcher.keys[j][2]})" for j in terms)
                    regex = self._regexes[i, terms] = re.compile(source, matcher.regex.flags)
                entry.append((i, regex, [self.matchers[i].owners[j] for j in terms]))
        self.words[word] = entry
        return entry


def _group_free(rx: str) -> str:
    """Capturing groups of a user regex become non-capturing (we number our own groups)."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", rx)


# --------------------------------------------------------------------------- rules


@dataclass
class TextRule:
    """Keyword / regex / lexicon / cue rule: counts matches per label, votes or abstains."""

    name: str
    kind: str
    matcher: Matcher
    labels: list[int]  # the labels it can vote for
    scope: str = "text"
    lead_paragraphs: int = 3
    window: int | None = None
    targets: Matcher | None = None
    min_count: int = 1
    min_distinct: int = 1
    min_share: float = 0.5
    exclude: Matcher | None = None  # any of these terms in the scope: abstain
    quotes: str = "count"  # skip: matches inside quotation marks do not count

    @property
    def scope_key(self) -> str:
        """Rules with the same scope key read the same text."""
        return f"{self.scope}:{self.lead_paragraphs}"

    def matchers(self) -> list[Matcher]:
        """The matchers this rule runs on its scope's text."""
        extra = [self.targets] if self.window is not None else []
        return [self.matcher, *filter(None, [self.exclude, *extra])]

    def vote(self, view: ArticleView) -> int:
        text = view.scope(self.scope, self.lead_paragraphs)
        key = self.scope_key
        if self.exclude is not None and view.search(text, key, self.exclude):
            return ABSTAIN
        matches = view.find(text, key, self.matcher)
        if matches and self.quotes == "skip":
            matches = [m for m in matches if not view.in_quotes(text, key, m[2], m[3])]
        if matches and self.window is not None:
            matches = self._near_targets(view, text, matches)
        if not matches:
            return ABSTAIN
        counts: dict[int, int] = {}
        distinct: dict[int, set[str]] = {}
        for label, term, _, _ in matches:
            counts[label] = counts.get(label, 0) + 1
            distinct.setdefault(label, set()).add(term.lower())
        ranked = sorted(counts, key=lambda lab: (-counts[lab], self.labels.index(lab)))
        best = ranked[0]
        if counts[best] < self.min_count or len(distinct[best]) < self.min_distinct:
            return ABSTAIN
        if len(ranked) > 1:  # lexicon: the best label must dominate
            if counts[best] == counts[ranked[1]]:
                return ABSTAIN
            if counts[best] / sum(counts.values()) < self.min_share:
                return ABSTAIN
        return best

    def _near_targets(self, view: ArticleView, text: str, matches: list) -> list:
        """The matches within ``window`` tokens of a target mention."""
        key = self.scope_key
        spans = view.target_spans(text, key, self.targets)
        near = []
        for match in matches:
            a, b = view.token_span(text, key, match[2], match[3])
            # spans are sorted by first token; targets are short, so start a little earlier
            i = bisect.bisect_left(spans, (a - self.window - _MAX_TARGET_TOKENS, -1))
            for c, d in spans[i:]:
                if c > b + self.window:
                    break
                if d >= a - self.window:
                    near.append(match)
                    break
        return near


@dataclass
class SourceRule:
    """A column value (e.g. the outlet) -> a label; other values abstain."""

    name: str
    column: str
    values: dict[str, int]  # casefolded value -> label id
    kind: str = "source"

    @property
    def labels(self) -> list[int]:
        return sorted(set(self.values.values()))

    def vote(self, view: ArticleView) -> int:
        value = view.article.meta.get(self.column)
        if value is None:
            return ABSTAIN
        return self.values.get(str(value).strip().casefold(), ABSTAIN)


@dataclass
class ModelRule:
    """A model's prediction, when its probability reaches ``threshold``; votes in batches."""

    name: str
    uri: str
    model: object  # a LoadedModel: .classifier.predict(texts) -> label, probability
    label_ids: dict[str, int]
    threshold: float = 0.8
    batch_size: int = 1000
    kind: str = "model"

    @property
    def labels(self) -> list[int]:
        return sorted(self.label_ids.values())

    def votes(self, views: Sequence[ArticleView]) -> np.ndarray:
        out = np.full(len(views), ABSTAIN, dtype=np.int64)
        for start in range(0, len(views), self.batch_size):
            chunk = views[start : start + self.batch_size]
            frame = self.model.classifier.predict([v.article.text for v in chunk])
            pairs = zip(frame["label"], frame["probability"], strict=True)
            for i, (label, prob) in enumerate(pairs):
                if prob >= self.threshold:
                    out[start + i] = self.label_ids[str(label)]
        return out


Rule = TextRule | SourceRule | ModelRule


# --------------------------------------------------------------------------- rule sets


@dataclass
class RuleSet:
    """A task's labelling functions and its target mentions, from one config file."""

    task: Task
    rules: list[Rule]
    targets: Matcher | None = None
    origin: str = "labeling"  # the config file, for messages
    require_target: bool = False  # articles that never mention a target: every rule abstains
    dawid_skene: dict | None = None  # label model parameters suited to these rules
    rule_origins: dict[str, str] = field(default_factory=dict)  # a rule's, when not origin
    _scanner: Scanner | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def apply(self, articles: Sequence[Article], mentions: np.ndarray | None = None) -> np.ndarray:
        """The label matrix: one row per article, one column per rule; -1 = abstain.
        ``mentions`` is :meth:`mentions_target` of the same articles, when already known."""
        return apply_rule_sets({"": self}, articles, {"": mentions})[""]

    def scanner(self) -> Scanner:
        """One :class:`Scanner` over every matcher the text rules run (built once)."""
        if self._scanner is None:
            self._scanner = Scanner(
                [m for rule in self.rules if isinstance(rule, TextRule) for m in rule.matchers()]
            )
        return self._scanner

    def mentions_target(self, articles: Sequence[Article]) -> np.ndarray | None:
        """Per article: does it mention a target at all? None when the set has no targets."""
        if self.targets is None:
            return None
        return np.array([bool(self.targets.regex.search(a.text)) for a in articles])

    def _check_columns(self, articles: Sequence[Article]) -> None:
        for rule in self.rules:
            if (
                isinstance(rule, SourceRule)
                and articles
                and not any(rule.column in a.meta for a in articles)
            ):
                raise RuleConfigError(
                    f"{self.rule_origins.get(rule.name, self.origin)}: rules.{rule.name}.column: "
                    "the articles have no "
                    f"column {rule.column!r} (add it to source.meta_columns)"
                )


def apply_rule_sets(
    rule_sets: Mapping[str, RuleSet],
    articles: Sequence[Article],
    mentions: Mapping[str, np.ndarray | None] | None = None,
) -> dict[str, np.ndarray]:
    """Each rule set's label matrix over the same articles (:meth:`RuleSet.apply`), by key.
    ``mentions``: a set's :meth:`RuleSet.mentions_target` of the articles, when known.

    The text rules vote article by article, every set in turn: what the sets share about an
    article (its word split, scopes, token offsets) is computed once for all of them, and
    what the rules found in one article is dropped before the next (memory flat in the
    number of articles)."""
    mentions = mentions or {}
    out: dict[str, np.ndarray] = {}
    keeps: dict[str, np.ndarray] = {}
    text_sets = []  # (key, scanner, text rules, their columns, wanted per article, vote rows)
    for key, rules in rule_sets.items():
        rules._check_columns(articles)
        keep = np.arange(len(articles))
        if rules.require_target:
            found = mentions.get(key)
            keep = np.nonzero(rules.mentions_target(articles) if found is None else found)[0]
        keeps[key] = keep
        out[key] = np.full((len(articles), len(rules.rules)), ABSTAIN, dtype=np.int64)
        voting = [(j, r) for j, r in enumerate(rules.rules) if not isinstance(r, ModelRule)]
        if voting and len(keep):
            wanted = np.zeros(len(articles), dtype=bool)
            wanted[keep] = True
            wanted = wanted.tolist()
            columns = [j for j, _ in voting]
            text_sets.append((key, rules.scanner(), [r for _, r in voting], columns, wanted, []))
    for i, article in enumerate(articles):
        shared = None
        for _, scanner, voting, _, wanted, rows in text_sets:
            if wanted[i]:
                shared = view = ArticleView(article, scanner, shared)
                rows.append([rule.vote(view) for rule in voting])
    for key, _, _, columns, _, rows in text_sets:
        out[key][np.ix_(keeps[key], columns)] = rows
    for key, rules in rule_sets.items():
        keep = keeps[key]
        for j, rule in enumerate(rules.rules):
            if isinstance(rule, ModelRule):
                out[key][keep, j] = rule.votes([ArticleView(articles[i]) for i in keep])
    return out


def load_rules(
    cfg: Mapping,
    task: Task,
    origin: str = "labeling",
    load_model: ModelLoader | None = None,
    rule_origins: Mapping[str, str] | None = None,
) -> RuleSet:
    """Parse and check a rule-set config; every problem is one line naming ``origin`` and key.

    ``load_model`` resolves model rules' URIs (``saved_model.load_model`` by default);
    ``rule_origins`` names where a rule came from when not ``origin`` (the command line).
    """
    cfg = dict(cfg or {})
    unknown = set(cfg) - {"rules", "targets", "require_target", "description", "dawid_skene"}
    if unknown:
        raise RuleConfigError(
            f"{origin}: {sorted(unknown)[0]}: unknown key "
            "(allowed: dawid_skene, description, require_target, rules, targets)"
        )
    dawid_skene = cfg.get("dawid_skene")
    if dawid_skene is not None and not isinstance(dawid_skene, Mapping):
        raise RuleConfigError(
            f"{origin}: dawid_skene: expected label model parameters {{name: value}}, "
            f"got {dawid_skene!r}"
        )
    targets = None
    if "targets" in cfg and cfg["targets"] is not None:
        terms = _string_list(cfg["targets"], origin, "targets")
        if not terms:
            raise RuleConfigError(f"{origin}: targets: empty target list")
        targets = Matcher.build([(0, t, term_regex(t)) for t in terms], re.IGNORECASE)
    require_target = bool(cfg.get("require_target", False))
    if require_target and targets is None:
        raise RuleConfigError(f"{origin}: targets: empty target list (require_target is set)")
    rules_cfg = cfg.get("rules") or {}
    if not isinstance(rules_cfg, Mapping) or not rules_cfg:
        raise RuleConfigError(f"{origin}: rules: needs at least one rule (name: {{type: ...}})")
    rules = [
        _parse_rule(
            str(name),
            dict(spec or {}),
            task,
            targets,
            (rule_origins or {}).get(str(name), origin),
            load_model,
        )
        for name, spec in rules_cfg.items()
    ]
    return RuleSet(
        task=task,
        rules=rules,
        targets=targets,
        origin=origin,
        require_target=require_target,
        dawid_skene=dict(dawid_skene or {}),
        rule_origins=dict(rule_origins or {}),
    )


def _parse_rule(
    name: str,
    spec: dict,
    task: Task,
    targets: Matcher | None,
    origin: str,
    load_model: ModelLoader | None,
) -> Rule:
    key = f"rules.{name}"
    kind = spec.get("type")
    if kind not in RULE_TYPES:
        allowed = ", ".join(RULE_TYPES)
        raise RuleConfigError(f"{origin}: {key}.type: {kind!r} is not one of {allowed}")
    unknown = set(spec) - _KEYS[kind] - _COMMON_KEYS
    if unknown:
        allowed = ", ".join(sorted(_KEYS[kind] | _COMMON_KEYS))
        raise RuleConfigError(f"{origin}: {key}.{sorted(unknown)[0]}: unknown key ({allowed})")
    if kind == "cues":  # a lexicon or one label's terms: the other's keys would go unread
        if "lexicon" in spec and (unread := sorted({"label", "terms"} & set(spec))):
            raise RuleConfigError(
                f"{origin}: {key}.{unread[0]}: not read by a cues rule with a lexicon (it votes "
                "the lexicon's labels)"
            )
        if "lexicon" not in spec and "min_share" in spec:
            raise RuleConfigError(
                f"{origin}: {key}.min_share: read only with a lexicon (a cues rule with terms "
                "votes its one label)"
            )
    if kind == "source":
        return _source_rule(name, spec, task, origin)
    if kind == "model":
        return _model_rule(name, spec, task, origin, load_model)
    return _text_rule(name, kind, spec, task, targets, origin)


def _label_id(label: object, task: Task, origin: str, key: str) -> int:
    if str(label) not in task.labels:
        raise RuleConfigError(
            f"{origin}: {key}: unknown {task.name} label {label!r} "
            f"(allowed: {', '.join(task.label_names)})"
        )
    return task.label_names.index(str(label))


def _string_list(value: object, origin: str, key: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise RuleConfigError(f"{origin}: {key}: expected a list of strings, got {value!r}")
    out = [str(v) for v in value]
    if any(not v.strip() for v in out):
        raise RuleConfigError(f"{origin}: {key}: empty string in the list")
    return out


def _number(spec: dict, name: str, default, origin: str, key: str, low=0, high=None, cast=int):
    value = spec.get(name, default)
    try:
        number = cast(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < low or (high is not None and number > high):
        bounds = f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise RuleConfigError(f"{origin}: {key}.{name}: {value!r} must be a number {bounds}")
    return number


def _text_rule(
    name: str, kind: str, spec: dict, task: Task, targets: Matcher | None, origin: str
) -> TextRule:
    key = f"rules.{name}"
    flags = 0 if spec.get("case_sensitive", False) else re.IGNORECASE
    entries: list[tuple[int, str, str]] = []
    if kind == "lexicon" or (kind == "cues" and "lexicon" in spec):
        lexicon = spec.get("lexicon")
        if not isinstance(lexicon, Mapping) or not lexicon:
            raise RuleConfigError(f"{origin}: {key}.lexicon: needs {{label: [terms]}}")
        for label, terms in lexicon.items():
            lab = _label_id(label, task, origin, f"{key}.lexicon.{label}")
            for term in _string_list(terms, origin, f"{key}.lexicon.{label}"):
                entries.append((lab, term, term_regex(term)))
    else:
        if "label" not in spec:
            raise RuleConfigError(f"{origin}: {key}.label: missing (the label this rule votes)")
        lab = _label_id(spec["label"], task, origin, f"{key}.label")
        field_name = "patterns" if kind == "regex" else "terms"
        values = _string_list(spec.get(field_name), origin, f"{key}.{field_name}")
        if not values:
            raise RuleConfigError(f"{origin}: {key}.{field_name}: empty list")
        for i, value in enumerate(values):
            if kind == "regex":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise RuleConfigError(
                        f"{origin}: {key}.patterns[{i}]: invalid regex {value!r} ({exc})"
                    ) from None
                entries.append((lab, value, _group_free(value)))
            else:
                entries.append((lab, value, term_regex(value)))
    scope = spec.get("scope", "text")
    if scope not in SCOPES:
        raise RuleConfigError(f"{origin}: {key}.scope: {scope!r} is not one of {', '.join(SCOPES)}")
    quotes = spec.get("quotes", "count")
    if quotes not in QUOTES:
        allowed = ", ".join(QUOTES)
        raise RuleConfigError(f"{origin}: {key}.quotes: {quotes!r} is not one of {allowed}")
    window = spec.get("window")
    if kind == "cues" and window is None:
        raise RuleConfigError(f"{origin}: {key}.window: cue rules need a window (tokens)")
    if spec.get("targets") is not None:  # the rule's own targets (e.g. the West, NATO)
        own = _string_list(spec["targets"], origin, f"{key}.targets")
        if not own:
            raise RuleConfigError(f"{origin}: {key}.targets: empty target list")
        targets = Matcher.build([(0, t, term_regex(t)) for t in own], re.IGNORECASE)
    if window is not None:
        window = _number(spec, "window", None, origin, key, low=0)
        if targets is None:
            raise RuleConfigError(
                f"{origin}: targets: empty target list (rule {name} counts cues near targets)"
            )
    try:
        matcher = Matcher.build(entries, flags)
    except re.error as exc:
        raise RuleConfigError(f"{origin}: {key}: invalid regex ({exc})") from None
    exclude = None
    if spec.get("exclude") is not None:
        terms = _string_list(spec["exclude"], origin, f"{key}.exclude")
        if terms:
            exclude = Matcher.build([(0, t, term_regex(t)) for t in terms], flags)
    return TextRule(
        name=name,
        kind=kind,
        matcher=matcher,
        labels=sorted({e[0] for e in entries}),
        scope=scope,
        lead_paragraphs=_number(spec, "lead_paragraphs", 3, origin, key, low=1),
        window=window,
        targets=targets,
        min_count=_number(spec, "min_count", 1, origin, key, low=1),
        min_distinct=_number(spec, "min_distinct", 1, origin, key, low=1),
        min_share=_number(spec, "min_share", 0.5, origin, key, low=0, high=1, cast=float),
        exclude=exclude,
        quotes=quotes,
    )


def _source_rule(name: str, spec: dict, task: Task, origin: str) -> SourceRule:
    key = f"rules.{name}"
    column = spec.get("column")
    if not column or not isinstance(column, str):
        raise RuleConfigError(f"{origin}: {key}.column: missing (the article column to read)")
    values = spec.get("values")
    if not isinstance(values, Mapping) or not values:
        raise RuleConfigError(f"{origin}: {key}.values: needs {{column value: label}}")
    mapping = {
        str(value).strip().casefold(): _label_id(label, task, origin, f"{key}.values.{value}")
        for value, label in values.items()
    }
    return SourceRule(name=name, column=column, values=mapping)


def _model_rule(
    name: str, spec: dict, task: Task, origin: str, load_model: ModelLoader | None
) -> ModelRule:
    key = f"rules.{name}"
    uri = spec.get("uri")
    if not uri or not isinstance(uri, str):
        raise RuleConfigError(f"{origin}: {key}.uri: missing (a model URI)")
    threshold = _number(spec, "threshold", 0.8, origin, key, low=0, high=1, cast=float)
    trusted = _string_list(spec.get("trusted_types", []), origin, f"{key}.trusted_types")
    if load_model is None:
        from newsclf.saved_model import load_model  # MLflow only when a model rule is configured

    try:
        model = load_model(uri, trusted)
    except NewsclfError as exc:
        raise RuleConfigError(f"{origin}: {key}.uri: {exc}") from None
    names = list(getattr(model.classifier, "labels", []) or [])
    unknown = [n for n in names if n not in task.labels]
    if unknown:
        raise RuleConfigError(
            f"{origin}: {key}.uri: model {uri} predicts labels outside the {task.name} task "
            f"({', '.join(map(str, unknown))})"
        )
    return ModelRule(
        name=name,
        uri=uri,
        model=model,
        label_ids={n: i for i, n in enumerate(task.label_names)},
        threshold=threshold,
        batch_size=_number(spec, "batch_size", 1000, origin, key, low=1),
    )


# --------------------------------------------------------------------------- labelling


@dataclass
class Labelled:
    """The outcome of weak labelling one task's articles."""

    ids: list[str]
    matrix: np.ndarray  # (articles, rules) votes, -1 = abstain
    labels: np.ndarray  # (articles,) label id, -1 = none
    confidence: np.ndarray  # (articles,) the label model's confidence, 0 = none
    reason: list[str]  # "" when labelled, else no_target, no_votes or tie
    learned_accuracy: np.ndarray | None  # (rules,) the label model's estimate, if it has one
    weights: np.ndarray | None = None  # articles per row, when rows are distinct vote patterns

    def selected(self, min_confidence: float, names: Sequence[str]) -> dict[str, tuple[str, float]]:
        """``{article id: (label, confidence)}`` for labels at or above ``min_confidence``."""
        return {
            aid: (names[lab], float(conf))
            for aid, lab, conf in zip(self.ids, self.labels, self.confidence, strict=True)
            if lab != ABSTAIN and conf >= min_confidence
        }


def label_articles(articles: Sequence[Article], rules: RuleSet, label_model) -> Labelled:
    """Apply the rules, fit the label model on their votes (no gold labels), decide labels."""
    from newsclf.labelling.label_model import DawidSkene

    matrix = rules.apply(articles)
    model = label_model.fit(matrix, len(rules.task.label_names))
    weak = model.weak_labels(matrix)
    reason = list(weak.reason)
    mentions = rules.mentions_target(articles)
    if mentions is not None:
        reason = [
            "no_target" if r == "no_votes" and not mentions[i] else r for i, r in enumerate(reason)
        ]
    return Labelled(
        ids=[a.id for a in articles],
        matrix=matrix,
        labels=weak.labels,
        confidence=weak.confidence,
        reason=reason,
        learned_accuracy=model.rule_precision() if isinstance(model, DawidSkene) else None,
    )
