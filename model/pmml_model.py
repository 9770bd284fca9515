"""PMML models, scored with pypmml.

The model's input fields are matched to record fields by name, loosely ("fixed acidity" is
``fixed_acidity``); a model that needs a field the record type lacks is rejected at load time.
Classifiers yield the predicted class (the ``predicted_*`` output, else the most probable class from the
``probability(...)`` outputs) and the probabilities; regressions yield the predicted value.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pypmml import Model as PypmmlModel

from model.base import Model, ModelLoadError, ModelOptions, ScoreBatch
from modelstream.records import FeatureMatrix, RecordSchema

_PROBABILITY = re.compile(r"^probability\((.*)\)$|^probability_(.*)$")


class PmmlModel(Model):
    format_name = "PMML"

    def __init__(self, payload: bytes, pmml: PypmmlModel, schema: RecordSchema) -> None:
        self._payload = payload
        self._pmml = pmml
        self._inputs: list[str] = list(pmml.inputNames)
        columns = []
        for name in self._inputs:
            index = schema.feature_index(name)
            if index is None:
                raise ModelLoadError(f"PMML model needs field {name!r}, which {schema.name} does not have")
            columns.append(index)
        self._columns = np.asarray(columns, dtype=np.intp)
        self._classification = pmml.functionName == "classification"
        targets = list(pmml.targetNames)
        outputs = list(pmml.outputNames)
        self._predicted = next((o for o in outputs if targets and o == f"predicted_{targets[0]}"), None)
        self._proba_columns: list[str] = []
        classes: list[str] = []
        for out in outputs:
            match = _PROBABILITY.match(out)
            if match:
                self._proba_columns.append(out)
                classes.append(match.group(1) or match.group(2))
        self._classes = tuple(classes)
        if not self._predicted and not (self._classification and self._proba_columns):
            raise ModelLoadError(
                f"PMML model has no predicted value or class probabilities among outputs {outputs}"
            )

    @classmethod
    def load(cls, payload: bytes, schema: RecordSchema, options: ModelOptions) -> PmmlModel:
        try:
            pmml = PypmmlModel.fromString(payload.decode("utf-8"))
        except Exception as e:  # pypmml surfaces JVM errors as assorted exceptions
            raise ModelLoadError(f"pypmml cannot load the model: {_first_line(e)}") from e
        return cls(payload, pmml, schema)

    def score_batch(self, features: FeatureMatrix) -> ScoreBatch:
        frame = pd.DataFrame(features[:, self._columns], columns=self._inputs)
        result = self._pmml.predict(frame)
        if not self._classification:
            return ScoreBatch(values=result[self._predicted].to_numpy(dtype=np.float64))
        proba = None
        if self._proba_columns:
            proba = np.nan_to_num(result[self._proba_columns].to_numpy(dtype=np.float64), nan=0.0)
        if self._predicted:
            labels = [str(x) for x in result[self._predicted].tolist()]
        else:
            assert proba is not None
            labels = [self._classes[i] for i in proba.argmax(axis=1).tolist()]
        return ScoreBatch(labels=labels, probabilities=proba, classes=self._classes)

    def to_bytes(self) -> bytes:
        return self._payload

    def close(self) -> None:
        self._pmml = None


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
