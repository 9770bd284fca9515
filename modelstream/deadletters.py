"""Dead letters: anything the job cannot use, with a reason code and a human message."""

from __future__ import annotations

import time
from dataclasses import dataclass

from protobufs.modelstream_pb2 import DeadLetter

Reason = DeadLetter.Reason


@dataclass(frozen=True)
class Source:
    """Where an input came from, as far as it is known."""

    topic: str
    partition: int | None = None
    offset: int | None = None


def dead_letter(
    reason: DeadLetter.Reason,
    message: str,
    raw: bytes,
    source: Source,
    data_type: str = "",
    model_name: str = "",
    model_version: str = "",
) -> bytes:
    """The serialized DeadLetter for one rejected input."""
    letter = DeadLetter(
        reason=reason,
        message=message,
        source_topic=source.topic,
        raw=raw,
        data_type=data_type,
        failed_at=time.time_ns() // 1_000_000,
        model_name=model_name,
        model_version=model_version,
    )
    if source.partition is not None:
        letter.partition = source.partition
    if source.offset is not None:
        letter.offset = source.offset
    return letter.SerializeToString()
