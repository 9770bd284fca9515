"""Building the messages clients publish, and decoding the ones they read, to plain dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, ScoreResult, StatsSnapshot

MODEL_TYPES = {
    "tensorflow": ModelDescriptor.TENSORFLOW,
    "tensorflow-saved": ModelDescriptor.TENSORFLOWSAVED,
    "pmml": ModelDescriptor.PMML,
    "onnx": ModelDescriptor.ONNX,
}


def model_type_from_path(path: Path) -> str:
    """Guess the --type of a model file from its name."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pmml", ".xml"):
        return "pmml"
    if suffix == ".pb":
        return "tensorflow"
    raise ValueError(f"cannot tell the model type of {path.name}: pass --type")


def model_descriptor(
    path: Path, name: str, data_type: str, model_type: str, description: str = "", version: str = ""
) -> ModelDescriptor:
    """A ModelDescriptor carrying the model file's bytes."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; one of {', '.join(MODEL_TYPES)}")
    return ModelDescriptor(
        name=name,
        description=description,
        dataType=data_type,
        modeltype=MODEL_TYPES[model_type],
        data=path.read_bytes(),
        version=version,
    )


def to_dict(message: Message) -> dict[str, Any]:
    """A protobuf message as a dict keyed by its field names (int64 fields stay ints)."""
    result: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    for field in message.DESCRIPTOR.fields:
        if field.type in (field.TYPE_INT64, field.TYPE_UINT64) and field.name in result:
            value = result[field.name]
            result[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return result


def decode_score(raw: bytes) -> ScoreResult:
    return ScoreResult.FromString(raw)


def decode_dead_letter(raw: bytes) -> DeadLetter:
    return DeadLetter.FromString(raw)


def decode_stats(raw: bytes) -> StatsSnapshot:
    return StatsSnapshot.FromString(raw)
