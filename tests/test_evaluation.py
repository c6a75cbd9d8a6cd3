import math

from newsclf.evaluation import gate, metrics, plot_confusion_matrix, report


def test_metrics_per_class_and_macro():
    y_true = ["a", "a", "b", "b"]
    y_pred = ["a", "b", "b", "b"]
    m = metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == 0.75
    assert m["precision_a"] == 1.0 and m["recall_a"] == 0.5
    assert math.isclose(m["f1_b"], 0.8)
    assert m["support_c"] == 0 and m["f1_c"] == 0.0
    # over the labels the split has, as newsclf-evaluate: an absent label is no F1 of 0
    assert math.isclose(m["macro_f1"], (2 / 3 + 0.8) / 2)
    assert metrics(["a", "b"], ["a", "b"], ["a", "b", "c"])["macro_f1"] == 1.0


def test_report_and_plot(tmp_path):
    assert "precision" in report(["a", "b"], ["a", "a"], ["a", "b"])
    png = plot_confusion_matrix(["a", "b"], ["a", "a"], ["a", "b"], tmp_path / "cm.png", "t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gate_decisions():
    assert gate(0.8, 0.5, None).promote
    assert not gate(0.4, 0.5, None).promote
    assert "below the minimum" in gate(0.4, 0.5, None).reason
    assert gate(0.8, 0.5, 0.8).promote  # ties keep the newest
    decision = gate(0.7, 0.5, 0.8)
    assert not decision.promote and "champion" in decision.reason
    assert not gate(float("nan"), 0.0, None).promote
    assert gate(float("nan"), 0.0, None).reason.startswith("no test score (the test split is")
