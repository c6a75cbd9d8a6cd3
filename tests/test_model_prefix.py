"""newsclf-predict and newsclf-annotate find the models newsclf-train registers, under the
team's model prefix (mlflow.model_prefix, or NEWSCLF_MODEL_PREFIX in the environment)."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import newsclf.cli  # registers the ${newsclf.seeds:} resolver
from newsclf import registry, saved_model, tracking
from newsclf.cli.predict import run_prediction
from tests.conftest import ROOT, error_line, run_cli
from tests.predict_support import article_rows, predict_config, write_jsonl

assert newsclf.cli


def _models(config: str, *overrides: str) -> dict[str, str]:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config, overrides=list(overrides))
    return dict(cfg.models)


@pytest.mark.parametrize("config", ["predict", "annotate"])
def test_model_uris_follow_the_prefix(config, monkeypatch):
    monkeypatch.delenv("NEWSCLF_MODEL_PREFIX", raising=False)
    default = {
        "topic": "models:/newsclf-topic@champion",
        "stance": "models:/newsclf-stance@champion",
    }
    assert _models(config) == default
    assert _models(config, "mlflow=server") == default
    monkeypatch.setenv("NEWSCLF_MODEL_PREFIX", "team-a-")
    team = {
        "topic": "models:/team-a-topic@champion",
        "stance": "models:/team-a-stance@champion",
    }
    assert _models(config, "mlflow=server") == team
    # the local store too: the prefix was ignored there, and the built-in models loaded
    assert _models(config) == team
    assert _models(config, "mlflow.model_prefix=lab-")["topic"] == "models:/lab-topic@champion"
    # an explicit URI still wins
    assert _models(config, "models.topic=models:/x/3")["topic"] == "models:/x/3"


def test_predict_uses_the_prefixed_champions(tmp_path):
    """Champions registered as newsclf-train does with mlflow.model_prefix=team-a- (and no
    newsclf-* models at all) are the ones newsclf-predict loads with the same prefix."""
    rows = article_rows(60)
    texts = [f"{r['title']}\n\n{r['text']}" for r in rows]
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.configure(store)
    for task, labels in (("topic", ["economy", "military"]), ("stance", ["a", "b"])):
        y = [labels[i % 2] for i in range(len(texts))]
        pipe = Pipeline([("v", TfidfVectorizer()), ("c", LogisticRegression())]).fit(texts, y)
        with tracking.run(f"team-a-{task}", "unit"):
            uri = saved_model.log_model(pipe, labels, task, texts[:2])
        registry.promote(f"team-a-{task}", registry.register(uri, f"team-a-{task}"))
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    overrides = ("source=jsonl", f"source.path={source}", f"output.path={tmp_path}/p.parquet")
    result = run_prediction(predict_config(store, "mlflow.model_prefix=team-a-", *overrides))
    assert {t: m["name"] for t, m in result.models.items()} == {
        "topic": "team-a-topic",
        "stance": "team-a-stance",
    }
    assert result.n_predicted == 60


def test_a_prefix_mlflow_cannot_name_models_with_fails_before_training(tmp_path):
    proc = run_cli(
        tmp_path,
        "newsclf-train",
        "mlflow.model_prefix=team/a-",
        f"dataset_dir={tmp_path / 'not-read'}",
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        ok=False,
    )
    line = error_line(proc)
    assert "mlflow.model_prefix: 'team/a-' cannot hold '/' or ':'" in line, line
    assert not (tmp_path / "mlflow.db").exists()  # before the store, the dataset, the fit
