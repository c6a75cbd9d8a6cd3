"""The MLflow model newsclf logs ("models from code"): MLflow runs this file to load a model.

It wraps the skops-saved pipeline in the model's artifacts; loading checks the types in the
file against newsclf's trusted list, so no pickle is ever involved.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd

from newsclf.predict import Classifier, load_pipeline


class NewsclfModel(mlflow.pyfunc.PythonModel):
    """pyfunc model: a DataFrame with a ``text`` column in, ``label`` and ``probability`` out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        with open(context.artifacts["labels"], encoding="utf-8") as fh:
            labels = json.load(fh)
        self.classifier = Classifier(load_pipeline(context.artifacts["pipeline"]), labels)

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params=None
    ) -> pd.DataFrame:
        texts = model_input["text"] if isinstance(model_input, pd.DataFrame) else model_input
        return self.classifier.predict([str(t) for t in texts])


mlflow.models.set_model(NewsclfModel())
