"""5-fold cross-validated macro-F1 of a model config on the bundled corpus, per task.

    .venv/bin/python benchmarks/corpus_cv.py [model_name ...]   # default: tfidf_logreg

Uses newsclf's own ingest (cleaning, dedupe), gold labels and model configs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from sklearn.model_selection import StratifiedKFold, cross_val_score

from newsclf.articles import Source, ingest
from newsclf.cleaning import Cleaner
from newsclf.labelling.gold import load_annotations
from newsclf.models import build_model
from newsclf.tasks import Task

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def main(models: list[str]) -> None:
    result = ingest(Source(path=str(ROOT / "seeds" / "articles")), Cleaner())
    tasks = [
        Task.from_config(OmegaConf.load(CONFIGS / "task" / f"{t}.yaml"))
        for t in ("topic", "stance")
    ]
    gold = load_annotations(ROOT / "seeds" / "labels.csv", tasks)
    print(f"{len(result.articles)} articles ({len(result.rejects)} rejected)\n")
    print("| task | model | n | 5-fold macro-F1 (mean ± sd) | seconds |")
    print("|---|---|---:|---|---:|")
    for name in models:
        cfg = OmegaConf.merge({"seed": 42}, OmegaConf.load(CONFIGS / "model" / f"{name}.yaml"))
        for task in tasks:
            labelled = [a for a in result.articles if a.id in gold[task.name]]
            texts = [a.text for a in labelled]
            labels = [gold[task.name][a.id] for a in labelled]
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=42)
            started = time.perf_counter()
            scores = cross_val_score(build_model(cfg), texts, labels, cv=folds, scoring="f1_macro")
            seconds = time.perf_counter() - started
            print(
                f"| {task.name} | {name} | {len(texts)} | {np.mean(scores):.3f} ± "
                f"{np.std(scores):.3f} | {seconds:.1f} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["tfidf_logreg"])
