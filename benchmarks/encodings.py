"""The wine rows as records of each encoding the job reads, and the ONNX model (and schema) of each.

Shared by benchmarks.throughput (through Kafka and the job) and benchmarks.codecs (in process). Each path
has a data type of its own, so it has its own model:

  * ``wine``: WineRecords (the tutorial's wire format, no headers); the model's [n, 11] input takes the
    record's 11 features in their declared order;
  * ``json``: JSON objects of the 11 features plus ``dataType``, ``record_id``, ``ts`` (header
    ``content-type: application/json``); the model is published with ``input_fields`` = the features;
  * ``protobuf``: a user schema (benchmarks/wine_row.proto: the 11 doubles, ``data_type``, ``record_id``,
    ``ts``), published as a RecordSchema; records carry ``content-type: application/x-protobuf;
    messageType=modelstream_bench.WineRow`` and a ``data-type`` header; model with ``input_fields``;
  * ``oip`` / ``oip16``: Open Inference Protocol ``ModelInferRequest``s of 1 / 16 rows, one FP32 tensor
    [rows, 11] named as the ONNX model's input, ``model_name`` = the data type.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from benchmarks.wine_models import CSV, WINE_DIR
from client.encode import EncodedRecord, Row, compile_proto, encode_rows, message_class, read_wine_rows
from client.encode import Encoding as ClientEncoding
from client.encode import record_schema as build_record_schema
from client.messages import model_descriptor
from modelstream.codecs.base import SourceRecord
from modelstream.records import WINE, wine_record_from_row
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ModelDescriptor, RecordSchema

ONNX_MODEL = WINE_DIR / "wine_quality_logreg.onnx"
PROTO = Path(__file__).with_name("wine_row.proto")
MESSAGE = "modelstream_bench.WineRow"


@dataclass(frozen=True)
class RecordPath:
    """One way the same wine rows reach the job."""

    key: str
    label: str
    data_type: str
    kind: str  # wine | json | protobuf | oip
    oip_rows: int = 1

    @property
    def encoding(self) -> Encoding:
        return {"wine": Encoding.WINE, "json": Encoding.JSON, "protobuf": Encoding.PROTOBUF}.get(
            self.kind, Encoding.OIP
        )

    @property
    def meta(self) -> str:
        """What the JVM frames as the record's meta text: the message name of a user-schema record."""
        return MESSAGE if self.kind == "protobuf" else ""


PATHS = {
    p.key: p
    for p in (
        RecordPath("wine", "WineRecord (baseline)", "bench-wine", "wine"),
        RecordPath("json", "JSON object", "bench-json", "json"),
        RecordPath("protobuf", "user protobuf", "bench-proto", "protobuf"),
        RecordPath("oip", "OIP request, 1 row", "bench-oip", "oip", 1),
        RecordPath("oip16", "OIP request, 16 rows", "bench-oip16", "oip", 16),
    )
}


def feature_rows(csv: Path = CSV) -> list[list[float]]:
    """The wine CSV's rows, 11 features each (the quality dropped)."""
    return [row[: len(WINE.features)] for row in read_wine_rows(csv)]


@functools.cache
def onnx_input_name() -> str:
    name: str = ort.InferenceSession(str(ONNX_MODEL)).get_inputs()[0].name
    return name


@functools.cache
def descriptor_set() -> bytes:
    """benchmarks/wine_row.proto compiled (protoc in a subprocess), once."""
    return compile_proto(PROTO)


def model(path: RecordPath, version: str) -> ModelDescriptor:
    """The ONNX wine model for a path's data type; JSON and protobuf records feed its one [n, 11] input
    through ``input_fields``."""
    fields = WINE.features if path.kind in ("json", "protobuf") else ()
    return model_descriptor(
        ONNX_MODEL, f"onnx-{path.key}", path.data_type, "onnx", version=version, input_fields=fields
    )


def schema(path: RecordPath) -> RecordSchema | None:
    """The RecordSchema a path's data type needs published first, or None."""
    if path.kind != "protobuf":
        return None
    return build_record_schema(path.data_type, MESSAGE, descriptor_set())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def encode(path: RecordPath, rows: Sequence[Sequence[float]], count: int, prefix: str) -> list[EncodedRecord]:
    """``count`` rows (cycling through ``rows``) as the path's records, ids ``PREFIX-N`` (an OIP request of
    several rows has the id of its first row; the job names its rows ``PREFIX-N[i]``)."""
    if path.kind == "wine":
        now = _now_ms()
        return [
            EncodedRecord(
                wine_record_from_row(list(rows[i % len(rows)]), path.data_type, now, f"{prefix}-{i}")
                .SerializeToString(),
                [],
                1,
            )
            for i in range(count)
        ]  # fmt: skip
    objects: list[Row]
    if path.kind == "oip":
        objects = [{onnx_input_name(): list(row)} for row in rows]
        encoding = ClientEncoding("oip", path.data_type, prefix, oip_rows=path.oip_rows)
    else:
        objects = [dict(zip(WINE.features, row, strict=True)) for row in rows]
        cls = message_class(descriptor_set(), MESSAGE) if path.kind == "protobuf" else None
        encoding = ClientEncoding(
            path.kind, path.data_type, prefix, message=cls, data_type_header=path.kind == "protobuf"
        )
    return list(encode_rows(objects, encoding, count, _now_ms))


def source_records(
    path: RecordPath, records: Sequence[EncodedRecord], topic: str = "wine"
) -> list[SourceRecord]:
    """Encoded records as the JVM frames them for the Python worker (partition 0, offsets 0..)."""
    return [
        SourceRecord(r.value, 0, i, path.encoding, topic, 0, None, path.meta) for i, r in enumerate(records)
    ]
