from collections import Counter
from dataclasses import replace

import pytest

from newsclf import datasets
from newsclf.articles import Article
from newsclf.errors import NewsclfError
from newsclf.tasks import Task
from tests.conftest import splits_of_bodies

TASK = Task("topic", {"a": "A", "b": "B", "c": "C"})


def _articles(n: int) -> tuple[list[Article], dict[str, str]]:
    arts = [Article(f"id{i:03d}", f"Title {i}", f"Body number {i}.") for i in range(n)]
    gold = {a.id: "abc"[i % 3] for i, a in enumerate(arts)}
    return arts, gold


def test_stratified_split_is_deterministic_and_stratified():
    labels = [0] * 40 + [1] * 20 + [2] * 10
    cfg = datasets.SplitConfig(0.15, 0.15, seed=7)
    first = datasets.stratified_split(labels, cfg)
    assert first == datasets.stratified_split(labels, cfg)
    assert first != datasets.stratified_split(labels, datasets.SplitConfig(0.15, 0.15, seed=8))
    by_label = Counter(zip(labels, first, strict=True))
    assert by_label[(0, "test")] == 6 and by_label[(0, "validation")] == 6
    assert by_label[(2, "test")] == 2 and by_label[(2, "train")] == 6


def test_positions_with_the_same_text_share_a_split():
    labels = [0] * 40 + [1] * 20
    cfg = datasets.SplitConfig(0.15, 0.15, seed=7)
    plain = datasets.stratified_split(labels, cfg)
    assert datasets.stratified_split(labels, cfg, [f"t{i}" for i in range(60)]) == plain
    # every text twice (positions i and i + 30): the first of each pair is split by its label
    groups = [f"t{i % 30}" for i in range(60)]
    grouped = datasets.stratified_split(labels, cfg, groups)
    assert all(grouped[i] == grouped[i + 30] for i in range(30))
    assert grouped[:30] == datasets.stratified_split(labels[:30], cfg)
    assert {"train", "validation", "test"} == set(grouped)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_tiny_labels_keep_a_training_example(n):
    out = datasets.stratified_split([0] * n, datasets.SplitConfig())
    assert out.count("train") >= 1
    assert out.count("test") == (1 if n >= 2 else 0)


def test_bad_split_fractions():
    with pytest.raises(NewsclfError, match="fractions"):
        datasets.SplitConfig(validation=0.6, test=0.5)


def test_copies_of_a_body_under_other_titles_share_a_split():
    """dedupe_text=false keeps copies: gold copies of a body under another headline were
    split as other texts, and weak ones joined train beside a test copy (leakage). Now a body
    is in one split, and weak copies of a validation or test body stay out of train."""
    arts, gold = _articles(60)
    gold_copies = [replace(a, id=f"g{a.id}", title=f"Other {a.id}") for a in arts[:30]]
    gold.update({c.id: gold[c.id[1:]] for c in gold_copies})
    weak_copies = [replace(a, id=f"w{a.id}", title="") for a in arts]
    weak = {c.id: (gold[c.id[1:]], 0.9) for c in weak_copies}
    dd = datasets.build(arts + gold_copies + weak_copies, gold, TASK, datasets.SplitConfig(), weak)
    split_of_body = splits_of_bodies(dd)
    assert all(len(splits) == 1 for splits in split_of_body.values())
    weak_ids = {i for i in dd["train"]["id"] if i.startswith("w")}
    assert weak_ids == {f"w{i}" for i in dd["train"]["id"] if i.startswith("id")}
    assert {"validation", "test"} <= {s for splits in split_of_body.values() for s in splits}


def test_build_has_classlabel_and_disjoint_splits():
    arts, gold = _articles(60)
    dd = datasets.build(arts, gold, TASK, datasets.SplitConfig())
    assert dd["train"].features["label"].names == ["a", "b", "c"]
    texts = [set(dd[s]["text"]) for s in datasets.SPLITS]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sum(dd[s].num_rows for s in datasets.SPLITS) == 60
    assert set(dd["test"]["label_source"]) == {"gold"}


def test_fingerprint_is_stable_and_input_order_free():
    arts, gold = _articles(30)
    cfg = datasets.SplitConfig()
    one = datasets.fingerprint(datasets.build(arts, gold, TASK, cfg))
    two = datasets.fingerprint(datasets.build(list(reversed(arts)), gold, TASK, cfg))
    assert one == two
    gold2 = dict(gold, id000="b")
    assert datasets.fingerprint(datasets.build(arts, gold2, TASK, cfg)) != one


