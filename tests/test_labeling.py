"""Labelling functions from config: each rule type votes or abstains as declared, and every
bad config is a one-line error naming the config file and the key."""

from __future__ import annotations

import re

import numpy as np
import pytest
from omegaconf import OmegaConf

from newsclf.articles import Article
from newsclf.errors import NewsclfError
from newsclf.labelling.rules import ABSTAIN, RuleConfigError, label_articles, load_rules, term_regex
from newsclf.tasks import Task
from tests.conftest import ROOT

TOPIC = Task("topic", {"war": "w", "money": "m", "other": "o"})
STANCE = Task("stance", {"anti": "a", "neutral": "n", "pro": "p"})
ORIGIN = "configs/labeling/test.yaml"


def art(text: str, title: str = "A title", aid: str = "a", **meta: str) -> Article:
    return Article(id=aid, title=title, body=text, meta=meta)


def votes(cfg: dict, task: Task, *articles: Article) -> list[int]:
    rules = load_rules(cfg, task, ORIGIN)
    return rules.apply(list(articles))[:, 0].tolist()


def test_keywords_whole_words_wildcards_and_thresholds():
    cfg = {"rules": {"k": {"type": "keywords", "label": "war", "terms": ["tank*", "defen?e"]}}}
    war, money = TOPIC.label_names.index("war"), TOPIC.label_names.index("money")
    assert votes(cfg, TOPIC, art("Tanks rolled in."), art("A think tank met.")) == [war, war]
    assert votes(cfg, TOPIC, art("The defense line held."), art("Defence spending rose.")) == [
        war,
        war,
    ]
    assert votes(cfg, TOPIC, art("Stanks and thanks"), art("nothing here")) == [ABSTAIN, ABSTAIN]
    cfg["rules"]["k"].update(min_count=2, min_distinct=2)
    assert votes(cfg, TOPIC, art("tank tank tank"), art("tank and defence")) == [ABSTAIN, war]
    cfg = {"rules": {"m": {"type": "regex", "label": "money", "patterns": [r"\$\d+ (bn|billion)"]}}}
    assert votes(cfg, TOPIC, art("It cost $40 billion."), art("It cost a lot.")) == [
        money,
        ABSTAIN,
    ]


def test_term_regex_spans_whitespace_and_punctuation():
    assert re.search(term_regex("UN Security Council"), "the UN\nSecurity  Council", re.I)
    assert not re.search(term_regex("arms"), "harms")
    assert re.search(term_regex("Russia's"), "Russia's army")


def test_scope_title_and_lead():
    body = "\n\n".join(["Intro.", "Second.", "Third.", "Fourth mentions tanks."])
    cfg = {"rules": {"t": {"type": "keywords", "label": "war", "terms": ["tanks"]}}}
    a = art(body, title="Markets rally")
    assert votes(cfg, TOPIC, a) == [0]
    cfg["rules"]["t"]["scope"] = "lead"  # title + first three paragraphs
    assert votes(cfg, TOPIC, a) == [ABSTAIN]
    cfg["rules"]["t"]["scope"] = "title"
    assert votes(cfg, TOPIC, art("x", title="Tanks at the border"), a) == [0, ABSTAIN]


def test_lexicon_votes_the_dominant_label_and_abstains_on_ties():
    cfg = {
        "rules": {
            "lex": {
                "type": "lexicon",
                "min_share": 0.6,
                "lexicon": {"war": ["troops", "shelling"], "money": ["market", "prices"]},
            }
        }
    }
    texts = ["troops shelling troops market", "troops market", "market prices troops"]
    assert votes(cfg, TOPIC, *(art(t) for t in texts)) == [0, ABSTAIN, 1]


def test_cues_count_only_near_a_target():
    cfg = {
        "targets": ["Russia", "the Kremlin"],
        "rules": {"c": {"type": "cues", "label": "anti", "window": 3, "terms": ["brutal"]}},
    }
    near = art("The Kremlin's brutal war.")
    far = art("Brutal weather hit the coast on Monday and later that week Russia sent aid.")
    after = art("Russia and its allies said the campaign was brutal.")
    assert votes(cfg, STANCE, near, far, after) == [0, ABSTAIN, ABSTAIN]
    cfg["rules"]["c"]["window"] = 7  # "brutal" is the 8th token after "Russia"
    assert votes(cfg, STANCE, after) == [ABSTAIN]
    cfg["rules"]["c"]["window"] = 8
    assert votes(cfg, STANCE, after) == [0]


