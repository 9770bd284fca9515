"""ONNX models built for tests and benchmarks: a wine regression as slow as asked (speculative serving),
and tiny logistic regressions, each with weights of its own (many models)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from onnx import TensorProto, helper, numpy_helper

# the wine features' typical magnitudes (their means in the tutorial's CSV): weights scaled by them keep a
# logistic regression's scores spread over (0, 1) rather than stuck at 0 or 1
WINE_SCALES = np.array([8.3, 0.53, 0.27, 2.5, 0.087, 15.9, 46.5, 0.997, 3.31, 0.66, 10.4], dtype=np.float32)


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


def logistic_weights(index: int) -> tuple[npt.NDArray[np.float32], float]:
    """The weights and bias of model ``index``: its own, drawn from a generator seeded with it."""
    rng = np.random.default_rng(index)
    weights = (rng.normal(0.0, 1.0, 11) / (11 * WINE_SCALES)).astype(np.float32)
    return weights, float(np.float32(rng.normal(0.0, 1.0)))


def wine_logistic(index: int) -> bytes:
    """Model ``index``: a logistic regression on the 11 wine features ([n, 11] float input ``float_input``,
    [n, 1] output ``probability`` = sigmoid(x . w + b), read as a value), about 400 bytes."""
    weights, bias = logistic_weights(index)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["float_input", "w"], ["linear"]),
            helper.make_node("Add", ["linear", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["probability"]),
        ],
        f"wine-logistic-{index}",
        [helper.make_tensor_value_info("float_input", TensorProto.FLOAT, [None, 11])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        [
            numpy_helper.from_array(weights.reshape(11, 1), "w"),
            numpy_helper.from_array(np.array([bias], dtype=np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def wine_logistic_scores(index: int, rows: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """What model ``index`` scores the feature rows (11 columns; a 12th, the quality, is ignored)."""
    weights, bias = logistic_weights(index)
    x = np.asarray(rows, dtype=np.float32)[:, :11]
    logit = x @ weights + np.float32(bias)
    scores: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return scores