def test_fewer_than_two_labels_present_is_an_error():
    arts, _ = _articles(5)
    with pytest.raises(NewsclfError, match="at least two labels present"):
        datasets.build(arts, {a.id: "a" for a in arts}, TASK, datasets.SplitConfig())


def test_unlabelled_articles_are_left_out():
    arts, gold = _articles(30)
    del gold["id000"]
    dd = datasets.build(arts, gold, TASK, datasets.SplitConfig())
    assert sum(dd[s].num_rows for s in datasets.SPLITS) == 29


def test_save_is_atomic_and_load_round_trips(tmp_path):
    arts, gold = _articles(30)
    dd = datasets.build(arts, gold, TASK, datasets.SplitConfig())
    manifest = datasets.Manifest(TASK.name, TASK.label_names, datasets.fingerprint(dd))
    out = tmp_path / "topic"
    datasets.save(dd, out, "card", manifest, [], [])
    datasets.save(dd, out, "card v2", manifest, [], [])  # replaces in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["topic"]  # no temp folders left
    assert (out / "README.md").read_text() == "card v2"
    assert {p.name for p in (out / "parquet").iterdir()} == {
        "train.parquet",
        "validation.parquet",
        "test.parquet",
    }
    loaded, meta = datasets.load(out)
    assert meta == replace(manifest, path=str(out))
    assert datasets.fingerprint(loaded) == manifest.fingerprint


def test_manifest_reads_partial_and_newer_files_and_names_missing_keys():
    older = {"task": "t", "labels": ["a", "b"], "fingerprint": "f", "rows": {"train": 2}}
    manifest = datasets.Manifest.from_dict({**older, "from_a_newer_version": 1}, "d")
    assert manifest.rows == {"train": 2} and manifest.clean is None and manifest.path == "d"
    assert manifest.to_dict()["rows"] == {"train": 2} and "path" not in manifest.to_dict()
    with pytest.raises(NewsclfError, match=r"d: manifest\.json lacks fingerprint"):
        datasets.Manifest.from_dict({"task": "t", "labels": ["a", "b"]}, "d")


def test_failed_save_leaves_previous_dataset(tmp_path):
    arts, gold = _articles(30)
    dd = datasets.build(arts, gold, TASK, datasets.SplitConfig())
    out = tmp_path / "topic"
    datasets.save(dd, out, "good", datasets.Manifest("t", ["a", "b"], "x"), [], [])
    with pytest.raises(TypeError):
        unwritable = datasets.Manifest("t", ["a", "b"], "x", clean={"not json": object()})
        datasets.save(dd, out, "bad", unwritable, [], [])
    assert (out / "README.md").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["topic"]


def test_card_counts_labels_per_split():
    arts, gold = _articles(30)
    dd = datasets.build(arts, gold, TASK, datasets.SplitConfig())
    manifest = datasets.Manifest(
        task=TASK.name,
        labels=TASK.label_names,
        fingerprint="f",
        source="s",
        split={"seed": 1, "validation": 0.15, "test": 0.15},
        n_input=31,
        n_kept=30,
        n_rejected=1,
        rejected_by_reason={"duplicate_text": 1},
        n_unlabelled=0,
        removed_by_rule={},
    )
    card = datasets.dataset_card(dd, TASK, manifest)
    assert card.startswith("---\n")
    counts = datasets.label_counts(dd)
    row = f"| a | A | {counts['a']['train']} | {counts['a']['validation']} | {counts['a']['test']}"
    assert row in card
    assert "31 = 30 kept + 1 rejected" in card


def _weak_for(arts, gold, every: int = 1) -> dict[str, tuple[str, float]]:
    """Weak labels for every article (a different label than gold for the first one)."""
    weak = {a.id: (gold.get(a.id, "a"), 0.9) for a in arts[::every]}
    weak[arts[0].id] = ("c" if gold.get(arts[0].id) != "c" else "a", 0.75)
    return weak


