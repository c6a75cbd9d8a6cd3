"""Resumable, atomic batch jobs: counts, resumption, locking, parallel workers, the report."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from filelock import FileLock

from newsclf.batch import HashSet64
from newsclf.cli.predict import run_prediction
from newsclf.errors import NewsclfError
from tests.conftest import ROOT
from tests.predict_support import article_rows, predict_config, register_models, write_jsonl


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return register_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def articles(tmp_path):
    rows = article_rows(300)
    rows[120] = {**rows[7], "text": "A different text for a repeated id."}  # duplicate id
    rows[50]["text"] = "   "  # empty text
    rows[60]["text"] += "\n\nAdvertisement"  # page furniture: the boilerplate file
    return write_jsonl(tmp_path / "in.jsonl", rows)


def _run(store, source, out, *overrides):
    cfg = predict_config(
        store, "source=jsonl", f"source.path={source}", f"output.path={out}", *overrides
    )
    return run_prediction(cfg)


def _meta(path):
    return json.loads(pq.read_metadata(path).metadata[b"newsclf"])


def _killed_after(store, source, out, records, *overrides):
    """Run a job that dies (as if killed) once ``records`` records are committed."""
    cfg = predict_config(
        store, "source=jsonl", f"source.path={source}", f"output.path={out}", *overrides
    )

    class Killed(BaseException):
        pass

    class Stop:
        def add_task(self, *args, **kwargs):
            return 0

        def update(self, task_id, completed, total):
            if completed >= records:
                raise Killed

    with pytest.raises(Killed):
        run_prediction(cfg, Stop())
    return cfg


def test_counts_add_up_and_file_says_it_is_complete(store, articles, tmp_path):
    out = tmp_path / "out" / "p.parquet"
    result = _run(store, articles, out, "chunk_size=64")
    table = pq.read_table(out).to_pandas()
    meta = _meta(out)
    assert result.n_input == 300 == result.n_predicted + result.n_rejected
    assert meta["rows"] == len(table) == meta["n_input"] - meta["n_rejected"] == 298
    assert meta["rejected_by_reason"] == {"duplicate_id": 1, "empty_text": 1}
    rejects = pd.read_csv(out.with_name("p.parquet.rejects.csv"))
    assert sorted(rejects["reason"]) == ["duplicate_id", "empty_text"]
    assert rejects.set_index("reason").loc["duplicate_id", "source"].endswith("in.jsonl:121")
    assert table["id"].is_unique and table["id"].iloc[0] == "a000000"  # input order kept
    # nothing but the outputs is left beside them (the lock file is hidden and empty)
    assert sorted(p.name for p in out.parent.iterdir()) == [
        ".p.parquet.lock",
        "p.parquet",
        "p.parquet.boilerplate.csv",
        "p.parquet.rejects.csv",
        "p.parquet.report.json",
    ]


def test_two_workers_give_the_same_file_as_one(store, articles, tmp_path):
    _run(store, articles, tmp_path / "one.parquet", "chunk_size=40")
    _run(store, articles, tmp_path / "two.parquet", "chunk_size=40", "n_jobs=2")
    one = pq.read_table(tmp_path / "one.parquet").to_pandas()
    two = pq.read_table(tmp_path / "two.parquet").to_pandas()
    pd.testing.assert_frame_equal(one, two)


def test_killed_job_resumes_from_last_complete_chunk(store, articles, tmp_path):
    reference = tmp_path / "ref.parquet"
    _run(store, articles, reference, "chunk_size=50")
    out = tmp_path / "p.parquet"
    cfg = _killed_after(store, articles, out, 150, "chunk_size=50")  # after the third chunk
    assert not out.exists()  # no predictions file until the job is complete
    parts = tmp_path / ".p.parquet.parts"
    assert json.loads((parts / "state.json").read_text())["records"] == 150
    (parts / "part-000003.parquet").write_bytes(b"half-written")  # debris of a killed chunk
    result = run_prediction(cfg)
    assert result.resumed_records == 150
    assert not parts.exists()
    pd.testing.assert_frame_equal(
        pq.read_table(out).to_pandas(), pq.read_table(reference).to_pandas()
    )
    assert _meta(out)["rows"] == 298 and result.n_rejected == 2


def test_changed_settings_start_over(store, articles, tmp_path):
    out = tmp_path / "p.parquet"
    parts = tmp_path / ".p.parquet.parts"
    parts.mkdir()
    (parts / "state.json").write_text('{"fingerprint": "from another job", "chunks": 3}')
    result = _run(store, articles, out, "chunk_size=50")
    assert result.resumed_records == 0 and _meta(out)["rows"] == 298


def test_second_job_on_same_output_fails_clearly(store, articles, tmp_path):
    out = tmp_path / "p.parquet"
    with (
        FileLock(str(tmp_path / ".p.parquet.lock")),
        pytest.raises(NewsclfError, match="another newsclf-predict job is writing"),
    ):
        _run(store, articles, out)
    assert not out.exists()


def test_an_output_folder_that_takes_no_files_is_named_as_such(store, articles):
    """A lock file that cannot be created is no other job's lock: the line names the folder
    as not writable (/proc takes no new files, even from root)."""
    with pytest.raises(NewsclfError) as caught:
        _run(store, articles, "/proc/p.parquet")
    assert (
        str(caught.value) == "/proc: output folder is not writable (cannot create .p.parquet.lock)"
    )


def test_dedupe_text_rejects_repeated_texts(store, tmp_path):
    rows = article_rows(30)
    rows[20]["text"] = rows[3]["text"]
    rows[20]["title"] = rows[3]["title"]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = _run(store, source, tmp_path / "p.parquet", "dedupe_text=true", "chunk_size=7")
    assert result.rejected_by_reason == {"duplicate_text": 1}
    assert result.n_predicted == 29


def test_dedupe_text_rejects_a_body_repeated_under_another_title(store, tmp_path):
    """A syndicated copy under another headline (or none) repeats the body: with dedupe_text
    it is a duplicate_text (the key was title + body, so it got a second prediction)."""
    rows = article_rows(30)
    rows[20]["text"] = rows[3]["text"]  # title "Report 20", not "Report 3"
    rows[25]["text"], rows[25]["title"] = rows[3]["text"], ""
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = _run(store, source, tmp_path / "p.parquet", "dedupe_text=true", "chunk_size=7")
    assert result.rejected_by_reason == {"duplicate_text": 2}
    assert result.n_input == 30 == result.n_predicted + result.n_rejected
    rejects = pd.read_csv(tmp_path / "p.parquet.rejects.csv")
    assert rejects[["id", "reason", "detail"]].values.tolist() == [
        ["a000020", "duplicate_text", "same text as an earlier article"],
        ["a000025", "duplicate_text", "same text as an earlier article"],
    ]
    assert "a000003" in set(pq.read_table(tmp_path / "p.parquet").column("id").to_pylist())


def test_resumed_job_remembers_the_ids_of_repeated_texts(store, tmp_path):
    """With dedupe_text, an article rejected for its text still claims its id: a later
    article with that id is a duplicate_id in a job resumed after the first one's chunk
    exactly as in an uninterrupted job."""
    rows = article_rows(30)
    rows[6]["title"], rows[6]["text"] = rows[3]["title"], rows[3]["text"]  # a repeated text
    rows[12] = {**rows[6], "text": "Another text under the id of the repeated one."}
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    settings = ("dedupe_text=true", "chunk_size=5")
    reference = _run(store, source, tmp_path / "ref.parquet", *settings)
    assert reference.rejected_by_reason == {"duplicate_text": 1, "duplicate_id": 1}
    cfg = _killed_after(store, source, tmp_path / "p.parquet", 10, *settings)
    resumed = run_prediction(cfg)
    assert resumed.resumed_records == 10
    assert resumed.rejected_by_reason == reference.rejected_by_reason
    pd.testing.assert_frame_equal(
        pq.read_table(tmp_path / "p.parquet").to_pandas(),
        pq.read_table(tmp_path / "ref.parquet").to_pandas(),
    )


def test_a_job_that_starts_over_says_what_changed(store, articles, tmp_path, caplog):
    """Resume restarted without a word (an INFO line the progress bar hid) when the champion
    had moved between the runs: the warning names what differs."""
    out = tmp_path / "p.parquet"
    base = ("source=jsonl", f"source.path={articles}", f"output.path={out}", "chunk_size=50")
    _killed_after(store, articles, out, 100, "chunk_size=50")
    with caplog.at_level(logging.WARNING, logger="newsclf.batch"):
        result = run_prediction(predict_config(store, *base, "~models.stance"))
    assert result.resumed_records == 0
    (line,) = [r.getMessage() for r in caplog.records if "starting over" in r.getMessage()]
    now = "newsclf-topic v1"
    assert line == f"{out}: earlier parts are from other models (now {now}); starting over"
    caplog.clear()
    _killed_after(store, articles, out, 100, "chunk_size=50", "output.overwrite=true")
    with caplog.at_level(logging.WARNING, logger="newsclf.batch"):
        run_prediction(predict_config(store, *base, "output.overwrite=true", "dedupe_text=true"))
    (line,) = [r.getMessage() for r in caplog.records if "starting over" in r.getMessage()]
    assert line.endswith("earlier parts are from other settings; starting over")


def test_input_rewritten_with_its_old_size_and_time_starts_over(store, tmp_path):
    """A resumed job must read the input it began: a file rewritten with the same size and
    its modification time put back (cp -p, rsync -t) is other input, and the job starts over
    instead of keeping the old file's first predictions."""
    import os

    source = write_jsonl(tmp_path / "in.jsonl", article_rows(30))
    before = source.stat()
    cfg = _killed_after(store, source, tmp_path / "p.parquet", 10, "chunk_size=5")
    text = source.read_text(encoding="utf-8").replace('"a0000', '"b0000')
    source.write_text(text, encoding="utf-8")
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    result = run_prediction(cfg)
    assert result.resumed_records == 0
    ids = pq.read_table(tmp_path / "p.parquet").column("id").to_pylist()
    assert ids == [f"b{i:06d}" for i in range(30)]


