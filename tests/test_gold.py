import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from newsclf.errors import NewsclfError
from newsclf.labelling.gold import UnknownArticleError, load_annotations
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
    with pytest.raises(UnknownArticleError, match=r"labels\.csv:3: .*unknown article 'ghost'") as e:
        load_annotations(path, [TOPIC], known_ids={"1"})
    assert (e.value.article_id, e.value.bundled) == ("ghost", False)


def test_the_bundled_labels_left_as_annotations_for_other_articles_say_so():
    """Own articles with the default annotations.path: the error named only a seed article."""
    bundled = ROOT / "seeds" / "labels.csv"
    with pytest.raises(NewsclfError, match=r"labels\.csv:2: annotation names unknown article "
                       r"'000_31b14feb0c05d0a3' \(the bundled corpus's labels, the default "
                       r"annotations\.path: set it to your own labels file") as e:  # fmt: skip
        load_annotations(bundled, [TOPIC], known_ids={"mine-1"})
    assert isinstance(e.value, UnknownArticleError) and e.value.bundled


def test_unknown_label_lists_allowed(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("article_id,topic\n1,zzz\n", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"labels\.csv:2: unknown topic label 'zzz'.*a, b"):
        load_annotations(path, [TOPIC])


@pytest.mark.parametrize(
    "text, line",
    [
        ('article_id,topic\n1,"a\n2,b\n', 2),  # a quote left open runs to the end of the file
        ('article_id,topic,notes\n1,a,"two\nlines"\n2,zzz,x\n', 4),  # a legit multi-line field
        ("article_id,topic\n\n\n1,a\n2,zzz\n", 5),  # blank lines skipped
    ],
)
def test_csv_errors_name_the_line_a_record_starts_on(tmp_path, text, line):
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NewsclfError, match=rf"labels\.csv:{line}: unknown topic label") as err:
        load_annotations(path, [TOPIC])
    assert ("a quote left open?" in str(err.value)) == (line == 2)


def test_a_csv_without_the_id_column_names_its_header_line(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("id,topic\n1,a\n", encoding="utf-8")
    with pytest.raises(
        NewsclfError,
        match=r"labels\.csv:1: no 'article_id' column \(has: id, topic\); set annotations\.id_",
    ):
        load_annotations(path, [TOPIC])
    path = tmp_path / "labels.jsonl"  # a JSONL record names its own fields: its line
    path.write_text('{"article_id": "1", "topic": "a"}\n{"id": "2", "topic": "b"}\n')
    with pytest.raises(NewsclfError, match=r"labels\.jsonl:2: no 'article_id' column"):
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


def test_an_empty_annotations_file_is_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(NewsclfError, match=r"labels\.csv: empty annotations file"):
        load_annotations(path, [TOPIC])


def test_missing_column_says_which_file_lacks_the_tasks_column(tmp_path):
    from newsclf.labelling.gold import missing_column

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("article_id,topik\n1,a\n", encoding="utf-8")
    header = tmp_path / "header.csv"
    header.write_text("article_id,topic\n", encoding="utf-8")
    assert missing_column(wrong, TOPIC) == f"{wrong} has no 'topic' column (has: article_id, topik)"
    assert missing_column([header], TOPIC) == f"{header} has no annotation rows"
    ok = tmp_path / "ok.csv"
    ok.write_text("article_id,topic\n2,b\n", encoding="utf-8")
    assert missing_column([wrong, ok], TOPIC) == ""  # a file has it: the reason is elsewhere


def _topic_column_only(labels: Path, out: Path) -> Path:
    """A copy of an annotations CSV (article_id, topic, stance, ...) with its first two columns."""
    lines = labels.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join(",".join(line.split(",")[:2]) for line in lines) + "\n", "utf-8")
    return out


def test_dataset_without_a_tasks_column_says_so_and_how_to_leave_the_task_out(tmp_path):
    from tests.conftest import SEEDS, error_line, make_corpus, run_cli

    labels = make_corpus(tmp_path / "c", n_per_topic=3)
    topic_only = _topic_column_only(labels, tmp_path / "topic_only.csv")
    proc = run_cli(
        tmp_path,
        "newsclf-dataset",
        f"source.path={tmp_path / 'c/articles'}",
        f"annotations.path={topic_only}",
        "log_to_mlflow=false",
        "weak.enabled=false",
        ok=False,
    )
    assert error_line(proc).endswith(
        f"{topic_only} has no 'stance' column (has: article_id, topic) (a task you do not "
        "want is left out with '~task@tasks.stance')"
    )
    # with the labelling rules on (they vote on the bundled corpus), weak labels alone would
    # have built it, without a validation or test split (newsclf-train registered NaN metrics)
    seeds_topic_only = _topic_column_only(SEEDS / "labels.csv", tmp_path / "seeds_topic.csv")
    proc = run_cli(
        tmp_path,
        "newsclf-dataset",
        f"annotations.path={seeds_topic_only}",
        "log_to_mlflow=false",
        f"output_dir={tmp_path / 'ds'}",
        ok=False,
    )
    assert error_line(proc).endswith(
        f"task stance: no gold labels: {seeds_topic_only} has no 'stance' column (has: article_id, "
        "topic); weak labels alone give no validation or test split (leave the task out with "
        "'~task@tasks.stance', or build a weak-only dataset with annotations.path=null)"
    )
    assert not list((tmp_path / "ds").iterdir())  # no dataset, nothing half-written


def test_text_copies_skip_a_reject_whose_first_copy_is_not_named(tmp_path):
    from newsclf.labelling.gold import text_copies

    rejects = tmp_path / "rejects.csv"
    rejects.write_text(
        "id,source,reason,detail\n"
        "b,s,duplicate_text,same text as a\n"
        "c,s,duplicate_text,same text as an earlier article\n"
        "d,s,duplicate_id,id seen earlier in the input\n",
        encoding="utf-8",
    )
    assert list(text_copies(rejects, {"b", "c", "d"})) == [("b", "a")]
