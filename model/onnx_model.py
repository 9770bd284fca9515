"""ONNX models, scored with onnxruntime.

Inputs: every graph input, by name, with its element type (float, double, int32/64, bool, string) and
shape. Outputs are read by kind: an integer or string tensor [n] is the predicted class; a float tensor
[n, k] or a ZipMap (a sequence of class -> probability maps, skl2onnx's default) the class
probabilities (class labels from the ZipMap keys, else the model's ``classes`` metadata, comma separated,
else the column numbers); a float tensor [n] or [n, 1] with no class output a regression value; any
other output is passed on as a named tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

from modelstream.contract import (
    InputArrays,
    InputSpec,
    Model,
    ModelLoadError,
    ModelOptions,
    ModelSource,
    ScoreBatch,
)

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}
_INPUT_TYPES: dict[str, type] = {
    **_FLOAT_TYPES,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)")


def _input_spec(node: Any) -> InputSpec:
    dtype = _INPUT_TYPES.get(node.type)
    if dtype is None:
        raise ModelLoadError(f"ONNX input {node.name!r} has type {node.type}, which records cannot feed")
    dims = list(node.shape or ())
    shape = tuple(d if isinstance(d, int) else None for d in dims[1:])
    return InputSpec(node.name, np.dtype(dtype), shape)


class OnnxModel(Model):
    format_name = "ONNX"

    def __init__(self, payload: bytes, session: ort.InferenceSession) -> None:
        self._payload = payload
        self._session = session
        self.inputs = tuple(_input_spec(node) for node in session.get_inputs())
        self._label_output: str | None = None
        self._proba_output: str | None = None
        self._zipmap = False
        value_output: str | None = None
        others: list[str] = []
        for out in session.get_outputs():
            rank = len(out.shape or ())
            if out.type in _LABEL_TYPES and rank == 1 and not self._label_output:
                self._label_output = out.name
            elif out.type.startswith("seq(map(") and not self._proba_output:
                self._proba_output, self._zipmap = out.name, True
            elif out.type in _FLOAT_TYPES and rank == 2 and out.shape[1] != 1 and not self._proba_output:
                self._proba_output = out.name
            elif out.type in _FLOAT_TYPES and rank in (1, 2) and not value_output:
                value_output = out.name
            else:
                others.append(out.name)
        self._value_output = None if self._label_output else value_output
        if value_output and self._label_output:
            others.append(value_output)
        self._tensor_outputs = others
        if not (self._label_output or self._value_output or others):
            raise ModelLoadError("ONNX model has no output")
        self._output_names = [
            n for n in (self._label_output, self._proba_output, self._value_output, *others) if n
        ]
        meta = session.get_modelmeta().custom_metadata_map.get("classes", "")
        self._classes = tuple(c.strip() for c in meta.split(",")) if meta else ()

    @classmethod
    def load(cls, source: ModelSource, options: ModelOptions) -> OnnxModel:
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.onnx_threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                source.payload, sess_options=so, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises several exception types for bad models
            raise ModelLoadError(f"onnxruntime cannot load the model: {e}") from e
        return cls(source.payload, session)

    def score_batch(self, inputs: InputArrays) -> ScoreBatch:
        outputs = self._session.run(self._output_names, dict(inputs))
        by_name = dict(zip(self._output_names, outputs, strict=True))
        labels = values = proba = None
        classes = self._classes
        if self._label_output:
            labels = [str(x) for x in by_name[self._label_output].tolist()]
        if self._proba_output:
            found = by_name[self._proba_output]
            if self._zipmap:  # a list of {class: probability}, the same classes in every row
                keys = list(found[0]) if found else []
                classes = tuple(str(k) for k in keys)
                proba = np.array([[row[k] for k in keys] for row in found], dtype=np.float64)
            else:
                proba = np.asarray(found, dtype=np.float64)
        if self._value_output:
            values = np.asarray(by_name[self._value_output], dtype=np.float64).reshape(-1)
        if proba is not None and len(classes) != proba.shape[1]:
            classes = tuple(str(i) for i in range(proba.shape[1]))
        tensors = {name: np.asarray(by_name[name]) for name in self._tensor_outputs}
        return ScoreBatch(labels=labels, values=values, probabilities=proba, classes=classes, tensors=tensors)

    def to_bytes(self) -> bytes:
        return self._payload
