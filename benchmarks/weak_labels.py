"""What weak labels are worth on the bundled corpus, and what the annotation loop adds.

    .venv/bin/python benchmarks/weak_labels.py [--k 25 50 100] [--repeats 2]

Per task, over repeated stratified 5-fold cross-validation of the gold-labelled articles (more
stable than the 51-article stance test split, where one article moves macro-F1 by two points),
the default model (``configs/model/tfidf_logreg.yaml``) is trained on the training folds with:

- ``gold``: their gold labels (the reference);
- ``weak``: their weak labels only (the task's rules and label model as ``newsclf-dataset``
  uses them, at ``weak.min_confidence``), gold held back;
- ``gold, rule-covered articles``: gold labels of just the articles the weak labels cover: what
  perfect rules with the same coverage would give;
- ``weak + K conflict``: weak labels plus gold labels for the K training articles
  ``newsclf-annotate strategy=conflict`` would export first (most conflicting rule votes);
- ``weak + K random`` and ``K random gold``: the same number of annotations picked at random,
  with and without the weak labels.

Every score is macro-F1 on the held-out fold's gold labels. The label model sees no gold label.
Writes ``benchmarks/results/weak_labels.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from sklearn.metrics import f1_score
from sklearn.model_selection import RepeatedStratifiedKFold

from newsclf.annotate import conflict_scores, rank
from newsclf.articles import Source, ingest
from newsclf.cleaning import Cleaner
from newsclf.labelling.gold import load_annotations
from newsclf.labelling.label_model import make_label_model
from newsclf.labelling.rules import ABSTAIN, label_articles, load_rules
from newsclf.models import build_model
from newsclf.tasks import Task

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
RESULTS = Path(__file__).resolve().parent / "results"
TASKS = ("topic", "stance")


def weak_labels(articles: list, task: Task) -> tuple[np.ndarray, np.ndarray, object]:
    """Label ids (-1 = none) and confidences from the task's default rules, and the rules."""
    rules_cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "labeling" / f"{task.name}.yaml"))
    rules = load_rules(rules_cfg, task, f"configs/labeling/{task.name}.yaml")
    labelled = label_articles(articles, rules, make_label_model("dawid_skene", **rules.dawid_skene))
    return labelled.labels, labelled.confidence, rules


def fit_score(model_cfg, texts: list[str], x, y, test, y_test) -> float:
    """Macro-F1 on articles ``test`` (gold ``y_test``) of the model fit on ``x`` with ``y``."""
    model = build_model(model_cfg).fit([texts[i] for i in x], y)
    return float(f1_score(y_test, model.predict([texts[i] for i in test]), average="macro"))


def run_task(task: Task, articles: list, gold: dict[str, str], args) -> dict:
    model_cfg = OmegaConf.merge({"seed": 42}, OmegaConf.load(CONFIGS / "model/tfidf_logreg.yaml"))
    min_conf = float(OmegaConf.load(CONFIGS / "dataset.yaml").weak.min_confidence)
    names = task.label_names
    weak, confidence, rules = weak_labels(articles, task)
    keep = [i for i, a in enumerate(articles) if a.id in gold]  # gold-labelled articles only
    arts = [articles[i] for i in keep]
    texts = [a.text for a in arts]
    gold_ids = np.array([names.index(gold[a.id]) for a in arts])
    weak = np.where(confidence[keep] >= min_conf, weak[keep], ABSTAIN)
    conflict = conflict_scores(arts, {task.name: rules})
    rng = np.random.default_rng(42)
    scores: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        scores.setdefault(name, []).append(value)

    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=args.repeats, random_state=42)
    for train, test in folds.split(texts, gold_ids):
        score = partial(fit_score, model_cfg, texts, test=test, y_test=gold_ids[test])
        covered = train[weak[train] != ABSTAIN]
        add("gold", score(train, gold_ids[train]))
        add("weak", score(covered, weak[covered]))
        add("gold, rule-covered articles", score(covered, gold_ids[covered]))
        held_out = {task.name: {arts[i].id for i in test}}  # task -> ids not to propose
        for k in args.k:
            # newsclf-annotate's order: most conflicting votes first, then the fewest votes
            picked = np.array([arts.index(c.article) for c in rank(arts, conflict, k, held_out)])
            random = rng.choice(train, k, replace=False)
            for name, chosen in ((f"weak + {k} conflict", picked), (f"weak + {k} random", random)):
                labels = weak.copy()
                labels[chosen] = gold_ids[chosen]
                x = train[labels[train] != ABSTAIN]
                add(name, score(x, labels[x]))
            add(f"{k} random gold", score(random, gold_ids[random]))
    labelled = weak != ABSTAIN
    return {
        "task": task.name,
        "n_gold": len(arts),
        "weak_coverage": float(labelled.mean()),
        "weak_accuracy": float((weak[labelled] == gold_ids[labelled]).mean()),
        "min_confidence": min_conf,
        "folds": len(scores["gold"]),
        "scores": {
            k: (float(np.mean(v)), float(np.std(v) / np.sqrt(len(v)))) for k, v in scores.items()
        },
    }


def render(results: list[dict], started: str) -> str:
    lines = [
        f"# Weak labels on the bundled corpus ({started})",
        "",
        "Macro-F1 of `tfidf_logreg` on held-out gold folds (mean ± standard error over "
        f"{results[0]['folds']} folds), trained on:",
        "",
        "| training labels | " + " | ".join(r["task"] for r in results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for name in results[0]["scores"]:
        row = [f"{r['scores'][name][0]:.3f} ± {r['scores'][name][1]:.3f}" for r in results]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Weak labels at confidence >= "
        f"{results[0]['min_confidence']}: "
        + "; ".join(
            f"{r['task']} cover {r['weak_coverage']:.2f} of its {r['n_gold']} gold-labelled "
            f"articles, {r['weak_accuracy']:.2f} of them right"
            for r in results
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")
    result = ingest(Source(path=str(ROOT / "seeds" / "articles")), Cleaner())
    tasks = [Task.from_config(OmegaConf.load(CONFIGS / "task" / f"{t}.yaml")) for t in TASKS]
    gold = load_annotations(ROOT / "seeds" / "labels.csv", tasks)
    results = [run_task(t, result.articles, gold[t.name], args) for t in tasks]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "weak_labels.json").write_text(json.dumps(results, indent=2))
    table = render(results, started)
    (RESULTS / "weak_labels.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
