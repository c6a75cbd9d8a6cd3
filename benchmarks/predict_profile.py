"""Where newsclf-predict's time goes, stage by stage, on BBC ``test.csv`` repeated: read,
clean, vectorise, predict, report statistics, output (de-duplication, parts, the final file).

Each stage runs alone in this process and is timed in CPU seconds (the machine is shared:
CPU time moves much less with the load than wall time). The default model's pipeline is fitted
here on BBC train + val, as the plain script of ``benchmarks/baselines.py`` does.

    .venv/bin/python benchmarks/predict_profile.py [--articles 4000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines
from bbc import shared_bbc

from newsclf import batch, predict, saved_model
from newsclf.articles import Source
from newsclf.cleaning import Cleaner

CHUNK = 2000  # newsclf-predict's default chunk_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=4000)
    args = parser.parse_args()
    bbc, n = shared_bbc(), args.articles
    train = pd.concat([pd.read_csv(bbc / f) for f in ("train.csv", "val.csv")])
    pipeline = baselines.plain_pipeline().fit(train["text"], train["category"])
    classifier = saved_model.Classifier(pipeline, sorted(train["category"].unique()))
    models = [saved_model.LoadedModel("bbc", classifier, "x", "newsclf-bbc", "1")]
    test = pd.read_csv(bbc / "test.csv")
    copies = [test.assign(id=[f"r{r}-{i}" for i in range(len(test))]) for r in range(n // 334 + 1)]
    stages: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        # what earlier stages left alive is frozen: the garbage collector would otherwise scan
        # it again and again, a cost the streaming job (chunk by chunk) does not have
        gc.collect()
        gc.freeze()
        start = time.process_time()
        out = fn()
        stages[name] = time.process_time() - start
        return out

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "articles.csv"
        pd.concat(copies)[["id", "text"]].head(n).to_csv(csv, index=False)
        source = Source(path=str(csv), format="csv", title_column=None, date_column=None)
        cleaner = Cleaner()
        records = timed("read", lambda: list(source.read()))
        # one chunk first, untimed: a process's first chunk also pays for growing its heap
        # (page faults, half a CPU second), which a worker does once per job, not per chunk
        warm = [
            saved_model.prepare_article(r, cleaner, 100_000).article.text for r in records[:CHUNK]
        ]
        transform = saved_model._transform
        transform(pipeline[:-1], warm)
        prepared = timed(
            "clean", lambda: [saved_model.prepare_article(r, cleaner, 100_000) for r in records]
        )
        texts = [p.article.text for p in prepared]
        # in chunks of newsclf-predict's default size, as its workers vectorise
        features = timed(
            "vectorise",
            lambda: sp.vstack(
                [transform(pipeline[:-1], texts[i : i + CHUNK]) for i in range(0, n, CHUNK)]
            ),
        )
        timed("predict", lambda: pipeline[-1].predict_proba(features))

        def report() -> None:
            for i in range(0, n, CHUNK):
                predict._model_stats(classifier, texts[i : i + CHUNK], features[i : i + CHUNK], 100)

        timed("report statistics", report)
        settings = batch.JobSettings(n_jobs=1, resume=False)
        total = timed(
            "whole job, one process",
            # the models prepare articles with the defaults, as cleaner above
            lambda: batch.run_job(source, models, Path(tmp) / "out.parquet", settings),
        )
    print("## Where newsclf-predict's time goes (`benchmarks/predict_profile.py`)\n")
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}; BBC test.csv repeated to {n:,} articles, the "
        "default model and cleaning, each stage alone in one process, in CPU seconds. "
        "The whole job adds output (de-duplication, part files, checkpoints, the final "
        "file) to the stages: the last row, the whole job minus the stages (within the noise "
        "of zero when output is cheap).\n"
    )
    print(f"| stage ({total.n_input:,} BBC articles) | CPU s | share | articles/s (one core) |")
    print("|---|---:|---:|---:|")
    whole = stages["whole job, one process"]
    stages["output: the whole job minus the stages above"] = whole - sum(
        v for k, v in stages.items() if k != "whole job, one process"
    )
    for name, seconds in stages.items():
        rate = f"{n / seconds:,.0f}" if seconds > 0 else "-"
        print(f"| {name} | {seconds:.2f} | {seconds / whole:.0%} | {rate} |")
    print()


if __name__ == "__main__":
    main()
