"""Temperature scaling: the fitted temperature, the scaled model, and which models take it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import make_pipeline

from newsclf import calibration

TEXTS = [
    "gas prices rouble market",
    "oil exports rouble",
    "troops tanks front",
    "drone strike artillery",
    "talks summit envoy",
    "treaty vote envoy talks",
] * 5
LABELS = ["economy", "economy", "military", "military", "diplomacy", "diplomacy"] * 5


def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    scores = rng.normal(scale=3.0, size=(20_000, 4))
    for true in (0.5, 2.0):
        p = softmax(scores / true, axis=1)
        y = [rng.choice(4, p=row) for row in p]
        assert calibration.fit_temperature(scores, y) == pytest.approx(true, rel=0.05)
    # the log loss it minimises is the usual one
    y = rng.integers(0, 4, size=len(scores))
    expected = -np.log(softmax(scores, axis=1)[np.arange(len(y)), y]).mean()
    assert calibration.log_loss(scores, y) == pytest.approx(expected)


@pytest.mark.parametrize("n_classes", [3, 2])
def test_a_scaled_model_keeps_its_labels_and_divides_its_scores(n_classes):
    keep = [i for i, label in enumerate(LABELS) if n_classes == 3 or label != "diplomacy"]
    texts, labels = [TEXTS[i] for i in keep], [LABELS[i] for i in keep]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression(C=0.5)).fit(texts, labels)
    features = model[:-1].transform(texts)
    scores = calibration.softmax_scores(model[-1], features)
    assert scores is not None and scores.shape == (len(texts), n_classes)
    before = model.predict_proba(texts)
    scaled = calibration.with_temperature(model, 0.25)
    assert (scaled.predict(texts) == model.predict(texts)).all()
    np.testing.assert_allclose(scaled.predict_proba(texts), softmax(scores / 0.25, axis=1))
    assert scaled.predict_proba(texts).max(axis=1).mean() > before.max(axis=1).mean()
    np.testing.assert_array_equal(model.predict_proba(texts), before)  # the original untouched


@pytest.mark.parametrize(
    "classifier",
    [ComplementNB(), SGDClassifier(loss="log_loss", random_state=0)],  # no softmax of scores
    ids=["naive_bayes", "one_vs_rest"],
)
def test_classifiers_whose_probabilities_are_not_a_softmax_are_left_alone(classifier):
    model = make_pipeline(TfidfVectorizer(), classifier).fit(TEXTS, LABELS)
    assert calibration.softmax_scores(model[-1], model[:-1].transform(TEXTS)) is None


def test_a_validation_split_without_mistakes_sharpens_scores_at_most_tenfold():
    # log loss alone would push T toward 0 and every probability to exactly 1
    scores = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    assert calibration.fit_temperature(scores, [0, 1, 0]) == pytest.approx(0.1, rel=1e-3)


def test_a_temperature_at_its_floor_is_a_warning(mlflow_uri, caplog):
    from omegaconf import OmegaConf

    from newsclf import tracking
    from newsclf.cli.train import _fit_temperature

    model = make_pipeline(TfidfVectorizer(), LogisticRegression(C=1.0)).fit(TEXTS, LABELS)
    tracking.configure(mlflow_uri)
    cfg = OmegaConf.create({"calibrate": "temperature"})
    with tracking.run("newsclf-topic", "unit"), caplog.at_level("WARNING"):
        temperature = _fit_temperature(cfg, model, {"validation": (TEXTS, LABELS)}, None)
    assert temperature == pytest.approx(calibration.MIN_TEMPERATURE, rel=1e-2)
    assert "stopped at its floor 0.10" in caplog.text
