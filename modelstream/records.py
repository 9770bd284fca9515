"""The tutorial's WineRecord: its 11 features in their declared order, a probe record, the CSV it comes
from; and how field names compare. Records of other schemas: ``modelstream.codecs``."""

from __future__ import annotations

import functools
import math
import operator
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protobufs.modelstream_pb2 import WineRecord

FeatureMatrix = npt.NDArray[np.float64]


@functools.lru_cache(maxsize=4096)
def normalize_field_name(name: str) -> str:
    """Compare field names loosely: "fixed acidity", "fixed_acidity" and "FixedAcidity" are one field."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


class InvalidRecord(ValueError):
    """A record that decodes but cannot be scored (missing or non-finite feature)."""


@dataclass(frozen=True)
class FixedRecordType:
    """A record type whose features have one order (what a model's one unnamed [n, k] input takes)."""

    name: str
    features: tuple[str, ...]
    probe: tuple[float, ...]  # a typical record, used to validate a model before it serves

    def feature_index(self, name: str) -> int | None:
        """Position of a feature given any spelling of its name, or None."""
        wanted = normalize_field_name(name)
        for i, feature in enumerate(self.features):
            if normalize_field_name(feature) == wanted:
                return i
        return None

    def probe_record(self) -> WineRecord:
        """The probe as a WineRecord."""
        record = WineRecord()
        for name, value in zip(self.features, self.probe, strict=True):
            setattr(record, name, value)
        return record


WINE = FixedRecordType(
    name="WineRecord",
    features=(
        "fixed_acidity",
        "volatile_acidity",
        "citric_acid",
        "residual_sugar",
        "chlorides",
        "free_sulfur_dioxide",
        "total_sulfur_dioxide",
        "density",
        "pH",
        "sulphates",
        "alcohol",
    ),
    # the first row of the tutorial's red-wine data set
    probe=(7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4),
)


def decode_record(raw: bytes) -> WineRecord:
    """Parse a WineRecord; raises google.protobuf.message.DecodeError on bad bytes."""
    record = WineRecord()
    record.ParseFromString(raw)
    return record


_wine_features = operator.attrgetter(*WINE.features)


def record_features(record: WineRecord) -> tuple[float, ...]:
    """The record's features in schema order; raises InvalidRecord on a non-finite value."""
    values: tuple[float, ...] = _wine_features(record)
    for name, value in zip(WINE.features, values, strict=True):
        if not math.isfinite(value):
            raise InvalidRecord(f"feature {name} is {value}")
    return values


def wine_record_from_row(row: list[float], data_type: str, ts: int, record_id: str) -> WineRecord:
    """A WineRecord from one CSV row (11 features, the quality label, if present, is ignored)."""
    if len(row) < len(WINE.features):
        raise InvalidRecord(f"expected {len(WINE.features)} features, got {len(row)}")
    record = WineRecord(dataType=data_type, ts=ts, record_id=record_id)
    for name, value in zip(WINE.features, row, strict=False):
        setattr(record, name, value)
    return record


def read_wine_csv(path: str) -> list[list[float]]:
    """Rows of the tutorial's wine CSV (semicolon separated, no header)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append([float(x) for x in line.split(";")])
    return rows