def test_rule_targets_replace_the_file_targets_and_exclude_abstains():
    cfg = {
        "targets": ["Russia"],
        "rules": {
            "blame_west": {
                "type": "cues",
                "label": "pro",
                "window": 4,
                "targets": ["NATO", "the West"],
                "terms": ["hypocrisy"],
            },
            "calm": {
                "type": "keywords",
                "label": "neutral",
                "terms": ["Russia"],
                "exclude": ["brutal"],
            },
        },
    }
    rules = load_rules(cfg, STANCE, ORIGIN)
    matrix = rules.apply([art("Russia decried NATO hypocrisy."), art("Russia was brutal.")])
    assert matrix.tolist() == [[2, 1], [ABSTAIN, ABSTAIN]]


def test_quotes_skip_ignores_words_inside_quotations():
    cfg = {
        "rules": {
            "voice": {
                "type": "keywords",
                "label": "pro",
                "terms": ["special military operation"],
                "quotes": "skip",
            },
            "any": {"type": "keywords", "label": "pro", "terms": ["special military operation"]},
        },
    }
    own = art("The special military operation goes to plan.")
    straight = art('Moscow calls it a "special military operation".')
    curly = art("What the Kremlin calls its \u201cspecial military operation\u201d went on.")
    single = art("Its \u2018special military operation\u2019s\u2019 aims were unclear.")
    rules = load_rules(cfg, STANCE, ORIGIN)
    assert rules.apply([own, straight, curly, single]).tolist() == [
        [2, 2],
        [ABSTAIN, 2],
        [ABSTAIN, 2],
        [ABSTAIN, 2],
    ]
    cfg["rules"]["voice"]["quotes"] = "drop"
    with pytest.raises(RuleConfigError, match=r"rules\.voice\.quotes: 'drop' is not one of"):
        load_rules(cfg, STANCE, ORIGIN)


def test_rule_file_dawid_skene_params_reach_the_label_model_under_the_command_line():
    from newsclf.labelling.weak import weak_labels

    cfg = {
        "dawid_skene": {"prior_strength": 20, "bogus": 1},
        "rules": {"k": {"type": "keywords", "label": "neutral", "terms": ["percent"]}},
    }
    rules = load_rules(cfg, STANCE, ORIGIN)
    assert rules.dawid_skene == {"prior_strength": 20, "bogus": 1}
    run = OmegaConf.create(
        {"weak": {"label_model": "dawid_skene", "label_model_params": {}, "min_confidence": 0.7}}
    )
    articles = [art("Oil rose 3 percent.", aid="x"), art("Nothing here.", aid="y")]
    with pytest.raises(NewsclfError, match="bogus"):  # the rule file's parameters are used
        weak_labels(run, rules, articles, {})
    rules.dawid_skene = {"prior_strength": 20}
    run.weak.label_model_params = {"prior_strength": -1}  # the command line wins
    with pytest.raises(NewsclfError, match="prior_strength=-1"):
        weak_labels(run, rules, articles, {})
    run.weak.label_model = "majority"  # other label models ignore them
    run.weak.label_model_params = {}
    selected, _, _ = weak_labels(run, rules, articles, {})
    assert selected == {"x": ("neutral", 1.0)}


def test_require_target_silences_articles_without_a_mention():
    cfg = {
        "targets": ["Russia"],
        "require_target": True,
        "rules": {"k": {"type": "keywords", "label": "neutral", "terms": ["percent"]}},
    }
    rules = load_rules(cfg, STANCE, ORIGIN)
    articles = [art("Oil rose 3 percent."), art("Russia's oil rose 3 percent.")]
    assert rules.apply(articles)[:, 0].tolist() == [ABSTAIN, 1]
    labelled = label_articles(articles, rules, _majority())
    assert labelled.reason == ["no_target", ""]


def _majority():
    from newsclf.labelling.label_model import MajorityVote

    return MajorityVote()


def test_source_rule_maps_column_values():
    cfg = {"rules": {"o": {"type": "source", "column": "outlet", "values": {"RT": "pro"}}}}
    rows = [art("x", outlet=" rt "), art("x", outlet="BBC")]
    assert votes(cfg, STANCE, *rows) == [2, ABSTAIN]
    with pytest.raises(RuleConfigError, match=rf"{ORIGIN}: rules\.o\.column: .*'outlet'"):
        votes(cfg, STANCE, art("no outlet column here"))


