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
import real_subsamples

from newsclf import datasets

ROOT = Path(__file__).resolve().parent.parent
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
    sets = real_subsamples.prepared_sets(cfg, base_dir)
    everything = ("train", "validation", "test")
    base_all = gold_rows(base_dir, everything)
    pool = gold_rows(base_dir, ("train", "validation"))
    ids = sorted(pool)
    new = {
        name: [row for i, row in gold_rows(d, everything).items() if i not in base_all]
        for name, d in added_dirs.items()
    }

    def score(rows: list[tuple[str, str]]) -> dict[str, float]:
        return real_subsamples.fit_scores(cfg, sets, [t for t, _ in rows], [y for _, y in rows])

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
    real_subsamples.add_fit_arguments(parser)
    args = parser.parse_args()
    real_subsamples.use_shared_data()
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
    cfg = real_subsamples.real_dev_config(args.task, DEFAULT_MODEL[args.task], args.overrides)
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
    measure.write_results(args.out, "corpus_compare", info, rows, table(rows, info))


if __name__ == "__main__":
    main()
