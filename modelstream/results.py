"""ScoreResult messages for a batch of scored records, serialized with as little per-record work as possible.

A protobuf message may be serialized in parts and the parts concatenated: parsing merges them. The fields
every result of a batch shares (model, data type, times) are serialized once per batch; per record only
its own fields are, and its class probabilities come from one array operation over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from modelstream.codecs.base import SourceRecord
from modelstream.contract import ScoreBatch
from protobufs.modelstream_pb2 import ScoreResult, ServingModel

_PROBABILITIES = ScoreResult.DESCRIPTOR.fields_by_name["probabilities"].number
_LENGTH_DELIMITED = 2
_MAP_KEY = b"\x0a"  # field 1, length-delimited
_MAP_DOUBLE_VALUE = b"\x11"  # field 2, 64-bit


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _ProbabilityLayout:
    """The wire form of ``probabilities`` for a fixed list of classes: every entry's bytes are fixed but
    for its 8-byte double, so a batch of rows is one array with the doubles written in."""

    def __init__(self, classes: tuple[str, ...]) -> None:
        template = bytearray()
        double_bytes: list[int] = []  # where in a row each class's double goes, byte by byte
        for name in classes:
            key = name.encode()
            entry_head = _MAP_KEY + _varint(len(key)) + key + _MAP_DOUBLE_VALUE
            template += _varint(_PROBABILITIES << 3 | _LENGTH_DELIMITED) + _varint(len(entry_head) + 8)
            template += entry_head
            double_bytes.extend(range(len(template), len(template) + 8))
            template += bytes(8)
        self.template = np.frombuffer(bytes(template), dtype=np.uint8)
        self.double_bytes = np.asarray(double_bytes)

    def rows(self, probabilities: npt.NDArray[np.float64]) -> tuple[bytes, int]:
        """All rows' bytes back to back, and the length of one row."""
        n, width = len(probabilities), len(self.template)
        buffer = np.empty((n, width), dtype=np.uint8)
        buffer[:] = self.template
        buffer[:, self.double_bytes] = np.ascontiguousarray(probabilities, dtype="<f8").view(np.uint8)
        return buffer.tobytes(), width


class ResultEncoder:
    """Serialized ScoreResults, one per scored record of a batch."""

    def __init__(self) -> None:
        self._shared = ScoreResult()
        self._own = ScoreResult()
        self._layouts: dict[tuple[str, ...], _ProbabilityLayout] = {}
        self._topics: dict[str, bytes] = {}

    def _topic(self, topic: str) -> bytes:
        encoded = self._topics.get(topic)
        if encoded is None:
            encoded = self._topics[topic] = ScoreResult(source_topic=topic).SerializeToString()
        return encoded

    def encode(
        self,
        model: ServingModel,
        data_type: str,
        scored_at: int,
        scoring_time_ns: int,
        ids: Sequence[str],
        timestamps: Sequence[int],
        sources: Sequence[SourceRecord],
        batch: ScoreBatch,
        role: int = ScoreResult.SERVED,
        policy_version: int = 0,
        members: Sequence[str] = (),
        speculation: int = ScoreResult.NOT_SPECULATIVE,
    ) -> list[bytes]:
        """One ScoreResult per row: row i has id ``ids[i]``, ts ``timestamps[i]``, came from
        ``sources[i]`` and scored ``batch``'s row i; ``role``, ``policy_version``, ``members`` (an
        ensemble's) and ``speculation`` say how it was routed."""
        shared = self._shared
        shared.Clear()
        shared.model_name = model.name
        shared.model_version = model.version
        shared.model_type = model.model_type
        shared.data_type = data_type
        shared.scored_at = scored_at
        shared.scoring_time_ns = scoring_time_ns
        shared.role = role  # type: ignore[assignment]
        shared.policy_version = policy_version
        shared.members.extend(members)
        shared.speculation = speculation  # type: ignore[assignment]
        head = shared.SerializeToString()

        probabilities, width = b"", 0
        if batch.probabilities is not None:
            layout = self._layouts.get(batch.classes)
            if layout is None:
                layout = self._layouts[batch.classes] = _ProbabilityLayout(batch.classes)
            probabilities, width = layout.rows(batch.probabilities)

        own = self._own
        labels = batch.labels
        values = None if batch.values is None else batch.values.tolist()
        prefixes: dict[str, bytes] = {}  # the shared part and the source topic, per topic
        encoded = []
        for i, (record_id, record_ts, source) in enumerate(zip(ids, timestamps, sources, strict=True)):
            prefix = prefixes.get(source.topic)
            if prefix is None:
                prefix = prefixes[source.topic] = head + self._topic(source.topic)
            own.Clear()
            own.record_id = record_id
            own.record_ts = record_ts
            if source.partition is not None:
                own.source_partition = source.partition
                own.source_offset = source.offset or 0
            if labels is not None:
                own.label = labels[i]
            if values is not None:
                own.value = values[i]
            encoded.append(prefix + own.SerializeToString() + probabilities[i * width : (i + 1) * width])
        if batch.tensors:
            encoded = [part + tensors for part, tensors in zip(encoded, _tensor_parts(batch), strict=True)]
        return encoded


def _tensor_parts(batch: ScoreBatch) -> list[bytes]:
    """Each row's named output tensors as the wire form of ScoreResult.outputs."""
    message = ScoreResult()
    parts = []
    for i in range(len(batch)):
        message.Clear()
        for name, tensor in batch.tensors.items():
            row = np.asarray(tensor[i])
            out = message.outputs[name]
            out.shape.extend(row.shape)
            if row.dtype.kind in "OUS":
                out.strings.extend(str(x) for x in row.ravel().tolist())
            else:
                out.values.extend(row.astype(np.float64).ravel().tolist())
        parts.append(message.SerializeToString())
    return parts
