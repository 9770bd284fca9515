"""TensorFlow frozen graphs (a serialized GraphDef), scored in a TF1-style session.

The inputs are the descriptor's ``input_name`` or else every placeholder, bound to record fields by name
with their dtype and shape; the output is the descriptor's ``output_name`` or else the one node nothing
consumes. An output [n, k>1] is per-class scores (the class is the arg-max index), [n] or [n, 1] a value.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from model.tensorflow_common import configure_threads, input_spec, tf
from modelstream.contract import (
    InputArrays,
    Model,
    ModelLoadError,
    ModelOptions,
    ModelSource,
    ScoreBatch,
    scores_from_tensor,
)

# ops that are never a model's output even when nothing consumes them
_NOT_OUTPUTS = {"NoOp", "Const", "Placeholder", "Assert", "SaveV2", "RestoreV2", "VarHandleOp", "VariableV2"}


def _node_name(tensor_ref: str) -> str:
    return tensor_ref.lstrip("^").split(":")[0]


def infer_inputs(graph_def: tf.compat.v1.GraphDef) -> list[str]:
    placeholders: list[str] = [n.name for n in graph_def.node if n.op == "Placeholder"]
    if not placeholders:
        raise ModelLoadError(
            "the graph has no placeholder to feed; name its input in the descriptor's input_name"
        )
    return placeholders


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
        self, payload: bytes, session: tf.compat.v1.Session, inputs: list[tf.Tensor], outputs: tf.Tensor
    ) -> None:
        self._payload = payload
        self._session = session
        self.inputs = tuple(input_spec(_node_name(t.name), t.dtype, t.shape) for t in inputs)
        self._feeds = [(spec.name, tensor) for spec, tensor in zip(self.inputs, inputs, strict=True)]
        self._output = outputs

    @classmethod
    def load(cls, source: ModelSource, options: ModelOptions) -> TensorflowGraphModel:
        configure_threads(options.tf_threads)
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(source.payload)
        except DecodeError as e:
            raise ModelLoadError(f"not a TensorFlow GraphDef: {e}") from e
        if not graph_def.node:
            raise ModelLoadError("not a TensorFlow GraphDef: no nodes")
        input_names = [source.input_name] if source.input_name else infer_inputs(graph_def)
        output_name = source.output_name or infer_output(graph_def)
        graph = tf.Graph()
        try:
            with graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            inputs = [graph.get_tensor_by_name(n if ":" in n else n + ":0") for n in input_names]
            outputs = graph.get_tensor_by_name(output_name if ":" in output_name else output_name + ":0")
        except (ValueError, KeyError, tf.errors.OpError) as e:
            raise ModelLoadError(f"cannot use the graph: {str(e).splitlines()[0]}") from e
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=options.tf_threads, inter_op_parallelism_threads=1
        )
        return cls(source.payload, tf.compat.v1.Session(graph=graph, config=config), inputs, outputs)

    def score_batch(self, inputs: InputArrays) -> ScoreBatch:
        output = self._session.run(self._output, {tensor: inputs[name] for name, tensor in self._feeds})
        return scores_from_tensor(output)

    def to_bytes(self) -> bytes:
        return self._payload

    def close(self) -> None:
        self._session.close()
