"""ONNX models built for tests and benchmarks: a wine regression as slow as asked (speculative serving)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def wine_regression(layers: int, width: int = 512, seed: int = 7) -> bytes:
    """A regression on the 11 wine features ([n, 11] float input, [n, 1] output): a linear score plus
    a term that takes ``layers`` products of [width, width] matrices per call, whatever the batch size
    (so its time per micro-batch is set by ``layers``); the file stays small."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {  # type: ignore[type-arg]
        "w_out": rng.normal(0, 0.3, (11, 1)).astype(np.float32),
        "w": rng.normal(0, 1 / np.sqrt(width), (width, width)).astype(np.float32),
        "square": np.array([width, width], dtype=np.int64),
    }
    nodes = [
        helper.make_node("MatMul", ["float_input", "w_out"], ["linear"]),
        helper.make_node("ReduceMean", ["float_input"], ["level"], keepdims=1, axes=[0, 1]),
        helper.make_node("Expand", ["level", "square"], ["s0"]),
    ]
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [f"s{i}", "w"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"s{i + 1}"]))
    nodes.append(helper.make_node("ReduceMean", [f"s{layers}"], ["extra"], keepdims=1, axes=[0, 1]))
    nodes.append(helper.make_node("Add", ["linear", "extra"], ["variable"]))
    graph = helper.make_graph(
        nodes,
        f"wine-regression-{layers}",
        [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, 11])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(a, name) for name, a in arrays.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())
