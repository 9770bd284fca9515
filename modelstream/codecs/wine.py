"""WineRecord, the tutorial's record: 11 doubles in a fixed order, its data type, ts and id."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from modelstream.codecs.base import Column, Decoded, SchemaLookup, SourceRecord, record_id, undecodable
from modelstream.records import WINE, normalize_field_name
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import WineRecord

_features = operator.attrgetter(*WINE.features)
_index = {normalize_field_name(name): i for i, name in enumerate(WINE.features)}


class WineFields:
    """The features of a batch of WineRecords, as one matrix."""

    def __init__(self, matrix: npt.NDArray[np.float64]) -> None:
        self._matrix = matrix

    def names(self) -> Iterable[str]:
        return WINE.features

    def column(self, name: str) -> Column | None:
        i = _index.get(normalize_field_name(name))
        return None if i is None else self._matrix[:, i]

    def values(self, names: Sequence[str]) -> list[tuple[object, ...]] | None:
        return None

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        return self._matrix, WINE.features


class WineCodec:
    encoding = Encoding.WINE

    def decode(self, records: Sequence[SourceRecord], schemas: SchemaLookup) -> Decoded:
        parsed: list[WineRecord] = []
        sources: list[SourceRecord] = []
        errors: list[tuple[int, str]] = []
        parse = WineRecord.FromString
        for i, record in enumerate(records):
            try:
                parsed.append(parse(record.value))
            except DecodeError as e:
                errors.append((i, str(e)))
                continue
            sources.append(record)
        matrix = np.array([_features(r) for r in parsed], dtype=np.float64).reshape(
            len(parsed), len(WINE.features)
        )
        ids = [r.record_id or record_id("", s) for r, s in zip(parsed, sources, strict=True)]
        timestamps = [r.ts or s.timestamp for r, s in zip(parsed, sources, strict=True)]
        return Decoded(
            sources, ids, timestamps, WineFields(matrix), undecodable(records, errors, "a WineRecord")
        )
