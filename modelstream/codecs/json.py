"""JSON objects, one per record (UTF-8), decoded with orjson: scalar fields (number, string, bool, null) and
arrays of numbers (a tensor per record). ``record_id`` is the id, ``ts`` the time (ms since the epoch)."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from modelstream.codecs.base import (
    MISSING,
    Column,
    Decoded,
    SchemaLookup,
    SourceRecord,
    record_id,
    undecodable,
)
from modelstream.topics import Encoding


class ObjectFields:
    """Fields of rows held as dicts (JSON objects, or protobuf messages turned into dicts)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def names(self) -> Iterable[str]:
        names: set[str] = set()
        for row in self._rows:
            names.update(row)
        return names

    def column(self, name: str) -> Column | None:
        values = [row.get(name, MISSING) for row in self._rows]
        return values if any(v is not MISSING for v in values) else None

    def values(self, names: Sequence[str]) -> list[tuple[object, ...]] | None:
        read = operator.itemgetter(*names)
        try:
            return [read(row) for row in self._rows]
        except KeyError:
            return None

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        return None


class JsonCodec:
    encoding = Encoding.JSON

    def decode(self, records: Sequence[SourceRecord], schemas: SchemaLookup) -> Decoded:
        rows: list[dict[str, Any]] = []
        sources: list[SourceRecord] = []
        ids: list[str] = []
        timestamps: list[int] = []
        errors: list[tuple[int, str]] = []
        loads = orjson.loads
        for i, record in enumerate(records):
            try:
                row = loads(record.value)
            except orjson.JSONDecodeError as e:
                errors.append((i, str(e)))
                continue
            if type(row) is not dict:
                errors.append((i, f"a JSON {type(row).__name__}, not an object"))
                continue
            rows.append(row)
            sources.append(record)
            own = row.get("record_id")
            ids.append(own if type(own) is str and own else record_id(str(own or ""), record))
            ts = row.get("ts")
            timestamps.append(ts if type(ts) is int and ts else record.timestamp)
        return Decoded(
            sources, ids, timestamps, ObjectFields(rows), undecodable(records, errors, "a JSON object")
        )
