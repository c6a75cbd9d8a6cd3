"""Whether new articles would help the default models on real news: fits on the same random
samples of a corpus (the bundled one), without and with the new articles, scored on the real
dev sets.

    .venv/bin/python benchmarks/corpus_compare.py --add DIR [--add DIR ...] [--task stance] \
        [--base DIR] [--fits 8] [--fraction 0.9] [--workdir DIR] [override ...]

Each ``--add`` folder holds ``articles/<article_id>.txt`` and ``labels.csv`` in the bundled
corpus's format (``seeds/labels.csv``'s columns); so does ``--base``, the corpus they are added
to (default: the bundled corpus, ``seeds/``). The base corpus and, per folder, the base with its
articles added are built with ``newsclf-dataset``. Fit i draws its sample
(``--fraction`` of the base corpus's train + validation, seed ``seed + i``) by article id;
the candidate's fit i is the same sample plus every added article. Printed and written
(``benchmarks/results/corpus_compare.{md,json}``): each set's mean macro-F1 without and with,
the mean and sd of the paired differences, and in how many fits the candidate scored higher.

Why paired: adding articles reshuffles the corpus's seeded splits, and which articles the test
split holds out moves a fit's real-dev macro-F1 by about 0.02, as much as most corpus changes.
Two corpora's ``real_subsamples.py`` means carry that reshuffle; these differences do not.
The real sets are only scored, never trained on.
"""

from __future__ import annotations

import argparse
import csv
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
SEEDS = ROOT / "seeds"
DEFAULT_MODEL = {"topic": "tfidf_logreg", "stance": "tfidf_cues_logreg"}


def merged_corpus(folders: list[Path], into: Path) -> None:
    """``into``: the articles (links) and labels of ``folders``, in order."""
    (into / "articles").mkdir(parents=True)
    for folder in folders:
        for path in sorted((folder / "articles").glob("*.txt")):
            link = into / "articles" / path.name
            if link.exists():
                sys.exit(f"{path}: an article named {path.name} is already in the corpus")
            link.symlink_to(path.resolve())
    with (into / "labels.csv").open("w", encoding="utf-8", newline="") as out:
        writer = None
        for folder in folders:
            with (folder / "labels.csv").open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                if writer is None:
                    writer = csv.DictWriter(out, reader.fieldnames or [])
                    writer.writeheader()
                writer.writerows(reader)


def build(wd: Path, name: str, *overrides: str) -> Path:
    """``newsclf-dataset`` into ``wd/name``; the folder of its datasets."""
    out = wd / name / "datasets"
    subprocess.run(
        [str(BIN / "newsclf-dataset"), f"output_dir={out}", "log_to_mlflow=false", *overrides],
        cwd=wd,
        check=True,
        capture_output=True,
    )
    return out


