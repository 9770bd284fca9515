"""Batches between the JVM and the Python worker (modelstream.frames)."""

from __future__ import annotations

import pytest

from modelstream.codecs.base import SourceRecord
from modelstream.frames import FrameError, OutputWriter, read_outputs, read_records, write_records
from modelstream.interface import Sink
from modelstream.topics import Encoding

TOPICS = ("wine", "loans-ü", "digits")


def test_record_batches_round_trip() -> None:
    records = [
        SourceRecord(b"", 0, 0, Encoding.WINE, "wine", 0, None, ""),
        SourceRecord(b"\x00abc", 3, 2**40, Encoding.PROTOBUF, "loans-ü", -1, b"", "loans.LoanApplication"),
        SourceRecord(
            bytes(range(256)) * 10, 2**31 - 1, 7, Encoding.OIP, "digits", 2**62, b"k\x00y", "ü" * 300
        ),
        SourceRecord(b"{}", 1, 2, Encoding.UNSUPPORTED, "wine", 5, None, "text/csv"),
        SourceRecord(b"v", 2, 3, Encoding.JSON, "wine", 9, b"k", ""),  # a key shorter than the lengths
        SourceRecord(b"w" * 70_000, 0, 4, Encoding.WINE, "wine", 1, None, ""),
    ]
    assert read_records(write_records(records, TOPICS), TOPICS) == records
    assert read_records(b"", TOPICS) == []


def test_feedback_in_a_batch_is_kept_apart_from_its_records_when_asked() -> None:
    wine = SourceRecord(b"w", 0, 1, Encoding.WINE, "wine", 0, None, "")
    label = SourceRecord(b'{"dataType": "wine"}', 0, 9, Encoding.FEEDBACK, "digits", 0, b"wine", "")
    batch = write_records([wine, label, wine], TOPICS)
    feedback: list[SourceRecord] = []
    assert read_records(batch, TOPICS, feedback) == [wine, wine] and feedback == [label]
    assert read_records(batch, TOPICS) == [wine, label, wine]


RECORD = SourceRecord(b"value", 1, 2, Encoding.JSON, "digits", 3, b"key", "m\u00fct")  # meta: 4 bytes


# in the header, its key length, at its end, in the key, the meta length, the meta (inside its "ü"),
# the value length, the value
@pytest.mark.parametrize("keep", [1, 25, 27, 29, 31, 34, 38, 44])
def test_a_cut_record_batch_is_an_error_not_a_short_read(keep: int) -> None:
    batch = write_records([RECORD], TOPICS)
    assert len(batch) == 27 + 3 + 2 + 4 + 4 + 5
    assert read_records(batch, TOPICS) == [RECORD]
    with pytest.raises(FrameError):
        read_records(batch[:keep], TOPICS)


UNKEYED = SourceRecord(b"value", 1, 2, Encoding.WINE, "wine", 3, None, "")


# in the header, at its end, in the meta length, in the value length, in the value
@pytest.mark.parametrize("keep", [1, 27, 28, 31, 36])
def test_a_cut_record_without_key_or_meta_is_an_error_too(keep: int) -> None:
    batch = write_records([UNKEYED, UNKEYED], TOPICS)
    assert len(batch) == 2 * (27 + 2 + 4 + 5)
    assert read_records(batch, TOPICS) == [UNKEYED, UNKEYED]
    with pytest.raises(FrameError):
        read_records(batch[: 38 + keep], TOPICS)


def test_a_topic_index_beyond_the_data_topics_is_an_error() -> None:
    with pytest.raises(FrameError):
        read_records(write_records([RECORD], TOPICS), TOPICS[:2])


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
