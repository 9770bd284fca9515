"""TensorFlow frozen graphs (a serialized GraphDef), scored in a TF1-style session.

The input is the descriptor's ``input_name`` or else the graph's one placeholder; the output is its
``output_name`` or else the one node nothing consumes. The input takes float32 [n, features] in schema
order. An output [n, k>1] is per-class scores (the class is the arg-max index), [n] or [n, 1] a value.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError

from model.base import Model, ModelLoadError, ModelOptions, ModelSource, ScoreBatch, scores_from_tensor
from model.tensorflow_common import configure_threads, tf
from modelstream.records import FeatureMatrix, RecordSchema

# ops that are never a model's output even when nothing consumes them
_NOT_OUTPUTS = {"NoOp", "Const", "Placeholder", "Assert", "SaveV2", "RestoreV2", "VarHandleOp", "VariableV2"}


def _node_name(tensor_ref: str) -> str:
    return tensor_ref.lstrip("^").split(":")[0]


def infer_input(graph_def: tf.compat.v1.GraphDef) -> str:
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    if len(placeholders) != 1:
        found = ", ".join(placeholders) or "none"
        raise ModelLoadError(
            f"cannot infer the graph's input: {len(placeholders)} placeholders ({found}); "
            "name it in the descriptor's input_name"
        )
    name: str = placeholders[0]
    return name


def infer_output(graph_def: tf.compat.v1.GraphDef) -> str:
    consumed = {_node_name(i) for n in graph_def.node for i in n.input}
    sinks = [n.name for n in graph_def.node if n.name not in consumed and n.op not in _NOT_OUTPUTS]
    if len(sinks) != 1:
        raise ModelLoadError(
            f"cannot infer the graph's output: {len(sinks)} unconsumed nodes ({', '.join(sinks) or 'none'}); "
            "name it in the descriptor's output_name"
        )
    name: str = sinks[0]
    return name


class TensorflowGraphModel(Model):
    format_name = "TENSORFLOW"

    def __init__(
        self, payload: bytes, session: tf.compat.v1.Session, inputs: tf.Tensor, outputs: tf.Tensor
    ) -> None:
        self._payload = payload
        self._session = session
        self._input = inputs
        self._output = outputs

    @classmethod
    def load(cls, source: ModelSource, schema: RecordSchema, options: ModelOptions) -> TensorflowGraphModel:
        configure_threads(options.tf_threads)
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(source.payload)
        except DecodeError as e:
            raise ModelLoadError(f"not a TensorFlow GraphDef: {e}") from e
        if not graph_def.node:
            raise ModelLoadError("not a TensorFlow GraphDef: no nodes")
        input_name = source.input_name or infer_input(graph_def)
        output_name = source.output_name or infer_output(graph_def)
        graph = tf.Graph()
        try:
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            inputs = graph.get_tensor_by_name(input_name if ":" in input_name else input_name + ":0")
            outputs = graph.get_tensor_by_name(output_name if ":" in output_name else output_name + ":0")
        except (ValueError, KeyError, tf.errors.OpError) as e:
            raise ModelLoadError(f"cannot use the graph: {str(e).splitlines()[0]}") from e
        width = inputs.shape[-1] if inputs.shape.rank else None
        if width is not None and width != len(schema.features):
            raise ModelLoadError(
                f"graph input {input_name!r} takes {width} features, records have {len(schema.features)}"
            )
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=options.tf_threads, inter_op_parallelism_threads=1
        )
        return cls(source.payload, tf.compat.v1.Session(graph=graph, config=config), inputs, outputs)

    def score_batch(self, features: FeatureMatrix) -> ScoreBatch:
        output = self._session.run(self._output, {self._input: features.astype(np.float32)})
        return scores_from_tensor(output)

    def to_bytes(self) -> bytes:
        return self._payload

    def close(self) -> None:
        self._session.close()
