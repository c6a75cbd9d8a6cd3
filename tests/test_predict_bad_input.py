"""The bad-input matrix of newsclf-predict: each case ends in a clear one-line error or in a
rejects row with a reason, and always rows in = rows predicted + rows rejected."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from newsclf.cli.predict import check_preparation_overrides, run_prediction
from newsclf.errors import NewsclfError
from tests.conftest import BIN
from tests.predict_support import article_rows, predict_config, register_models, write_jsonl


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return register_models(tmp_path_factory.mktemp("models"))


def predict(store, tmp_path, *overrides, out="p.parquet"):
    """Run in-process; returns (result, predictions frame, rejects frame)."""
    path = tmp_path / out
    result = run_prediction(predict_config(store, f"output.path={path}", *overrides))
    rejects = pd.read_csv(path.with_name(path.name + ".rejects.csv"), dtype=str)
    table = pq.read_table(path).to_pandas()
    assert result.n_input == result.n_predicted + result.n_rejected
    assert len(table) == result.n_predicted == len(table) and len(rejects) == result.n_rejected
    return result, table, rejects


def cli(cwd: Path, *overrides: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, str(BIN / "newsclf-predict"), *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_line_error(proc: subprocess.CompletedProcess, pattern: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines and lines[-1].startswith("newsclf-predict: error: ")
    assert "Traceback" not in proc.stderr
    assert re.search(pattern, lines[-1]), lines[-1]


def txt_folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "txt"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


GOOD = b"Monday, 1 May 2023\nGas prices\n\nrouble inflation exports gas prices market.\n"


def test_empty_files(store, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(NewsclfError, match=r"empty\.jsonl: source is empty"):
        run_prediction(
            predict_config(store, "source=jsonl", f"source.path={tmp_path / 'empty.jsonl'}")
        )
    folder = txt_folder(tmp_path, {"empty.txt": b"", "good.txt": GOOD})
    result, _, rejects = predict(store, tmp_path, "source=txt", f"source.path={folder}")
    assert (result.n_predicted, rejects["reason"].tolist()) == (1, ["empty_text"])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(NewsclfError, match=r"empty\.csv: empty CSV file"):
        run_prediction(
            predict_config(
                store,
                "source=csv",
                f"source.path={tmp_path / 'empty.csv'}",
                "source.on_error=raise",
            )
        )


def test_binary_file_is_rejected_or_named(store, tmp_path):
    folder = txt_folder(tmp_path, {"bin.txt": b"\x00\x01\x02\xff", "good.txt": GOOD})
    _, table, rejects = predict(store, tmp_path, "source=txt", f"source.path={folder}")
    assert table["id"].tolist() == ["good"]
    assert rejects["reason"].tolist() == ["unreadable"]
    assert "bin.txt: binary file" in rejects["detail"][0]
    with pytest.raises(NewsclfError, match=r"bin\.txt: binary file"):
        run_prediction(
            predict_config(store, "source=txt", f"source.path={folder}", "source.on_error=raise")
        )


def test_latin1_file_needs_its_encoding(store, tmp_path):
    latin = "Monday, 1 May 2023\nCafé prices\n\nrouble inflation gas market.\n".encode("latin-1")
    folder = txt_folder(tmp_path, {"latin.txt": latin})
    with pytest.raises(NewsclfError, match=r"latin\.txt: not utf-8 text \(byte 0xe9"):
        run_prediction(
            predict_config(store, "source=txt", f"source.path={folder}", "source.on_error=raise")
        )
    with pytest.raises(NewsclfError, match=r"nothing to predict: its one input was rejected"):
        run_prediction(predict_config(store, "source=txt", f"source.path={folder}"))
    result, table, _ = predict(
        store, tmp_path, "source=txt", f"source.path={folder}", "source.encoding=latin-1"
    )
    assert table["id"].tolist() == ["latin"] and result.n_rejected == 0


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv"])
def test_bom_and_crlf(store, tmp_path, fmt):
    if fmt == "txt":
        data = "\ufeffMonday, 1 May 2023\r\nGas prices\r\n\r\nrouble gas market.\r\n"
        path = txt_folder(tmp_path, {"bom.txt": data.encode()})
    elif fmt == "jsonl":
        path = tmp_path / "bom.jsonl"
        rows = [json.dumps({"id": f"r{i}", "title": "T", "text": "gas market"}) for i in range(2)]
        path.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode())
    else:
        path = tmp_path / "bom.csv"
        path.write_bytes('\ufeffid,title,text\r\nr0,T,"gas\r\nmarket"\r\nr1,T,tank\r\n'.encode())
    result, table, _ = predict(store, tmp_path, f"source={fmt}", f"source.path={path}")
    assert result.n_rejected == 0
    assert table["id"].tolist() == (["bom"] if fmt == "txt" else ["r0", "r1"])


def test_ten_megabyte_article_is_predicted_truncated(store, tmp_path):
    rows = article_rows(3)
    rows[1]["text"] = "troops artillery brigade missile frontline tank. " * 210_000  # ~10 MB
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    result, table, _ = predict(
        store, tmp_path, "source=jsonl", f"source.path={path}", "max_chars=50000"
    )
    big = table.set_index("id").loc["a000001"]
    assert big["topic_label"] == "military"
    assert big["truncated_chars"] > 10_000_000 - 50_000 - 100
    assert result.n_truncated == 1 and table["truncated_chars"].sum() == big["truncated_chars"]
    removed = pd.read_csv(tmp_path / "p.parquet.boilerplate.csv")
    assert removed.query("rule == 'truncated'")["article_id"].tolist() == ["a000001"]


def test_jsonl_with_one_broken_line(store, tmp_path):
    lines = [json.dumps(r) for r in article_rows(5)]
    lines[2] = '{"id": "broken", "text": '
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, table, rejects = predict(store, tmp_path, "source=jsonl", f"source.path={path}")
    assert len(table) == 4 and rejects["reason"].tolist() == ["malformed_record"]
    assert rejects["source"][0].endswith("in.jsonl:3")
    with pytest.raises(NewsclfError, match=r"in\.jsonl:3: malformed JSON line"):
        run_prediction(
            predict_config(store, "source=jsonl", f"source.path={path}", "source.on_error=raise")
        )


def test_csv_without_text_column(store, tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": ["1"], "body": ["gas"]}).to_csv(path, index=False)
    for on_error in ("raise", "reject"):
        with pytest.raises(NewsclfError, match=r"in\.csv: missing column\(s\) text"):
            run_prediction(
                predict_config(
                    store, "source=csv", f"source.path={path}", f"source.on_error={on_error}"
                )
            )


def test_csv_row_with_too_many_fields_is_rejected_alone(store, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,title,text\n1,A,"gas, market"\n2,B,tank,extra\n3,C,drone\n')
    _, table, rejects = predict(store, tmp_path, "source=csv", f"source.path={path}")
    assert table["id"].tolist() == ["1", "3"]
    assert rejects["reason"].tolist() == ["malformed_record"]
    assert "2,B,tank,extra" in rejects["detail"][0]


def test_duplicate_ids_and_empty_texts(store, tmp_path):
    rows = article_rows(6)
    rows[4]["id"] = rows[1]["id"]
    rows[5]["text"] = ""
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    _, table, rejects = predict(store, tmp_path, "source=jsonl", f"source.path={path}")
    assert sorted(rejects["reason"]) == ["duplicate_id", "empty_text"]
    assert table["id"].tolist() == ["a000000", "a000001", "a000002", "a000003"]


@pytest.mark.parametrize("n_jobs", ["1", "2"])
def test_rejects_are_in_input_order(store, tmp_path, n_jobs):
    """The rejects file lists records in input order: a chunk's duplicate_id and
    duplicate_text rejects came after its other rejects (duplicate_id first on line 2, written
    after line 4's empty text and line 5's broken line)."""
    rows = article_rows(6)
    rows[1]["id"] = rows[0]["id"]  # line 2: duplicate_id
    rows[3]["text"] = ""  # line 4: empty_text
    rows[5].update(title=rows[2]["title"], text=rows[2]["text"])  # line 7: duplicate_text
    lines = [json.dumps(r) for r in rows]
    lines.insert(4, '{"id": "broken", "text": ')  # line 5: malformed_record
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, _, rejects = predict(
        store, tmp_path, "source=jsonl", f"source.path={path}", "dedupe_text=true",
        f"n_jobs={n_jobs}", "chunk_size=4",
    )  # fmt: skip
    line_of = [s.rpartition(":")[2] for s in rejects["source"]]
    assert list(zip(line_of, rejects["reason"], strict=True)) == [
        ("2", "duplicate_id"),
        ("4", "empty_text"),
        ("5", "malformed_record"),
        ("7", "duplicate_text"),
    ]


def test_bad_model_uris(store, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", article_rows(3))
    base = (store, "source=jsonl", f"source.path={source}")
    # the registry asked is named: a command run from the wrong folder asks an empty store
    with pytest.raises(
        NewsclfError, match=rf"models:/newsclf-topic@nope: .* \(registry: {re.escape(store)}\)$"
    ):
        run_prediction(predict_config(*base, "models.topic=models:/newsclf-topic@nope"))
    # a store that is not there is not created empty just to be asked (it was: mlflow.db left
    # behind in whatever folder the command ran from)
    absent = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(NewsclfError, match=rf"MLflow store {re.escape(str(absent))} does not"):
        run_prediction(
            predict_config(
                f"sqlite:///{absent}", "source=jsonl", f"source.path={source}",
                "models.topic=models:/newsclf-topic@champion",
            )
        )  # fmt: skip
    assert not absent.exists() and not absent.parent.exists()
    with pytest.raises(NewsclfError, match="is a stance model, not topic"):
        run_prediction(predict_config(*base, "models.topic=models:/newsclf-stance@champion"))
    foreign = tmp_path / "numeric"
    mlflow.sklearn.save_model(LogisticRegression().fit([[0], [1]], [0, 1]), str(foreign))
    with pytest.raises(NewsclfError, match=r"not a newsclf model \(flavors: python_function"):
        run_prediction(predict_config(*base, f"models.topic={foreign}"))
    # these three ended in a traceback, or in a line cut before its cause
    problems = {
        "s3://bucket/model": r"needs the Python package 'botocore'",  # not a newsclf dependency
        "http://host/model": r"not a model URI MLflow can read",
        str(tmp_path / "missing"): r"downloading .*: No such artifact: 'missing'",
    }
    for uri, problem in problems.items():
        with pytest.raises(
            NewsclfError, match=rf"model {re.escape(uri)}: cannot load \(.*{problem}"
        ):
            run_prediction(predict_config(*base, f"models.topic={uri}"))
    assert not (tmp_path / "p.parquet").exists()


def test_output_folder_missing_or_in_the_way(store, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", article_rows(3))
    base = (store, "source=jsonl", f"source.path={source}")
    with pytest.raises(NewsclfError, match="output folder does not exist"):
        run_prediction(
            predict_config(*base, f"output.path={tmp_path}/no/p.parquet", "output.mkdir=false")
        )
    result = run_prediction(predict_config(*base, f"output.path={tmp_path}/new/p.parquet"))
    assert result.path.exists()  # created by default
    (tmp_path / "file").write_text("x")
    with pytest.raises(NewsclfError, match="output folder is not a folder"):
        run_prediction(predict_config(*base, f"output.path={tmp_path}/file/p.parquet"))
    with pytest.raises(NewsclfError, match="unknown output format"):
        run_prediction(predict_config(*base, f"output.path={tmp_path}/p.xlsx"))


# --------------------------------------------------------------------------- real filesystems


# A private mount namespace: the tmpfs exists for this one command and vanishes with it.
def in_tmpfs(folder: Path, options: str) -> tuple[str, ...]:
    folder.mkdir()
    # after the command, list the folder (on stdout) to show what it left there
    script = (
        f'mount -t tmpfs -o {options} tmpfs "{folder}" || exit 9; '
        f'"$@"; code=$?; ls -A "{folder}"; exit $code'
    )
    return ("unshare", "-m", "sh", "-c", script, "sh")


def test_read_only_output_folder(store, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", article_rows(3))
    proc = cli(
        tmp_path,
        f"mlflow.tracking_uri={store}",
        "source=jsonl",
        f"source.path={source}",
        f"output.path={tmp_path}/ro/p.parquet",
        prefix=in_tmpfs(tmp_path / "ro", "ro,size=1m"),
    )
    one_line_error(proc, r"ro: output folder is not writable \(Read-only file system\)")


def test_disk_full_leaves_no_predictions_file(store, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", article_rows(3000))
    proc = cli(
        tmp_path,
        f"mlflow.tracking_uri={store}",
        "source=jsonl",
        f"source.path={source}",
        f"output.path={tmp_path}/full/p.parquet",
        "chunk_size=500",
        "n_jobs=1",
        prefix=in_tmpfs(tmp_path / "full", "size=96k"),
    )
    one_line_error(proc, r"cannot write \(No space left on device\); committed chunks are kept")
    left = proc.stdout.split()
    assert "p.parquet" not in left and ".p.parquet.parts" in left  # parts kept to resume


def test_cleaning_settings_without_preparation_config_are_one_error_line(tmp_path):
    proc = cli(tmp_path, "max_chars=5000", "clean.fix_text=false", "output.path=out.parquet")
    one_line_error(proc, r"^newsclf-predict: error: max_chars, clean\.fix_text: used with prep")
    assert not (tmp_path / "out.parquet").exists()
    cfg = predict_config("sqlite:///unused.db", "preparation=config", "max_chars=5000")
    check_preparation_overrides(cfg, ["preparation=config", "max_chars=5000", "clean=default"])
    with pytest.raises(NewsclfError, match=r"^clean: used with preparation=config only"):
        check_preparation_overrides(predict_config("sqlite:///unused.db"), ["clean=default"])


@pytest.mark.parametrize("output", ["output.path=sp.csv", "output.format=jsonl"])
def test_a_csv_or_jsonl_output_on_spark_is_refused_before_any_work(tmp_path, output):
    """engine=spark writes a Parquet folder: output.path=sp.csv wrote one named sp.csv."""
    proc = cli(tmp_path, "engine=spark", output)
    one_line_error(proc, r"^newsclf-predict: error: output: engine=spark writes a Parquet fold")
    assert not (tmp_path / "sp.csv").exists()


def test_json_files_are_read_with_the_documented_pattern_override(store, tmp_path):
    folder = tmp_path / "json"
    folder.mkdir()
    write_jsonl(folder / "a.json", article_rows(3))
    with pytest.raises(
        NewsclfError, match=r"holds \.json files \(a\.json\) that the pattern '\*\.j"
    ):
        run_prediction(predict_config(store, "source=jsonl", f"source.path={folder}"))
    result, table, _ = predict(store, tmp_path, "source=jsonl", f"source.path={folder}",
                               "source.pattern=*.json")  # fmt: skip
    assert result.n_predicted == len(table) == 3
