"""PMML models, scored with JPMML-Evaluator (the reference implementation, in-process via JPype: the
default) or pypmml (a py4j gateway to its own JVM), chosen by ``ModelOptions.pmml_engine``.

The model's input fields are matched to record fields by name, loosely ("fixed acidity" is
``fixed_acidity``); a model that needs a field the record type lacks is rejected at load time.
Classifiers yield the predicted class and the class probabilities — also when the PMML's Output element
lists only probabilities (then the class is the most probable one); regressions yield the value.

JPype starts a JVM inside the Python process: right for PyFlink's process execution mode (the default),
not for thread mode, where Python already runs inside Flink's JVM — use pypmml there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from model.base import Model, ModelLoadError, ModelOptions, ModelSource, ScoreBatch
from modelstream.records import FeatureMatrix, RecordSchema

_PROBABILITY = re.compile(r"^probability\((.*)\)$|^probability_(.*)$")
ENGINES = ("jpmml", "pypmml")


@dataclass(frozen=True)
class _Signature:
    """What an engine reports about a model."""

    inputs: list[str]
    target: str
    classification: bool
    outputs: list[str]


class _Engine(Protocol):
    signature: _Signature
    # result column holding the predicted class or value, if the engine gives one
    predicted_column: str | None
    # batches smaller than this are scored a row per call: a frame call has a fixed cost
    # (measured by `python -m benchmarks.pmml_engines`, docs/pmml-engines.md)
    frame_from_rows: int

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame: ...

    def predict_one(self, arguments: dict[str, float]) -> dict[str, Any]: ...


class _Jpmml:
    def __init__(self, payload: bytes) -> None:
        from jpmml_evaluator import make_evaluator

        evaluator = make_evaluator(payload, backend="jpype").verify()
        target = evaluator.getTargetFields()[0]
        self.signature = _Signature(
            inputs=[f.getName() for f in evaluator.getInputFields()],
            target=target.getName(),
            classification=str(target.getOpType()) == "categorical",
            outputs=[f.getName() for f in evaluator.getOutputFields()],
        )
        self.predicted_column: str | None = self.signature.target
        self.frame_from_rows = 80  # a frame call ~0.9 ms, a row call ~13 µs (decision tree)
        self._evaluator = evaluator

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        result: pd.DataFrame = self._evaluator.evaluateAll(frame, error_col=None)[0]
        return result

    def predict_one(self, arguments: dict[str, float]) -> dict[str, Any]:
        result: dict[str, Any] = self._evaluator.evaluate(arguments)
        return result


class _Pypmml:
    def __init__(self, payload: bytes) -> None:
        from pypmml import Model as PypmmlModel

        model = PypmmlModel.fromString(payload.decode("utf-8"))
        targets = list(model.targetNames)
        outputs = list(model.outputNames)
        self.signature = _Signature(
            inputs=list(model.inputNames),
            target=targets[0] if targets else "",
            classification=model.functionName == "classification",
            outputs=outputs,
        )
        predicted = f"predicted_{self.signature.target}"
        self.predicted_column = predicted if predicted in outputs else None
        self.frame_from_rows = 2  # a row call costs about what a frame call does
        self._model = model

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        result: pd.DataFrame = self._model.predict(frame)
        return result

    def predict_one(self, arguments: dict[str, float]) -> dict[str, Any]:
        result: dict[str, Any] = self._model.predict(arguments)
        return result


def _engine(name: str, payload: bytes) -> _Engine:
    if name not in ENGINES:
        raise ModelLoadError(f"unknown PMML engine {name!r}; one of {', '.join(ENGINES)}")
    try:
        return _Jpmml(payload) if name == "jpmml" else _Pypmml(payload)
    except Exception as e:  # both engines surface JVM errors as assorted exception types
        raise ModelLoadError(f"{name} cannot load the model: {_first_line(e)}") from e


class PmmlModel(Model):
    format_name = "PMML"

    def __init__(self, payload: bytes, engine: _Engine, schema: RecordSchema) -> None:
        self._payload = payload
        self._engine = engine
        signature = engine.signature
        self._inputs = signature.inputs
        columns = []
        for name in self._inputs:
            index = schema.feature_index(name)
            if index is None:
                raise ModelLoadError(f"PMML model needs field {name!r}, which {schema.name} does not have")
            columns.append(index)
        self._columns = np.asarray(columns, dtype=np.intp)
        self._classification = signature.classification
        self._proba_columns: list[str] = []
        classes: list[str] = []
        for out in signature.outputs:
            match = _PROBABILITY.match(out)
            if match:
                self._proba_columns.append(out)
                classes.append(match.group(1) or match.group(2))
        self._classes = tuple(classes)
        if not engine.predicted_column and not (self._classification and self._proba_columns):
            raise ModelLoadError(
                f"PMML model gives no prediction and no class probabilities ({signature.outputs})"
            )

    @classmethod
    def load(cls, source: ModelSource, schema: RecordSchema, options: ModelOptions) -> PmmlModel:
        return cls(source.payload, _engine(options.pmml_engine, source.payload), schema)

    def score_batch(self, features: FeatureMatrix) -> ScoreBatch:
        selected = features[:, self._columns]
        predicted = self._engine.predicted_column
        if len(selected) < self._engine.frame_from_rows:
            rows = [
                self._engine.predict_one(dict(zip(self._inputs, values, strict=True)))
                for values in selected.tolist()
            ]
            predictions = [row.get(predicted) for row in rows] if predicted else []
            proba_rows = [[row.get(c) for c in self._proba_columns] for row in rows]
        else:
            result = self._engine.predict(pd.DataFrame(selected, columns=self._inputs))
            predictions = result[predicted].tolist() if predicted else []
            proba_rows = result[self._proba_columns].to_numpy() if self._proba_columns else [[]]
        if not self._classification:
            return ScoreBatch(values=np.asarray(predictions, dtype=np.float64))
        proba = None
        if self._proba_columns:
            proba = np.nan_to_num(np.asarray(proba_rows, dtype=np.float64), nan=0.0)
        if predicted:
            labels = [_label(x) for x in predictions]
        else:
            assert proba is not None
            labels = [self._classes[i] for i in proba.argmax(axis=1).tolist()]
        return ScoreBatch(labels=labels, probabilities=proba, classes=self._classes)

    def to_bytes(self) -> bytes:
        return self._payload


def _label(value: Any) -> str:
    """A class label as text; integral floats (5.0) print as integers (5)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
