"""Shared by the SQLite and the server tests: the console scripts, a parallel training sweep
and its checks, and a promotion race between two processes."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import mlflow
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tests.conftest import make_corpus, run_cli

CONFIGS = Path(__file__).with_name("configs")  # the tests' own model config
# Eight jobs of very different quality, so promotions happen in a chain and the final champion
# is decided by the scores, not by who finished last.
MAX_FEATURES = [1, 2, 3, 5, 8, 13, 40, 100000]


def run(
    cwd: Path, script: str, *args: str, env: dict | None = None, ok: bool = True, timeout=900
) -> subprocess.CompletedProcess:
    """Run a newsclf console script with ``env`` as its whole environment (the server's URI)."""
    return run_cli(
        cwd, script, *args, env=env if env is not None else dict(os.environ), ok=ok, timeout=timeout
    )


def build_dataset(cwd: Path, n_per_topic: int = 20, env: dict | None = None) -> Path:
    """A generated corpus turned into datasets by newsclf-dataset (no MLflow logging)."""
    make_corpus(cwd / "corpus", n_per_topic=n_per_topic)
    run(
        cwd,
        "newsclf-dataset",
        f"source.path={cwd / 'corpus/articles'}",
        f"annotations.path={cwd / 'corpus/labels.csv'}",
        f"output_dir={cwd / 'ds'}",
        "log_to_mlflow=false",
        env=env,
    )
    return cwd / "ds"


def parallel_sweep(
    cwd: Path, dataset: Path, *extra: str, env: dict | None = None, workers: int = 2
) -> tuple[subprocess.CompletedProcess, float]:
    """``newsclf-train --multirun`` of len(MAX_FEATURES) jobs on the joblib launcher with
    ``workers`` workers; every job may promote (gate minimum 0). Returns the process and its
    wall time."""
    started = time.perf_counter()
    proc = run(
        cwd,
        "newsclf-train",
        "--multirun",
        "--config-dir",
        str(CONFIGS),
        "task=topic",
        "model=vocab_tfidf",
        f"dataset_dir={dataset / 'topic'}",
        "hydra/launcher=parallel",
        f"hydra.launcher.n_jobs={workers}",
        "gate.min_test_macro_f1=0.0",
        "model.pipeline.vectorizer.max_features=" + ",".join(map(str, MAX_FEATURES)),
        *extra,
        env=env,
    )
    return proc, time.perf_counter() - started


def check_parallel_sweep(
    client: mlflow.MlflowClient, experiment: str, model: str, output: str
) -> dict:
    """Every job's run, metrics, model version and alias move is there; returns counts."""
    n_jobs = len(MAX_FEATURES)
    assert "database is locked" not in output
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("newsclf.stage") == "sweep"]
    trials = [r for r in runs if r.data.tags.get("newsclf.stage") == "train"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert len(trials) == n_jobs
    assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {parent.info.run_id}
    assert sorted(int(r.data.tags["newsclf.sweep_job"]) for r in trials) == list(range(n_jobs))
    assert sorted(int(r.data.params["model.pipeline.vectorizer.max_features"]) for r in trials) == (
        sorted(MAX_FEATURES)
    )
    for r in trials:
        assert r.info.status == "FINISHED"
        assert {"validation_macro_f1", "test_macro_f1", "fit_seconds"} <= set(r.data.metrics)
        assert len(client.get_metric_history(r.info.run_id, "test_macro_f1")) == 1

    # one model version per job, each pointing back at its run
    versions = client.search_model_versions(f"name = '{model}'")
    assert sorted(int(v.version) for v in versions) == list(range(1, n_jobs + 1))
    by_run = {r.info.run_id: r for r in trials}
    assert {v.run_id for v in versions} == set(by_run)
    for v in versions:
        assert by_run[v.run_id].data.tags["newsclf.version"] == str(v.version)

    # alias moves: promotions were serialised, so they form one chain, each from the one before
    promoted = sorted((v for v in versions if v.tags["promoted"] == "True"), key=_number)
    assert promoted, "no version was promoted"
    previous = ""
    for v in promoted:
        assert v.tags["previous_champion"] == previous, (v.version, v.tags, previous)
        previous = str(v.version)
    for v in versions:  # a version that was not promoted lost against the champion of its time
        if v.tags["promoted"] == "False":
            assert v.tags["previous_champion"], v.tags
    score = {str(v.version): float(v.tags["test_macro_f1"]) for v in versions}
    for v in promoted[1:]:  # each promotion was at least as good as what it replaced
        assert score[str(v.version)] >= score[v.tags["previous_champion"]]
    champion = str(client.get_model_version_by_alias(model, "champion").version)
    assert champion == str(promoted[-1].version)
    assert score[champion] == max(score.values())
    assert [m.name for m in client.search_registered_models() if "lock" in m.name] == []

    # the parent holds the best trial's params and metric
    best = max(  # ties go to the earliest trial
        trials,
        key=lambda r: (
            r.data.metrics["validation_macro_f1"],
            -int(r.data.tags["newsclf.sweep_job"]),
        ),
    )
    assert parent.data.metrics["validation_macro_f1"] == best.data.metrics["validation_macro_f1"]
    assert parent.data.params == best.data.params
    assert parent.data.metrics["sweep_n_trials"] == n_jobs
    return {"trials": len(trials), "versions": len(versions), "alias_moves": len(promoted)}


def _number(version) -> int:
    return int(version.version)


# --------------------------------------------------------------------------- promotion race

TEXTS = ["gas prices rouble", "tank artillery troops", "gas market", "troops drone"]
LABELS = ["economy", "military", "economy", "military"]


def _race_worker(uri, name, model_uri, my_score, delay, barrier, results) -> None:
    """One job: rescoring the champion takes ``delay`` seconds, so both jobs read the same
    champion before either moves the alias."""
    from newsclf import registry, tracking
    from newsclf.evaluation import gate

    tracking.configure(uri)

    def score(version: str) -> float:
        time.sleep(delay)
        return float(mlflow.MlflowClient().get_model_version(name, version).tags["test_macro_f1"])

    barrier.wait(timeout=120)
    outcome = registry.register_gated(
        model_uri,
        name,
        decide=lambda champion_score: gate(my_score, 0.0, champion_score),
        score=score,
        tags={"test_macro_f1": str(my_score)},
    )
    results.put((my_score, outcome.version, outcome.promoted, outcome.previous_champion))


def promotion_race(uri: str, name: str) -> dict:
    """A champion scoring 0.5, then two concurrent jobs: the better one (0.9) reaches the gate
    first, the worse one (0.7) a second later having read the same old champion. Without the
    promotion lock the worse one would overwrite the alias. Returns what each job saw."""
    from newsclf import registry, saved_model, tracking
    from newsclf.evaluation import gate

    tracking.configure(uri)
    pipe = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(TEXTS, LABELS)
    with tracking.run(f"{name}-race", "setup"):
        model_uri = saved_model.log_model(pipe, ["economy", "military"], "topic", TEXTS[:2])
    first = registry.register_gated(
        model_uri, name, decide=lambda s: gate(0.5, 0.0, s), tags={"test_macro_f1": "0.5"}
    )
    assert first.promoted
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no shared connections
    barrier, results = ctx.Barrier(2), ctx.Queue()
    jobs = [
        ctx.Process(
            target=_race_worker, args=(uri, name, model_uri, score, delay, barrier, results)
        )
        for score, delay in ((0.9, 1.0), (0.7, 2.5))
    ]
    try:
        for job in jobs:
            job.start()
        for job in jobs:
            job.join(timeout=300)
    finally:
        for job in jobs:
            if job.is_alive():
                job.kill()
    assert [job.exitcode for job in jobs] == [0, 0]
    seen = {
        score: (version, promoted, prev)
        for score, version, promoted, prev in (results.get(timeout=10) for _ in jobs)
    }
    champion = mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    return {"seen": seen, "champion": str(champion.version), "first": first.version}
