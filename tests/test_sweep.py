"""Sweeps: the Optuna preset leaves one parent run holding the best trial, with every trial a
child run under it; the cluster launcher presets compose, and a submitit launcher runs trials."""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import BIN, ROOT, error_line
from tests.integration.helpers import build_dataset, run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("sweep-data"))


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def _runs(cwd):
    client = mlflow.MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("newsclf-topic")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def test_topic_sweep_preset_leaves_parent_with_best_trial(tmp_path, dataset):
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "experiment=topic_sweep",
        f"dataset_dir={dataset / 'topic'}",
        "hydra.sweeper.n_trials=4",
        "hydra.sweep.dir=sweep",
        env=_env(),
    )
    client, runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    trials = [r for r in runs if r.data.tags["newsclf.stage"] == "train"]
    assert len(runs) == 5 and len(trials) == 4
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["newsclf.sweeper"] == "OptunaSweeper"
    assert parent.data.tags["newsclf.launcher"] == "JoblibLauncher"
    for trial in trials:
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["newsclf.overrides"].startswith("model.pipeline.classifier.C=")
    assert sorted(t.info.run_name for t in trials) == [f"tfidf_logreg-{i}" for i in range(4)]
    # named after what the sweep varies, not after the first trial's model
    swept = "model.pipeline.classifier.C-model.pipeline.vectorizer.ngram_range"
    assert parent.info.run_name == f"sweep-topic-{swept}"

    # the parent holds the best trial's params and validation macro-F1 (ties: first trial)
    best = max(
        trials,
        key=lambda t: (
            t.data.metrics["validation_macro_f1"],
            -int(t.data.tags["newsclf.sweep_job"]),
        ),
    )
    assert parent.data.tags["newsclf.best_run_id"] == best.info.run_id
    assert parent.data.metrics["validation_macro_f1"] == best.data.metrics["validation_macro_f1"]
    assert parent.data.params == best.data.params
    assert parent.data.metrics["sweep_n_trials"] == 4

    # ... and agrees with what Optuna says, which is logged on the parent too
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(parent.data.metrics["validation_macro_f1"])
    assert float(results["best_params"]["model.pipeline.classifier.C"]) == pytest.approx(
        float(parent.data.params["model.pipeline.classifier.C"])
    )
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "optimization_results.yaml" in artifacts
    assert f"parent run {parent.info.run_id}" in proc.stdout
    assert "newsclf-train sweep: 4 trials, 4 finished" in proc.stdout
    assert client.search_registered_models() == []  # the preset does not register trials

    # the printed command registers the winner (the preset's own register: false overridden)
    (line,) = [x for x in proc.stdout.splitlines() if "register it with a plain run: " in x]
    command = shlex.split(line.split("register it with a plain run: ", 1)[1])
    assert command[0] == "newsclf-train" and command[-1] == "register=true"
    rerun = run(tmp_path, *command, env=_env())
    assert "registered newsclf-topic version 1 (champion" in rerun.stdout
    assert "C=" in parent.data.tags["newsclf.best_overrides"]
    plain = run(tmp_path, *command[:-1], env=_env())  # as the preset has it: says so
    assert "not registered (register=false; add register=true)" in plain.stdout


def test_real_sweep_preset_ranks_trials_by_the_real_dev_sets(tmp_path, dataset):
    """experiment=topic_sweep_real: each trial is scored on both real dev sets and the parent
    keeps the trial with the best mean macro-F1 over them, not the best validation score."""
    shared = Path(os.environ.get("NEWSCLF_SHARED_DATA", ROOT.parent / "shared" / "data"))
    run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "experiment=topic_sweep_real",
        f"dataset_dir={dataset / 'topic'}",
        "hydra.sweeper.n_trials=2",
        "hydra.sweep.dir=sweep",
        env={**_env(), "NEWSCLF_SHARED_DATA": str(shared.resolve())},
    )
    _, runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    trials = [r for r in runs if r.data.tags["newsclf.stage"] == "train"]
    assert len(trials) == 2 and parent.info.status == "FINISHED"
    assert parent.data.tags["newsclf.optimize_metric"] == "evaluation_macro_f1"
    for trial in trials:
        m = trial.data.metrics
        mean = (m["nyt_dev_macro_f1"] + m["semeval_dev_macro_f1"]) / 2
        assert m["evaluation_macro_f1"] == pytest.approx(mean)
    best = max(trials, key=lambda t: t.data.metrics["evaluation_macro_f1"])
    assert parent.data.tags["newsclf.best_run_id"] == best.info.run_id
    assert parent.data.metrics["evaluation_macro_f1"] == best.data.metrics["evaluation_macro_f1"]


