"""Building the messages clients publish, and decoding the ones they read, to plain dicts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from modelstream.archive import pack_directory
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, ScoreResult, StatsSnapshot

MODEL_TYPES = {
    "tensorflow": ModelDescriptor.TENSORFLOW,
    "tensorflow-saved": ModelDescriptor.TENSORFLOWSAVED,
    "pmml": ModelDescriptor.PMML,
    "onnx": ModelDescriptor.ONNX,
}


def model_type_from_path(path: Path) -> str:
    """Guess the --type of a model file from its name (a directory is a SavedModel)."""
    if path.is_dir():
        return "tensorflow-saved"
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pmml", ".xml"):
        return "pmml"
    if suffix == ".pb":
        return "tensorflow"
    raise ValueError(f"cannot tell the model type of {path.name}: pass --type")


def model_descriptor(
    path: Path | None,
    name: str,
    data_type: str,
    model_type: str,
    description: str = "",
    version: str = "",
    location: str = "",
    input_name: str = "",
    output_name: str = "",
    signature: str = "",
    input_fields: Sequence[str] = (),
) -> ModelDescriptor:
    """A ModelDescriptor carrying the model file's bytes (a SavedModel directory packed as tar.gz), or
    pointing to ``location`` (a path the job's machines can read, under its allowed model roots).
    ``input_fields``: the record fields, in order, that make up the model's one [n, k] input."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; one of {', '.join(MODEL_TYPES)}")
    descriptor = ModelDescriptor(
        name=name,
        description=description,
        dataType=data_type,
        modeltype=MODEL_TYPES[model_type],
        version=version,
        input_name=input_name,
        output_name=output_name,
        signature=signature,
        input_fields=list(input_fields),
    )
    if location:
        descriptor.location = location
    elif path is None:
        raise ValueError("give a model file or a location")
    elif path.is_dir():
        descriptor.data = pack_directory(path)
    else:
        descriptor.data = path.read_bytes()
    return descriptor


def to_dict(message: Message) -> dict[str, Any]:
    """A protobuf message as a dict keyed by its field names; 64-bit integers stay ints (JSON mapping
    would make them strings), at every depth."""
    result: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    _int64_to_int(message.DESCRIPTOR, result)
    return result


_INT64 = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64)


def _int64_to_int(descriptor: Descriptor, data: dict[str, Any]) -> None:
    for field in descriptor.fields:
        if field.name not in data:
            continue
        value = data[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.type in _INT64:
                data[field.name] = {k: int(v) for k, v in value.items()}
            elif value_field.message_type is not None:
                for item in value.values():
                    _int64_to_int(value_field.message_type, item)
        elif field.message_type is not None:
            for item in value if isinstance(value, list) else [value]:
                _int64_to_int(field.message_type, item)
        elif field.type in _INT64:
            data[field.name] = [int(v) for v in value] if isinstance(value, list) else int(value)


def decode_score(raw: bytes) -> ScoreResult:
    return ScoreResult.FromString(raw)


def decode_dead_letter(raw: bytes) -> DeadLetter:
    return DeadLetter.FromString(raw)


def decode_stats(raw: bytes) -> StatsSnapshot:
    return StatsSnapshot.FromString(raw)