def test_model_rule_votes_with_a_logged_model_above_threshold(mlflow_uri):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from newsclf import saved_model, tracking

    texts = ["troops tanks shelling"] * 5 + ["market prices shares"] * 5
    labels = ["war"] * 5 + ["money"] * 5
    pipe = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression(C=100))]).fit(texts, labels)
    tracking.configure(mlflow_uri)
    with tracking.run("newsclf-topic", "model-rule-test"):
        uri = saved_model.log_model(pipe, ["money", "war"], "topic", texts[:1])
    cfg = {"rules": {"m": {"type": "model", "uri": uri, "threshold": 0.6}}}
    got = votes(cfg, TOPIC, art("tanks and troops"), art("shares and prices"), art("zzz"))
    assert got == [0, 1, ABSTAIN]
    cfg["rules"]["m"]["threshold"] = 1.0
    assert votes(cfg, TOPIC, art("tanks and troops")) == [ABSTAIN]
    # a model of another task's labels is refused
    with pytest.raises(RuleConfigError, match=r"rules\.m\.uri: .*outside the stance task"):
        load_rules({"rules": {"m": {"type": "model", "uri": uri}}}, STANCE, ORIGIN)


@pytest.mark.parametrize(
    ("cfg", "key", "problem"),
    [
        (
            {"rules": {"r": {"type": "keywords", "label": "wr", "terms": ["x"]}}},
            r"rules\.r\.label",
            "unknown topic label 'wr'",
        ),
        (
            {"rules": {"r": {"type": "lexicon", "lexicon": {"war": ["x"], "cash": ["y"]}}}},
            r"rules\.r\.lexicon\.cash",
            "unknown topic label 'cash'",
        ),
        (
            {"rules": {"r": {"type": "source", "column": "o", "values": {"RT": "nope"}}}},
            r"rules\.r\.values\.RT",
            "unknown topic label 'nope'",
        ),
        (
            {"rules": {"r": {"type": "regex", "label": "war", "patterns": ["ok", "(unclosed"]}}},
            r"rules\.r\.patterns\[1\]",
            "invalid regex",
        ),
        (
            {"targets": [], "rules": {"r": {"type": "keywords", "label": "war", "terms": ["x"]}}},
            "targets",
            "empty target list",
        ),
        (
            {"rules": {"r": {"type": "cues", "label": "war", "window": 5, "terms": ["x"]}}},
            "targets",
            "empty target list",
        ),
        (
            {"targets": ["a"], "rules": {"r": {"type": "cues", "label": "war", "terms": ["x"]}}},
            r"rules\.r\.window",
            "need a window",
        ),
        (
            {
                "targets": ["a"],
                "rules": {
                    "r": {
                        "type": "cues",
                        "label": "war",
                        "window": 2,
                        "targets": [],
                        "terms": ["x"],
                    }
                },
            },
            r"rules\.r\.targets",
            "empty target list",
        ),
        (
            {"rules": {"r": {"type": "keywords", "label": "war", "terms": []}}},
            r"rules\.r\.terms",
            "empty list",
        ),
        (
            {"rules": {"r": {"type": "keyword", "label": "war"}}},
            r"rules\.r\.type",
            "not one of",
        ),
        (
            {"rules": {"r": {"type": "keywords", "label": "war", "terms": ["x"], "treshold": 1}}},
            r"rules\.r\.treshold",
            "unknown key",
        ),
        (  # another type's key was allowed, and ignored: the lexicon never voted
            {"rules": {"r": {"type": "keywords", "label": "war", "terms": ["x"], "lexicon": {}}}},
            r"rules\.r\.lexicon",
            "unknown key (case_sensitive, description, exclude, label, lead_paragraphs, "
            "min_count, min_distinct, quotes, scope, targets, terms, type, window)",
        ),
        (
            {"rules": {"r": {"type": "cues", "label": "war", "terms": ["x"], "lexicon": {}}}},
            r"rules\.r\.label",
            "not read by a cues rule with a lexicon",
        ),
        (
            {"rules": {"r": {"type": "cues", "label": "war", "terms": ["x"], "min_share": 0.5}}},
            r"rules\.r\.min_share",
            "read only with a lexicon",
        ),
        (
            {"rules": {"r": {"type": "keywords", "label": "war", "terms": ["x"], "min_count": 0}}},
            r"rules\.r\.min_count",
            "must be a number",
        ),
        ({"rules": {}}, "rules", "at least one rule"),
        (
            {
                "dawid_skene": 20,
                "rules": {"r": {"type": "keywords", "label": "war", "terms": ["x"]}},
            },
            "dawid_skene",
            "expected label model parameters",
        ),
        ({"rule": {}}, "rule", "unknown key"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(cfg, key, problem):
    with pytest.raises(RuleConfigError) as info:
        load_rules(cfg, TOPIC, ORIGIN)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{ORIGIN}: ")
    assert re.match(rf"{ORIGIN}: {key}[:. ]", message), message
    assert problem in message


def test_unresolvable_model_uri_names_file_and_key(mlflow_uri):
    from newsclf import tracking

    tracking.configure(mlflow_uri)
    cfg = {"rules": {"clf": {"type": "model", "uri": "models:/no-such-model@champion"}}}
    with pytest.raises(RuleConfigError, match=rf"^{ORIGIN}: rules\.clf\.uri: model models:/no-"):
        load_rules(cfg, TOPIC, ORIGIN)
    assert issubclass(RuleConfigError, NewsclfError)


@pytest.mark.parametrize("name", ["topic", "stance"])
def test_default_rule_sets_load_and_vote_every_label(name):
    task = Task.from_config(OmegaConf.load(ROOT / f"configs/task/{name}.yaml"))
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / f"configs/labeling/{name}.yaml"))
    rules = load_rules(cfg, task, f"configs/labeling/{name}.yaml")
    voted = {label for rule in rules.rules for label in rule.labels}
    assert voted == set(range(len(task.label_names)))  # every label can be reached


def test_default_stance_rules_read_who_is_blamed():
    task = Task.from_config(OmegaConf.load(ROOT / "configs/task/stance.yaml"))
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "configs/labeling/stance.yaml"))
    rules = load_rules(cfg, task, "stance.yaml")
    articles = [
        art(
            "The Kremlin's brutal war of aggression: Putin's regime lies and must be held "
            "accountable for war crimes in Russian-occupied towns.",
            aid="anti",
        ),
        art(
            "NATO expansion and Western hypocrisy provoked the crisis; Russia had legitimate "
            "security concerns, as the collective West ignores.",
            aid="pro",
        ),
        art("Football: the league final was played on Sunday.", aid="none"),
    ]
    matrix = rules.apply(articles)
    names = task.label_names
    voted = [{names[v] for v in row if v != ABSTAIN} for row in matrix]
    assert voted[0] == {"anti_russia"} and voted[1] == {"pro_russia"} and voted[2] == set()
    assert isinstance(matrix, np.ndarray) and matrix.shape == (3, len(rules.rules))


