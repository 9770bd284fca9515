"""ScoreResults serialized in parts (modelstream.results) read back as the plain protobuf would."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelstream.codecs.base import SourceRecord
from modelstream.contract import ScoreBatch
from modelstream.results import ResultEncoder
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ModelDescriptor, OutputTensor, ScoreResult, ServingModel

MODEL = ServingModel(name="m", version="v7", model_type=ModelDescriptor.ONNX)
IDS = [f"r-{i}" for i in range(3)]
TIMESTAMPS = [1_000 + i for i in range(3)]
SOURCES = [SourceRecord(b"", i, 40 + i, Encoding.WINE, "wine", 0, None, "") for i in range(3)]


def encode(encoder: ResultEncoder, data_type: str, batch: ScoreBatch, rows: int = 3) -> list[bytes]:
    return encoder.encode(MODEL, data_type, 99, 12, IDS[:rows], TIMESTAMPS[:rows], SOURCES[:rows], batch)


def expected(i: int, **fields: Any) -> ScoreResult:
    result = ScoreResult(
        model_name="m", model_version="v7", model_type=ModelDescriptor.ONNX, data_type="wine",
        record_id=f"r-{i}", record_ts=1_000 + i, scored_at=99, scoring_time_ns=12,
        source_topic="wine", source_partition=i, source_offset=40 + i,
    )  # fmt: skip
    result.MergeFrom(ScoreResult(**fields))
    return result


def test_classes_with_probabilities() -> None:
    classes = ("3", "4", "ünïcode class " + "x" * 200)  # a key longer than 127 bytes: two-byte lengths
    probabilities = np.array([[0.1, 0.2, 0.7], [1.0, 0.0, 0.0], [1e-300, 0.5, np.pi]])
    batch = ScoreBatch(labels=["c0", "c1", "c2"], probabilities=probabilities, classes=classes)
    encoded = encode(ResultEncoder(), "wine", batch)
    for i, raw in enumerate(encoded):
        want = expected(
            i, label=f"c{i}", probabilities=dict(zip(classes, probabilities[i].tolist(), strict=True))
        )
        assert ScoreResult.FromString(raw) == want


def test_values_and_a_reused_encoder() -> None:
    encoder = ResultEncoder()
    encode(encoder, "other", ScoreBatch(labels=["a", "b", "c"]))
    values = np.array([0.0, -2.5, 6.25])
    encoded = encode(encoder, "wine", ScoreBatch(values=values[:2]), rows=2)
    assert [ScoreResult.FromString(raw) for raw in encoded] == [
        expected(0, value=0.0),
        expected(1, value=-2.5),
    ]
    assert ScoreResult.FromString(encoded[0]).HasField("value")  # a zero value is still there


def test_named_output_tensors_and_records_of_unknown_origin() -> None:
    embedding = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    names = np.array(["a", "b", "c"], dtype=object)
    batch = ScoreBatch(values=np.array([1.0, 2.0, 3.0]), tensors={"embedding": embedding, "name": names})
    sources = [SOURCES[0], SourceRecord(b"", None, None, Encoding.JSON, "loans", 0, None, "")]
    encoded = ResultEncoder().encode(
        MODEL, "wine", 99, 12, IDS[:2], TIMESTAMPS[:2], sources, batch.take(np.arange(2))
    )
    first, second = (ScoreResult.FromString(raw) for raw in encoded)
    assert first == expected(
        0,
        value=1.0,
        outputs={
            "embedding": OutputTensor(shape=[2, 2], values=[0.0, 1.0, 2.0, 3.0]),
            "name": OutputTensor(strings=["a"]),
        },
    )
    assert (second.source_topic, second.HasField("value"), second.value) == ("loans", True, 2.0)
    assert (second.source_partition, second.source_offset) == (0, 0)
    assert second.outputs["embedding"].values == [4.0, 5.0, 6.0, 7.0]
    assert list(second.outputs["name"].strings) == ["b"]
