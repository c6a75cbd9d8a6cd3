"""Batch prediction at scale: throughput and peak memory of ``newsclf-predict`` for a small and
a large batch, local and Spark engines, as ratios against the small batch of the same engine
and against the plain scikit-learn script and fastText (``baselines.py``) on the same batch.

The articles are generated at run time (never stored in the repository) by recombining the
sentences of the BBC News articles in ``<repo>/../shared/data/bbc-news``; a TF-IDF + logistic
regression topic model is trained on the BBC training split and registered in a temporary
SQLite MLflow store. Each run is the real console script in its own process; peak memory is
the process's own maximum RSS (from wait4) and the peak of the summed PSS of its whole process
tree (workers, the Spark JVM and its Python workers), sampled every 0.2 s (``measure.py``).

    .venv/bin/python benchmarks/predict_scale.py                      # 10k and 1M, both engines
    .venv/bin/python benchmarks/predict_scale.py --sizes 10000 100000 --engines local
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from measure import run as measure_run

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def shared_data() -> Path:
    for candidate in (ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if (candidate / "bbc-news" / "train.csv").exists():
            return candidate / "bbc-news"
    sys.exit("bbc-news not found in <repo>/../shared/data")


def train_model(workdir: Path, bbc: Path) -> str:
    """Train the default pipeline on the BBC training split; register it as the topic champion."""
    from omegaconf import OmegaConf

    from newsclf import registry, saved_model, tracking
    from newsclf.models import build_model
    from newsclf.saved_model import save_pipeline

    train = pd.read_csv(bbc / "train.csv")
    config = OmegaConf.create(
        {"seed": 0, "model": OmegaConf.load(ROOT / "configs" / "model" / "tfidf_logreg.yaml")}
    )
    model = build_model(config.model)
    model.fit(train["text"].tolist(), train["category"].tolist())
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    tracking.configure(uri)
    with tracking.run("newsclf-topic", "benchmark"):
        labels = sorted(train["category"].unique())
        model_uri = saved_model.log_model(model, labels, "topic", train["text"].tolist()[:2])
    registry.promote("newsclf-topic", registry.register(model_uri, "newsclf-topic"))
    save_pipeline(model, workdir / "plain.skops")  # the same model for the plain script
    try:  # fastText (make bench installs it), with baselines.py's fasttext-train defaults
        import baselines

        baselines._fasttext_fit(train, epoch=25, lr=0.5, ngrams=2).save_model(
            str(workdir / "fasttext.bin")
        )
    except ImportError:
        print("fastText not installed (pip install -e '.[bench]'): no fastText baseline")
    return uri


def generate(path: Path, n: int, bbc: Path, seed: int = 0, batch: int = 50_000) -> None:
    """``n`` articles of 6-14 sentences drawn from the BBC articles, written in row groups."""
    texts = pd.concat(pd.read_csv(bbc / f"{s}.csv")["text"] for s in ("train", "val", "test"))
    sentences = [s.strip() + "." for t in texts for s in re.split(r"(?<=\.)\s+", t) if len(s) > 30]
    rng = random.Random(seed)
    schema = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, n, batch):
            rows = {"id": [], "title": [], "text": []}
            for i in range(start, min(n, start + batch)):
                body = rng.choices(sentences, k=rng.randint(6, 14))
                rows["id"].append(f"g{i:09d}")
                rows["title"].append(" ".join(body[0].split()[:8]))
                rows["text"].append(" ".join(body[1:]))
            writer.write_table(pa.table(rows, schema=schema))


def measure(args: list[str], cwd: Path) -> dict:
    """Run a command (measure.py); wall time, job rate, own max RSS and tree PSS peak."""
    m = measure_run(args, cwd, cwd / "last_run.log")
    rate = re.search(r"([\d,]+) articles/s", m.output)
    return {
        "wall_s": m.wall_s,
        "job_rate": float(rate.group(1).replace(",", "")) if rate else float("nan"),
        "rss_mib": m.rss_mib,
        "tree_pss_mib": m.tree_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["local", "spark", "plain", "fasttext"])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="keep data and models here (reused)")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="newsclf-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bbc = shared_data()
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    if not (workdir / "mlflow.db").exists():
        uri = train_model(workdir, bbc)
    rows = []
    for n in options.sizes:
        data = workdir / f"articles-{n}.parquet"
        if not data.exists():
            t = time.perf_counter()
            generate(data, n, bbc)
            print(f"generated {n:,} articles in {time.perf_counter() - t:.0f} s", flush=True)
        for engine in (e for e in options.engines if e != "plain"):
            out = workdir / "out" / f"{engine}-{n}.parquet"
            args = [
                str(BIN / "newsclf-predict"),
                f"mlflow.tracking_uri={uri}",
                "~models.stance",
                "source=parquet",
                f"source.path={data}",
                f"output.path={out}",
                f"engine={engine}",
                f"n_jobs={options.n_jobs}",
                f'spark.master="local[{options.n_jobs}]"',
                "+spark.conf.spark.ui.showConsoleProgress=false",
                "resume=false",
            ]
            result = measure(args, workdir)
            rows.append({"engine": engine, "articles": n, **result})
            print(rows[-1], flush=True)
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
        # the same model in the plain scikit-learn script of baselines.py, and fastText, in
        # one process each
        for engine, command, model in (
            ("plain", "sklearn-predict", "plain.skops"),
            ("fasttext", "fasttext-predict", "fasttext.bin"),
        ):
            if engine not in options.engines or not (workdir / model).exists():
                continue
            out = workdir / "out" / f"{engine}-{n}.parquet"
            out.parent.mkdir(exist_ok=True)
            baseline = [sys.executable, ROOT / "benchmarks" / "baselines.py", command]
            result = measure([*baseline, workdir / model, data, out], workdir)
            rows.append({"engine": engine, "articles": n, **result})
            print(rows[-1], flush=True)
            out.unlink(missing_ok=True)
    table = pd.DataFrame(rows)
    # articles per second of wall time, start-up included; against the plain script's
    table["articles_per_s"] = table["articles"] / table["wall_s"]
    plain = table[table["engine"] == "plain"].set_index("articles")["articles_per_s"]
    table["vs_plain"] = table["articles_per_s"] / table["articles"].map(plain)
    fasttext = table[table["engine"] == "fasttext"].set_index("articles")["articles_per_s"]
    table["vs_fasttext"] = table["articles_per_s"] / table["articles"].map(fasttext)
    base = table.groupby("engine")[["rss_mib", "tree_pss_mib"]].transform("first")
    table["rss_ratio"] = table["rss_mib"] / base["rss_mib"]
    table["tree_ratio"] = table["tree_pss_mib"] / base["tree_pss_mib"]
    print()
    print(f"newsclf-predict at scale ({os.cpu_count()} cores, n_jobs={options.n_jobs})")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    if not options.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
