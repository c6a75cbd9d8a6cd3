"""Label models (majority vote, Dawid-Skene EM) and the labelling report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from newsclf.errors import NewsclfError
from newsclf.labelling.label_model import DawidSkene, MajorityVote, make_label_model, vote_counts
from newsclf.labelling.report import (
    agreement_summary,
    build_report,
    metrics,
    render_markdown,
    rule_summary,
)
from newsclf.labelling.rules import Labelled, load_rules
from newsclf.tasks import Task

A = -1  # abstain


def synthetic(seed: int, n: int = 3000, k: int = 3, p=(0.5, 0.3, 0.2)):
    """True labels and votes of unipolar rules with known firing rates, plus one noisy
    multi-label rule: the setting of keyword rules."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, n, p=list(p))
    spec = [(0, 0.6, 0.05), (0, 0.4, 0.25), (1, 0.6, 0.05), (1, 0.3, 0.2), (2, 0.5, 0.03)]
    spec += [(2, 0.4, 0.15), (0, 0.3, 0.3)]
    cols = []
    for label, own, other in spec:
        fire = np.where(y == label, rng.random(n) < own, rng.random(n) < other)
        cols.append(np.where(fire, label, A))
    fire, right = rng.random(n) < 0.5, rng.random(n) < 0.7
    cols.append(np.where(fire, np.where(right, y, (y + rng.integers(1, k, n)) % k), A))
    return np.stack(cols, axis=1), y


