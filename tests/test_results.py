"""ScoreResults serialized in parts (modelstream.results) read back as the plain protobuf would."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelstream.contract import ScoreBatch
from modelstream.results import ResultEncoder
from protobufs.modelstream_pb2 import ModelDescriptor, ScoreResult, ServingModel, WineRecord

MODEL = ServingModel(name="m", version="v7", model_type=ModelDescriptor.ONNX)
RECORDS = [WineRecord(record_id=f"r-{i}", ts=1_000 + i) for i in range(3)]


def expected(i: int, **fields: Any) -> ScoreResult:
    result = ScoreResult(
        model_name="m", model_version="v7", model_type=ModelDescriptor.ONNX, data_type="wine",
        record_id=f"r-{i}", record_ts=1_000 + i, scored_at=99, scoring_time_ns=12,
    )  # fmt: skip
    result.MergeFrom(ScoreResult(**fields))
    return result


def test_classes_with_probabilities() -> None:
    classes = ("3", "4", "ünïcode class " + "x" * 200)  # a key longer than 127 bytes: two-byte lengths
    probabilities = np.array([[0.1, 0.2, 0.7], [1.0, 0.0, 0.0], [1e-300, 0.5, np.pi]])
    batch = ScoreBatch(labels=["c0", "c1", "c2"], probabilities=probabilities, classes=classes)
    encoded = ResultEncoder().encode(MODEL, "wine", 99, 12, RECORDS, batch)
    for i, raw in enumerate(encoded):
        want = expected(
            i, label=f"c{i}", probabilities=dict(zip(classes, probabilities[i].tolist(), strict=True))
        )
        assert ScoreResult.FromString(raw) == want


def test_values_and_a_reused_encoder() -> None:
    encoder = ResultEncoder()
    encoder.encode(MODEL, "other", 1, 1, RECORDS, ScoreBatch(labels=["a", "b", "c"]))
    values = np.array([0.0, -2.5, 6.25])
    encoded = encoder.encode(MODEL, "wine", 99, 12, RECORDS[:2], ScoreBatch(values=values[:2]))
    assert [ScoreResult.FromString(raw) for raw in encoded] == [
        expected(0, value=0.0),
        expected(1, value=-2.5),
    ]
    assert ScoreResult.FromString(encoded[0]).HasField("value")  # a zero value is still there