def test_failed_trial_does_not_stop_the_others(tmp_path, dataset):
    mine = tmp_path / "my-configs"  # the user's own task config, beside the built-in ones
    (mine / "task").mkdir(parents=True)
    (mine / "task" / "my_topic.yaml").write_text((ROOT / "configs/task/topic.yaml").read_text())
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "--config-dir",
        str(mine),
        "task=my_topic",
        "hydra/launcher=parallel",
        f"dataset_dir={dataset / 'topic'},{tmp_path / 'nowhere'}",
        "register=false",
        env=_env(),
        ok=False,
    )
    assert proc.returncode != 0
    assert "newsclf-train: error: " in proc.stderr and "nowhere: no dataset here" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr  # the error line, not Hydra's traceback
    _, runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    (trial,) = [r for r in runs if r.data.tags["newsclf.stage"] == "train"]
    assert trial.info.status == "FINISHED"  # the good trial ran to the end
    assert parent.info.run_name == "sweep-topic-dataset_dir"
    assert parent.info.status == "FAILED"  # the sweep did not, but the parent has its best
    assert parent.data.tags["newsclf.best_run_id"] == trial.info.run_id
    # the summary's command keeps the --config-dir that task=my_topic needs (it was lost)
    (line,) = [x for x in proc.stdout.splitlines() if "register it with a plain run: " in x]
    command = shlex.split(line.split("register it with a plain run: ", 1)[1])
    assert command[:4] == ["newsclf-train", "--config-dir", str(mine), "task=my_topic"]
    rerun = run(tmp_path, *command, env=_env())
    assert "registered newsclf-topic version 1 (champion" in rerun.stdout


def test_a_sweep_that_registers_its_trials_names_the_best_ones_version(tmp_path, dataset):
    # it said "register it with a plain run: ...", which would register the model again
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        f"dataset_dir={dataset / 'topic'}",
        "model.pipeline.classifier.C=0.01,10",
        "register=true",
        env=_env(),
    )
    client, runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    best = client.get_run(parent.data.tags["newsclf.best_run_id"])
    version = best.data.tags["newsclf.version"]
    state = "champion" if best.data.tags["newsclf.promoted"] == "True" else "not promoted"
    assert f"  registered by its trial: newsclf-topic version {version} ({state})" in proc.stdout
    assert "register it with a plain run" not in proc.stdout
    assert client.get_model_version("newsclf-topic", version).run_id == best.info.run_id


def test_an_optuna_sweep_goes_on_after_a_failed_trial_and_counts_it(tmp_path, dataset):
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "experiment=topic_sweep",
        "hydra.sweeper.n_trials=2",
        f"dataset_dir=choice({dataset / 'topic'},{tmp_path / 'nowhere'})",
        env=_env(),
        ok=False,
    )
    # the sampler's seed draws one good and one missing dataset for the one batch of two
    assert proc.stdout.count(str(tmp_path / "nowhere")) >= 1, proc.stdout
    assert proc.returncode == 0, proc.stderr  # the study ends; a failed trial is a FAIL in it
    assert "nowhere: no dataset here" in proc.stderr
    assert "2 trials, 1 finished, 1 failed" in proc.stdout
    _, runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["sweep_n_trials"] == 2
    assert parent.data.metrics["sweep_n_finished"] == 1


def test_a_failed_trial_of_the_basic_sweeper_ends_the_sweep_with_its_error_line(tmp_path, dataset):
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        f"dataset_dir={dataset / 'topic'}",
        "model.pipeline.classifier.C=-1",
        "register=false",
        env=_env(),
        ok=False,
    )
    assert proc.returncode != 0
    line = "newsclf-train: error: model.pipeline.classifier: The 'C' parameter"
    assert line in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    # the sweep's summary, though a failed trial ended it (there was none)
    assert "newsclf-train sweep: 1 trials, 0 finished, 1 failed; parent run" in proc.stdout

    # a trial's configuration error other than newsclf's own was Hydra's traceback
    proc = run(
        tmp_path, "newsclf-train", "--multirun", f"dataset_dir={dataset / 'topic'}",
        "model.pipeline.classifier.C=1,2", "model.pipeline.vectorizer.ngram_range=${nope}",
        "register=false", env=_env(), ok=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("newsclf-train: error: ") == 3  # each trial's, and Hydra's repeat
    assert "error: model.pipeline.vectorizer.ngram_range: Interpolation key 'nope'" in proc.stderr
    assert "2 trials, 0 finished, 2 failed" in proc.stdout

    # one the callback met before any trial: Hydra warned and ran the trials regardless
    proc = run(
        tmp_path, "newsclf-train", "--multirun", f"dataset_dir={dataset / 'topic'}",
        "run_name=${nope}", env=_env(), ok=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "Launching" not in proc.stdout + proc.stderr
    line = "newsclf-train: error: run_name: Interpolation key 'nope' not found"
    assert proc.stderr.strip() == line


def test_slurm_preset_composes(tmp_path):
    proc = run(
        tmp_path, "newsclf-train", "hydra/launcher=slurm", "--cfg", "hydra", "--resolve", env=_env()
    )
    launcher = yaml.safe_load(proc.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["cpus_per_task"], launcher["timeout_min"]) == (2, 60)
    assert launcher["setup"] == ["export MLFLOW_HTTP_REQUEST_MAX_RETRIES=4"]


def test_the_slurm_launcher_off_a_slurm_cluster_is_one_line_before_any_trial(tmp_path, dataset):
    env = {**_env(), "PATH": str(Path(sys.executable).parent)}  # no srun on it
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "hydra/launcher=slurm",
        f"dataset_dir={dataset / 'topic'}",
        "register=false",
        env=env,
        ok=False,
    )
    assert "hydra/launcher=slurm: no SLURM here (srun is not on the PATH)" in error_line(proc)
    assert not (tmp_path / "mlflow.db").exists()


def test_submitit_launcher_runs_trials_under_one_parent(tmp_path, dataset):
    """submitit's local executor: each trial pickled and run in a process of its own, as on
    SLURM; the trials find the sweep's parent run all the same."""
    run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        f"dataset_dir={dataset / 'topic'}",
        "register=false",
        "model.pipeline.classifier.C=1,10",
        "run_name=nightly",
        env=_env(),
    )
    _, runs = _runs(tmp_path)
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    trials = [r for r in runs if r.data.tags["newsclf.stage"] == "train"]
    assert parent.data.tags["newsclf.launcher"] == "LocalLauncher"
    assert parent.info.run_name == "sweep-nightly"  # the user's name for the runs
    assert sorted(t.info.run_name for t in trials) == ["nightly-0", "nightly-1"]
    assert len(trials) == 2
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {parent.info.run_id}
    # C is a real number to scikit-learn: 1 and 10 are logged as the YAML writes 10.0
    assert sorted(t.data.params["model.pipeline.classifier.C"] for t in trials) == ["1.0", "10.0"]


