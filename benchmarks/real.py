"""What models trained on the bundled corpus are worth on real articles.

    .venv/bin/python benchmarks/real.py [--models tfidf_logreg stance=tfidf_cues_logreg] \
        [--workdir DIR]
    .venv/bin/python benchmarks/real.py --store .      # the champions of an existing store

Without ``--store``: in a fresh folder, ``newsclf-dataset`` builds the bundled corpus's datasets,
``newsclf-train`` trains and registers each model of ``--models`` for both tasks, or for one
task when written ``task=model`` (default: what ``make run`` trains, and the plain default model
for stance beside it), and ``newsclf-evaluate evaluation=real_dev`` scores every registered
version on the real labelled dev sets of the shared data folder (NYT 2022, SemEval-2025 war
articles). With ``--store DIR``: only ``newsclf-evaluate`` runs, in DIR, on its champions
(e.g. after ``make run``; about 20 s). Each model's corpus test split (the numbers its training
run logged) is printed beside the real sets: macro-F1, accuracy, ECE and recall per class.

Writes ``benchmarks/results/real.{md,json}``. The real sets are read from
``NEWSCLF_SHARED_DATA`` (default ``<repo root>/../shared/data``); they are never trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from measure import fresh_workdir
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
TASKS = ("topic", "stance")
SETS = ("nyt_dev", "semeval_dev")
LABELS = {
    "topic": ["diplomacy", "military", "economy", "cyber_disinfo", "human_rights", "other"],
    "stance": ["anti_russia", "neutral", "pro_russia"],
}


def cli(script: str, *args: str, cwd: Path, env: dict) -> str:
    """Run a console script; stop with its output when it fails."""
    proc = subprocess.run(
        [str(BIN / script), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"{script} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def train_all(workdir: Path, models: list[str], env: dict) -> dict[str, str]:
    """Build the datasets, train and register every model for both tasks; model key ->
    ``models:/<name>/<version>``."""
    cli("newsclf-dataset", cwd=workdir, env=env)
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    uris = {}
    for spec in models:
        only, _, model = spec.rpartition("=")
        for task in [only] if only else TASKS:
            cli("newsclf-train", f"task={task}", f"model={model}", cwd=workdir, env=env)
            run = client.search_runs(
                [client.get_experiment_by_name(f"newsclf-{task}").experiment_id],
                filter_string="tags.`newsclf.stage` = 'train'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )[0]
            uris[f"{task}-{model}"] = f"models:/newsclf-{task}/{run.data.tags['newsclf.version']}"
    return uris


def collect(client: MlflowClient, uri: str) -> list[dict]:
    """Rows (one per set: corpus test, then the real sets) for one evaluated model version."""
    name, version = uri.removeprefix("models:/").split("/")
    mv = client.get_model_version(name, version)
    task = name.removeprefix("newsclf-")
    train = client.get_run(mv.run_id)
    model = train.data.params.get("model.name", "?")
    labels = LABELS[task]
    rows = [_row(task, model, version, "corpus test", train.data.metrics, "test_", labels)]
    evaluation = client.get_run(mv.tags["eval.run_id"])
    for name_ in SETS:
        rows.append(_row(task, model, version, name_, evaluation.data.metrics, f"{name_}_", labels))
    return rows


def _row(task, model, version, where, metrics: dict, prefix: str, labels: list[str]) -> dict:
    def get(key: str) -> float | None:
        return metrics.get(f"{prefix}{key}")

    support = {label: get(f"support_{label}") or 0 for label in labels}
    return {
        "task": task,
        "model": f"{model} v{version}",
        "set": where,
        "n": int(get("n") or sum(support.values())),
        "macro_f1": get("macro_f1"),
        "accuracy": get("accuracy"),
        "ece": get("ece"),
        "recall": {label: get(f"recall_{label}") for label in labels if support[label]},
    }


def markdown(rows: list[dict], header: str) -> str:
    def num(x: float | None) -> str:
        return "" if x is None else f"{x:.3f}"

    lines = [
        header,
        "",
        "| task | model | evaluated on | n | macro-F1 | accuracy | ECE | recall per class |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        recall = ", ".join(f"{k} {v:.2f}" for k, v in r["recall"].items())
        lines.append(
            f"| {r['task']} | {r['model']} | {r['set']} | {r['n']} | {num(r['macro_f1'])} | "
            f"{num(r['accuracy'])} | {num(r['ece'])} | {recall} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["tfidf_logreg", "stance=tfidf_cues_logreg"],
        help="model configs for both tasks, or task=model for one",
    )
    parser.add_argument("--store", type=Path, help="evaluate the champions of this folder")
    parser.add_argument("--workdir", type=Path, help="keep the trained store here")
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("NEWSCLF_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    env["NEWSCLF_SHARED_DATA"] = str(Path(env["NEWSCLF_SHARED_DATA"]).resolve())
    started = time.time()
    if args.store:
        workdir = args.store.resolve()
        env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        uris = {
            task: f"models:/newsclf-{task}/"
            f"{client.get_model_version_by_alias(f'newsclf-{task}', 'champion').version}"
            for task in TASKS
        }
    else:
        workdir = fresh_workdir(args.workdir, "newsclf-bench-real-")
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
        uris = train_all(workdir, args.models, env)
    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    models = ",".join(f"{key.replace('-', '_')}:'{uri}'" for key, uri in uris.items())
    out = workdir / "bench-real-evaluations"
    cli(
        "newsclf-evaluate",
        "~models",  # the default models, replaced (a new key is refused in a struct config)
        f"+models={{{models}}}",
        "evaluation=real_dev",
        f"output_dir={out}",
        cwd=workdir,
        env=env,
    )
    rows = [row for uri in uris.values() for row in collect(client, uri)]
    rows.sort(key=lambda r: (TASKS.index(r["task"]), r["model"]))
    how = f"champions of {workdir}" if args.store else f"trained on the bundled corpus ({workdir})"
    header = (
        f"Models {how}; real sets from {env['NEWSCLF_SHARED_DATA']}; "
        f"{time.time() - started:.0f} s. Macro-F1 over the labels each set has."
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "real.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    (RESULTS / "real.md").write_text(markdown(rows, header), encoding="utf-8")
    print(markdown(rows, header))
    print(f"Tables: {RESULTS / 'real.md'}; per-article files in {out}")


if __name__ == "__main__":
    main()
