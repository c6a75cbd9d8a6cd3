"""newsclf-predict as a user runs it: killed half way, a second job on the same output, resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq

from tests.conftest import BIN
from tests.predict_support import article_rows, register_models, write_jsonl


def test_kill_second_job_and_resume(tmp_path):
    store = register_models(tmp_path)
    rows = article_rows(3000)
    rows[2500]["id"] = rows[10]["id"]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out" / "p.parquet"
    args = [
        str(BIN / "newsclf-predict"),
        f"mlflow.tracking_uri={store}",
        "source=jsonl",
        f"source.path={source}",
        f"output.path={out}",
        "chunk_size=100",
        "n_jobs=2",
    ]
    state = out.with_name(".p.parquet.parts") / "state.json"
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (state.exists() and json.loads(state.read_text())["records"] >= 500):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the job never got going"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGSTOP)  # a hung job still holds its output
        second = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert (
            second.stderr.strip()
            .splitlines()[-1]
            .startswith(
                f"newsclf-predict: error: {out}: another newsclf-predict job is writing this file"
            )
        )
        os.kill(first.pid, signal.SIGKILL)  # no clean-up of any kind (workers die with it)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    done = json.loads(state.read_text())["records"]
    assert 500 <= done < 3000 and done % 100 == 0
    assert not out.exists()

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    summary = " ".join(again.stdout.split())
    assert "3000 articles in = 2999 predicted + 1 rejected (duplicate_id 1)" in summary
    assert f"resumed after {done}" in summary and "articles/s" in summary
    # every label's share is in the report; the summary names the four largest and the rest
    shares = json.loads(out.with_name(out.name + ".report.json").read_text())["tasks"]["topic"]
    top = ", ".join(f"{k} {v['share']:.0%}" for k, v in list(shares["labels"].items())[:4])
    rest = len(shares["labels"]) - 4
    assert f": {top}{f' (+{rest} more in the report)' if rest > 0 else ''}; low-" in summary
    assert rest > 0  # the generated articles are of six topics
    table = pq.read_table(out).to_pandas()
    meta = json.loads(pq.read_metadata(out).metadata[b"newsclf"])
    assert meta["rows"] == len(table) == meta["n_input"] - meta["n_rejected"] == 2999
    expected = [r["id"] for i, r in enumerate(rows) if i != 2500]
    assert table["id"].tolist() == expected  # every article once, in input order
    assert not out.with_name(".p.parquet.parts").exists()
