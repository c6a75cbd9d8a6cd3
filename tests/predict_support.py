"""Helpers for the batch prediction tests: tiny registered models and composed configs."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import newsclf.cli  # registers the ${newsclf.seeds:} resolver
from newsclf import registry, saved_model, tracking
from newsclf.articles import Source, ingest
from newsclf.cleaning import Cleaner
from tests.conftest import FILLER, ROOT, STANCE_WORDS, TOPIC_WORDS, make_corpus

assert newsclf.cli


def register_models(folder: Path) -> str:
    """Train topic and stance models on a generated corpus, register both as champions in a
    SQLite store under ``folder``; returns the tracking URI."""
    labels = make_corpus(folder / "corpus", n_per_topic=10)
    gold = pd.read_csv(labels)
    articles = {
        a.id: a for a in ingest(Source(path=str(folder / "corpus/articles")), Cleaner()).articles
    }
    texts = [articles[i].text for i in gold["article_id"]]
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    before = Path.cwd()
    os.chdir(folder)  # the store's artifacts (./mlruns) go beside its database
    try:
        tracking.configure(uri)
        for task in ("topic", "stance"):
            y = gold[task].tolist()
            pipe = Pipeline(
                [
                    ("vectorizer", TfidfVectorizer()),
                    ("classifier", LogisticRegression(max_iter=500)),
                ]
            ).fit(texts, y)
            with tracking.run(f"newsclf-{task}", "unit"):
                model_uri = saved_model.log_model(pipe, sorted(set(y)), task, texts[:2])
            registry.promote(f"newsclf-{task}", registry.register(model_uri, f"newsclf-{task}"))
    finally:
        os.chdir(before)
    return uri


def article_rows(n: int, seed: int = 0, topics: bool = True) -> list[dict]:
    """``n`` generated articles (id, title, text, date) in the style of the training corpus,
    or, with ``topics=False``, made of words the models never saw."""
    rng = random.Random(seed)
    foreign = [f"zq{rng.randrange(10**6)}" for _ in range(300)]
    topics_, stances = list(TOPIC_WORDS), list(STANCE_WORDS)
    rows = []
    for i in range(n):
        vocab = TOPIC_WORDS[topics_[i % 6]].split() * 2 + STANCE_WORDS[stances[i % 3]].split()
        words = rng.sample(vocab if topics else foreign, 10) + rng.sample(FILLER, 5)
        rng.shuffle(words)
        rows.append(
            {
                "id": f"a{i:06d}",
                "title": f"Report {i}",
                "text": " ".join(words) + ".",
                "date": "2024-05-01",
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def predict_config(tracking_uri: str, *overrides: str):
    """The composed ``newsclf-predict`` config with test defaults (one process, small chunks)."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose(
            "predict",
            overrides=[f"mlflow.tracking_uri={tracking_uri}", "n_jobs=1", *overrides],
        )
