"""Batches as they cross between Flink's JVM and the Python worker: one element per batch, not per record.

Records in (framed by jvm/ in the data-topic deserializer, batched by ``MicroBatchOperator``), per record,
big-endian:
    encoding uint8 | topic index uint16 | partition int32 | offset int64 | timestamp int64
    | key length int32 (-1: no key) | key | meta length uint16 | meta (UTF-8) | value length int32 | value
Outputs out (read by jvm/ ``OutputBatchSplitter``), per output, big-endian:
    topic length uint16 | topic (UTF-8) | key length int32 (-1: no key) | key | value length int32 | value
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence

from modelstream.codecs.base import SourceRecord
from modelstream.interface import Output
from modelstream.topics import Encoding

_RECORD_HEAD = struct.Struct(">BHiqqi")  # up to the key length
_META_LENGTH = struct.Struct(">H")
_META_AND_VALUE_LENGTH = struct.Struct(">Hi")  # as they follow each other when there is no meta
_UNKEYED_HEAD = struct.Struct(">BHiqqiHi")  # the head, then (with no key and no meta) those two
_LENGTH = struct.Struct(">i")
_TOPIC_LENGTH = struct.Struct(">H")
_NO_KEY = _LENGTH.pack(-1)
FEEDBACK = int(Encoding.FEEDBACK)
# a SourceRecord from a tuple of its fields: the named tuple's own constructor is a Python function, this is C
_new_record = functools.partial(tuple.__new__, SourceRecord)


class FrameError(ValueError):
    """A batch whose framing is cut short or inconsistent."""


def read_records(
    batch: bytes, topics: Sequence[str], feedback: list[SourceRecord] | None = None
) -> list[SourceRecord]:
    """The records of a record batch; ``topics`` are the data topics in the order the JVM indexes them.
    With a ``feedback`` list, feedback messages go there rather than among the records."""
    records: list[SourceRecord] = []
    into = records if feedback is None else feedback
    # a record without a key has its meta and value lengths right after the head: one unpack for all
    unpack_unkeyed = _UNKEYED_HEAD.unpack_from
    unpack_tail = _META_AND_VALUE_LENGTH.unpack_from
    unpack_length = _LENGTH.unpack_from
    head = _RECORD_HEAD.size
    new = _new_record
    position, end = 0, len(batch)
    try:
        while position < end:
            encoding, topic, partition, offset, timestamp, key_length, meta_length, length = unpack_unkeyed(
                batch, position
            )
            position += head
            key = None
            if key_length >= 0:
                key = batch[position : position + key_length]
                position += key_length
                meta_length, length = unpack_tail(batch, position)
            position += 2
            meta = ""
            if meta_length:
                meta = batch[position : position + meta_length].decode()
                position += meta_length
                (length,) = unpack_length(batch, position)
            position += 4
            if length < 0 or position + length > end:
                raise FrameError(f"record of {length} bytes at byte {position} of {end}")
            value = batch[position : position + length]
            position += length
            (into if encoding == FEEDBACK else records).append(
                new((value, partition, offset, encoding, topics[topic], timestamp, key, meta))
            )
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise FrameError(f"record batch cut short or inconsistent at byte {position} of {end}: {e}") from e
    return records


def write_records(records: Iterable[SourceRecord], topics: Sequence[str]) -> bytes:
    """A record batch as the JVM writes it (for tests and tools)."""
    parts = []
    for r in records:
        key_length = -1 if r.key is None else len(r.key)
        meta = r.meta.encode()
        parts.append(
            _RECORD_HEAD.pack(
                r.encoding, topics.index(r.topic), r.partition or 0, r.offset or 0, r.timestamp, key_length
            )
            + (r.key or b"")
            + _META_LENGTH.pack(len(meta))
            + meta
            + _LENGTH.pack(len(r.value))
            + r.value
        )
    return b"".join(parts)


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