def test_all_rejected_over_another_jobs_output_leaves_no_mixed_set(store, articles, tmp_path):
    """A job allowed to replace another job's output (output.overwrite=true) that predicts
    nothing leaves its rejects alone: the other job's predictions, report and boilerplate
    files go, so none of them sits beside rejects they do not describe."""
    out = tmp_path / "p.parquet"
    _run(store, articles, out)
    assert out.exists() and (tmp_path / "p.parquet.report.json").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{broken\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match="nothing to predict"):
        _run(store, bad, out, "source.on_error=reject", "output.overwrite=true")
    assert sorted(p.name for p in tmp_path.glob("p.parquet*")) == ["p.parquet.rejects.csv"]
    rejects = pd.read_csv(tmp_path / "p.parquet.rejects.csv")
    assert rejects["reason"].tolist() == ["malformed_record"]


def test_a_job_without_removals_leaves_no_earlier_boilerplate_file(store, articles, tmp_path):
    """The boilerplate file beside a predictions file is this job's: a job that removes
    nothing deletes the one an earlier job left at the same path."""
    out = tmp_path / "p.parquet"
    _run(store, articles, out)
    assert (tmp_path / "p.parquet.boilerplate.csv").exists()
    plain = write_jsonl(tmp_path / "plain.jsonl", article_rows(20))
    result = _run(store, plain, out, "output.overwrite=true")
    assert result.n_predicted == 20 and not any(result.report["removed_by_rule"].values())
    assert not (tmp_path / "p.parquet.boilerplate.csv").exists()


