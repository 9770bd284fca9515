"""Batches between the JVM and the Python worker (modelstream.frames)."""

from __future__ import annotations

import pytest

from modelstream.frames import FrameError, OutputWriter, read_outputs, read_records, write_records
from modelstream.serving import Sink


def test_record_batches_round_trip() -> None:
    records = [(b"", 0, 0), (b"\x00abc", 3, 2**40), (bytes(range(256)) * 10, 2**31 - 1, 7)]
    assert read_records(write_records(records)) == records
    assert read_records(b"") == []


@pytest.mark.parametrize("keep", [1, 15, 20])  # inside the header, at its end, inside the value
def test_a_cut_record_batch_is_an_error_not_a_short_read(keep: int) -> None:
    batch = write_records([(b"value", 1, 2)])
    assert len(batch) == 21
    with pytest.raises(FrameError):
        read_records(batch[:keep])


def test_outputs_go_to_the_topic_of_their_sink_with_their_key() -> None:
    writer = OutputWriter(("scores", "model-stats", "dead-letters-ü"))
    outputs = [
        (Sink.SCORES, None, b"s1"),
        (Sink.STATS, b"wine", b""),
        (Sink.DEAD_LETTERS, b"", b"d" * 70_000),
    ]
    assert read_outputs(writer.write(outputs)) == [
        ("scores", None, b"s1"),
        ("model-stats", b"wine", b""),
        ("dead-letters-ü", b"", b"d" * 70_000),
    ]
    assert writer.write([]) == b""
