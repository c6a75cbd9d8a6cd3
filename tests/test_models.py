from pathlib import Path

import pytest
from omegaconf import OmegaConf
from sklearn.base import clone

from newsclf.errors import NewsclfError
from newsclf.models import build_model
from tests.conftest import ROOT, STANCE_WORDS, TOPIC_WORDS

MODEL_CONFIGS = sorted((ROOT / "configs" / "model").glob("*.yaml"))


def _data():
    texts, labels = [], []
    for label, words in TOPIC_WORDS.items():
        for i in range(6):
            w = words.split()
            texts.append(" ".join(w[i % 3 :] + w[: i % 3] + ["common", "words"]))
            labels.append(label)
    return texts, labels


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: Path(p).stem)
def test_every_model_config_builds_fits_and_clones(path):
    cfg = OmegaConf.load(path)
    cfg = OmegaConf.merge({"seed": 0}, cfg)  # model configs may interpolate ${seed}
    model = build_model(cfg)
    texts, labels = _data()
    model.fit(texts, labels)
    assert set(model.predict(texts)) <= set(labels)
    assert (model.predict(texts) == labels).mean() > 0.8
    assert clone(model).get_params()["vectorizer__ngram_range"] == (1, 2) or "hashing" in path.stem


def test_model_configs_cover_required_pipelines():
    names = {p.stem for p in MODEL_CONFIGS}
    assert {"tfidf_logreg", "tfidf_svm", "tfidf_cnb"} <= names


def test_bad_model_config():
    with pytest.raises(NewsclfError, match="no 'pipeline'"):
        build_model({"name": "x"})
    with pytest.raises(NewsclfError, match="cannot build"):
        build_model({"pipeline": {"_target_": "sklearn.nope.Missing"}})


def test_stance_words_are_distinct_from_topic_words():
    # guards the generated test corpus: stance must not be learnable from topic words alone
    topic = set(" ".join(TOPIC_WORDS.values()).split())
    assert not topic & set(" ".join(STANCE_WORDS.values()).split())