def test_report_flags_a_batch_unlike_the_training_data(store, tmp_path):
    alike = write_jsonl(tmp_path / "alike.jsonl", article_rows(200))
    unlike = write_jsonl(tmp_path / "unlike.jsonl", article_rows(200, topics=False))
    near = _run(store, alike, tmp_path / "alike.parquet").report["tasks"]["topic"]
    far = _run(store, unlike, tmp_path / "unlike.parquet").report["tasks"]["topic"]
    assert near["drift"]["warning"] == [] and far["drift"]["warning"]
    assert near["drift"]["oov_word_share"] < 0.1 < 0.5 < far["drift"]["oov_word_share"]
    assert near["drift"]["vocabulary_js"] < far["drift"]["vocabulary_js"]
    assert sum(v["count"] for v in near["labels"].values()) == 200
    assert far["low_confidence_share"] > near["low_confidence_share"]
    saved = json.loads((tmp_path / "unlike.parquet.report.json").read_text())
    assert saved["tasks"]["topic"]["drift"]["warning"] == far["drift"]["warning"]


def test_report_can_be_logged_to_mlflow(store, articles, tmp_path):
    import mlflow

    result = _run(store, articles, tmp_path / "p.parquet", "report.mlflow=true")
    runs = mlflow.search_runs(experiment_names=["newsclf-predict"])
    assert runs["metrics.n_predicted"].iloc[0] == result.n_predicted == 298
    assert "metrics.topic_low_confidence_share" in runs