def test_a_sweep_keeps_secrets_out_of_tags_and_hydra_records(tmp_path, dataset):
    """A secret override of a --multirun was in the clear in every trial's and the parent's
    newsclf.overrides tag (and best_overrides), and in Hydra's multirun.yaml and each trial's
    .hydra files: trials did not redact what a plain run redacts."""
    secret = "hf_S3CRET123"
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        f"dataset_dir={dataset / 'topic'}",
        "register=false",
        "model.pipeline.classifier.C=1,10",
        f"+hf_token={secret}",
        "hydra.sweep.dir=sweep",
        env=_env(),
    )
    assert secret not in proc.stdout + proc.stderr
    _, runs = _runs(tmp_path)
    assert len(runs) == 3
    for r in runs:
        assert secret not in " ".join(r.data.tags.values())
        assert secret not in " ".join(r.data.params.values())
    (parent,) = [r for r in runs if r.data.tags["newsclf.stage"] == "sweep"]
    assert "+hf_token=***" in parent.data.tags["newsclf.overrides"]
    assert "+hf_token=***" in parent.data.tags["newsclf.best_overrides"]
    records = [p for p in (tmp_path / "sweep").rglob("*.yaml")]
    assert any(p.name == "multirun.yaml" for p in records) and len(records) > 3
    for path in records:
        assert secret not in path.read_text(encoding="utf-8"), path


def test_a_sweep_with_an_unknown_optimize_metric_stops_before_any_trial(tmp_path, dataset):
    # with Optuna it was a traceback after every trial had trained; basic: a silent FAILED run
    proc = run(
        tmp_path,
        "newsclf-train",
        "--multirun",
        "experiment=topic_sweep",
        f"dataset_dir={dataset / 'topic'}",
        "hydra.sweeper.n_trials=2",
        "optimize_metric=validation_macro_fl",
        env=_env(),
        ok=False,
    )
    assert proc.returncode == 2
    assert "newsclf-train: error: optimize_metric: 'validation_macro_fl' is not a metric" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or not _runs(tmp_path)[1]


def test_ctrl_c_on_a_parallel_sweep_ends_it_and_closes_every_run(tmp_path, dataset):
    """Ctrl-C twice (SIGINT to the process group) on a sweep under the parallel launcher hung
    with loky's traceback ("Failed to kill subprocesses ... install psutil": the second signal
    killed its pgrep), the parent run and trial runs left RUNNING."""
    db = tmp_path / "mlflow.db"
    proc = subprocess.Popen(
        [str(BIN / "newsclf-train"), "--multirun", "experiment=topic_sweep",
         f"dataset_dir={dataset / 'topic'}", "hydra.sweeper.n_trials=4"],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _n_running(db) < 3:  # the parent and two trials
        time.sleep(0.5)
    assert _n_running(db) >= 3, "the trials did not start"
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C again, impatient (or `timeout` passing it on)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "newsclf-train: interrupted" in stderr and "Traceback" not in stderr, stderr
    assert "newsclf-train sweep: 2 trials, 0 finished" in stdout
    _, runs = _runs(tmp_path)
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert statuses.pop(next(n for n in statuses if n.startswith("sweep-"))) == "FAILED"
    # each trial run closed: KILLED, or FAILED for one the second signal met in its handler
    assert statuses and set(statuses.values()) <= {"KILLED", "FAILED"}, statuses


def _n_running(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]
    except sqlite3.Error:  # the store is being created
        return 0
