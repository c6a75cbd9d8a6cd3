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
from dataclasses import dataclass

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
    "label",
    "terms",
    "patterns",
    "lexicon",
    "scope",
    "lead_paragraphs",
    "window",
    "min_count",
    "min_distinct",
    "min_share",
    "case_sensitive",
    "exclude",
    "targets",
    "quotes",
}
_KEYS = {
    **dict.fromkeys(TEXT_TYPES, _TEXT_KEYS),
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

    def __init__(self, article: Article) -> None:
        self.article = article
        self._token_starts: dict[str, list[int]] = {}  # scope key -> token start offsets
        self._target_spans: dict[str, list[tuple[int, int]]] = {}  # scope key -> spans
        self._quoted: dict[str, tuple[list[int], list[int]]] = {}  # scope key -> starts, ends

    def scope(self, name: str, lead_paragraphs: int = 3) -> str:
        """The text a rule reads: the whole text, the title, or the lead."""
        a = self.article
        if name == "title":
            return a.title
        if name == "lead":
            paragraphs = [p for p in a.body.split("\n\n") if p.strip()][:lead_paragraphs]
            return "\n\n".join([a.title, *paragraphs])
        return a.text

    def token_starts(self, text: str, key: str) -> list[int]:
        """Start offsets of the word tokens of a scope's text (for token distances)."""
        if key not in self._token_starts:
            self._token_starts[key] = [m.start() for m in _TOKEN.finditer(text)]
        return self._token_starts[key]

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
                self.token_span(text, key, s, e) for _, _, s, e in targets.find(text)
            )
        return self._target_spans[cache_key]


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
        final = other + [item for items in by_letter.values() for item in items]
        return cls(
            re.compile("|".join(groups), flags), [(lab, term) for (lab, term, _), _ in final]
        )

    def find(self, text: str) -> list[tuple[int, str, int, int]]:
        """(label id, term, start, end) of every match."""
        out = []
        for m in self.regex.finditer(text):
            label, term = self.owners[m.lastindex - 1]
            out.append((label, term, m.start(), m.end()))
        return out


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

    def vote(self, view: ArticleView) -> int:
        text = view.scope(self.scope, self.lead_paragraphs)
        if self.exclude is not None and self.exclude.regex.search(text):
            return ABSTAIN
        matches = self.matcher.find(text)
        if matches and self.quotes == "skip":
            key = f"{self.scope}:{self.lead_paragraphs}"
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
        key = f"{self.scope}:{self.lead_paragraphs}"
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

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def apply(self, articles: Sequence[Article], mentions: np.ndarray | None = None) -> np.ndarray:
        """The label matrix: one row per article, one column per rule; -1 = abstain.
        ``mentions`` is :meth:`mentions_target` of the same articles, when already known."""
        self._check_columns(articles)
        keep = np.arange(len(articles))
        if self.require_target:
            if mentions is None:
                mentions = self.mentions_target(articles)
            keep = np.nonzero(mentions)[0]
        views = [ArticleView(articles[i]) for i in keep]
        matrix = np.full((len(articles), len(self.rules)), ABSTAIN, dtype=np.int64)
        for j, rule in enumerate(self.rules):
            if isinstance(rule, ModelRule):
                matrix[keep, j] = rule.votes(views)
            else:
                matrix[keep, j] = [rule.vote(v) for v in views]
        return matrix

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
                    f"{self.origin}: rules.{rule.name}.column: the articles have no "
                    f"column {rule.column!r} (add it to source.meta_columns)"
                )


def load_rules(
    cfg: Mapping,
    task: Task,
    origin: str = "labeling",
    load_model: ModelLoader | None = None,
) -> RuleSet:
    """Parse and check a rule-set config; every problem is one line naming ``origin`` and key.

    ``load_model`` resolves model rules' URIs (``saved_model.load_model`` by default).
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
        _parse_rule(str(name), dict(spec or {}), task, targets, origin, load_model)
        for name, spec in rules_cfg.items()
    ]
    return RuleSet(
        task=task,
        rules=rules,
        targets=targets,
        origin=origin,
        require_target=require_target,
        dawid_skene=dict(dawid_skene or {}),
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