@pytest.mark.parametrize("name", ["topic", "stance"])
def test_grouped_matchers_find_what_one_flat_alternation_finds(name):
    """The matchers group terms by first letter for speed; on real text they must find exactly
    the matches (term, label, span) of the plain longest-first alternation."""
    from newsclf.articles import Source, ingest
    from newsclf.cleaning import Cleaner

    task = Task.from_config(OmegaConf.load(ROOT / f"configs/task/{name}.yaml"))
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / f"configs/labeling/{name}.yaml"))
    rules = load_rules(cfg, task, name)
    texts = [a.text for a in ingest(Source(path=str(ROOT / "seeds/articles")), Cleaner()).articles]
    texts = [*texts[::8], "Putin's RUSSIAN forces; the Kremlin-backed 'special military operation'"]
    matchers = [rules.targets] + [r.matcher for r in rules.rules if hasattr(r, "matcher")]
    checked = 0
    for matcher in filter(None, matchers):
        flat = re.compile(
            "|".join(f"({term_regex(term)})" for _, term in matcher.owners), matcher.regex.flags
        )
        for text in texts:
            expected = [
                (*matcher.owners[m.lastindex - 1], m.start(), m.end()) for m in flat.finditer(text)
            ]
            assert matcher.find(text) == expected
            checked += len(expected)
    assert checked > 100  # the rules do match the corpus