def test_weak_labels_join_train_only_and_gold_wins():
    arts, gold = _articles(60)
    unlabelled = [Article(f"u{i:03d}", f"U {i}", f"Unlabelled body {i}.") for i in range(12)]
    weak = _weak_for(arts + unlabelled, gold)
    weak.update({u.id: ("b", 0.8) for u in unlabelled})
    dd = datasets.build(arts + unlabelled, gold, TASK, datasets.SplitConfig(), weak)
    for split in ("validation", "test"):
        assert set(dd[split]["label_source"]) == {"gold"}
        assert set(dd[split]["label_confidence"]) == {1.0}
    train = dd["train"].to_pandas()
    assert set(train.loc[train.label_source == "weak", "id"]) == {u.id for u in unlabelled}
    assert (train.loc[train.label_source == "weak", "label_confidence"] == 0.8).all()
    names = TASK.label_names
    by_id = dict(zip(train.id, train.label, strict=True))
    assert all(names[by_id[a]] == gold[a] for a in gold if a in by_id)  # gold overrides weak
    assert sum(dd[s].num_rows for s in datasets.SPLITS) == 72


def test_weak_only_training_keeps_the_same_gold_test_split():
    arts, gold = _articles(60)
    weak = _weak_for(arts, gold, every=2)  # half of the articles have a weak label
    cfg = datasets.SplitConfig()
    gold_dd = datasets.build(arts, gold, TASK, cfg, weak)
    weak_dd = datasets.build(arts, gold, TASK, cfg, weak, gold_in_train=False)
    for split in ("validation", "test"):
        assert weak_dd[split]["id"] == gold_dd[split]["id"]
        assert set(weak_dd[split]["label_source"]) == {"gold"}
    assert set(weak_dd["train"]["label_source"]) == {"weak"}
    assert set(weak_dd["train"]["id"]) == set(gold_dd["train"]["id"]) & set(weak)
    first = weak_dd["train"].to_pandas().set_index("id").loc[arts[0].id]
    if arts[0].id in set(gold_dd["train"]["id"]):
        assert TASK.label_names[first.label] == weak[arts[0].id][0] != gold[arts[0].id]
    assert datasets.fingerprint(weak_dd) != datasets.fingerprint(gold_dd)


def test_no_gold_at_all_gives_a_weak_training_split():
    arts, _ = _articles(30)
    weak = {a.id: ("abc"[i % 3], 0.9) for i, a in enumerate(arts)}
    dd = datasets.build(arts, {}, TASK, datasets.SplitConfig(), weak)
    assert dd["train"].num_rows == 30 and dd["validation"].num_rows == dd["test"].num_rows == 0
    with pytest.raises(NewsclfError, match="at least two labels present"):
        datasets.build(arts, {}, TASK, datasets.SplitConfig(), {a.id: ("a", 0.9) for a in arts})


def test_one_gold_label_is_still_an_error_with_weak_labels():
    arts, _ = _articles(10)
    weak = {a.id: ("abc"[i % 3], 0.9) for i, a in enumerate(arts)}
    with pytest.raises(NewsclfError, match="at least two labels present"):
        datasets.build(arts, {arts[0].id: "a"}, TASK, datasets.SplitConfig(), weak)


def test_fingerprint_sees_confidence_and_card_lists_sources(tmp_path):
    arts, gold = _articles(30)
    extra = [Article("zz1", "Z", "Unlabelled z.")]
    cfg = datasets.SplitConfig()
    one = datasets.build(arts + extra, gold, TASK, cfg, {"zz1": ("a", 0.9)})
    two = datasets.build(arts + extra, gold, TASK, cfg, {"zz1": ("a", 0.8)})
    assert datasets.fingerprint(one) != datasets.fingerprint(two)
    manifest = datasets.Manifest(
        task=TASK.name,
        labels=TASK.label_names,
        fingerprint="f",
        source="s",
        split={"seed": 1, "validation": 0.15, "test": 0.15},
        n_input=31,
        n_kept=31,
        n_rejected=0,
        rejected_by_reason={},
        n_unlabelled=0,
        removed_by_rule={},
        weak=datasets.WeakSummary(
            rules="configs/labeling/topic.yaml",
            label_model="dawid_skene",
            min_confidence=0.7,
            gold_in_train=True,
        ),
    )
    card = datasets.dataset_card(one, TASK, manifest)
    assert "train 18 gold + 1 weak" in card and "label model dawid_skene" in card
    out = datasets.save(one, tmp_path / "t", card, manifest, [], [], {"report.md": "# r\n"})
    assert (out / "report.md").read_text() == "# r\n"
