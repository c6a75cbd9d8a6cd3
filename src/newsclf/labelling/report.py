"""The labelling report: how the rules and the label model did, with Snorkel's ``LFAnalysis``
as the reference point.

Per rule: the labels it votes (polarity), coverage, overlaps, conflicts, and accuracy against
gold where gold exists (plus the label model's own estimate of it). Per task: coverage and
accuracy of the weak labels, the label distributions of gold and weak labels, the weak labels'
accuracy by how many rules agreed (next to the label model's confidence), and how many
articles stayed unlabelled and why.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from newsclf.labelling.rules import ABSTAIN, Labelled, RuleSet

_METRIC_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")  # MLflow metric names allow only these


def rule_summary(
    matrix: np.ndarray,
    gold: np.ndarray,
    names: Sequence[str],
    label_names: Sequence[str],
    weights: np.ndarray | None = None,
) -> list[dict]:
    """One row per rule: polarity, coverage, overlaps, conflicts, correct, incorrect,
    accuracy (``LFAnalysis.lf_summary``); ``gold`` holds -1 where there is no gold label.
    ``weights``: how many articles each row stands for (one each by default)."""
    w = np.ones(matrix.shape[0], dtype=np.int64) if weights is None else weights
    n = max(int(w.sum()), 1)
    voted = matrix != ABSTAIN
    n_votes = voted.sum(axis=1)
    rows = []
    for j, name in enumerate(names):
        mine = voted[:, j]
        others = n_votes - mine
        conflict = np.zeros(matrix.shape[0], dtype=bool)
        for k in range(matrix.shape[1]):
            if k != j:
                conflict |= mine & voted[:, k] & (matrix[:, k] != matrix[:, j])
        scored = mine & (gold != ABSTAIN)
        correct = int(w[scored][matrix[scored, j] == gold[scored]].sum())
        incorrect = int(w[scored].sum()) - correct
        rows.append(
            {
                "rule": name,
                "polarity": [label_names[v] for v in sorted(set(matrix[mine, j].tolist()))],
                "votes": int(w[mine].sum()),
                "coverage": float(w[mine].sum() / n),
                "overlaps": float(w[mine & (others > 0)].sum() / n),
                "conflicts": float(w[conflict].sum() / n),
                "correct": correct,
                "incorrect": incorrect,
                "accuracy": correct / (correct + incorrect) if correct + incorrect else None,
            }
        )
    return rows


def agreement_summary(
    matrix: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    gold: np.ndarray,
    weights: np.ndarray | None = None,
) -> list[dict]:
    """Weak labels grouped by how many votes agree with them (1, 2, 3+) and whether any vote
    disagrees: count, the label model's mean confidence and the accuracy against gold."""
    w = np.ones(matrix.shape[0], dtype=np.int64) if weights is None else weights
    has_weak = labels != ABSTAIN
    voted = matrix != ABSTAIN
    agree = (voted & (matrix == labels[:, None])).sum(axis=1)
    disagree = voted.sum(axis=1) - agree
    rows = []
    for low, high, name in ((1, 1, "1"), (2, 2, "2"), (3, None, "3+")):
        in_band = has_weak & (agree >= low) & (agree <= (high or matrix.shape[1]))
        for dissent, mask in (("none", disagree == 0), ("some", disagree > 0)):
            group = in_band & mask
            if not group.any():
                continue
            scored = group & (gold != ABSTAIN)
            rows.append(
                {
                    "agreeing_votes": name,
                    "disagreeing_votes": dissent,
                    "n": int(w[group].sum()),
                    "mean_confidence": float(np.average(confidence[group], weights=w[group])),
                    "n_scored": int(w[scored].sum()),
                    "accuracy": float(np.average(labels[scored] == gold[scored], weights=w[scored]))
                    if scored.any()
                    else None,
                }
            )
    return rows