# A rule set exercising what the word index must get right: overlapping terms of one rule
# and across rules, wildcards, multi-word terms across paragraph borders, a term starting with
# punctuation, case-sensitive and user-regex rules (scanned), windows with the file's and a
# rule's own targets, exclusions, skipped quotations, and the title and lead scopes.
_MIXED_RULES = {
    "targets": [
        "Russia",
        "Russia's",
        "Russian forces",
        "Kremlin",
        "Putin*",
        "U.S.",
        "the Russians",
    ],
    "rules": {
        "overlap": {
            "type": "keywords",
            "label": "a",
            "terms": ["war", "war crime*", "war of aggression", "aggress*", "crime", "a", "I"],
        },
        "wild": {
            "type": "keywords",
            "label": "b",
            "min_count": 2,
            "terms": ["defen?e", "sanction*", "s*", "q&a", "%", "per cent", "self-defen?e"],
        },
        "lead": {
            "type": "keywords",
            "label": "a",
            "scope": "lead",
            "lead_paragraphs": 1,
            "terms": ["talks", "peace talks", "ends here", "here next"],
        },
        "title": {"type": "keywords", "label": "b", "scope": "title", "terms": ["kremlin*"]},
        "exact_case": {
            "type": "keywords",
            "label": "c",
            "case_sensitive": True,
            "terms": ["NATO", "Kiev regime"],
        },
        "user_regex": {"type": "regex", "label": "c", "patterns": [r"\bsanction(s|ed)\b", r"\d+%"]},
        "lexicon": {
            "type": "lexicon",
            "min_count": 2,
            "lexicon": {"a": ["brutal*", "war*"], "b": ["talk*", "deal"], "c": ["market*"]},
        },
        "cue": {
            "type": "cues",
            "label": "a",
            "window": 3,
            "quotes": "skip",
            "exclude": ["football"],
            "terms": ["brutal*", "illegal", "war crime*"],
        },
        "own_targets": {
            "type": "cues",
            "window": 4,
            "targets": ["the West", "NATO", "Washington's"],
            "lexicon": {"c": ["hypocris*", "provocation*"], "b": ["talks"]},
        },
    },
}

_PIECES = [
    "Russia",
    "Russia's",
    "RUSSIAN forces",
    "russian Forces",
    "the Russians",
    "Kremlin",
    "Kremlin's",
    "Putin",
    "PUTIN's",
    "U.S.",
    "u.s",
    "US",
    "the West",
    "NATO",
    "nato",
    "Washington's",
    "war",
    "War crimes",
    "war-crime",
    "war of aggression",
    "aggressive",
    "crime",
    "a",
    "I",
    "defence",
    "defense",
    "Defenxe",
    "self-defence",
    "sanctions",
    "sanctioned",
    "S",
    "so",
    "Q&A",
    "q&a",
    "%",
    "5%",
    " % ",
    "per cent",
    "peace talks",
    "talks",
    "Talks",
    "ends here",
    "here next",
    "Kiev regime",
    "kiev regime",
    "brutal",
    "brutally",
    "illegal",
    "hypocrisy",
    "provocations",
    "deal",
    "markets",
    "football",
    "don't",
    "it's",
    "rock'n'roll",
    "'quoted'",
    '"brutal war crimes"',
    "“illegal”",
    "‘Russia’s war’",
    "\u212aremlin",
    "\u0130stanbul",
    "\u017fanctions",
    "\u0131llegal",
    "straße",
    "ﬁle",
    "_x_",
    "42",
    "--",
    ",",
    ".",
    ";",
    "(",
    ")",
]
_GLUE = [" ", " ", " ", "  ", "\n", "\n\n", "\n\n\n\n", "\n \n", "-", "'", "", ", ", ". "]


def _mixed_texts(n: int, seed: int = 0) -> list[Article]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 40))
        text = "".join(str(rng.choice(_PIECES)) + str(rng.choice(_GLUE)) for _ in range(k))
        title, body = [*text.split("\n\n", 1), ""][:2] if i % 3 else ("", text)
        out.append(Article(id=str(i), title=title, body=body))
    out.append(Article(id="edge", title="Kremlin talks ends", body="here next war\n\nwar crime"))
    return out