def empirical_precision(L: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.array([(L[L[:, j] != A, j] == y[L[:, j] != A]).mean() for j in range(L.shape[1])])


def test_majority_vote_counts_and_leaves_ties_and_empty_rows_out():
    L = np.array([[0, 0, 1], [0, 1, A], [A, A, A], [2, A, A]])
    w = MajorityVote().fit(L, 3).weak_labels(L)
    assert w.labels.tolist() == [0, A, A, 2]
    assert w.reason == ["", "tie", "no_votes", ""]
    assert w.confidence[0] == pytest.approx(2 / 3) and w.confidence[3] == 1.0
    assert vote_counts(L, 3)[0].tolist() == [2, 1, 0]


@pytest.mark.parametrize(
    ("seed", "balance", "params"),
    [
        (0, (1 / 3, 1 / 3, 1 / 3), {}),  # the default assumes balanced labels, as Snorkel's
        (1, (1 / 3, 1 / 3, 1 / 3), {}),
        (2, (0.5, 0.3, 0.2), {"learn_class_prior": True}),  # skewed labels: learn the balance
    ],
)
def test_dawid_skene_learns_rule_accuracies_without_gold(seed, balance, params):
    L, y = synthetic(seed, p=balance)
    ds = DawidSkene(**params).fit(L, 3)
    learned, actual = ds.rule_precision(), empirical_precision(L, y)
    assert np.abs(learned - actual).max() < 0.1, (learned.round(2), actual.round(2))
    # it ranks the rules as the truth does (rank correlation)
    ranks = [np.argsort(np.argsort(v)) for v in (learned, actual)]
    assert np.corrcoef(*ranks)[0, 1] > 0.8
    w = ds.weak_labels(L)
    mv = MajorityVote().fit(L, 3).weak_labels(L)
    has, mv_has = w.labels != A, mv.labels != A
    assert has.mean() > mv_has.mean() + 0.2  # resolves majority-vote ties
    assert (w.labels[has] == y[has]).mean() > 0.75
    confident = w.confidence >= 0.9  # its confidence means something
    assert (w.labels[confident] == y[confident]).mean() > (w.labels[has] == y[has]).mean()
    assert (w.labels[(L == A).all(axis=1)] == A).all()  # never labels an article from priors


def test_dawid_skene_is_deterministic_and_keeps_label_meaning():
    L, _ = synthetic(3, n=400)
    a = DawidSkene().fit(L, 3).predict_proba(L)
    b = DawidSkene().fit(L, 3).predict_proba(L)
    assert np.array_equal(a, b)
    # one rule voting one label: its articles get that label, not a swapped one
    single = np.array([[1], [1], [A], [A], [A]])
    assert DawidSkene().fit(single, 3).weak_labels(single).labels.tolist() == [1, 1, A, A, A]


def test_dawid_skene_never_picks_a_label_no_rule_voted_for():
    # a fitted model whose class prior and abstain pattern favour label 1 over a lone 0 vote
    model = DawidSkene().fit(np.array([[0], [A]]), 3)
    model.theta_ = np.array([[[0.3, 0, 0, 0.7], [0.3, 0, 0, 0.7], [0.3, 0, 0, 0.7]]])
    model.class_prior_ = np.array([0.2, 0.6, 0.2])
    L = np.array([[0], [A]])
    assert model.predict_proba(L)[0].argmax() == 1  # the posterior alone would say 1
    weak = model.weak_labels(L)
    assert weak.labels.tolist() == [0, A] and weak.confidence[0] == pytest.approx(0.2)
    assert weak.proba[0].tolist() == pytest.approx([0.2, 0.6, 0.2])  # the full posterior


def test_label_model_bad_input():
    with pytest.raises(NewsclfError, match=r"values must be -1\.\.2"):
        DawidSkene().fit(np.array([[3]]), 3)
    with pytest.raises(NewsclfError, match="not one of majority, dawid_skene"):
        make_label_model("snorkel")
    # a misspelt parameter is named with its config key and the nearest real one (it was
    # Python's "__init__() got an unexpected keyword argument")
    with pytest.raises(NewsclfError) as err:
        make_label_model("dawid_skene", prior_strenght=20)
    assert str(err.value) == (
        "weak.label_model_params.prior_strenght: DawidSkene has no parameter 'prior_strenght' "
        "(did you mean prior_strength? it takes max_iter, tol, prior_strength, prior_accuracy, "
        "learn_class_prior)"
    )
    with pytest.raises(NewsclfError, match=r"no parameter 'bogus' \(it takes max_iter, "):
        make_label_model("dawid_skene", bogus=1)
    with pytest.raises(NewsclfError, match="prior_accuracy"):
        DawidSkene(prior_accuracy=1.5).fit(np.array([[0]]), 2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_iter": "ten"}, r"max_iter='ten' must be a whole number >= 1"),
        ({"max_iter": 0}, r"max_iter=0 must be a whole number >= 1"),
        ({"max_iter": float("inf")}, r"max_iter=inf must be a whole number >= 1"),
        ({"max_iter": float("nan")}, r"max_iter=nan must be a whole number >= 1"),
        ({"tol": float("nan")}, r"tol=nan must be a number >= 0"),
        ({"prior_strength": float("inf")}, r"prior_strength=inf must be a number >= 0"),
        ({"tol": "small"}, r"tol='small' must be a number >= 0"),
        ({"prior_strength": -1}, r"prior_strength=-1 must be a number >= 0"),
        ({"prior_accuracy": True}, r"prior_accuracy=True must be a number in \(0, 1\)"),
        ({"learn_class_prior": "yes"}, r"learn_class_prior='yes' must be true or false"),
    ],
)
def test_label_model_params_are_checked_when_made(params, message):
    # a config typo is one line naming the parameter, before any rule runs
    with pytest.raises(NewsclfError, match=rf"^dawid_skene: {message}$"):
        make_label_model("dawid_skene", **params)


def test_rule_summary_matches_lfanalysis_definitions():
    # rules: r0 votes 0 twice; r1 votes 0 and 1; r2 votes 1 once
    L = np.array([[0, 0, A], [0, 1, 1], [A, A, A], [A, A, A]])
    gold = np.array([0, 1, A, 0])
    rows = rule_summary(L, gold, ["r0", "r1", "r2"], ["x", "y"])
    r0, r1, r2 = rows
    assert r0["coverage"] == 0.5 and r0["overlaps"] == 0.5 and r0["conflicts"] == 0.25
    assert (r0["correct"], r0["incorrect"], r0["accuracy"]) == (1, 1, 0.5)
    assert r1["polarity"] == ["x", "y"] and r1["accuracy"] == 1.0
    assert r2["coverage"] == 0.25 and r2["conflicts"] == 0.25 and r2["correct"] == 1


