import json

import pytest
from omegaconf import OmegaConf

from newsclf.errors import NewsclfError
from newsclf.labelling.gold import load_annotations
from newsclf.tasks import Task
from tests.conftest import ROOT

TOPIC = Task("topic", {"a": "first", "b": "second"})
STANCE = Task("stance", {"pro": "p", "anti": "q", "neutral": "n"})


def test_builtin_task_configs_have_described_labels():
    topic = Task.from_config(OmegaConf.load(ROOT / "configs/task/topic.yaml"))
    stance = Task.from_config(OmegaConf.load(ROOT / "configs/task/stance.yaml"))
    assert topic.label_names == [
        "diplomacy",
        "military",
        "economy",
        "cyber_disinfo",
        "human_rights",
        "other",
    ]
    assert stance.label_names == ["anti_russia", "neutral", "pro_russia"]
    assert all(desc.strip() for desc in [*topic.labels.values(), *stance.labels.values()])


def test_task_needs_two_labels():
    with pytest.raises(NewsclfError, match="at least two labels"):
        Task("x", {"only": "one"})


def test_csv_annotations_with_empty_cells(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("article_id,topic,stance\n1,a,pro\n2,b,\n", encoding="utf-8")
    gold = load_annotations(path, [TOPIC, STANCE], known_ids={"1", "2"})
    assert gold == {"topic": {"1": "a", "2": "b"}, "stance": {"1": "pro"}}


def test_jsonl_annotations(tmp_path):
    path = tmp_path / "labels.jsonl"
    rows = [{"article_id": "1", "topic": "a"}, {"article_id": "2", "topic": "b", "stance": "anti"}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    gold = load_annotations(path, [TOPIC, STANCE])
    assert gold["stance"] == {"2": "anti"}


def test_unknown_article_is_named_with_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("article_id,topic\n1,a\nghost,b\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"labels\.csv:3: .*unknown article 'ghost'"):
        load_annotations(path, [TOPIC], known_ids={"1"})


def test_unknown_label_lists_allowed(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("article_id,topic\n1,zzz\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"labels\.csv:2: unknown topic label 'zzz'.*a, b"):
        load_annotations(path, [TOPIC])


def test_conflicting_duplicate_rows(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("article_id,topic\n1,a\n1,b\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match="annotated twice"):
        load_annotations(path, [TOPIC])


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(NewsclfError, match="does not exist"):
        load_annotations(tmp_path / "none.csv", [TOPIC])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"article_id": "1"}\n{oops\n', encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"bad\.jsonl:2: malformed JSON line \(.* at column 2\)"):
        load_annotations(bad, [TOPIC])


def test_several_annotation_files_and_none(tmp_path):
    first = tmp_path / "labels.csv"
    first.write_text("article_id,topic,stance\n1,a,pro\n2,b,\n", encoding="utf-8")
    exported = tmp_path / "next.csv"  # as newsclf-annotate writes it, partly filled in
    exported.write_text("article_id,topic,stance\n3,a,\n4,,\n2,,anti\n", encoding="utf-8")
    gold = load_annotations([first, exported], [TOPIC, STANCE])
    assert gold == {"topic": {"1": "a", "2": "b", "3": "a"}, "stance": {"1": "pro", "2": "anti"}}
    assert load_annotations(None, [TOPIC]) == {"topic": {}}
    exported.write_text("article_id,topic\n1,b\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"next\.csv:2: 1 is annotated twice"):
        load_annotations([first, exported], [TOPIC])