def build_report(
    labelled: Labelled,
    rules: RuleSet,
    gold: Mapping[str, str],
    min_confidence: float,
    label_model: str,
    rules_file: str,
) -> dict:
    """The report as a JSON-able dict. A ``labelled`` with ``weights`` holds distinct rows
    (vote pattern, target mention, gold label), each standing for that many articles."""
    names = rules.task.label_names
    ids = labelled.ids
    gold_ids = np.array([names.index(gold[a]) if a in gold else ABSTAIN for a in ids], dtype=int)
    has_gold = gold_ids != ABSTAIN
    labels, conf = labelled.labels, labelled.confidence
    has_weak = labels != ABSTAIN
    confident = has_weak & (conf >= min_confidence)
    w = labelled.weights
    if w is None:
        w = np.ones(len(ids), dtype=np.int64)
    summary = rule_summary(labelled.matrix, gold_ids, rules.names, names, w)
    for row, rule in zip(summary, rules.rules, strict=True):
        row["type"] = rule.kind
    if labelled.learned_accuracy is not None:
        for row, est in zip(summary, labelled.learned_accuracy, strict=True):
            row["learned_accuracy"] = None if np.isnan(est) else float(est)
    n = int(w.sum())

    def accuracy(mask: np.ndarray) -> float | None:
        scored = mask & has_gold
        if not scored.any():
            return None
        return float(np.average(labels[scored] == gold_ids[scored], weights=w[scored]))

    def share(mask: np.ndarray) -> float:
        return float(w[mask].sum() / n) if n else 0.0

    def count(mask: np.ndarray) -> int:
        return int(w[mask].sum())

    reasons = [
        r if r else ("low_confidence" if not confident[i] else "")
        for i, r in enumerate(labelled.reason)
    ]
    no_gold = ~has_gold
    unlabelled: Counter = Counter()
    for i, r in enumerate(reasons):
        if r and no_gold[i]:
            unlabelled[r] += int(w[i])
    confusion: dict[str, dict[str, int]] = {g: dict.fromkeys(names, 0) for g in names}
    both = has_gold & has_weak
    for g, lab, k in zip(gold_ids[both], labels[both], w[both], strict=True):
        confusion[names[g]][names[lab]] += int(k)
    return {
        "task": rules.task.name,
        "rules_file": rules_file,
        "label_model": label_model,
        "min_confidence": min_confidence,
        "n_articles": n,
        "n_gold": count(has_gold),
        "votes_coverage": share((labelled.matrix != ABSTAIN).any(axis=1)),
        "weak": {
            "n_labelled": count(has_weak),
            "coverage": share(has_weak),
            "n_confident": count(confident),
            "coverage_confident": share(confident),
            "n_scored": count(has_weak & has_gold),
            # the share of gold-labelled articles that got a weak label: for stance, the
            # articles of the task itself (those not about Russia have no gold stance)
            "coverage_of_gold": float(count(has_weak & has_gold) / count(has_gold))
            if has_gold.any()
            else None,
            "accuracy": accuracy(has_weak),
            "accuracy_confident": accuracy(confident),
            "n_train": count(confident & no_gold),
        },
        "rules": summary,
        "label_distribution": {
            label: {
                "gold": count(gold_ids == k),
                "weak": count(labels == k),
                "weak_confident": count((labels == k) & confident),
                "weak_added_to_train": count((labels == k) & confident & no_gold),
            }
            for k, label in enumerate(names)
        },
        "unlabelled": {
            "n_without_gold": count(no_gold),
            "n_unlabelled": int(sum(unlabelled.values())),
            "by_reason": dict(sorted(unlabelled.items())),
        },
        "confusion_gold_by_weak": confusion,
        "by_agreement": agreement_summary(labelled.matrix, labels, conf, gold_ids, w),
    }