def test_hash_set_keeps_first_occurrences_across_merges():
    seen = HashSet64(merge_at=4)
    first = seen.add_new(np.array([1, 2, 2, 3], dtype=np.uint64))
    second = seen.add_new(np.array([3, 4, 5, 6, 1], dtype=np.uint64))
    assert first.tolist() == [True, True, False, True]
    assert second.tolist() == [False, True, True, True, False]
    assert len(seen) == 6


def test_models_load_in_a_process_that_never_imports_mlflow(store, tmp_path):
    """MLflow's lookups and downloads run in a forked process beside the job's own imports:
    the job's process gets the registered models (name, version) without importing MLflow."""
    script = f"""
import sys
from hydra import compose, initialize_config_dir
from newsclf.cli.predict import load_models
with initialize_config_dir(config_dir={str(ROOT / "configs")!r}, version_base="1.3"):
    cfg = compose("predict", overrides=["mlflow.tracking_uri={store}"])
models = load_models(cfg)
print(sorted((m.task, m.name, m.version) for m in models))
print(models[0].classifier.predict(["a text"])["label"].tolist() != [])
print(sorted(name for name in sys.modules if name.split(".")[0] == "mlflow")[:3])
"""
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines == [
        "[('stance', 'newsclf-stance', '1'), ('topic', 'newsclf-topic', '1')]",
        "True",
        "[]",
    ]


def test_a_small_batch_alike_the_training_data_raises_no_drift_warning(store, tmp_path):
    """A few articles miss most training terms by chance alone: the divergence is compared
    with that of a training sample of the same size, so only real drift warns."""
    few = write_jsonl(tmp_path / "few.jsonl", article_rows(3, seed=5))
    drift = _run(store, few, tmp_path / "few.parquet").report["tasks"]["topic"]["drift"]
    # above the threshold by sample size alone, and about what a training sample shows
    assert drift["vocabulary_js"] > 0.25
    assert drift["vocabulary_js"] - drift["vocabulary_js_expected"] < 0.25
    assert drift["warning"] == []


_KILLER = """
import os, signal, sys
from pathlib import Path
import newsclf.batch as batch
from newsclf.cli.predict import run_prediction
from tests.predict_support import predict_config

store, source, out, at = sys.argv[1:5]
def kill(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if at == "write":  # while the predictions file is being written
    batch.PredictionWriter.write = kill
else:  # as the first file of the new set is renamed into place
    replace = os.replace
    def first_rename(src, dst):
        if Path(dst).name.startswith(Path(out).name):
            kill()
        replace(src, dst)
    batch.os.replace = first_rename
run_prediction(predict_config(store, "source=jsonl", f"source.path={source}",
                              f"output.path={out}", "output.overwrite=true"))
"""


