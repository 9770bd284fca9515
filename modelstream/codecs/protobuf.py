"""Protobuf records of a user's own schema: a FileDescriptorSet and a message name, published once per data
type (``modelstream publish-schema``); records decode with a message class built from them. Records may
carry Confluent Schema Registry framing (magic byte 0, a 4-byte schema id, the message indexes) or none.

Scalar fields (numbers, bools, strings, enums as numbers) and repeated numbers (a tensor per record) bind
to model inputs; a field with presence (proto3 ``optional``) that is unset is a missing field.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorSet
from google.protobuf.message import DecodeError, Message

from modelstream.codecs.base import (
    MISSING,
    Column,
    Decoded,
    Failure,
    SchemaLookup,
    SourceRecord,
    record_id,
    undecodable,
)
from modelstream.deadletters import Reason
from modelstream.topics import Encoding

CONFLUENT_MAGIC = 0


class SchemaError(ValueError):
    """A FileDescriptorSet and message name that do not build a message class."""


def _message_names(prefix: str, messages: Sequence[DescriptorProto]) -> list[str]:
    names = []
    for m in messages:
        if m.options.map_entry:
            continue
        full = f"{prefix}.{m.name}" if prefix else m.name
        names += [full, *_message_names(full, m.nested_type)]
    return names


def message_names(file_descriptor_set: bytes) -> list[str]:
    """The full names of every message the set defines (nested ones too), in file order."""
    fds = FileDescriptorSet.FromString(file_descriptor_set)
    return [n for f in fds.file for n in _message_names(f.package, f.message_type)]


def message_class(file_descriptor_set: bytes, message_name: str) -> type[Message]:
    """The message class of ``message_name`` built from a serialized FileDescriptorSet; an unknown
    name is a ValueError naming the messages the set has."""
    try:
        fds = FileDescriptorSet.FromString(file_descriptor_set)
    except DecodeError as e:
        raise SchemaError(f"not a FileDescriptorSet: {e}") from None
    pool = descriptor_pool.DescriptorPool()
    pending = list(fds.file)
    added: set[str] = set()
    while pending:  # files in dependency order, whatever order the set lists them in
        ready = [f for f in pending if all(d in added for d in f.dependency)]
        if not ready:
            missing = sorted({d for f in pending for d in f.dependency if d not in added})
            raise SchemaError(
                f"the descriptor set lacks imported files {', '.join(missing)} "
                "(build it with protoc --include_imports)"
            )
        for f in ready:
            try:
                pool.AddSerializedFile(f.SerializeToString())  # type: ignore[no-untyped-call]
            except (TypeError, ValueError) as e:
                raise SchemaError(f"the descriptor set's {f.name} does not build: {e}") from None
            added.add(f.name)
            pending.remove(f)
    try:
        descriptor: Descriptor = pool.FindMessageTypeByName(message_name)  # type: ignore[no-untyped-call]
    except KeyError:
        names = message_names(file_descriptor_set)
        own = [n for n in names if not n.startswith("google.protobuf.")]  # not the well-known types
        have = ", ".join(own or names) or "none"
        raise SchemaError(f"no message {message_name!r} in the schema; its messages: {have}") from None
    return message_factory.GetMessageClass(descriptor)


class UserSchemas:
    """The message classes of one data type's published schemas, by message name."""

    def __init__(self, schemas: Mapping[str, bytes] | None = None) -> None:
        self._classes: dict[str, type[Message]] = {}
        for name, file_descriptor_set in (schemas or {}).items():
            self._classes[name] = message_class(file_descriptor_set, name)

    def add(self, name: str, file_descriptor_set: bytes) -> None:
        self._classes[name] = message_class(file_descriptor_set, name)

    def message_class(self, name: str) -> type | None:
        if not name and len(self._classes) == 1:
            return next(iter(self._classes.values()))
        return self._classes.get(name)

    def names(self) -> list[str]:
        return sorted(self._classes)


def strip_confluent_framing(value: bytes) -> bytes:
    """The message bytes of a record: after the Confluent framing if the record has it."""
    if not value or value[0] != CONFLUENT_MAGIC:
        return value
    if len(value) < 6:
        raise DecodeError("Confluent framing cut short")
    position = 5
    count, position = _zigzag_varint(value, position)
    for _ in range(count):
        _, position = _zigzag_varint(value, position)
    return value[position:]


def _zigzag_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise DecodeError("Confluent message indexes cut short")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7


_NOT_BOUND = {FieldDescriptor.CPPTYPE_MESSAGE}  # nested messages are not model inputs


class MessageFields:
    """Fields of a batch of messages of one class, read by name."""

    def __init__(self, messages: list[Message], descriptor: Descriptor) -> None:
        self._messages = messages
        self._fields = {f.name: f for f in descriptor.fields if f.cpp_type not in _NOT_BOUND}

    def names(self) -> Iterable[str]:
        return self._fields

    def column(self, name: str) -> Column | None:
        field = self._fields.get(name)
        if field is None:
            return None
        messages = self._messages
        if field.label == FieldDescriptor.LABEL_REPEATED:
            return [list(getattr(m, name)) for m in messages]
        if field.has_presence:
            return [getattr(m, name) if m.HasField(name) else MISSING for m in messages]
        return [getattr(m, name) for m in messages]

    def values(self, names: Sequence[str]) -> list[tuple[object, ...]] | None:
        fields = [self._fields.get(name) for name in names]
        if any(f is None or f.label == FieldDescriptor.LABEL_REPEATED or f.has_presence for f in fields):
            return None  # unknown, arrays, or fields that may be unset: read column by column
        read = operator.attrgetter(*names)
        return [read(message) for message in self._messages]

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        return None


def _own_string(message: Message, field: str | None) -> str:
    return str(getattr(message, field)) if field else ""


class ProtobufCodec:
    encoding = Encoding.PROTOBUF

    def decode(self, records: Sequence[SourceRecord], schemas: SchemaLookup) -> Decoded:
        name = records[0].meta if records else ""  # the caller groups records by message name
        cls = schemas.message_class(name)
        if cls is None:
            known = ", ".join(schemas.names()) or "none published"
            wanted = repr(name) if name else "a message type (the record names none)"
            message = f"no schema for {wanted} in this data type (schemas: {known})"
            failures = [Failure(r, Reason.RECORD_UNDECODABLE, message, waiting=True) for r in records]
            return Decoded([], [], [], MessageFields([], _EMPTY), failures)
        messages: list[Any] = []
        sources: list[SourceRecord] = []
        errors: list[tuple[int, str]] = []
        parse = cls.FromString  # type: ignore[attr-defined]
        for i, record in enumerate(records):
            try:
                messages.append(parse(strip_confluent_framing(record.value)))
            except DecodeError as e:
                errors.append((i, str(e)))
                continue
            sources.append(record)
        descriptor: Descriptor = cls.DESCRIPTOR  # type: ignore[attr-defined]
        id_field = "record_id" if "record_id" in descriptor.fields_by_name else None
        ts_field = "ts" if "ts" in descriptor.fields_by_name else None
        ids = [record_id(_own_string(m, id_field), s) for m, s in zip(messages, sources, strict=True)]
        timestamps = [
            (int(getattr(m, ts_field)) if ts_field else 0) or s.timestamp
            for m, s in zip(messages, sources, strict=True)
        ]
        failures = undecodable(records, errors, f"a {descriptor.full_name}")
        return Decoded(sources, ids, timestamps, MessageFields(messages, descriptor), failures)


_EMPTY = descriptor_pb2.FileDescriptorSet.DESCRIPTOR
