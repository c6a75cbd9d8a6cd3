"""The MLflow model newsclf logs ("models from code"): MLflow runs this file to load a model.

It wraps the skops-saved pipeline in the model's artifacts with the text preparation the model
was trained with, so raw articles (``title``, optional, and ``text``) go in wherever the model
runs. Loading checks the types in the skops file against newsclf's trusted list (plus
``trusted_types`` in the loader's ``model_config``), so no pickle is ever involved.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd

from newsclf.saved_model import Classifier, Preparation, load_pipeline, predict_frame


class NewsclfModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: a DataFrame of raw articles (``title`` optional, ``text``) in; ``label``,
    ``probability`` and ``probability_<label>`` per label out. An article with no body text
    left after cleaning, or whose text or title is not a string, gets the label ``""`` and
    NaN probabilities (``newsclf-predict`` rejects it as empty_text or wrong_type).

    ``model_config`` (given when loading): ``trusted_types``, extra skops types to trust;
    ``prepared_input: true`` takes ``text`` as already prepared (newsclf's Spark engine,
    which prepares each article once itself).
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        config = context.model_config or {}
        with open(context.artifacts["labels"], encoding="utf-8") as fh:
            self.labels = [str(label) for label in json.load(fh)]
        pipeline = load_pipeline(context.artifacts["pipeline"], config.get("trusted_types", ()))
        self.classifier = Classifier(pipeline, self.labels)
        preparation = context.artifacts.get("preparation")
        self.preparation = (
            Preparation.from_dict(json.loads(Path(preparation).read_text(encoding="utf-8")))
            if preparation
            else Preparation()  # a model logged before newsclf recorded its preparation
        )
        self.prepared_input = bool(config.get("prepared_input", False))

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params=None
    ) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame({"text": list(model_input)})
        bodies = model_input["text"].tolist()
        if self.prepared_input:
            texts = [t if isinstance(t, str) and t.strip() else None for t in bodies]
        else:
            titles = model_input["title"] if "title" in model_input else [None] * len(bodies)
            texts = self.preparation.texts(list(titles), bodies)
        return predict_frame(self.classifier, self.labels, texts)


mlflow.models.set_model(NewsclfModel())
