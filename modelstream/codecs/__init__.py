"""Record codecs: one module per encoding, each decoding a batch of records into rows of named fields.

``CODECS`` names the codec of each ``Encoding``; ``decode_groups`` splits a batch by encoding (and, for
user protobufs, by message type) and decodes each group in one call.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from modelstream.codecs.base import Decoded, Failure, NoFields, SchemaLookup, SourceRecord
from modelstream.codecs.json import JsonCodec
from modelstream.codecs.oip import OipCodec
from modelstream.codecs.protobuf import ProtobufCodec
from modelstream.codecs.wine import WineCodec
from modelstream.deadletters import Reason

_ENCODING = operator.attrgetter("encoding")
_META = operator.attrgetter("meta")
CODECS = {codec.encoding: codec for codec in (WineCodec(), JsonCodec(), OipCodec(), ProtobufCodec())}


def _unsupported(records: Sequence[SourceRecord]) -> Decoded:
    failures = [
        Failure(
            r,
            Reason.RECORD_UNDECODABLE,
            f"content-type {r.meta!r} is not read here (application/json, application/x-protobuf; "
            "messageType=inference.ModelInferRequest or a published schema's message)",
        )
        for r in records
    ]
    return Decoded([], [], [], NoFields(), failures)


def decode_groups(records: Sequence[SourceRecord], schemas: SchemaLookup) -> list[Decoded]:
    """The batch decoded, one Decoded per group of records that share an encoding and message type."""
    first = records[0]
    if len(set(map(_ENCODING, records))) == len(set(map(_META, records))) == 1:  # no tuple per record
        groups = {(first.encoding, first.meta): records}
    else:
        grouped: dict[tuple[int, str], list[SourceRecord]] = {}
        for record in records:
            grouped.setdefault((record.encoding, record.meta), []).append(record)
        groups = grouped  # type: ignore[assignment]
    decoded = []
    for (encoding, _), group in groups.items():
        codec = CODECS.get(encoding)  # type: ignore[call-overload]
        decoded.append(_unsupported(group) if codec is None else codec.decode(group, schemas))
    return decoded


__all__ = ["CODECS", "Decoded", "Failure", "SourceRecord", "decode_groups"]
