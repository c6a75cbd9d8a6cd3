"""``newsclf-dataset`` on generated articles with weak labels: wall, articles/s and peak RSS.

The articles are generated at run time by ``out_of_core.py``'s generator (sentences of the
bundled corpus recombined, three in four from one topic) and written to one JSONL file; the
first ``--gold`` of them get a gold topic label (the topic they were generated from) in an
annotations CSV, the rest are labelled by the rules and the label model of both tasks (the
default configs). Then the real ``newsclf-dataset`` console script builds both datasets in its
own process, MLflow logging off: its wall time and peak RSS (``wait4``, and the peak summed PSS
of its process tree) are measured per size, and the 10k-vs-largest peak ratio is reported.
The same file is then built by ``baselines.py plain-build`` (read, normalise, de-duplicate,
split, write Parquet; no labels): newsclf's wall time as a multiple of that script's is the
in-run yardstick that makes runs on a shared machine of varying speed comparable.

    .venv/bin/python benchmarks/dataset_build.py                      # 10k, 100k and 1M
    .venv/bin/python benchmarks/dataset_build.py --sizes 10000 --workdir /tmp/build
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from newsclf.tasks import Task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure
from out_of_core import _articles, sentence_pools

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "benchmarks" / "results"
SUMMARY = re.compile(r"(\d+) articles read = (\d+) kept \+ (\d+) rejected")


def generate(folder: Path, n: int, n_gold: int, pools: dict, task: Task) -> tuple[Path, Path]:
    """``articles.jsonl`` (id, title, text) and ``labels.csv`` (gold topic of the first
    ``n_gold``), written as they are generated."""
    folder.mkdir(parents=True, exist_ok=True)
    articles, labels = folder / "articles.jsonl", folder / "labels.csv"
    names = tuple(task.label_names)
    with articles.open("w", encoding="utf-8") as out, labels.open("w", newline="") as lab:
        writer = csv.writer(lab)
        writer.writerow(["article_id", "topic", "stance"])
        for i, row in enumerate(_articles(n, "g", 0, pools, names)):
            record = {"id": row["id"], "title": row["title"], "text": row["text"]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            if i < n_gold:
                writer.writerow([row["id"], names[row["label"]], ""])
    return articles, labels


def table(rows: list[dict], info: dict) -> str:
    lines = [
        "## Dataset build: newsclf-dataset on generated articles, weak labels on",
        "",
        f"{info['date']}, {info['cores']} cores (shared with other jobs; load average "
        f"{info['load_average']:.1f} at the start, {info['load_average_end']:.1f} at the end). "
        "Both tasks (topic, stance) with their default rules and the Dawid-Skene label model "
        "(unless overridden below); "
        f"the first {info['gold']:,} articles have a gold topic label, the rest get weak labels. "
        f"`chunk_size={info['chunk_size']}`"
        + (f", overrides `{' '.join(info['overrides'])}`." if info["overrides"] else "."),
        "",
        "| articles | wall (s) | articles/s | CPU (s) | articles per CPU-s | peak RSS (MiB) "
        "| peak anonymous (MiB) | input on disk (MiB) | plain script wall (s) "
        "| wall vs plain script |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']:,} | {r['wall_s']:.0f} | {r['n'] / r['wall_s']:,.0f} "
            f"| {r['cpu_s']:.0f} | {r['n'] / r['cpu_s']:,.0f} "
            f"| {r['peak_mib']:,.0f} | {r['anon_mib']:,.0f} | {r['input_mib']:,.0f} "
            f"| {r['plain_wall_s']:.1f} | {r['wall_s'] / r['plain_wall_s']:.2f}x |"
        )
    if len(rows) > 1:
        ratio = rows[-1]["peak_mib"] / rows[0]["peak_mib"]
        lines += [
            "",
            f"Peak RSS {rows[-1]['n']:,} vs {rows[0]['n']:,} articles: **{ratio:.2f}x** "
            "(target <= 1.3x for 1M vs 10k; under 3 GB at 1M).",
        ]
    lines += [
        "",
        "- **wall**: the whole `newsclf-dataset` process (start-up, reading, cleaning, both "
        "tasks' rules, label model, splits, writing both dataset folders).",
        "- **CPU**: user + system time of the process and its workers: less sensitive to the "
        "shared machine's load than wall time (compare runs by it).",
        "- **plain script**: `baselines.py plain-build` on the same file, in the same run: "
        "JSONL read line by line, NFKC and whitespace normalised, exact duplicates dropped, a "
        "seeded 80/10/10 split written to Parquet; no labels, one process. **wall vs plain "
        "script** is the yardstick that stays comparable when the machine's speed changes.",
        "- **peak RSS**: the larger of the process's own peak RSS and the peak summed PSS of its "
        "process tree, sampled every 0.2 s; **peak anonymous** leaves out file-backed pages.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--gold", type=int, default=2_000, help="articles with a gold label")
    parser.add_argument("--chunk-size", type=int, default=None, help="chunk_size= override")
    parser.add_argument("--workdir", type=Path, help="keep the data here")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="extra newsclf-dataset overrides, e.g. labeling@labeling.topic=x",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    wd = measure.fresh_workdir(args.workdir, "newsclf-build-")
    print(f"dataset-build benchmark in {wd}")
    task = Task.from_config(OmegaConf.load(ROOT / "configs" / "task" / "topic.yaml"))
    pools = sentence_pools(task)
    chunk = [f"chunk_size={args.chunk_size}"] if args.chunk_size else []
    info = {
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "gold": args.gold,
        "chunk_size": args.chunk_size or "default",
        "overrides": args.overrides,
    }
    rows = []
    try:
        for n in args.sizes:
            folder = wd / f"build-{n}"
            started = time.perf_counter()
            articles, labels = generate(folder, n, min(args.gold, n), pools, task)
            print(f"  generated {n:,} articles in {time.perf_counter() - started:.0f} s")
            m = measure.run(
                [
                    BIN / "newsclf-dataset",
                    "source=jsonl",
                    f"source.path={articles}",
                    "source.date_column=null",
                    f"annotations.path={labels}",
                    f"output_dir={folder / 'out'}",
                    "log_to_mlflow=false",
                    *chunk,
                    *args.overrides,
                ],
                folder,
                folder / "dataset.log",
            )
            plain = measure.run(
                [
                    sys.executable,
                    ROOT / "benchmarks" / "baselines.py",
                    "plain-build",
                    articles,
                    folder / "plain",
                ],
                folder,
                folder / "plain.log",
            )
            found = SUMMARY.search(m.output)
            if not found or int(found.group(1)) != n:
                sys.exit(f"newsclf-dataset did not read {n} articles:\n{m.output[-3000:]}")
            rows.append(
                {
                    "n": n,
                    "wall_s": m.wall_s,
                    "cpu_s": m.cpu_s,
                    "rss_mib": m.rss_mib,
                    "tree_mib": m.tree_mib,
                    "peak_mib": m.peak_mib,
                    "anon_mib": m.anon_mib,
                    "input_mib": articles.stat().st_size / 2**20,
                    "kept": int(found.group(2)),
                    "rejected": int(found.group(3)),
                    "plain_wall_s": plain.wall_s,
                    "plain_cpu_s": plain.cpu_s,
                }
            )
            print(f"  built: {rows[-1]}", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(wd, ignore_errors=True)
    info["load_average_end"] = os.getloadavg()[0]
    measure.write_results(args.out, "dataset_build", info, rows, table(rows, info))


if __name__ == "__main__":
    main()
