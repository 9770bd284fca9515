"""PMML models, scored with JPMML-Evaluator (the reference implementation, in-process: the default) or
pypmml (a py4j gateway to its own JVM), chosen by ``ModelOptions.pmml_engine``.

Inputs: the model's active MiningFields, by name (bound loosely: "fixed acidity" is ``fixed_acidity``),
numbers as doubles, categorical fields as strings; a record that lacks a field gives PMML's missing value.
A document that declares a DOCTYPE or an entity is refused before either engine parses it: pypmml would
read the files and URLs its external entities name (docs/security.md).
Classifiers yield the predicted class and the class probabilities — also when the PMML's Output element
lists only probabilities (then the class is the most probable one); regressions yield the value.

JPype starts a JVM inside the Python process in PyFlink's process execution mode (the default); in thread
mode, where Python already runs inside Flink's JVM, JPMML runs in that JVM (``model.jpmml_jvm``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from model import jpmml_jvm
from modelstream.contract import (
    InputArrays,
    InputSpec,
    Model,
    ModelLoadError,
    ModelOptions,
    ModelSource,
    ScoreBatch,
)
from modelstream.screening import check_xml_prolog

_PROBABILITY = re.compile(r"^probability\((.*)\)$|^probability_(.*)$")
ENGINES = ("jpmml", "pypmml")


@dataclass(frozen=True)
class _Signature:
    """What an engine reports about a model."""

    inputs: list[str]
    string_inputs: set[str]  # inputs of data type string: categorical values as text
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
    any_thread: bool  # may score on a thread other than the one that loaded it

    def predict_columns(self, columns: dict[str, npt.NDArray[Any]]) -> dict[str, list[Any]]:
        """One call for a batch: the input columns in, the result columns out (missing values None)."""
        ...

    def predict_one(self, arguments: dict[str, Any]) -> dict[str, Any]: ...


class _Jpmml:
    def __init__(self, payload: bytes) -> None:
        from jpmml_evaluator import ModelField, make_evaluator

        # in thread mode Python runs inside Flink's JVM, which holds JPMML's classes: no JPype there
        backend = jpmml_jvm.backend() if jpmml_jvm.in_flink_jvm() else "jpype"
        self.any_thread = backend == "jpype"  # pemja calls Java from the task's thread only
        evaluator = make_evaluator(payload, backend=backend).verify()
        java = evaluator.javaEvaluator

        def fields(getter: str) -> list[Any]:  # iterated: pemja's Java lists have no size()
            return [ModelField(evaluator.backend, f) for f in getattr(java, getter)()]

        inputs, target = fields("getInputFields"), fields("getTargetFields")[0]
        self.signature = _Signature(
            inputs=[f.getName() for f in inputs],
            string_inputs={f.getName() for f in inputs if str(f.getDataType()).lower() == "string"},
            target=target.getName(),
            classification=str(target.getOpType()) == "categorical",
            outputs=[f.getName() for f in fields("getOutputFields")],
        )
        self.predicted_column: str | None = self.signature.target
        self.frame_from_rows = 4  # a frame call ~70 µs + ~4.5 µs a row, a row call ~30 µs (decision tree)
        self._evaluator = evaluator

    def predict_columns(self, columns: dict[str, npt.NDArray[Any]]) -> dict[str, list[Any]]:
        from jpmml_evaluator import PythonEvaluatorUtil

        # jpmml_evaluator's own evaluateAll goes through two DataFrames; this is its call without them
        names = list(columns)
        arguments = {"columns": names, "data": [_as_arguments(columns[name]) for name in names]}
        evaluator = self._evaluator
        java, backend = evaluator.javaEvaluator, evaluator.backend
        result = PythonEvaluatorUtil.evaluateAll(backend, java, arguments, None, -1)
        failed = [e for e in result["errors"] or () if e is not None]
        if failed:  # the model isolates the failing rows by scoring them one by one
            raise ValueError(f"JPMML failed on {len(failed)} row(s): {failed[0]}")
        return dict(zip(result["columns"], result["data"], strict=True))

    def predict_one(self, arguments: dict[str, Any]) -> dict[str, Any]:
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
            string_inputs={f.name for f in model.inputFields if str(f.dataType).lower() == "string"},
            target=targets[0] if targets else "",
            classification=model.functionName == "classification",
            outputs=outputs,
        )
        predicted = f"predicted_{self.signature.target}"
        self.predicted_column = predicted if predicted in outputs else None
        self.frame_from_rows = 2  # a row call costs about what a frame call does
        self.any_thread = True
        self._model = model

    def predict_columns(self, columns: dict[str, npt.NDArray[Any]]) -> dict[str, list[Any]]:
        result = self._model.predict(pd.DataFrame(columns))
        return {name: [_missing_as_none(v) for v in result[name].tolist()] for name in result.columns}

    def predict_one(self, arguments: dict[str, Any]) -> dict[str, Any]:
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

    def __init__(self, payload: bytes, engine: _Engine) -> None:
        self._payload = payload
        self._engine = engine
        self.scores_on_any_thread = engine.any_thread
        signature = engine.signature
        self._inputs = signature.inputs
        self.inputs = tuple(
            InputSpec(name, _STRING if name in signature.string_inputs else _DOUBLE, optional=True)
            for name in signature.inputs
        )
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
    def load(cls, source: ModelSource, options: ModelOptions) -> PmmlModel:
        check_xml_prolog(source.payload, "PMML document")  # before either engine parses it
        return cls(source.payload, _engine(options.pmml_engine, source.payload))

    def score_batch(self, inputs: InputArrays) -> ScoreBatch:
        columns = {name: inputs[name] for name in self._inputs}
        predicted = self._engine.predicted_column
        if len(next(iter(columns.values()), ())) < self._engine.frame_from_rows:
            rows = [
                self._engine.predict_one(dict(zip(self._inputs, map(_missing_as_none, values), strict=True)))
                for values in zip(*(column.tolist() for column in columns.values()), strict=True)
            ]
            predictions = [row.get(predicted) for row in rows] if predicted else []
            proba_rows: npt.NDArray[np.float64] | list[list[Any]] = [
                [row.get(c) for c in self._proba_columns] for row in rows
            ]
        else:
            result = self._engine.predict_columns(columns)
            predictions = result[predicted] if predicted else []
            proba_rows = (
                np.column_stack([np.asarray(result[c], dtype=np.float64) for c in self._proba_columns])
                if self._proba_columns
                else [[]]
            )
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


_DOUBLE = np.dtype(np.float64)
_STRING = np.dtype(object)


def _missing_as_none(value: Any) -> Any:
    """PMML's missing value for one row's argument: None, where a column holds NaN or None."""
    return None if value is None or value != value else value


def _as_arguments(column: npt.NDArray[Any]) -> list[Any]:
    """A column as JPMML's arguments: PMML's missing value (None) where it holds NaN or None."""
    values: list[Any] = column.tolist()
    if column.dtype == _DOUBLE and not np.isnan(column).any():
        return values  # nothing missing: no per-value pass
    return [_missing_as_none(v) for v in values]


def _label(value: Any) -> str:
    """A class label as text; integral floats (5.0) print as integers (5)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
