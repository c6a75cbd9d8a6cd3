"""How far a model's scores on the real labelled sets move with its training sample.

    .venv/bin/python benchmarks/real_subsamples.py [--task topic] [--model tfidf_logreg] \
        [--fits 8] [--fraction 0.9] [--workdir DIR] [override ...]

Builds the bundled corpus's datasets in a fresh folder (``newsclf-dataset``), then fits the
model ``--fits`` times, each on a random ``--fraction`` of train + validation (fit i draws with
seed ``seed + i``), and scores every fit on the real dev sets (``evaluation=real_dev``, prepared
as the model prepares articles, scored as ``newsclf-evaluate`` scores them). Prints and writes
(``benchmarks/results/real_subsamples.{md,json}``) the mean, standard deviation and range of
each set's macro-F1 and of the sets' mean.

Why: the real sets have 130-200 labelled articles per task, and one champion's macro-F1 on them
moves by up to 0.04 with the sample it was fit on. Compare models by these means, not by one
fit; compare corpora with ``corpus_compare.py`` (a changed corpus also has other splits).
Extra arguments are Hydra overrides of the train config (``model.pipeline.classifier.C=30``).
The real sets are only scored, never trained on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import measure
import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from newsclf import datasets, evalsets, models, saved_model
from newsclf.tasks import Task

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent


def real_dev_config(task: str, model: str, overrides: list[str]):
    """The train config of ``task`` with ``model`` and the real dev sets (``evaluation``)."""
    base = [f"task={task}", f"model={model}", "evaluation=real_dev"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("train", overrides=[*base, *overrides])


def prepared_sets(cfg, dataset_dir: Path) -> dict[str, evalsets.EvalSet]:
    """The real dev sets as the model trained on ``dataset_dir`` prepares articles."""
    _, manifest = datasets.load(dataset_dir)
    preparation = saved_model.training_preparation(manifest, cfg.max_chars, dataset_dir)
    raw = evalsets.load_sets(OmegaConf.to_container(cfg.evaluation, resolve=True))
    return {name: s.prepare(preparation) for name, s in raw.items()}


def fit_scores(cfg, sets: dict, texts: list[str], labels: list[str]) -> dict[str, float]:
    """Set name -> macro-F1 of ``cfg.model`` fit on ``texts`` (and ``<set> pro_russia
    recall`` where the set has pro_russia articles)."""
    task = Task.from_config(cfg.task)
    model = models.fit(models.build_model(cfg.model), texts, labels)
    classifier = saved_model.Classifier(model, task.label_names)
    out = {}
    for name, evalset in sets.items():
        scored = evalsets.evaluate(classifier, task, evalset)
        if scored is not None:
            out[name] = scored.metrics["macro_f1"]
            if "recall_pro_russia" in scored.metrics:
                out[f"{name} pro_russia recall"] = scored.metrics["recall_pro_russia"]
    return out


def scores(cfg, dataset_dir: Path, fits: int, fraction: float) -> dict[str, list[float]]:
    """Set name -> macro-F1 of each fit (and ``mean``: the sets' mean per fit)."""
    dd, manifest = datasets.load(dataset_dir)
    sets = prepared_sets(cfg, dataset_dir)
    texts = list(dd["train"]["text"]) + list(dd["validation"]["text"])
    names = manifest.labels
    labels = [names[i] for i in list(dd["train"]["label"]) + list(dd["validation"]["label"])]
    out: dict[str, list[float]] = {}
    for i in range(fits):
        keep = np.random.default_rng(cfg.seed + i).random(len(texts)) < fraction
        this = fit_scores(
            cfg,
            sets,
            [t for t, k in zip(texts, keep, strict=True) if k],
            [y for y, k in zip(labels, keep, strict=True) if k],
        )
        this = {k: v for k, v in this.items() if not k.endswith("recall")}
        this["mean"] = float(np.mean(list(this.values())))
        for name, value in this.items():
            out.setdefault(name, []).append(value)
        print(f"fit {i + 1}/{fits}: " + ", ".join(f"{k} {v:.3f}" for k, v in this.items()))
    return out


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fits``, ``--fraction``, ``--workdir``, ``--out`` and Hydra overrides."""
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--fraction", type=float, default=0.9)
    parser.add_argument("--workdir", type=Path, help="build the datasets here (emptied first)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the train config")


def use_shared_data() -> None:
    """``NEWSCLF_SHARED_DATA`` made absolute (default ``<repo>/../shared/data``): the dataset
    builds run in other folders."""
    shared = os.environ.get("NEWSCLF_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    os.environ["NEWSCLF_SHARED_DATA"] = str(Path(shared).resolve())


def table(rows: list[dict], info: dict) -> str:
    lines = [
        f"{info['date']}, {info['fits']} fits on {info['fraction']:.0%} of train + validation "
        f"each, load {info['load_average']:.1f}.",
        "",
        "| task | model | overrides | set | mean macro-F1 | sd | min | max |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['model']} | {' '.join(r['overrides']) or '-'} | {r['set']} | "
            f"{r['mean']:.3f} | {r['sd']:.3f} | {r['min']:.3f} | {r['max']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="topic")
    parser.add_argument("--model", default="tfidf_logreg")
    add_fit_arguments(parser)
    args = parser.parse_args()
    use_shared_data()
    wd = measure.fresh_workdir(args.workdir, "newsclf-real-subsamples-")
    subprocess.run([str(BIN / "newsclf-dataset")], cwd=wd, check=True, capture_output=True)
    cfg = real_dev_config(args.task, args.model, args.overrides)
    per_set = scores(cfg, wd / "data" / "datasets" / args.task, args.fits, args.fraction)
    rows = [
        {
            "task": args.task,
            "model": args.model,
            "overrides": args.overrides,
            "set": name,
            "values": values,
            "mean": float(np.mean(values)),
            "sd": float(np.std(values)),
            "min": min(values),
            "max": max(values),
        }
        for name, values in per_set.items()
    ]
    info = {
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "fits": args.fits,
        "fraction": args.fraction,
        "workdir": str(wd),
    }
    measure.write_results(args.out, "real_subsamples", info, rows, table(rows, info))


if __name__ == "__main__":
    main()