def test_agreement_summary_groups_weak_labels_by_agreeing_and_dissenting_votes():
    L = np.array([[0, A, A], [1, A, A], [0, 0, 1], [0, 0, 0], [1, 1, 0], [A, A, A]])
    labels = np.array([0, 1, 0, 0, 1, A])
    confidence = np.array([0.6, 0.8, 0.7, 0.99, 0.9, 0.0])
    gold = np.array([0, 0, 0, A, 1, 1])
    rows = {
        (r["agreeing_votes"], r["disagreeing_votes"]): r
        for r in agreement_summary(L, labels, confidence, gold)
    }
    assert set(rows) == {("1", "none"), ("2", "some"), ("3+", "none")}
    one = rows[("1", "none")]
    assert one["n"] == 2 and one["mean_confidence"] == pytest.approx(0.7)
    assert one["accuracy"] == 0.5  # the second article's single vote is wrong
    assert rows[("2", "some")]["n"] == 2 and rows[("2", "some")]["accuracy"] == 1.0
    three = rows[("3+", "none")]
    assert three["n"] == 1 and three["n_scored"] == 0 and three["accuracy"] is None


def test_report_counts_coverage_accuracy_distributions_and_reasons():
    task = Task("t", {"x": "", "y": "", "z": ""})
    rules = load_rules(
        {"rules": {f"r{i}": {"type": "keywords", "label": "x", "terms": ["a"]} for i in range(2)}},
        task,
        "rules.yaml",
    )
    labelled = Labelled(
        ids=["g1", "g2", "u1", "u2", "u3", "u4"],
        matrix=np.array([[0, 0], [0, A], [0, 0], [0, A], [A, A], [0, A]]),
        labels=np.array([0, 0, 0, 0, A, 1]),
        confidence=np.array([0.9, 0.6, 0.95, 0.5, 0.0, 0.8]),
        reason=["", "", "", "", "no_votes", ""],
        learned_accuracy=np.array([0.9, 0.7]),
    )
    gold = {"g1": "x", "g2": "y"}
    report = build_report(labelled, rules, gold, 0.7, "dawid_skene", "rules.yaml")
    weak = report["weak"]
    assert weak["coverage"] == pytest.approx(5 / 6) and weak["n_confident"] == 3
    assert weak["accuracy"] == 0.5 and weak["coverage_of_gold"] == 1.0
    assert weak["n_train"] == 2  # u1 and u4: no gold, confident
    assert report["unlabelled"] == {
        "n_without_gold": 4,
        "n_unlabelled": 2,
        "by_reason": {"low_confidence": 1, "no_votes": 1},
    }
    assert report["label_distribution"]["x"] == {
        "gold": 1,
        "weak": 4,
        "weak_confident": 2,
        "weak_added_to_train": 1,
    }
    assert report["confusion_gold_by_weak"]["y"]["x"] == 1
    assert report["rules"][0]["learned_accuracy"] == 0.9
    json.dumps(report)  # JSON-able
    text = render_markdown(report)
    assert "| r0 | keywords | x | 0.833 |" in text and "no_votes: 1" in text
    assert "| 2 | none | 2 | 0.925 | 1 | 1.000 |" in text  # g1 and u1: both rules agree
    assert metrics(report)["rule.r0.accuracy"] == 0.5
    # every article with gold: the section says so (it was "0 of the 0 articles ...:")
    all_gold = render_markdown(
        {
            **report,
            "unlabelled": {
                **report["unlabelled"],
                "n_without_gold": 0,
                "n_unlabelled": 0,
                "by_reason": {},
            },
        }
    )
    assert "## Unlabelled\n\nEvery article has a gold label: training needs no weak label." in (
        all_gold
    )
    assert "2 of the 4 articles without a gold label got no weak label for training:" in text
