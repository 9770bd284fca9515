"""Each format's reference runtime, called directly with the tutorial's known names: what the job's
scores must equal (JPMML-Evaluator for PMML, TensorFlow for both TF formats, onnxruntime for ONNX)."""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelstream.contract import ScoreBatch
from protobufs.modelstream_pb2 import ModelDescriptor

# the PMML files' names for the eleven WineRecord features, in CSV column order
PMML_FIELDS = (
    "fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides", "free sulfur dioxide",
    "total sulfur dioxide", "density", "pH", "sulphates", "alcohol",
)  # fmt: skip


def _class_scores(scores: npt.NDArray[np.float64], classes: tuple[str, ...]) -> ScoreBatch:
    labels = [classes[i] for i in scores.argmax(axis=1).tolist()]
    return ScoreBatch(labels=labels, probabilities=scores, classes=classes)


def onnx(payload: bytes, rows: npt.NDArray[np.float64]) -> ScoreBatch:
    import onnxruntime as ort

    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"X": rows.astype(np.float32)})
    classes = tuple(session.get_modelmeta().custom_metadata_map["classes"].split(","))
    return ScoreBatch(
        labels=[str(x) for x in label.tolist()], probabilities=proba.astype(np.float64), classes=classes
    )


def tf_graph(payload: bytes, rows: npt.NDArray[np.float64]) -> ScoreBatch:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(payload)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        out = session.run("dense_3/Sigmoid:0", {"dense_1_input:0": rows.astype(np.float32)})
    return _class_scores(out.astype(np.float64), tuple(str(i) for i in range(out.shape[1])))


def tf_saved(directory: Path, rows: npt.NDArray[np.float64]) -> ScoreBatch:
    import tensorflow as tf

    predict = tf.saved_model.load(str(directory)).signatures["predict"]
    out = predict(inputs=tf.constant(rows.astype(np.float32)))["outputs"].numpy()
    return _class_scores(out.astype(np.float64), tuple(str(i) for i in range(out.shape[1])))


def pmml(payload: bytes, rows: npt.NDArray[np.float64]) -> ScoreBatch:
    from jpmml_evaluator import make_evaluator

    evaluator = make_evaluator(payload, backend="jpype").verify()
    target = evaluator.getTargetFields()[0]
    inputs = [f.getName() for f in evaluator.getInputFields()]
    frame = pd.DataFrame(rows, columns=list(PMML_FIELDS))[inputs]
    result = evaluator.evaluateAll(frame)
    if str(target.getOpType()) != "categorical":
        return ScoreBatch(values=result[target.getName()].to_numpy(dtype=np.float64))
    proba_columns = [
        f.getName() for f in evaluator.getOutputFields() if f.getName().startswith("probability(")
    ]
    classes = tuple(c[len("probability(") : -1] for c in proba_columns)
    return ScoreBatch(
        labels=[str(x) for x in result[target.getName()].tolist()],
        probabilities=result[proba_columns].to_numpy(dtype=np.float64),
        classes=classes,
    )


def score(descriptor: ModelDescriptor, rows: npt.NDArray[np.float64]) -> ScoreBatch:
    """The reference scores of a descriptor's model on ``rows``."""
    if descriptor.modeltype == ModelDescriptor.ONNX:
        return onnx(descriptor.data, rows)
    if descriptor.modeltype == ModelDescriptor.TENSORFLOW:
        return tf_graph(descriptor.data, rows)
    if descriptor.modeltype == ModelDescriptor.PMML:
        return pmml(descriptor.data, rows)
    if descriptor.location:
        return tf_saved(Path(descriptor.location), rows)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(descriptor.data)) as archive:
            archive.extractall(tmp, filter="data")
        return tf_saved(Path(tmp), rows)
