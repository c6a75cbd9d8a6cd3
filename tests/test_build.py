"""The chunked dataset build (newsclf.build) gives the DatasetDict of the in-memory build."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import datasets as hf
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from newsclf import build, datasets
from newsclf.articles import Article, Reject, Source, clean_and_dedupe, ingest, parse_txt
from newsclf.cleaning import Cleaner
from newsclf.labelling.gold import load_annotations
from newsclf.labelling.rules import load_rules
from newsclf.labelling.weak import weak_labels
from newsclf.tasks import Task
from tests.conftest import ROOT, error_line, make_corpus, run_cli, splits_of_bodies

CONFIGS = ROOT / "configs"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """48 generated articles, a copy of one (duplicate text) and an empty one; gold labels
    for every other article, so the rest can only get weak labels."""
    root = tmp_path_factory.mktemp("stream")
    labels = make_corpus(root, n_per_topic=8)
    articles = root / "articles"
    shutil.copy(articles / "military_00.txt", articles / "zz_copy.txt")
    (articles / "empty_01.txt").write_text("Monday, 1 May 2023\nOnly a title\n\n", encoding="utf-8")
    lines = labels.read_text(encoding="utf-8").splitlines()
    half = root / "half.csv"
    half.write_text("\n".join([lines[0], *lines[1::2]]) + "\n", encoding="utf-8")
    return articles, half


def _cli_build(tmp: Path, articles: Path, labels: Path, name: str, *args: str) -> Path:
    proc = run_cli(
        tmp,
        "newsclf-dataset",
        f"source.path={articles}",
        f"annotations.path={labels}",
        f"output_dir={name}",
        "log_to_mlflow=false",
        *args,
    )
    assert " articles/s (" in proc.stdout  # the summary reports the build's throughput
    return tmp / name


def _reference(articles: Path, labels: Path, key: str, gold_in_train: bool) -> hf.DatasetDict:
    """The in-memory build: ingest everything, label everything, datasets.build."""
    cleaner = instantiate(OmegaConf.load(CONFIGS / "clean" / "default.yaml"))
    result = ingest(Source(path=str(articles), format="txt"), cleaner, True)
    tasks = [Task.from_config(OmegaConf.load(CONFIGS / "task" / f"{t}.yaml")) for t in ("topic",)]
    task = tasks[0]
    known = {a.id for a in result.articles}
    gold = load_annotations(labels, tasks, "article_id", known)[task.name]
    rules_cfg = OmegaConf.to_container(OmegaConf.load(CONFIGS / "labeling" / f"{key}.yaml"))
    rules = load_rules(rules_cfg, task, "test")
    cfg = OmegaConf.load(CONFIGS / "dataset.yaml")
    weak, _, _ = weak_labels(cfg, rules, result.articles, gold)
    split = datasets.SplitConfig(**cfg.split)
    return datasets.build(result.articles, gold, task, split, weak, gold_in_train)


def _rows(dd) -> dict[str, list[dict]]:
    out = {}
    for split in datasets.SPLITS:
        rows = dd[split].to_list()
        for row in rows:
            row["label_confidence"] = round(row["label_confidence"], 9)
        out[split] = rows
    return out


@pytest.mark.parametrize("gold_in_train", [True, False])
def test_chunked_build_equals_the_in_memory_build(tmp_path, corpus, gold_in_train):
    articles, labels = corpus
    flag = f"weak.gold_in_train={str(gold_in_train).lower()}"
    out = _cli_build(tmp_path, articles, labels, "ds7", "chunk_size=7", "~tasks.stance", flag)
    dd, manifest = datasets.load(out / "topic")
    reference = _reference(articles, labels, "topic", gold_in_train)
    assert manifest.fingerprint == datasets.fingerprint(reference) == datasets.fingerprint(dd)
    assert _rows(dd) == _rows(reference)
    assert manifest.n_weak > 0 and manifest.n_gold > 0  # both kinds of rows are tested
    parquet = hf.load_dataset("parquet", data_dir=str(out / "topic" / "parquet"))
    assert parquet["train"].to_list() == dd["train"].to_list()
    # every input counted, the rejects named as the in-memory ingest names them
    assert manifest.n_input == 50 == manifest.n_kept + manifest.n_rejected
    with (out / "topic" / "rejects.csv").open(encoding="utf-8") as fh:
        rejects = list(csv.DictReader(fh))
    assert [(r["id"], r["reason"], r["detail"]) for r in rejects] == [
        ("empty_01", "empty_text", "no body text after cleaning"),
        ("zz_copy", "duplicate_text", "same text as military_00"),
    ]
    votes = (out / "topic" / "votes.csv").read_text(encoding="utf-8").splitlines()
    assert len(votes) == 1 + manifest.n_kept


def test_blank_annotation_rows_are_not_annotations_but_name_known_articles(tmp_path, corpus):
    # newsclf-annotate exports rows with an id and no labels: "not annotated yet"
    articles, labels = corpus
    lines = labels.read_text(encoding="utf-8").splitlines()
    labelled = {line.split(",")[0] for line in lines[1:]}
    blank = sorted(p.stem for p in articles.glob("*.txt") if p.stem not in labelled)[0]
    with_blank = tmp_path / "blank.csv"
    with_blank.write_text("\n".join([*lines, f"{blank},,,"]) + "\n", encoding="utf-8")
    out = _cli_build(tmp_path, articles, with_blank, "blank", "~tasks.stance")
    ref = _cli_build(tmp_path, articles, labels, "ref", "~tasks.stance")
    assert (
        datasets.load(out / "topic")[1].fingerprint == datasets.load(ref / "topic")[1].fingerprint
    )
    # a blank row naming an article that is not in the input is still an error
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("\n".join([*lines, "no_such_article,,,"]) + "\n", encoding="utf-8")
    proc = run_cli(
        tmp_path,
        "newsclf-dataset",
        f"source.path={articles}",
        f"annotations.path={unknown}",
        "output_dir=unknown",
        "log_to_mlflow=false",
        ok=False,
    )
    assert "unknown article 'no_such_article'" in error_line(proc)


def test_chunk_size_does_not_change_the_datasets(tmp_path, corpus):
    articles, labels = corpus
    one = _cli_build(tmp_path, articles, labels, "one", "chunk_size=100000")
    many = _cli_build(tmp_path, articles, labels, "many", "chunk_size=3")
    for task in ("topic", "stance"):
        m1 = json.loads((one / task / "manifest.json").read_text())
        m3 = json.loads((many / task / "manifest.json").read_text())
        assert m1 == m3
        for name in ("labeling_report.md", "votes.csv", "rejects.csv", "boilerplate.csv"):
            assert (one / task / name).read_text() == (many / task / name).read_text(), name
    assert not list(tmp_path.glob("one/.*")) and not list(tmp_path.glob("many/.*"))


def test_chunk_size_and_n_jobs_zero_reach_the_build_as_set(tmp_path, corpus, monkeypatch):
    # 0 is not "unset": chunk_size=0 is an error, n_jobs=0 one worker per core (resolve_n_jobs)
    from hydra import compose, initialize_config_dir

    from newsclf.cli.dataset import build_datasets
    from newsclf.errors import NewsclfError

    articles, labels = corpus
    seen = []

    def fake_ingest(*args, **kwargs):
        seen.append(args[6:8])
        raise NewsclfError("stop")

    monkeypatch.setattr(build, "ingest", fake_ingest)
    overrides = [f"source.path={articles}", f"annotations.path={labels}"]
    overrides += [f"output_dir={tmp_path / 'out'}", "log_to_mlflow=false"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("dataset", overrides=[*overrides, "chunk_size=0", "n_jobs=0"])
    with pytest.raises(NewsclfError, match="stop"):
        build_datasets(cfg)
    assert seen == [(0, 0)]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("annotations.path={tmp}", "is a folder, not a file"),
        ("output_dir={tmp}/afile", "is a file, not a folder"),
        ("clean.unicode_form=nfkc", "clean.unicode_form: 'nfkc' is not one of NFC, NFD, NFKC"),
        ("clean.max_chars=abc", "clean.max_chars: 'abc' is not a whole number"),
        ("clean.max_paragraph_words=-1", "clean.max_paragraph_words: -1 must be at least 0"),
    ],
)
def test_bad_paths_and_clean_settings_are_one_line_errors(tmp_path, corpus, setting, message):
    articles, labels = corpus
    (tmp_path / "afile").write_text("", encoding="utf-8")
    proc = run_cli(
        tmp_path,
        "newsclf-dataset",
        f"source.path={articles}",
        f"annotations.path={labels}",
        "output_dir=out",
        "log_to_mlflow=false",
        setting.format(tmp=tmp_path),
        ok=False,
    )
    assert message in error_line(proc)


def test_runs_merge_in_rounds_in_id_order(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "MERGE_FAN_IN", 2)
    ids = [f"a{(i * 37) % 101:03d}" for i in range(101)]
    records = [Article(i, f"Title {i}", f"Body of {i}.") for i in ids]
    ingested = build.ingest(records, Cleaner(), True, {}, {}, tmp_path, chunk_size=4)
    try:
        assert len(ingested.runs) == 26
        merged = [row["id"] for row in build.merged(ingested.runs, ingested.folder)]
    finally:
        ingested.close()
    assert merged == sorted(ids)
    assert not (tmp_path / ingested.folder.name).exists()


def test_merge_rounds_take_dates_missing_from_the_first_run(tmp_path, monkeypatch):
    # the first run has no date at all: its schema must not type `date` as null for the round
    monkeypatch.setattr(build, "MERGE_FAN_IN", 2)
    records = [
        Article(f"a{i}", "T", f"Body {i}.", None if i < 2 else "2024-01-02") for i in range(6)
    ]
    ingested = build.ingest(records, Cleaner(), True, {}, {}, tmp_path, chunk_size=2)
    try:
        rows = list(build.merged(ingested.runs, ingested.folder))
    finally:
        ingested.close()
    assert [r["date"] for r in rows] == [None, None] + ["2024-01-02"] * 4


def test_duplicates_across_chunks_are_rejected_like_the_in_memory_ingest(tmp_path):
    records = [
        Article("a", "T", "Same body."),
        Article("b", "T", "Other body."),
        Article("a", "T", "A third body."),  # duplicate id, in a later chunk
        Article("c", "T", "Same body."),  # duplicate text of a
        Article("d", "T", "  "),  # empty
        Article("e", "T", "Fresh body."),
    ]
    ingested = build.ingest(records, Cleaner(), True, {}, {}, tmp_path, chunk_size=2)
    try:
        with ingested.rejects_csv.open(encoding="utf-8") as fh:
            rejects = [(r["id"], r["reason"], r["detail"]) for r in csv.DictReader(fh)]
        n = (ingested.n_input, ingested.n_kept, ingested.n_rejected)
    finally:
        ingested.close()
    assert rejects == [
        ("a", "duplicate_id", "id seen earlier in the input"),
        ("c", "duplicate_text", "same text as a"),
        ("d", "empty_text", "no body text after cleaning"),
    ]
    assert n == (6, 3, 3)


def test_a_body_repeated_under_another_title_is_rejected_like_the_in_memory_ingest(tmp_path):
    """A syndicated copy under another headline repeats the body: it is the duplicate_text,
    in any chunk, as the in-memory ingest decides (the key was title + body)."""
    records = [
        Article("a", "Kyiv talks resume", "Same body."),
        Article("b", "Other title", "Other body."),
        Article("c", "Talks resume in Kyiv", "Same body."),  # a later chunk
        Article("d", "", "Same body."),  # no title at all
        Article("e", "Kyiv talks resume", "A fresh body."),  # a's title, another body
    ]
    ingested = build.ingest(records, Cleaner(), True, {}, {}, tmp_path, chunk_size=2)
    try:
        with ingested.rejects_csv.open(encoding="utf-8") as fh:
            rejects = [(r["id"], r["reason"], r["detail"]) for r in csv.DictReader(fh)]
        n = (ingested.n_input, ingested.n_kept, ingested.n_rejected)
    finally:
        ingested.close()
    in_memory = list(clean_and_dedupe(records, Cleaner()))
    assert rejects == [(r.id, r.reason, r.detail) for r in in_memory if isinstance(r, Reject)]
    assert rejects == [
        ("c", "duplicate_text", "same text as a"),
        ("d", "duplicate_text", "same text as a"),
    ]
    assert n == (5, 3, 2)  # kept + rejected = input
    assert sum(isinstance(r, Article) for r in in_memory) == 3


def _retitled(article: Path, copy: Path, title: str) -> None:
    """``copy``: the seed-format ``article`` (date line, title line, body) under ``title``."""
    date, _, body = article.read_text(encoding="utf-8").split("\n", 2)
    copy.write_text(f"{date}\n{title}\n{body}", encoding="utf-8")


def _two_copies_rejected(
    out: Path, ref: Path, task: str
) -> tuple[datasets.Manifest, datasets.Manifest, list]:
    """A build with two copies added (``out``) against the build without them (``ref``): the
    same dataset, two more articles read, as many kept. Both manifests and ``out``'s rejects
    (id, reason, detail)."""
    dd, manifest = datasets.load(out / task)
    dd_ref, manifest_ref = datasets.load(ref / task)
    assert manifest.fingerprint == manifest_ref.fingerprint
    assert _rows(dd) == _rows(dd_ref)
    assert manifest.n_input == manifest_ref.n_input + 2 == manifest.n_kept + manifest.n_rejected
    assert manifest.n_kept == manifest_ref.n_kept
    with (out / task / "rejects.csv").open(encoding="utf-8") as fh:
        rejects = [(r["id"], r["reason"], r["detail"]) for r in csv.DictReader(fh)]
    return manifest, manifest_ref, rejects


@pytest.mark.parametrize("chunk_size", [1000, 3])
def test_retitled_copies_are_rejected_and_leave_the_datasets_as_without_them(
    tmp_path, corpus, chunk_size
):
    """Copies of a gold article (read first) and of an unlabelled one (read last) under other
    headlines were kept: the same body in two rows, possibly in train and test. Now both are
    duplicate_text rejects and the datasets are the ones built without them."""
    articles, labels = corpus
    labelled = {line.split(",")[0] for line in labels.read_text().splitlines()[1:]}
    present = sorted({p.stem for p in articles.glob("*.txt")} - {"zz_copy", "empty_01"})
    gold_id = next(i for i in present if i in labelled)
    weak_id = next(i for i in present if i not in labelled)
    copies = tmp_path / "copies"
    shutil.copytree(articles, copies)
    _retitled(articles / f"{gold_id}.txt", copies / "aaa_retitled.txt", "Another outlet's take")
    _retitled(articles / f"{weak_id}.txt", copies / "zzz_retitled.txt", "Wire: the same story")
    size = f"chunk_size={chunk_size}"
    out = _cli_build(tmp_path, copies, labels, f"copies{chunk_size}", size)
    ref = _cli_build(tmp_path, articles, labels, f"ref{chunk_size}", size)
    for task in ("topic", "stance"):
        rejects = _two_copies_rejected(out, ref, task)[2]
        assert rejects[0] == ("aaa_retitled", "duplicate_text", f"same text as {gold_id}")
        assert rejects[-1] == ("zzz_retitled", "duplicate_text", f"same text as {weak_id}")


@pytest.mark.parametrize("chunk_size", [1000, 3])
def test_a_gold_article_displaces_an_earlier_unlabelled_copy_of_its_text(
    tmp_path, corpus, chunk_size
):
    """Syndicated news repeats a text under other ids. An unlabelled copy read before the
    annotated article kept the text, and the gold label was lost as a duplicate_text reject.
    Now the dataset is the one built without the copy, and the copy is the reject."""
    articles, labels = corpus
    labelled = sorted(line.split(",")[0] for line in labels.read_text().splitlines()[1:])
    gold_id = next(i for i in labelled if (articles / f"{i}.txt").exists())
    copies = tmp_path / "copies"
    shutil.copytree(articles, copies)
    shutil.copy(articles / f"{gold_id}.txt", copies / "aaa_copy.txt")  # read first
    shutil.copy(articles / f"{gold_id}.txt", copies / "zzz_copy.txt")  # read last
    size = f"chunk_size={chunk_size}"
    out = _cli_build(tmp_path, copies, labels, f"copies{chunk_size}", size)
    ref = _cli_build(tmp_path, articles, labels, f"ref{chunk_size}", size)
    for task in ("topic", "stance"):
        manifest, manifest_ref, rejects = _two_copies_rejected(out, ref, task)
        assert (manifest.n_gold, manifest.n_weak) == (manifest_ref.n_gold, manifest_ref.n_weak)
        assert rejects[0] == ("aaa_copy", "duplicate_text", f"same text as {gold_id}")
        assert rejects[-1] == ("zzz_copy", "duplicate_text", f"same text as {gold_id}")
        assert (out / task / "votes.csv").read_text() == (ref / task / "votes.csv").read_text()
        for name in ("labeling_report.md", "labeling_report.json"):
            assert (out / task / name).read_text() == (ref / task / name).read_text(), name


def _jsonl_with_a_broken_line(articles: Path, path: Path, broken: str) -> int:
    """The articles as JSONL, the line of article ``broken`` cut short; returns its number."""
    lines = []
    for file in sorted(articles.glob("*.txt")):
        a = parse_txt(file.read_text(encoding="utf-8"), file.stem)
        line = json.dumps({"id": a.id, "title": a.title, "text": a.body})
        lines.append(line[:20] if a.id == broken else line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sorted(p.stem for p in articles.glob("*.txt")).index(broken) + 1


def test_dates_that_cannot_be_read_are_counted_and_named(tmp_path, corpus):
    """A date value that is no date ('yesterday', an epoch number) is left empty, as
    documented; it was counted nowhere. The build warns with the count and the first, and the
    summary, the manifest and the dataset card give the count."""
    articles, labels = corpus
    files = sorted(articles.glob("*.txt"))
    dates = {1: "yesterday", 4: "1678000000", 6: "2023-03-05", 9: ""}  # 2 unreadable
    path = tmp_path / "dated.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, file in enumerate(files):
            a = parse_txt(file.read_text(encoding="utf-8"), file.stem)
            row = {"id": a.id, "title": a.title, "text": a.body, "date": dates.get(i, "5 May 2023")}
            fh.write(json.dumps(row) + "\n")
    proc = run_cli(
        tmp_path, "newsclf-dataset", "source=jsonl", f"source.path={path}",
        f"annotations.path={labels}", "output_dir=out", "log_to_mlflow=false",
    )  # fmt: skip
    output = " ".join((proc.stdout + proc.stderr).split())
    assert (
        "2 articles have a date that could not be read, left empty (first: "
        f"{path}:2: 'yesterday'); see source.date_column" in output
    )
    assert "dates that could not be read (left empty): 2" in output
    manifest = json.loads((tmp_path / "out" / "topic" / "manifest.json").read_text())
    assert manifest["unread_dates"] == 2
    card = (tmp_path / "out" / "topic" / "README.md").read_text(encoding="utf-8")
    assert "- dates that could not be read (left empty): 2" in card


def test_annotations_of_articles_not_in_the_source_are_an_error_or_skipped(tmp_path, corpus):
    """One labels file for several sources: an annotation naming an article this source does
    not hold stops the build, saying how many and how to skip them (a malformed record was
    blamed, when there was one); annotations.unknown_ids=ignore skips them, with a count."""
    articles, labels = corpus
    rows = labels.read_text().splitlines()
    more = tmp_path / "labels.csv"
    more.write_text("\n".join([*rows, "elsewhere-1,economy,neutral", "elsewhere-2,other,"]) + "\n")
    path = tmp_path / "a.jsonl"
    labelled = {r.split(",")[0] for r in rows[1:]}
    unlabelled = next(p.stem for p in sorted(articles.glob("*.txt")) if p.stem not in labelled)
    _jsonl_with_a_broken_line(articles, path, unlabelled)  # a malformed record, not the cause

    def dataset(out: str, *extra: str, ok: bool = True):
        return run_cli(
            tmp_path, "newsclf-dataset", "source=jsonl", f"source.path={path}",
            "source.on_error=reject", f"annotations.path={more}", f"output_dir={out}",
            "log_to_mlflow=false", *extra, ok=ok,
        )  # fmt: skip

    named = len(labelled) + 2
    line = error_line(dataset("strict", ok=False))
    assert line.endswith(
        f"annotation names unknown article 'elsewhere-1': 2 of the {named} articles the "
        f"annotations name are not in {path}; annotations.unknown_ids=ignore skips them"
    )
    proc = dataset("lenient", "annotations.unknown_ids=ignore")
    output = " ".join((proc.stdout + proc.stderr).split())
    assert (
        f"2 annotations name articles not in {path}: skipped (annotations.unknown_ids=ignore); "
        f"first: {more}:{len(rows) + 1} 'elsewhere-1'" in output
    )
    plain = dataset("plain", f"annotations.path={labels}")
    assert plain.returncode == 0
    for task in ("topic", "stance"):
        ours = json.loads((tmp_path / "lenient" / task / "manifest.json").read_text())
        theirs = json.loads((tmp_path / "plain" / task / "manifest.json").read_text())
        assert ours["fingerprint"] == theirs["fingerprint"]
    line = error_line(dataset("x", "annotations.unknown_ids=skip", ok=False))
    assert line.endswith("annotations.unknown_ids: 'skip' is not one of error, ignore")


def test_a_malformed_record_is_named_by_its_place_and_so_is_its_annotation(tmp_path, corpus):
    """A JSONL line that cannot be parsed is rejected under the id ``<file>:<line>`` (it was
    empty); an annotation naming that article stops the build with one line naming the
    annotation, the record and why it was rejected (it said only "N records were rejected
    before their id was known")."""
    articles, labels = corpus
    labelled = [line.split(",")[0] for line in labels.read_text().splitlines()[1:]]
    names = sorted(p.stem for p in articles.glob("*.txt"))
    unlabelled = next(n for n in names if n not in labelled and n.startswith("economy"))

    def dataset(path: Path, out: str, ok: bool = True):
        return run_cli(
            tmp_path, "newsclf-dataset", "source=jsonl", f"source.path={path}",
            "source.on_error=reject", f"annotations.path={labels}", f"output_dir={out}",
            "log_to_mlflow=false", ok=ok,
        )  # fmt: skip

    def rejects(folder: Path) -> list[tuple[str, str]]:
        with (folder / "rejects.csv").open(encoding="utf-8") as fh:
            return [(r["id"], r["reason"]) for r in csv.DictReader(fh)]

    plain = tmp_path / "plain.jsonl"
    at = _jsonl_with_a_broken_line(articles, plain, unlabelled)
    dataset(plain, "plain")
    assert (f"plain.jsonl:{at}", "malformed_record") in rejects(tmp_path / "plain" / "topic")
    gold = tmp_path / "gold.jsonl"
    at = _jsonl_with_a_broken_line(articles, gold, labelled[0])
    line = error_line(dataset(gold, "gold", ok=False))
    assert f"{labels}:2: annotation names unknown article {labelled[0]!r}" in line
    assert f"malformed_record: {gold}:{at}: malformed JSON line" in line
    assert (f"gold.jsonl:{at}", "malformed_record") in rejects(tmp_path / "gold")


def test_annotated_copies_of_a_text_lend_missing_labels_and_their_conflicts_are_named(
    tmp_path, corpus
):
    """Of two annotated articles with one text, the second was rejected as duplicate_text with
    its labels: a stance label the kept article lacked was lost, and a topic label that
    contradicted the kept one went unnoticed. Now the first is kept with its labels and
    takes those it lacks from the copy; contradicting labels are warned of and listed."""
    articles, labels = corpus
    lines = labels.read_text(encoding="utf-8").splitlines()
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    first, second = sorted(i for i in rows if (articles / f"{i}.txt").exists())[:2]
    copies = tmp_path / "copies"
    shutil.copytree(articles, copies)
    shutil.copy(articles / f"{first}.txt", copies / "zz_conflict.txt")
    shutil.copy(articles / f"{second}.txt", copies / "zz_lender.txt")
    other_topic = next(t for t in ("economy", "military") if t != rows[first][1])
    stance = rows[second][2]
    edited = [lines[0], *(line for line in lines[1:] if not line.startswith(f"{second},"))]
    edited += [
        f"{second},{rows[second][1]},,original",  # no stance label: its copy has one
        f"zz_conflict,{other_topic},{rows[first][2]},original",
        f"zz_lender,,{stance},original",
    ]
    annotations = tmp_path / "labels.csv"
    annotations.write_text("\n".join(edited) + "\n", encoding="utf-8")
    proc = run_cli(
        tmp_path,
        "newsclf-dataset",
        f"source.path={copies}",
        f"annotations.path={annotations}",
        "output_dir=out",
        "log_to_mlflow=false",
    )
    warning = (
        f"topic: 1 annotated articles repeat the text of an article annotated with another "
        f"label; the kept article's label is used (first: zz_conflict '{other_topic}', kept "
        f"{first} '{rows[first][1]}')"
    )
    assert warning in proc.stderr + proc.stdout
    with (tmp_path / "out/topic/label_conflicts.csv").open(encoding="utf-8") as fh:
        assert list(csv.DictReader(fh)) == [
            {
                "kept_id": first,
                "kept_label": rows[first][1],
                "copy_id": "zz_conflict",
                "copy_label": other_topic,
            }
        ]
    assert not (tmp_path / "out/stance/label_conflicts.csv").exists()
    dd, _ = datasets.load(tmp_path / "out/stance")
    names = dd["train"].features["label"].names
    found = [
        (names[r["label"]], r["label_source"])
        for split in dd.values()
        for r in split
        if r["id"] == second
    ]
    assert found == [(stance, "gold")]
    topic, _ = datasets.load(tmp_path / "out/topic")
    ids = [r["id"] for split in topic.values() for r in split]
    assert first in ids and "zz_conflict" not in ids and "zz_lender" not in ids


def test_without_text_dedupe_no_text_is_in_two_splits(tmp_path, corpus):
    """dedupe_text=false keeps repeated texts. Gold articles with the same text were split
    independently (the same text in train and test, without a word), and a weakly labelled
    copy of a test text stopped the build. Now copies share a split, and weak copies of a
    validation or test text stay out of train."""
    articles, labels = corpus
    lines = labels.read_text(encoding="utf-8").splitlines()
    labelled = [line.split(",")[0] for line in lines[1:]]
    copies = tmp_path / "copies"
    shutil.copytree(articles, copies)
    extra = []
    for n, article_id in enumerate(labelled[:12]):
        shutil.copy(articles / f"{article_id}.txt", copies / f"gold_copy_{n:02d}.txt")
        shutil.copy(articles / f"{article_id}.txt", copies / f"weak_copy_{n:02d}.txt")
        row = next(line for line in lines if line.startswith(f"{article_id},"))
        extra.append(row.replace(article_id, f"gold_copy_{n:02d}", 1))
    with_copies = tmp_path / "labels.csv"
    with_copies.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    out = _cli_build(tmp_path, copies, with_copies, "kept", "dedupe_text=false", "chunk_size=7")
    said = "\n".join(p.read_text() for p in tmp_path.rglob("*.log"))
    assert re.search(r"topic: \d+ weakly labelled articles repeat a validation or test", said)
    for task in ("topic", "stance"):
        dd, manifest = datasets.load(out / task)
        assert manifest.n_rejected == 1  # the empty article; every copy is kept
        split_of_text: dict[str, set[str]] = {}
        for split in datasets.SPLITS:
            for row in dd[split]:
                split_of_text.setdefault(row["text"], set()).add(split)
        assert all(len(splits) == 1 for splits in split_of_text.values())
        gold = [*dd["validation"]["id"], *dd["test"]["id"]]
        assert any(i.startswith("gold_copy_") for i in gold)  # the case is tested


def test_without_text_dedupe_retitled_copies_share_a_split(tmp_path, corpus):
    """dedupe_text=false: gold copies of a body under other headlines were split as other
    texts, so one body could be in train and in test. Now a body is in one split, in the
    chunked build as in the in-memory one."""
    articles, labels = corpus
    lines = labels.read_text(encoding="utf-8").splitlines()
    labelled = [line.split(",")[0] for line in lines[1:]]
    copies = tmp_path / "copies"
    shutil.copytree(articles, copies)
    extra = []
    for n, article_id in enumerate(labelled[:12]):
        _retitled(articles / f"{article_id}.txt", copies / f"gold_copy_{n:02d}.txt", f"Copy {n}")
        row = next(line for line in lines if line.startswith(f"{article_id},"))
        extra.append(row.replace(article_id, f"gold_copy_{n:02d}", 1))
    with_copies = tmp_path / "labels.csv"
    with_copies.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    out = _cli_build(tmp_path, copies, with_copies, "kept", "dedupe_text=false", "chunk_size=7")
    dd, manifest = datasets.load(out / "topic")
    assert manifest.n_rejected == 1  # the empty article; every copy is kept
    split_of_body = splits_of_bodies(dd)
    assert all(len(splits) == 1 for splits in split_of_body.values())
    gold = [*dd["validation"]["id"], *dd["test"]["id"]]
    assert any(i.startswith("gold_copy_") for i in gold)  # the case is tested


def test_weighted_label_model_equals_the_full_fit():
    import numpy as np

    from newsclf.labelling.label_model import DawidSkene

    rng = np.random.default_rng(0)
    full = rng.integers(-1, 3, size=(500, 4))
    distinct, counts = np.unique(full, axis=0, return_counts=True)
    a = DawidSkene().fit(full, 3)
    b = DawidSkene().fit(distinct, 3, weights=counts)
    assert np.allclose(a.theta_, b.theta_) and np.allclose(
        a.rule_precision(), b.rule_precision(), equal_nan=True
    )
    assert np.allclose(a.predict_proba(distinct), b.predict_proba(distinct))


def test_digest_set_stays_sorted_and_exact_across_many_merges():
    """The build's de-duplication set (HashSet64) merges its recent keys into a sorted array
    in place: first occurrences are found exactly as a Python set finds them."""
    from newsclf.batch import HashSet64

    rng = np.random.default_rng(3)
    seen, reference = HashSet64(merge_at=50), set()
    for _ in range(40):
        keys = rng.integers(0, 400, size=int(rng.integers(1, 60)), dtype=np.uint64)
        expected = []
        for key in keys.tolist():
            expected.append(key not in reference)
            reference.add(key)
        assert seen.add_new(keys).tolist() == expected
    assert len(seen) == len(reference)
    assert np.all(np.diff(seen.base.astype(np.int64)) > 0)  # sorted, no repeats


def test_the_summary_table_accounts_for_every_kept_article(capsys):
    """101 read = 95 kept + 6 rejected, but the table showed gold 94, weak 0: the kept article
    with no label (in no split) was nowhere on screen."""
    from newsclf.cli.dataset import summary
    from newsclf.datasets import Manifest

    manifest = Manifest(
        "topic", ["a", "b"], "f00", n_input=101, n_kept=95, n_rejected=6, n_labelled=94,
        n_gold=94, n_unlabelled=1, rows={"train": 66, "validation": 14, "test": 14}, path="ds",
    )  # fmt: skip
    summary({"topic": manifest})
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "task" in line and "gold" in line)
    row = next(line for line in out.splitlines() if "f00" in line)
    cells = dict(zip(header.replace("┃", "│").split("│"), row.split("│"), strict=True))
    assert {k.strip(): v.strip() for k, v in cells.items()}["unlabelled"] == "1"
