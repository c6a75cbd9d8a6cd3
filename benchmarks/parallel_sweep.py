"""Wall time of an 8-job training sweep: one job at a time vs two joblib workers, against the
SQLite default and against an ``mlflow server`` on PostgreSQL, as ratios against the one-at-a-
time SQLite sweep measured in the same run.

Every job fits, evaluates, logs (params, 3 dataset inputs, ~50 metrics, plots, the model) and
registers a version under the promotion lock, through the real ``newsclf-train --multirun``.
The corpus is generated at run time (tests/conftest.py make_corpus). The PostgreSQL 15 cluster
and the server are started in temporary folders (as in tests/integration) and removed after.

    .venv/bin/python benchmarks/parallel_sweep.py                 # writes parallel_sweep.md
    .venv/bin/python benchmarks/parallel_sweep.py --articles-per-topic 300 --out /tmp/x.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import MlflowServer, Postgres  # noqa: E402
from tests.integration.helpers import build_dataset, parallel_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles-per-topic", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "parallel_sweep.md")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="newsclf-bench-sweep-") as tmp:
        work = Path(tmp)
        dataset = build_dataset(work, n_per_topic=args.articles_per_topic, env=env)
        for workers in (1, 2):
            cwd = work / f"sqlite-{workers}"
            cwd.mkdir()
            _, seconds = parallel_sweep(cwd, dataset, env=env, workers=workers)
            label = "1 job at a time" if workers == 1 else f"{workers} joblib workers"
            rows.append((f"SQLite, {label}", seconds))
        pg = Postgres()
        server = None
        try:
            started = time.perf_counter()
            pg.start()
            server = MlflowServer(pg.create_database("mlflow"))
            server.start()
            startup = time.perf_counter() - started
            cwd = work / "server"
            cwd.mkdir()
            _, seconds = parallel_sweep(
                cwd, dataset, "mlflow=server", env={**env, "MLFLOW_TRACKING_URI": server.uri}
            )
            rows.append(("mlflow server on PostgreSQL, 2 joblib workers", seconds))
        finally:
            if server is not None:
                server.remove()
            pg.stop()
    base = rows[0][1]
    load = os.getloadavg()
    lines = [
        f"8-job `newsclf-train --multirun` sweep, {args.articles_per_topic * 6} generated "
        f"articles, {os.cpu_count()} cores (load average {load[0]:.1f} at the end)",
        "",
        "| store, launcher | wall time (s) | ratio to SQLite, 1 at a time |",
        "|---|---:|---:|",
        *(f"| {name} | {seconds:.1f} | {seconds / base:.2f} |" for name, seconds in rows),
        "",
        f"PostgreSQL initdb + start + `mlflow server` start (fresh database): {startup:.1f} s",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(text, encoding="utf-8")
    tmp_out.replace(args.out)


if __name__ == "__main__":
    main()
