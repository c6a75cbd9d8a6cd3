"""Which articles newsclf-annotate proposes: every task's missing labels count."""

from __future__ import annotations

import csv

from newsclf.annotate import rank, with_text_copies, write_export
from newsclf.articles import Article, Reject
from newsclf.tasks import Task
from tests.conftest import make_corpus, run_cli


def _article(aid: str) -> Article:
    return Article(id=aid, title="", body=f"text {aid}", date=None, source="s")


def test_an_article_labelled_for_one_task_is_a_candidate_for_the_other():
    articles = [_article(a) for a in ("a", "b", "c")]
    scores = [
        {"topic": (0.9, "economy 0.10", 0), "stance": (0.9, "neutral 0.10", 0)},
        {"topic": (0.9, "economy 0.10", 0), "stance": (0.2, "neutral 0.80", 0)},
        {"topic": (0.4, "military 0.60", 0), "stance": (0.4, "neutral 0.60", 0)},
    ]
    annotated = {"topic": {"a", "b"}, "stance": {"a"}}
    chosen = rank(articles, scores, 10, annotated)
    # a has both labels; b lacks stance only and is scored on it alone
    assert [(c.article.id, round(c.score, 2)) for c in chosen] == [("c", 0.4), ("b", 0.2)]
    assert chosen[1].hints == {"stance": "neutral 0.80"}


def test_cli_exports_articles_that_lack_one_tasks_label(tmp_path):
    labels = make_corpus(tmp_path / "c", n_per_topic=4)
    rows = list(csv.DictReader(labels.open()))
    topic_only = tmp_path / "topic_only.csv"
    with topic_only.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "stance": ""} for r in rows)  # every topic, no stance
    proc = run_cli(
        tmp_path,
        "newsclf-annotate",
        f"source.path={tmp_path / 'c/articles'}",
        "strategy=conflict",
        "k=1000",
        f"annotations.path={topic_only}",
    )
    out = " ".join(proc.stdout.split())
    assert f"0 already annotated; exported the {len(rows)} most worth labelling of {len(rows)}" in (
        out
    )
    # the export carries the topic labels the articles have: only the stance is left to fill
    exported = {r["article_id"]: r for r in csv.DictReader((tmp_path / "annotate/next.csv").open())}
    assert {i: (r["topic"], r["stance"]) for i, r in exported.items()} == {
        r["article_id"]: (r["topic"], "") for r in rows
    }


def test_nothing_to_label_writes_no_file(tmp_path):
    # it wrote a header-only next.csv, which then blocked the next run ("already exists")
    labels = make_corpus(tmp_path / "c", n_per_topic=2)
    args = [f"source.path={tmp_path / 'c/articles'}", "strategy=conflict"]
    proc = run_cli(tmp_path, "newsclf-annotate", *args, f"annotations.path={labels}")
    out = " ".join(proc.stdout.split())
    assert "nothing to export: every kept article is annotated for every task; no file" in out
    assert not (tmp_path / "annotate").exists()
    run_cli(tmp_path, "newsclf-annotate", *args, "annotations.path=null")  # not blocked
    assert (tmp_path / "annotate/next.csv").exists()


def test_a_text_labelled_under_another_id_is_not_proposed_again(tmp_path):
    """Syndicated copies: the unlabelled copy read first is kept and the annotated one is
    rejected as its duplicate_text (or, with dedupe_text=false, both are kept); either way
    the text is labelled and the copy was proposed for labelling all the same."""
    labels = make_corpus(tmp_path / "c", n_per_topic=4)
    rows = list(csv.DictReader(labels.open()))
    articles = tmp_path / "c/articles"
    labelled = rows[0]["article_id"]
    (articles / "aaa_copy.txt").write_bytes((articles / f"{labelled}.txt").read_bytes())
    some = tmp_path / "some.csv"
    with some.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    for dedupe in ("true", "false"):
        proc = run_cli(
            tmp_path,
            "newsclf-annotate",
            f"source.path={articles}",
            "strategy=conflict",
            "k=1000",
            f"annotations.path={some}",
            f"dedupe_text={dedupe}",
            f"output.path=out-{dedupe}.csv",
            "output.overwrite=true",
        )
        with (tmp_path / f"out-{dedupe}.csv").open() as fh:
            proposed = {r["article_id"] for r in csv.DictReader(fh)}
        assert len(proposed) == len(rows) - 1, dedupe  # every other article
        assert "aaa_copy" not in proposed and labelled not in proposed, dedupe
        rejected = "+ 1 rejected (duplicate_text 1);" if dedupe == "true" else "+ 0 rejected;"
        assert rejected in " ".join(proc.stdout.split()), dedupe


def test_a_body_labelled_under_another_title_counts_as_labelled():
    """dedupe_text=false keeps a syndicated copy under another headline: its body is the
    labelled one's, so it needs no label again (the match was on title + body); with
    dedupe_text it is a duplicate_text reject naming the kept article."""
    kept = [
        Article("a", "Kyiv talks resume", "Same body."),
        Article("b", "Talks resume in Kyiv", "Same body."),
        Article("c", "Kyiv talks resume", "Another body."),
    ]
    assert with_text_copies(kept, [], {"topic": {"b"}}) == {"topic": {"a", "b"}}
    rejects = [Reject("b", "s", "duplicate_text", "same text as a")]
    assert with_text_copies(kept[::2], rejects, {"topic": {"b"}}) == {"topic": {"a", "b"}}


def test_the_export_and_its_context_list_tasks_in_one_order_with_plain_line_ends(tmp_path):
    """The context file listed its task columns alphabetically (stance, topic) beside the
    export's topic, stance, and both files ended their lines in CRLF, unlike labels.csv: a
    sed or awk edit of a label silently matched nothing."""
    tasks = [
        Task("topic", {"economy": "", "military": ""}),
        Task("stance", {"neutral": "", "anti_russia": ""}),
    ]
    chosen = rank(
        [_article("a"), _article("b")],
        [{"topic": (0.5, "economy 0.50", 0), "stance": (0.4, "neutral 0.60", 0)}] * 2,
        2,
        {},
    )
    path, context = write_export(chosen, tasks, tmp_path / "next.csv")
    assert path.read_bytes().splitlines()[0] == b"article_id,topic,stance"
    assert (
        context.read_bytes().splitlines()[0] == b"article_id,score,date,title,topic,stance,excerpt"
    )
    for file in (path, context):
        assert b"\r" not in file.read_bytes()
