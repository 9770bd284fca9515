"""What every record codec produces: a batch of rows with named fields, and the records it could not read.

A codec decodes the records of one encoding in one call. One record is usually one row; an Open Inference
Protocol request of n rows is n rows, each pointing back at the request it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from modelstream.deadletters import Reason
from modelstream.topics import Encoding


class SourceRecord(NamedTuple):
    """A record as the job read it from a data topic (framed by the JVM, see modelstream.frames)."""

    value: bytes
    partition: int | None
    offset: int | None
    encoding: int  # an Encoding
    topic: str
    timestamp: int  # the Kafka record's, ms since the epoch
    key: bytes | None
    meta: str  # the protobuf message name, or an unsupported content-type


class _Missing:
    """A field a record does not have (as opposed to one it has as null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

# a field's values for every row: an array [n, ...], or a list with MISSING where a row lacks the field
Column = npt.NDArray[np.generic] | list[object]


class Fields(Protocol):
    """The named fields of a decoded batch's rows."""

    def names(self) -> Iterable[str]:
        """Every field name some row has."""

    def column(self, name: str) -> Column | None:
        """The field's values for every row, or None when no row has it."""

    def values(self, names: Sequence[str]) -> list[tuple[object, ...]] | None:
        """Each row's values of the named fields (at least two), or None where that is not one cheap pass
        (a row lacks one, or this batch's fields are read another way)."""

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        """For a fixed record type (WineRecord), its features as one matrix [n, k] in their declared order,
        and their names: what a model's one unnamed [n, k] input takes. None for records without one."""


class NoFields:
    """Fields of a batch with no rows."""

    def names(self) -> Iterable[str]:
        return ()

    def column(self, name: str) -> Column | None:
        return None

    def values(self, names: Sequence[str]) -> list[tuple[object, ...]] | None:
        return None

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        return None


@dataclass
class Failure:
    """A record (or one row of it) a codec or the binder could not use."""

    record: SourceRecord
    reason: Reason
    message: str
    # the record may decode later (its schema has not arrived yet): hold it rather than dead-letter it
    waiting: bool = False


@dataclass
class Decoded:
    """The rows of one decoded batch: for each, the record it came from, its id and its ts."""

    sources: list[SourceRecord]
    ids: list[str]
    timestamps: list[int]
    fields: Fields
    failures: list[Failure] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sources)


def record_id(own: str, record: SourceRecord) -> str:
    """The record's own id, else its Kafka key as text, else ""."""
    if own:
        return own
    return record.key.decode("utf-8", "replace") if record.key else ""


def undecodable(records: Sequence[SourceRecord], errors: list[tuple[int, str]], what: str) -> list[Failure]:
    """RECORD_UNDECODABLE failures for the records at the given positions."""
    return [Failure(records[i], Reason.RECORD_UNDECODABLE, f"not {what}: {message}") for i, message in errors]


class Codec(Protocol):
    """Decodes records of one encoding, a batch at a time."""

    encoding: Encoding

    def decode(self, records: Sequence[SourceRecord], schemas: SchemaLookup) -> Decoded: ...


class SchemaLookup(Protocol):
    """The protobuf message classes a data type's records may use (modelstream.codecs.protobuf)."""

    def message_class(self, name: str) -> type | None: ...
    def names(self) -> list[str]: ...