@pytest.mark.parametrize("at", ["write", "rename"])
def test_job_killed_while_replacing_an_output_leaves_no_mixed_set(store, articles, tmp_path, at):
    """A job replacing another job's output, killed while it assembles its files, leaves the
    older job's whole set or no predictions file, never older predictions beside its own
    rejects and report; the rerun finishes."""
    out = tmp_path / "p.parquet"
    _run(store, articles, out)
    small = write_jsonl(tmp_path / "small.jsonl", article_rows(40))
    killed = subprocess.run(
        [sys.executable, "-c", _KILLER, store, str(small), str(out), at],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    if out.exists():
        report = json.loads((tmp_path / "p.parquet.report.json").read_text())
        rejects = pd.read_csv(tmp_path / "p.parquet.rejects.csv")
        assert _meta(out)["n_input"] == report["n_input"] == 300
        assert len(rejects) == report["n_rejected"] == 2
    result = _run(store, small, out, "output.overwrite=true")
    assert result.n_input == 40 and _meta(out)["n_input"] == 40
    assert not list(tmp_path.glob(".p.parquet*.tmp-*"))  # the killed job's temporaries went


def test_a_job_removes_only_the_temporaries_of_ended_writers(store, articles, tmp_path):
    """Files a killed job was writing beside this output go; those of a live process, and
    those of another output, stay."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = [f".p.parquet{s}.tmp-{ended.pid}" for s in ("", ".rejects.csv", ".report.json")]
    kept = [".p.parquet.tmp-1", f".p.parquet.v2.tmp-{ended.pid}", f".q.parquet.tmp-{ended.pid}"]
    for name in stale + kept:  # pid 1 is always alive
        (tmp_path / name).write_text("half-written")
    _run(store, articles, tmp_path / "p.parquet")
    assert sorted(p.name for p in tmp_path.glob(".*.tmp-*")) == sorted(kept)


def test_logged_model_takes_pandas_missing_values_as_missing(store):
    """pd.NA (pandas' string dtype), like None and NaN, is a missing title or body in the
    logged (pyfunc) model, not the text "<NA>"."""
    import mlflow

    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model("models:/newsclf-topic@champion")
    body = article_rows(1)[0]["text"]

    def predict(title: object, text: object, dtype: str) -> pd.DataFrame:
        frame = pd.DataFrame(
            {"title": pd.array([title, "t"], dtype=dtype), "text": pd.array([text, body], dtype)}
        )
        return model.predict(frame)

    missing = predict("t", pd.NA, "string")
    assert missing.loc[0, "label"] == "" and np.isnan(missing.loc[0, "probability"])
    pd.testing.assert_frame_equal(predict(pd.NA, body, "string"), predict(None, body, object))


def test_logged_model_gives_no_prediction_for_values_that_are_not_text(store):
    """A number, bytes or a list as text or title gets what an empty article gets (label "" and
    NaN), as newsclf-predict rejects it as wrong_type, not a prediction for str(value); the
    string rows beside it are predicted as alone."""
    import mlflow

    mlflow.set_tracking_uri(store)
    model = mlflow.pyfunc.load_model("models:/newsclf-topic@champion")
    body = article_rows(1)[0]["text"]
    bad = [12, b"gas prices", ["troops", "tank"]]
    out = model.predict(pd.DataFrame({"text": [*bad, body]}))
    assert out["label"].tolist()[:3] == ["", "", ""]
    assert out["probability"].iloc[:3].isna().all()
    alone = model.predict(pd.DataFrame({"text": [body]}))
    assert out.iloc[3:].reset_index(drop=True).equals(alone)
    titled = model.predict(pd.DataFrame({"title": [7, "Gas"], "text": [body, body]}))
    assert titled.loc[0, "label"] == "" and titled.loc[1, "label"] != ""