REASONS = {
    "no_target": "no rule voted and the article never mentions a target",
    "no_votes": "no rule voted",
    "tie": "the votes tie between labels",
    "low_confidence": "the label model's confidence is below min_confidence",
}


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def render_markdown(report: Mapping) -> str:
    """The report as Markdown: headline numbers, the rule table, distributions, reasons."""
    weak = report["weak"]
    lines = [
        f"# Labelling report: {report['task']}",
        "",
        f"Rules `{report['rules_file']}`, label model `{report['label_model']}`, weak labels "
        f"join training at confidence >= {report['min_confidence']}.",
        "",
        f"- articles: {report['n_articles']} ({report['n_gold']} with a gold label)",
        f"- at least one rule voted: {_fmt(report['votes_coverage'])}",
        f"- weak label coverage: {_fmt(weak['coverage'])} ({weak['n_labelled']} articles); "
        f"at min confidence: {_fmt(weak['coverage_confident'])} ({weak['n_confident']})",
        f"- weak label accuracy against gold: {_fmt(weak['accuracy'])} on {weak['n_scored']} "
        f"articles ({_fmt(weak['coverage_of_gold'])} of those with a gold label); "
        f"at min confidence: {_fmt(weak['accuracy_confident'])}",
        f"- weak labels added to training (articles without gold): {weak['n_train']}",
        "",
        "## Rules",
        "",
    ]
    has_learned = any("learned_accuracy" in r for r in report["rules"])
    header = ["rule", "type", "polarity", "coverage", "overlaps", "conflicts", "correct"]
    header += ["incorrect", "accuracy"] + (["learned accuracy"] if has_learned else [])
    lines += ["| " + " | ".join(header) + " |", "|---|---|---|" + "---:|" * (len(header) - 3)]
    for r in report["rules"]:
        cells = [r["rule"], r["type"], r["polarity"], r["coverage"], r["overlaps"]]
        cells += [r["conflicts"], r["correct"], r["incorrect"], r["accuracy"]]
        if has_learned:
            cells.append(r.get("learned_accuracy"))
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines += [
        "",
        "Coverage, overlaps and conflicts are shares of all articles (as in Snorkel's "
        "`LFAnalysis`); accuracy is against gold labels where they exist; learned accuracy is "
        "the label model's estimate without gold labels.",
        "",
        "## Label distribution",
        "",
        "| label | gold | weak | weak at min confidence | weak added to train |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, d in report["label_distribution"].items():
        lines.append(
            f"| {label} | {d['gold']} | {d['weak']} | {d['weak_confident']} | "
            f"{d['weak_added_to_train']} |"
        )
    agreement = report.get("by_agreement") or []
    if agreement:
        lines += [
            "",
            "## Weak labels by agreement",
            "",
            "How many rules voted for the weak label and whether any voted against it; where "
            "the label model's confidence runs above the accuracy against gold, its confidence "
            "is optimistic for that group.",
            "",
            "| agreeing votes | disagreeing votes | articles | mean confidence | scored "
            "| accuracy |",
            "|---|---|---:|---:|---:|---:|",
        ]
    for r in agreement:
        cells = [r["agreeing_votes"], r["disagreeing_votes"], r["n"], r["mean_confidence"]]
        cells += [r["n_scored"], r["accuracy"]]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    un = report["unlabelled"]
    lines += ["", "## Unlabelled", ""]
    if not un["n_without_gold"]:
        lines.append("Every article has a gold label: training needs no weak label.")
    else:
        lines += [
            f"{un['n_unlabelled']} of the {un['n_without_gold']} articles without a gold label "
            "got no weak label for training" + (":" if un["by_reason"] else "."),
            "",
        ]
    lines += [
        f"- {reason}: {n} ({REASONS.get(reason, reason)})" for reason, n in un["by_reason"].items()
    ]
    if report["n_gold"]:
        names = list(report["confusion_gold_by_weak"])
        lines += [
            "",
            "## Weak labels against gold (rows: gold, columns: weak)",
            "",
            "| gold \\ weak | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for g, row in report["confusion_gold_by_weak"].items():
            lines.append(f"| {g} | " + " | ".join(str(row[w]) for w in names) + " |")
    return "\n".join(lines) + "\n"


def votes_csv(
    labelled: Labelled, rules: RuleSet, gold: Mapping[str, str], min_confidence: float
) -> str:
    """One row per article: gold, weak label, confidence, why unlabelled, each rule's vote."""
    names = rules.task.label_names
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "gold", "weak_label", "weak_confidence", "reason", *rules.names])
    for i, aid in enumerate(labelled.ids):
        lab, conf = int(labelled.labels[i]), float(labelled.confidence[i])
        reason = labelled.reason[i] or ("low_confidence" if conf < min_confidence else "")
        votes = [names[v] if v != ABSTAIN else "" for v in labelled.matrix[i]]
        weak = names[lab] if lab != ABSTAIN else ""
        writer.writerow([aid, gold.get(aid, ""), weak, f"{conf:.4f}", reason, *votes])
    return out.getvalue()


def metrics(report: Mapping) -> dict[str, float]:
    """Flat numeric metrics for MLflow: the headline numbers and per-rule coverage/accuracy."""
    weak = report["weak"]
    out = {
        "weak_votes_coverage": report["votes_coverage"],
        "weak_coverage": weak["coverage"],
        "weak_coverage_confident": weak["coverage_confident"],
        "weak_n_train": weak["n_train"],
        "weak_n_unlabelled": report["unlabelled"]["n_unlabelled"],
    }
    if weak["accuracy"] is not None:
        out["weak_accuracy"] = weak["accuracy"]
        out["weak_coverage_of_gold"] = weak["coverage_of_gold"]
    if weak["accuracy_confident"] is not None:
        out["weak_accuracy_confident"] = weak["accuracy_confident"]
    for r in report["rules"]:
        name = _METRIC_UNSAFE.sub("_", r["rule"])
        out[f"rule.{name}.coverage"] = r["coverage"]
        out[f"rule.{name}.conflicts"] = r["conflicts"]
        if r["accuracy"] is not None:
            out[f"rule.{name}.accuracy"] = r["accuracy"]
    return out


def rule_table(report: Mapping) -> dict[str, list]:
    """The per-rule rows as columns (for ``mlflow.log_table``)."""
    rows = report["rules"]
    columns = list(rows[0]) if rows else []
    return {c: [_fmt(r.get(c)) if c == "polarity" else r.get(c) for r in rows] for c in columns}