def gold_rows(dataset_dir: Path, splits: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Article id -> (text, label) of the dataset's ``splits``."""
    dd, manifest = datasets.load(dataset_dir)
    return {
        i: (text, manifest.labels[y])
        for split in splits
        for i, text, y in zip(dd[split]["id"], dd[split]["text"], dd[split]["label"], strict=True)
    }


def paired_scores(cfg, base_dir: Path, added_dirs: dict[str, Path], fits: int, fraction: float):
    """Corpus name ("base" and each added folder's) -> fit -> set -> macro-F1."""
    task = Task.from_config(cfg.task)
    _, manifest = datasets.load(base_dir)
    preparation = saved_model.training_preparation(manifest, cfg.max_chars, base_dir)
    raw = evalsets.load_sets(OmegaConf.to_container(cfg.evaluation, resolve=True))
    sets = {name: s.prepare(preparation) for name, s in raw.items()}
    everything = ("train", "validation", "test")
    base_all = gold_rows(base_dir, everything)
    pool = gold_rows(base_dir, ("train", "validation"))
    ids = sorted(pool)
    new = {
        name: [row for i, row in gold_rows(d, everything).items() if i not in base_all]
        for name, d in added_dirs.items()
    }

    def score(rows: list[tuple[str, str]]) -> dict[str, float]:
        model = models.fit(
            models.build_model(cfg.model), [t for t, _ in rows], [y for _, y in rows]
        )
        classifier = saved_model.Classifier(model, task.label_names)
        out = {}
        for name, evalset in sets.items():
            scored = evalsets.evaluate(classifier, task, evalset)
            if scored is not None:
                out[name] = scored.metrics["macro_f1"]
                if "recall_pro_russia" in scored.metrics:
                    out[f"{name} pro_russia recall"] = scored.metrics["recall_pro_russia"]
        return out

    results: dict[str, list[dict[str, float]]] = {"base": [], **{n: [] for n in new}}
    for i in range(fits):
        keep = np.random.default_rng(cfg.seed + i).random(len(ids)) < fraction
        sample = [pool[k] for k, kept in zip(ids, keep, strict=True) if kept]
        results["base"].append(score(sample))
        for name, rows in new.items():
            results[name].append(score(sample + rows))
        print(f"fit {i + 1}/{fits} done", flush=True)
    return results, {name: len(rows) for name, rows in new.items()}


def summary(results: dict, added: dict[str, int]) -> list[dict]:
    base = results["base"]
    rows = []
    for name, fits in results.items():
        for metric in base[0]:
            values = np.array([f[metric] for f in fits])
            diff = values - np.array([f[metric] for f in base])
            rows.append(
                {
                    "corpus": name,
                    "added": added.get(name, 0),
                    "metric": metric,
                    "values": values.tolist(),
                    "mean": float(values.mean()),
                    "diff_mean": float(diff.mean()),
                    "diff_sd": float(diff.std()),
                    "higher": int((diff > 0).sum()),
                }
            )
    return rows


def table(rows: list[dict], info: dict) -> str:
    lines = [
        f"{info['date']}, task {info['task']}, {info['fits']} paired fits on "
        f"{info['fraction']:.0%} of the base corpus's train + validation each "
        f"(base: {info['base']}).",
        "",
        "| corpus | articles added | metric | mean | difference (mean) | sd | fits higher |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        same = r["corpus"] == "base"
        lines.append(
            f"| {r['corpus']} | {r['added']} | {r['metric']} | {r['mean']:.3f} | "
            + ("- | - | - |" if same else f"{r['diff_mean']:+.3f} | {r['diff_sd']:.3f} | ")
            + ("" if same else f"{r['higher']} of {info['fits']} |")
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--add", type=Path, action="append", required=True)
    parser.add_argument("--base", type=Path, default=SEEDS, help="default: the bundled corpus")
    parser.add_argument("--task", default="topic", choices=sorted(DEFAULT_MODEL))
    parser.add_argument("--fits", type=int, default=8)
    parser.add_argument("--fraction", type=float, default=0.9)
    parser.add_argument("--workdir", type=Path, help="build the datasets here (emptied first)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the train config")
    args = parser.parse_args()
    shared = os.environ.get("NEWSCLF_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    os.environ["NEWSCLF_SHARED_DATA"] = str(Path(shared).resolve())
    wd = measure.fresh_workdir(args.workdir, "newsclf-corpus-compare-")
    base_folder = args.base.resolve()
    added = {}
    for name, folders in [("base", [base_folder])] + [
        (f.resolve().name, [base_folder, f.resolve()]) for f in args.add
    ]:
        corpus = wd / name / "corpus"
        merged_corpus(folders, corpus)
        added[name] = (
            build(
                wd,
                name,
                f"source.path={corpus / 'articles'}",
                f"annotations.path={corpus / 'labels.csv'}",
            )
            / args.task
        )
    base = added.pop("base")
    overrides = [f"task={args.task}", f"model={DEFAULT_MODEL[args.task]}", "evaluation=real_dev"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, *args.overrides])
    results, sizes = paired_scores(cfg, base, added, args.fits, args.fraction)
    rows = summary(results, sizes)
    info = {
        "task": args.task,
        "base": str(base_folder),
        "fits": args.fits,
        "fraction": args.fraction,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average": os.getloadavg()[0],
        "workdir": str(wd),
    }
    markdown = table(rows, info)
    measure.write_results(args.out, "corpus_compare", info, rows, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
