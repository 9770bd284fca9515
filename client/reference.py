"""publish-model --reference FILE: the reference profile of a sample of training data, computed here with
the job's own decoding, binding and model code (modelstream.drift), shipped in the descriptor."""

from __future__ import annotations

from pathlib import Path

from client import encode
from modelstream.admission import admit
from modelstream.codecs import SourceRecord
from modelstream.codecs.protobuf import UserSchemas
from modelstream.drift import ProfileError, profile_sample
from modelstream.records import WINE, wine_record_from_row
from modelstream.settings import Settings
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ModelDescriptor, ReferenceProfile

Row = dict[str, object]


def _json_records(rows: list[Row]) -> list[SourceRecord]:
    return [SourceRecord(encode.json_value(row), None, None, Encoding.JSON, "", 0, None, "") for row in rows]


def _wine_records(rows: list[Row]) -> list[SourceRecord] | None:
    """The rows as WineRecords, when they hold the wine features (a model's unnamed [n, 11] input takes
    them in WineRecord's order)."""
    if not all(all(isinstance(row.get(f), int | float) for f in WINE.features) for row in rows):
        return None
    records = []
    for row in rows:
        wine = wine_record_from_row([float(row[f]) for f in WINE.features], "", 0, "")  # type: ignore[arg-type]
        records.append(SourceRecord(wine.SerializeToString(), None, None, Encoding.WINE, "", 0, None, ""))
    return records


def reference_profile(settings: Settings, descriptor: ModelDescriptor, path: Path) -> ReferenceProfile:
    """The profile of the sample in ``path`` (a CSV with a header, JSONL, or the tutorial's wine CSV):
    per input feature 10 equal-frequency bins (categorical: the top values and other) and the model's
    predictions of the sample; ProfileError (or ValueError for the file) saying what is wrong."""
    rows = encode.read_rows(path)
    schemas = UserSchemas()
    model, binder = admit(descriptor, settings.model_options(), descriptor.dataType, None, schemas)
    try:
        fields = tuple(descriptor.input_fields)
        wine = _wine_records(rows)
        if encode.file_kind(path) == "wine" and wine is not None:
            return profile_sample(model, binder, fields, wine)
        try:
            return profile_sample(model, binder, fields, _json_records(rows))
        except ProfileError:
            if wine is None:
                raise
            return profile_sample(model, binder, fields, wine)
    finally:
        model.close()