def test_word_index_finds_what_a_plain_scan_finds(monkeypatch):
    """Rules find their terms through a word index (one pass per article, not one regex scan
    per rule); votes, target mentions and every matcher's matches must equal a plain
    ``finditer`` of each matcher's regex on every scope, texts with case variants, letters
    that fold to ASCII (K, ſ, ı), İ (two letters lowercased), quotes and odd paragraphs."""
    from newsclf.labelling import rules as mod

    task = Task(name="t", labels={"a": "", "b": "", "c": ""})
    articles = _mixed_texts(600)
    fast = load_rules(_MIXED_RULES, task, "mixed")
    assert sum(m.keys is None for m in fast.scanner().matchers) == 1  # the user regexes
    matrix = fast.apply(articles)
    # every matcher on every scope text, against its own regex
    checked = 0
    for article in articles:
        view = mod.ArticleView(article, fast.scanner())
        for rule in fast.rules:
            text = view.scope(rule.scope, rule.lead_paragraphs)
            for matcher in rule.matchers():
                expected = [
                    (*matcher.owners[m.lastindex - 1], m.start(), m.end())
                    for m in matcher.regex.finditer(text)
                ]
                assert view.find(text, rule.scope_key, matcher) == expected, (text, rule.name)
                assert matcher.find(text) == expected
                checked += len(expected)
    assert checked > 2000
    # the reference: every matcher scans, tokens come from the token regex
    slow = load_rules(_MIXED_RULES, task, "mixed")
    for matcher in slow.scanner().matchers:
        matcher.keys = None
    monkeypatch.setattr(mod, "_token_starts", lambda split: None)
    reference = np.array([[rule.vote(mod.ArticleView(a)) for rule in slow.rules] for a in articles])
    assert np.array_equal(matrix, reference)
    assert np.array_equal(fast.mentions_target(articles), slow.mentions_target(articles))
    for j in range(len(fast.rules)):  # each rule votes somewhere and abstains somewhere
        assert (matrix[:, j] >= 0).any() and (matrix[:, j] == ABSTAIN).any(), fast.names[j]


def test_token_offsets_from_the_word_split_equal_the_token_regex():
    from newsclf.labelling.rules import _TOKEN, _splits_word, _token_starts, split_words

    rng = np.random.default_rng(1)
    alphabet = ["a", "B", "'", "'", " ", "-", "1", "_", "é", "\n", "İ"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 14))))
        starts = _token_starts(split_words(text))
        if starts is not None:  # (None: İ lowercases to two letters; the regex is used)
            assert starts == [m.start() for m in _TOKEN.finditer(text)], text
    assert _splits_word("war crimes", 5) and not _splits_word("war crimes", 3)
    assert not _splits_word("war", 3) and not _splits_word("war", 0)


def test_rule_sets_applied_together_equal_each_alone(monkeypatch):
    """newsclf-dataset votes all tasks' rule sets article by article (apply_rule_sets): an
    article is split into words once for all sets, its scopes, token offsets and quotations
    shared, each set with its own candidates and targets. The votes must equal each set's own
    apply (a set with require_target among them), and the split be made once per article."""
    from newsclf.labelling import rules as mod

    task = Task(name="t", labels={"a": "", "b": "", "c": ""})
    articles = _mixed_texts(400, seed=3)
    sets = {
        "plain": load_rules(_MIXED_RULES, task, "plain"),
        "target": load_rules({**_MIXED_RULES, "require_target": True}, task, "target"),
        "own": load_rules(
            {"targets": ["war", "talks"], "rules": {"cue": _MIXED_RULES["rules"]["own_targets"]}},
            task,
            "own",
        ),
    }
    splits = []
    split_words = mod.split_words
    monkeypatch.setattr(mod, "split_words", lambda text: splits.append(text) or split_words(text))
    alone = {key: rules.apply(articles) for key, rules in sets.items()}
    n_alone = len(splits)
    mentions = {key: rules.mentions_target(articles) for key, rules in sets.items()}
    together = mod.apply_rule_sets(sets, articles, mentions)
    assert together.keys() == alone.keys()
    for key in sets:
        assert np.array_equal(together[key], alone[key]), key
        assert (together[key] >= 0).any(), key
    assert (together["target"][~mentions["target"]] == ABSTAIN).all()  # no target: abstain
    # an article's text is split once together; alone, each set that reads it splits it again
    texts = {a.text for a in articles}
    n_together = sum(t in texts for t in splits[n_alone:])
    assert len(articles) * 0.9 < n_together <= len(articles)
    assert sum(t in texts for t in splits[:n_alone]) > 2 * n_together
