"""ONNX models, scored with onnxruntime.

Input: the model's first input, a float tensor [n, features] in schema order. Outputs are read by kind:
an integer or string tensor [n] is the predicted class, a float tensor [n, k] the class probabilities
(class labels from the model's ``classes`` metadata, comma separated, else the column numbers), and a
float tensor [n] or [n, 1] with no class output is a regression value.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from model.base import Model, ModelLoadError, ModelOptions, ModelSource, ScoreBatch
from modelstream.records import FeatureMatrix, RecordSchema

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


class OnnxModel(Model):
    format_name = "ONNX"

    def __init__(self, payload: bytes, session: ort.InferenceSession, n_features: int) -> None:
        self._payload = payload
        self._session = session
        model_input = session.get_inputs()[0]
        if model_input.type not in _FLOAT_TYPES:
            raise ModelLoadError(
                f"ONNX input {model_input.name!r} has type {model_input.type}, expected a float tensor"
            )
        self._input_name = model_input.name
        self._input_dtype = _FLOAT_TYPES[model_input.type]
        width = model_input.shape[-1] if model_input.shape else None
        if isinstance(width, int) and width != n_features:
            raise ModelLoadError(
                f"ONNX input {model_input.name!r} takes {width} features, records have {n_features}"
            )
        self._label_output: str | None = None
        self._proba_output: str | None = None
        value_output: str | None = None
        for out in session.get_outputs():
            rank = len(out.shape or ())
            if out.type in ("tensor(int64)", "tensor(int32)", "tensor(string)") and rank == 1:
                self._label_output = self._label_output or out.name
            elif out.type in _FLOAT_TYPES and rank == 2 and out.shape[1] != 1:
                self._proba_output = self._proba_output or out.name
            elif out.type in _FLOAT_TYPES and rank in (1, 2):
                value_output = value_output or out.name
        self._value_output = None if self._label_output else value_output
        if not (self._label_output or self._value_output):
            raise ModelLoadError(
                "ONNX model has no class output (int/string [n]) and no value output (float [n])"
            )
        self._output_names = [n for n in (self._label_output, self._proba_output, self._value_output) if n]
        meta = session.get_modelmeta().custom_metadata_map.get("classes", "")
        self._classes = tuple(c.strip() for c in meta.split(",")) if meta else ()

    @classmethod
    def load(cls, source: ModelSource, schema: RecordSchema, options: ModelOptions) -> OnnxModel:
        payload = source.payload
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.onnx_threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(payload, sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises several exception types for bad models
            raise ModelLoadError(f"onnxruntime cannot load the model: {e}") from e
        return cls(payload, session, len(schema.features))

    def score_batch(self, features: FeatureMatrix) -> ScoreBatch:
        outputs = self._session.run(
            self._output_names, {self._input_name: features.astype(self._input_dtype, copy=False)}
        )
        by_name = dict(zip(self._output_names, outputs, strict=True))
        labels = values = proba = None
        if self._label_output:
            labels = [str(x) for x in by_name[self._label_output].tolist()]
        if self._proba_output:
            proba = np.asarray(by_name[self._proba_output], dtype=np.float64)
        if self._value_output:
            values = np.asarray(by_name[self._value_output], dtype=np.float64).reshape(-1)
        classes = self._classes
        if proba is not None and len(classes) != proba.shape[1]:
            classes = tuple(str(i) for i in range(proba.shape[1]))
        return ScoreBatch(labels=labels, values=values, probabilities=proba, classes=classes)

    def to_bytes(self) -> bytes:
        return self._payload
