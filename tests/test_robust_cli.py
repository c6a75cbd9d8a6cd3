"""Hostile input, configuration and interrupts through the console scripts: every input row is
predicted or rejected (never lost with exit 0), and every failure is one line, no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from sklearn.preprocessing import StandardScaler

from tests.conftest import BIN, error_line, make_corpus, run_cli
from tests.predict_support import article_rows, register_models


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return register_models(tmp_path_factory.mktemp("models"))


def predict(cwd: Path, store: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return run_cli(cwd, "newsclf-predict", f"mlflow.tracking_uri={store}", "n_jobs=1", *args, ok=ok)


def write_csv(path: Path, n: int, bad_at: int, kind: str) -> Path:
    """``n`` article rows (header on line 1, row i on line i + 1), row ``bad_at`` broken:
    an unclosed quote that runs to the end of the file, or a byte that is not UTF-8."""
    lines = [b"id,title,text"]
    for i, row in enumerate(article_rows(n), start=1):
        title = ('"' + row["title"]) if kind == "quote" and i == bad_at else row["title"]
        text = row["text"] + (" \xff" if kind == "utf8" and i == bad_at else "")
        raw = f"{row['id']},{title},{text}".encode("utf-8", "surrogateescape")
        lines.append(raw.replace("\xff".encode(), b"\xff") if kind == "utf8" else raw)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    ("n", "bad_at", "kind"),
    [(100_000, 50_000, "quote"), (100_000, 50_000, "utf8"), (5_000, 2_500, "quote")],
)
def test_every_csv_row_is_predicted_or_rejected(tmp_path, store, n, bad_at, kind):
    source = write_csv(tmp_path / f"{kind}.csv", n, bad_at, kind)
    out = tmp_path / "p.parquet"
    proc = predict(
        tmp_path, store, "source=csv", f"source.path={source}", f"output.path={out}",
        "chunk_size=20000",
    )  # fmt: skip
    assert f"{n} articles in = {n - 1} predicted + 1 rejected" in proc.stdout
    assert pq.read_metadata(out).num_rows == n - 1
    rejects = pd.read_csv(f"{out}.rejects.csv")
    assert rejects["source"].tolist() == [f"{source}:{bad_at + 1}"]  # its true line
    assert rejects["reason"].tolist() == ["malformed_record"]
    # on_error=raise stops with the file and line, exit 2
    line = error_line(
        predict(
            tmp_path, store, "source=csv", f"source.path={source}", "source.on_error=raise",
            f"output.path={tmp_path / 'q.parquet'}", ok=False,
        )
    )  # fmt: skip
    assert f"{source}:{bad_at + 1}: " in line


def test_wrong_types_are_rejected_with_column_and_type(tmp_path, store):
    rows = article_rows(4)
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "title": [r["title"] for r in rows],
            "text": [rows[0]["text"], None, rows[2]["text"], rows[3]["text"]],
        }
    )
    ints = table.set_column(2, "text", pa.array([1, 2, 3, 4]))
    pq.write_table(ints, tmp_path / "ints.parquet")
    line = error_line(
        predict(
            tmp_path, store, "source=parquet", f"source.path={tmp_path / 'ints.parquet'}",
            "source.on_error=raise", f"output.path={tmp_path / 'a.parquet'}", ok=False,
        )
    )  # fmt: skip
    assert "ints.parquet:1: column 'text' holds int 1, not a string" in line
    jsonl = tmp_path / "in.jsonl"
    values = [rows[0]["text"], 12, ["troops", "tank"], True]
    jsonl.write_text(
        "".join(json.dumps({**r, "text": v}) + "\n" for r, v in zip(rows, values, strict=True))
    )
    out = tmp_path / "j.parquet"
    proc = predict(tmp_path, store, "source=jsonl", f"source.path={jsonl}", f"output.path={out}")
    assert "4 articles in = 1 predicted + 3 rejected (wrong_type 3)" in proc.stdout
    details = pd.read_csv(f"{out}.rejects.csv")["detail"].tolist()
    assert [d.split(": ", 1)[1] for d in details] == [
        "column 'text' holds int 12, not a string",
        "column 'text' holds list ['troops', 'tank'], not a string",
        "column 'text' holds bool True, not a string",
    ]


def test_configuration_and_model_errors_are_one_line(tmp_path, store):
    utf16 = tmp_path / "u.csv"
    utf16.write_bytes("id,title,text\na1,T,troops tank\n".encode("utf-16"))
    bad_model = tmp_path / "bad_model"
    model = next(Path(store.removeprefix("sqlite:///")).parent.glob("mlruns/*/models/*/artifacts"))
    subprocess.run(["cp", "-r", str(model), str(bad_model)], check=True)
    sio.dump(StandardScaler().fit([[1.0], [2.0]]), bad_model / "artifacts" / "model.skops")
    task = "topic" if "newsclf_task: topic" in (bad_model / "MLmodel").read_text() else "stance"
    other = {"topic": "stance", "stance": "topic"}[task]
    out = f"output.path={tmp_path / 'p.parquet'}"
    cases = {
        ("source=csv", out): "source.path: missing mandatory value",
        ("n_jobs=abc", out): "n_jobs: 'abc' is not an integer",
        # a share, not a percentage: 2 used to call every prediction low-confidence
        ("report.low_confidence=2", out): "report.low_confidence: 2 is not a number from 0 to 1",
        ("source.on_error=ignore", out): "source.on_error: 'ignore' is not one of raise, reject",
        ("source.format=xml", out): "source.format: 'xml' is not one of txt",
        ("source=csv", f"source.path={utf16}", out): "UTF-16 text (byte order mark)",
        (f"models.{task}={bad_model}", f"~models.{other}", out): "does not classify texts",
        # was Hydra's first line alone ("Error in call to target ...:"), then Python's
        # "Source.__init__() got an unexpected keyword argument 'delimiter'"
        ("+source.delimiter=tab", out): "source.delimiter: Source has no parameter 'delimiter' "
        "(it takes path, ",
        ("+source.text_colum=body", out): "source.text_colum: Source has no parameter "
        "'text_colum' (did you mean text_column? it takes path, ",
    }
    for args, expected in cases.items():
        proc = predict(tmp_path, store, *args, ok=False)
        assert expected in error_line(proc), args
        assert proc.stdout == "", args  # was an empty line: the progress bar's, into a pipe


def test_a_finished_predictions_file_of_another_job_is_kept(tmp_path, store):
    out = tmp_path / "p.parquet"
    first = tmp_path / "a.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in article_rows(5)))
    args = ("source=jsonl", f"source.path={first}", f"output.path={out}")
    predict(tmp_path, store, *args)
    predict(tmp_path, store, *args)  # the same job again may replace its own file
    other = tmp_path / "b.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in article_rows(3)))
    args = ("source=jsonl", f"source.path={other}", f"output.path={out}")
    line = error_line(predict(tmp_path, store, *args, ok=False))
    assert "written by another job" in line and "output.overwrite=true" in line
    assert pq.read_metadata(out).num_rows == 5
    predict(tmp_path, store, *args, "output.overwrite=true")
    assert pq.read_metadata(out).num_rows == 3

    # a file newsclf did not write is named as such (it said "written by another job")
    mine = tmp_path / "mine.csv"
    mine.write_text("my,own\n")
    line = error_line(predict(tmp_path, store, *args[:2], f"output.path={mine}", ok=False))
    assert "mine.csv: exists and is no newsclf-predict output (no mine.csv.report.json" in line
    # the input itself, or a file in the input folder, is refused even with overwrite: the
    # predictions replaced the articles they were made from
    folder = tmp_path / "ins"
    folder.mkdir()
    (folder / "x.jsonl").write_text(other.read_text())
    for source, target in ((other, other), (folder, folder / "p.jsonl")):
        line = error_line(
            predict(tmp_path, store, "source=jsonl", f"source.path={source}",
                    f"output.path={target}", "output.overwrite=true", ok=False)
        )  # fmt: skip
        assert "the input (source.path" in line and "choose output.path outside it" in line
    assert other.read_text().count("\n") == 3  # untouched


def test_dataset_and_annotate_outputs_in_the_input_folder_are_refused(tmp_path):
    """A dataset folder or an annotations export written into the articles' folder is read
    back as articles by the next run (rejects.csv, votes.csv, next.csv under a CSV source's
    pattern): refused before any work, as newsclf-predict refuses its output there."""
    labels = make_corpus(tmp_path / "corpus", n_per_topic=4)
    articles = labels.parent / "articles"
    before = sorted(p.name for p in articles.iterdir())
    common = (f"source.path={articles}", f"annotations.path={labels}")
    for app, key, target in (
        ("newsclf-dataset", "output_dir", articles / "datasets"),
        ("newsclf-annotate", "output.path", articles / "next.csv"),
    ):
        extra = ["log_to_mlflow=false"] if app == "newsclf-dataset" else ["strategy=conflict"]
        line = error_line(run_cli(tmp_path, app, *common, f"{key}={target}", *extra, ok=False))
        assert line == (
            f"{app}: error: {target}: is in the input (source.path {articles}); "
            f"choose {key} outside it"
        )
    assert sorted(p.name for p in articles.iterdir()) == before


def test_predict_writes_nothing_into_the_model_store(tmp_path, store):
    root = Path(store.removeprefix("sqlite:///")).parent / "mlruns"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert any(p.name == "model.skops" for p in before)
    predict(tmp_path, store, f"output.path={tmp_path / 'p.parquet'}")
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


def test_unwritable_working_directory_is_one_line(tmp_path):
    def writable(folder: Path) -> bool:
        try:
            with tempfile.TemporaryFile(dir=folder):
                return True
        except OSError:
            return False

    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    if writable(folder):  # root writes anywhere: use a folder nobody can write
        folder = Path("/sys/kernel")
        if not folder.is_dir() or writable(folder):
            pytest.skip("no unwritable folder for this user")
    for extra in ((), (f"hydra.run.dir={tmp_path / 'run'}",)):
        line = error_line(run_cli(folder, "newsclf-dataset", *extra, ok=False))
        assert "not writable" in line or "cannot write (Permission denied)" in line
        assert ("working directory" in line) == (not extra)


def test_a_build_that_rejects_everything_says_so_and_keeps_the_rejects(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("id,title,text\na1,T,\na2,T,\n")
    proc = run_cli(
        tmp_path, "newsclf-dataset", "source=csv", f"source.path={path}",
        "annotations.path=null", "log_to_mlflow=false", f"output_dir={tmp_path / 'ds'}", ok=False,
    )  # fmt: skip
    assert "nothing kept, all 2 inputs were rejected (empty_text 2" in error_line(proc)
    assert len(pd.read_csv(tmp_path / "ds" / "rejects.csv")) == 2


def interrupt(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_during_a_spark_job_is_one_line(tmp_path, store):
    """pyspark's own Ctrl-C handler called into the JVM while the main thread waited on it,
    and py4j logged three tracebacks to the console after the one line."""
    source = tmp_path / "in.parquet"
    pd.DataFrame(article_rows(30_000)).to_parquet(source)
    out = tmp_path / "p.parquet"
    proc = subprocess.Popen(
        [str(BIN / "newsclf-predict"), f"mlflow.tracking_uri={store}", "engine=spark",
         "source=parquet", f"source.path={source}", f"output.path={out}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".p.parquet*.tmp-*")):  # Spark is writing the predictions
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)
    done = interrupt(proc)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "py4j" not in done.stdout, done.stdout
    last = done.stderr.strip().splitlines()[-1]  # after Spark's progress bar, on its line
    assert last.endswith("newsclf-predict: interrupted; rerun the same command"), done.stderr


def test_ctrl_c_is_one_line_and_the_job_resumes(tmp_path, store):
    source = write_csv(tmp_path / "in.csv", 20_000, 0, "none")
    out = tmp_path / "p.parquet"
    args = [
        str(BIN / "newsclf-predict"), f"mlflow.tracking_uri={store}", "source=csv",
        f"source.path={source}", f"output.path={out}", "chunk_size=200", "n_jobs=2",
    ]  # fmt: skip
    state = tmp_path / ".p.parquet.parts" / "state.json"
    proc = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not (state.exists() and json.loads(state.read_text())["chunks"] >= 2):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    done = interrupt(proc)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted after" in lines[0], done.stderr
    assert "rerun the same command to resume" in lines[0]
    again = run_cli(tmp_path, "newsclf-predict", *args[1:])
    assert "resumed after" in again.stdout
    assert pq.read_metadata(out).num_rows == 20_000


def test_ctrl_c_while_the_models_are_fetched_ends_at_once(tmp_path):
    """The models are looked up in a forked process; Ctrl-C while it waits for a tracking
    server that accepts the connection but never answers ends the job at once, in one line,
    without waiting for the server's timeout (60 s)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "text": "An article."}\n', encoding="utf-8")
    proc = subprocess.Popen(
        [str(BIN / "newsclf-predict"), f"mlflow.tracking_uri=http://127.0.0.1:{server.getsockname()[1]}",
         "source=jsonl", f"source.path={source}", f"output.path={tmp_path / 'p.parquet'}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        server.settimeout(1)
        while True:  # the lookup has reached the server
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            try:
                connection, _ = server.accept()
                break
            except TimeoutError:
                continue
        started = time.monotonic()
        done = interrupt(proc)
        assert time.monotonic() - started < 10
        connection.close()
    finally:
        server.close()
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "p.parquet").exists()


def test_ctrl_c_in_dataset_is_one_line(tmp_path):
    labels = make_corpus(tmp_path / "corpus", n_per_topic=100)
    proc = subprocess.Popen(
        [str(BIN / "newsclf-dataset"), f"source.path={labels.parent / 'articles'}",
         f"annotations.path={labels}", "log_to_mlflow=false"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not list((tmp_path / "data" / "datasets").glob(".build-*")):  # the build has begun
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    done = interrupt(proc)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "newsclf-dataset: interrupted; rerun the same command"
    ]


def test_ctrl_c_while_a_command_is_imported_is_one_line(tmp_path):
    """Ctrl-C in the first second, while Hydra and scikit-learn are still being imported, is
    the same one line as during the work (it was a traceback through the imports)."""
    (tmp_path / "slow_command.py").write_text("raise KeyboardInterrupt\n")
    script = "from newsclf.launch import _launcher; _launcher('newsclf-x', 'slow_command')()"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert done.stderr.splitlines() == ["newsclf-x: interrupted; rerun the same command"]


def test_cfg_with_multirun_is_one_line(tmp_path):
    # Hydra refuses the pair with a ValueError: it was a traceback
    args = ("--multirun", "model.pipeline.classifier.C=0.1,1", "--cfg", "job")
    proc = run_cli(tmp_path, "newsclf-train", *args, ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert error_line(proc).startswith("newsclf-train: error: Only one of --run, --multirun, --cfg")
    assert error_line(proc).endswith("leave out --multirun and give one value of each swept key")


def test_a_cluster_launcher_without_its_plugin_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    from newsclf import cli

    # was Hydra's "In 'hydra/launcher/ray_cluster': Could not load 'hydra/launcher/ray'"
    monkeypatch.setitem(cli.CLUSTER_LAUNCHERS, "slurm", "hydra_plugins.not_installed")
    assert cli._missing_launcher(["task=topic", "hydra/launcher=slurm"]) == (
        "hydra/launcher=slurm: its Hydra launcher plugin (not_installed) is not installed; "
        "pip install 'newsclf[cluster]'"
    )
    assert cli._missing_launcher(["hydra/launcher=parallel"]) is None
    proc = run_cli(
        tmp_path, "newsclf-train", "hydra/launcher=ray_cluster", "--cfg", "hydra", ok=False
    )
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:  # not in dev
        assert error_line(proc).endswith("is not installed; pip install 'newsclf[cluster]'")
    else:
        assert proc.returncode == 0 and "ray" in proc.stdout


def test_console_scripts_go_through_the_launcher():
    """Every installed console script imports its command through newsclf.launch."""
    for name in ("dataset", "train", "predict", "annotate", "evaluate"):
        text = (BIN / f"newsclf-{name}").read_text(encoding="utf-8")
        assert f"from newsclf.launch import {name}" in text, text


def test_ctrl_c_inside_a_constructor_is_still_one_line(tmp_path):
    """Ctrl-C that lands while a ZipFile has its file open but not yet its state (as when a
    model or wheel is being read) leaves an object whose __del__ fails at exit: the user still
    sees the one line, not Python's "Exception ignored" traceback after it."""
    script = tmp_path / "half_built.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, zipfile
            from newsclf.cli import user_errors

            class Interrupted(zipfile.ZipFile):
                def __init__(self):
                    self.fp = open(sys.executable, "rb")
                    raise KeyboardInterrupt("interrupted after 3 chunks; rerun to resume")

            @user_errors("newsclf-x")
            def main():
                Interrupted()  # freed at exit, with the interrupt's traceback

            main()
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 130
    assert done.stderr.strip().splitlines() == [
        "newsclf-x: interrupted after 3 chunks; rerun to resume"
    ], done.stderr


@pytest.mark.parametrize("script", ["newsclf-train", "newsclf-predict"])
def test_an_unreachable_server_is_one_line_without_retry_warnings(tmp_path, script):
    """Before the one-line error, urllib3 printed a "Retrying (Retry(total=...)) after
    connection broken by ..." warning per retry of the reachability check (through Hydra's
    log handler, on stdout)."""
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="2", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="0")
    proc = run_cli(tmp_path, script, f"mlflow.tracking_uri={dead}", env=env, ok=False)
    line = error_line(proc)
    assert line == (
        f"{script}: error: tracking server unreachable: {dead} (connection refused; gave up "
        "after 2 retries, see MLFLOW_HTTP_REQUEST_MAX_RETRIES)"
    )
    printed = proc.stdout + proc.stderr
    assert "Retrying" not in printed and "urllib3" not in printed
    assert [out for out in printed.splitlines() if out.strip()] == [line]


def test_a_fractional_retry_setting_is_one_line(tmp_path):
    """MLflow reads MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR as an int: 0.1 used to end in a
    ValueError traceback from inside MLflow's first request."""
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0.1"}
    server = "http://127.0.0.1:9"  # checked before any request is made
    proc = run_cli(tmp_path, "newsclf-train", f"mlflow.tracking_uri={server}", env=env, ok=False)
    assert error_line(proc) == (
        "newsclf-train: error: MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR='0.1': MLflow takes a whole "
        "number here"
    )


def test_help_lists_the_groups_each_app_uses_and_folds_the_rules(tmp_path):
    """newsclf-dataset --help ran to 1,280 lines (every labelling rule's terms), and every app
    listed every config group, model= for newsclf-predict too, which refuses it."""
    helps = {
        app: subprocess.run(
            [str(BIN / app), "--help"], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout
        for app in ("newsclf-dataset", "newsclf-predict", "newsclf-train")
    }
    dataset = helps["newsclf-dataset"]
    assert len(dataset.splitlines()) < 200 and "diplomacy_lead" not in dataset
    assert "topic: '<7 rules: newsclf-dataset --cfg job --package labeling>'" in dataset
    groups = {
        app: {line.split(":")[0] for line in text.split("== Config ==")[0].splitlines()[4:] if line}
        for app, text in helps.items()
    }
    assert groups["newsclf-predict"] == {"clean", "mlflow", "source"}
    assert {"model", "task", "hydra/launcher", "hydra/sweeper"} <= groups["newsclf-train"]
    assert "model" not in groups["newsclf-dataset"]
    launchers = next(x for x in helps["newsclf-train"].splitlines() if x.startswith("hydra/la"))
    assert "parallel" in launchers and "slurm" in launchers  # newsclf's own and the plugins'
    # what the folded rules stand for is one command away
    rules = subprocess.run(
        [str(BIN / "newsclf-dataset"), "--cfg", "job", "--package", "labeling"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "diplomacy_lead" in rules
