"""Batches as they cross between Flink's JVM and the Python worker: one element per batch, not per record.

Records in (written by jvm/ ``MicroBatchOperator``), per record, big-endian:
    partition int32 | offset int64 | length int32 | value
Outputs out (read by jvm/ ``OutputBatchSplitter``), per output, big-endian:
    topic length uint16 | topic (UTF-8) | key length int32 (-1: no key) | key | value length int32 | value
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from modelstream.serving import Incoming, Output

_RECORD_HEAD = struct.Struct(">iqi")
_LENGTH = struct.Struct(">i")
_TOPIC_LENGTH = struct.Struct(">H")
_NO_KEY = _LENGTH.pack(-1)


class FrameError(ValueError):
    """A batch whose framing is cut short or inconsistent."""


def read_records(batch: bytes) -> list[Incoming]:
    """The (value, partition, offset) records of a record batch."""
    records: list[Incoming] = []
    unpack = _RECORD_HEAD.unpack_from
    head = _RECORD_HEAD.size
    position, end = 0, len(batch)
    while position < end:
        if end - position < head:
            raise FrameError(f"record header cut short at byte {position} of {end}")
        partition, offset, length = unpack(batch, position)
        position += head
        if length < 0 or position + length > end:
            raise FrameError(f"record of {length} bytes at byte {position} of {end}")
        records.append((batch[position : position + length], partition, offset))
        position += length
    return records


def write_records(records: Iterable[tuple[bytes, int, int]]) -> bytes:
    """A record batch as the JVM writes it (for tests and tools)."""
    return b"".join(
        _RECORD_HEAD.pack(partition, offset, len(value)) + value for value, partition, offset in records
    )


class OutputWriter:
    """Writes outputs (sink, key, value) as one output batch, each sink to its topic."""

    def __init__(self, topics: Sequence[str]) -> None:
        self._topic_heads = []
        for topic in topics:
            encoded = topic.encode()
            self._topic_heads.append(_TOPIC_LENGTH.pack(len(encoded)) + encoded)

    def write(self, outputs: Iterable[Output]) -> bytes:
        parts: list[bytes] = []
        append = parts.append
        pack_length = _LENGTH.pack
        heads = self._topic_heads
        for sink, key, value in outputs:
            append(heads[sink])
            if key is None:
                append(_NO_KEY)
            else:
                append(pack_length(len(key)))
                append(key)
            append(pack_length(len(value)))
            append(value)
        return b"".join(parts)


def read_outputs(batch: bytes) -> list[tuple[str, bytes | None, bytes]]:
    """The (topic, key, value) outputs of an output batch, as the JVM reads them (for tests and tools)."""
    outputs = []
    position = 0
    while position < len(batch):
        (topic_length,) = _TOPIC_LENGTH.unpack_from(batch, position)
        position += _TOPIC_LENGTH.size
        topic = batch[position : position + topic_length].decode()
        position += topic_length
        (key_length,) = _LENGTH.unpack_from(batch, position)
        position += _LENGTH.size
        key = None
        if key_length >= 0:
            key = batch[position : position + key_length]
            position += key_length
        (value_length,) = _LENGTH.unpack_from(batch, position)
        position += _LENGTH.size
        outputs.append((topic, key, batch[position : position + value_length]))
        position += value_length
    if position != len(batch):
        raise FrameError(f"output batch of {len(batch)} bytes ends at byte {position}")
    return outputs
