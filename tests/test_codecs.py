"""Record codecs (modelstream.codecs): each encoding decoded into rows of named fields, and the records
each one cannot read, with why."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import Message

from modelstream.codecs import Decoded, decode_groups
from modelstream.codecs.base import MISSING, SourceRecord
from modelstream.codecs.json import JsonCodec
from modelstream.codecs.oip import OipCodec
from modelstream.codecs.protobuf import ProtobufCodec, SchemaError, UserSchemas, message_class
from modelstream.codecs.wine import WineCodec
from modelstream.deadletters import Reason
from modelstream.records import WINE
from modelstream.settings import PROJECT_ROOT
from modelstream.testing import source_record
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import WineRecord
from protobufs.open_inference_pb2 import ModelInferRequest

LOANS_DESC = (PROJECT_ROOT / "data" / "loans" / "loans.desc").read_bytes()
LOAN = "loans.LoanApplication"
NO_SCHEMAS = UserSchemas()


def json_records(*values: bytes, keys: Sequence[bytes | None] = ()) -> list[SourceRecord]:
    keys = list(keys) or [None] * len(values)
    return [
        SourceRecord(value, 0, i, Encoding.JSON, "loans", 5_000 + i, key, "")
        for i, (value, key) in enumerate(zip(values, keys, strict=True))
    ]


def failures(decoded: Decoded) -> list[tuple[int | None, Reason, str]]:
    return [(f.record.offset, f.reason, f.message) for f in decoded.failures]


# -- WineRecord --------------------------------------------------------------------------------------


def test_wine_records_are_one_matrix_in_the_declared_feature_order() -> None:
    first = WineRecord(alcohol=9.4, pH=3.51, fixed_acidity=7.4, record_id="w-1", ts=77)
    second = WineRecord(alcohol=10.0, chlorides=0.08)  # no id, no ts: the Kafka key and timestamp
    records = [
        source_record(first.SerializeToString(), offset=0, key=b"k-1"),
        source_record(b"\xff\xff", offset=1),
        SourceRecord(second.SerializeToString(), 0, 2, Encoding.WINE, "wine", 1234, b"k-2", ""),
    ]
    decoded = WineCodec().decode(records, NO_SCHEMAS)
    assert (decoded.ids, decoded.timestamps) == (["w-1", "k-2"], [77, 1234])
    assert [s.offset for s in decoded.sources] == [0, 2]
    assert failures(decoded) == [(1, Reason.RECORD_UNDECODABLE, failures(decoded)[0][2])]
    assert decoded.failures[0].message.startswith("not a WineRecord")
    assert tuple(decoded.fields.names()) == WINE.features
    default = decoded.fields.default_matrix()
    assert default is not None and default[1] == WINE.features
    expected = np.zeros((2, 11))
    expected[0, [0, 8, 10]] = [7.4, 3.51, 9.4]
    expected[1, [4, 10]] = [0.08, 10.0]
    np.testing.assert_array_equal(default[0], expected)
    pH = decoded.fields.column("PH")  # any spelling of a feature's name
    assert isinstance(pH, np.ndarray) and pH.tolist() == [3.51, 0.0]
    assert decoded.fields.column("quality") is None


# -- JSON --------------------------------------------------------------------------------------------


def test_json_objects_become_rows_of_their_fields() -> None:
    decoded = JsonCodec().decode(
        json_records(
            b'{"record_id": "a", "ts": 9, "age": 41, "income": 5.5, "region": "north", "ok": true, '
            b'"pixels": [1, 2.5], "note": null}',
            '{"age": 30, "region": "süd"}'.encode(),
        ),
        NO_SCHEMAS,
    )
    assert len(decoded) == 2 and not decoded.failures
    assert set(decoded.fields.names()) == {
        "record_id",
        "ts",
        "age",
        "income",
        "region",
        "ok",
        "pixels",
        "note",
    }
    assert decoded.fields.column("age") == [41, 30]
    assert decoded.fields.column("income") == [5.5, MISSING]
    assert decoded.fields.column("region") == ["north", "süd"]
    assert decoded.fields.column("ok") == [True, MISSING]
    assert decoded.fields.column("pixels") == [[1, 2.5], MISSING]
    assert decoded.fields.column("note") == [None, MISSING]  # null is not missing
    assert decoded.fields.column("absent") is None
    assert decoded.fields.default_matrix() is None


def test_json_ids_and_times_fall_back_to_the_kafka_key_and_timestamp() -> None:
    decoded = JsonCodec().decode(
        json_records(
            b'{"record_id": "own", "ts": 17}',
            b'{"ts": "yesterday"}',
            b'{"record_id": 42, "ts": 1.5}',
            b"{}",
            keys=[b"key-0", b"key-1", None, None],
        ),
        NO_SCHEMAS,
    )
    assert decoded.ids == ["own", "key-1", "42", ""]
    assert decoded.timestamps == [17, 5_001, 5_002, 5_003]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"[1, 2]", "a JSON list, not an object"),
        (b"3", "a JSON int, not an object"),
        (b'"text"', "a JSON str, not an object"),
        (b"null", "a JSON NoneType, not an object"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b"\xff", "not valid UTF-8"),
        (b'{"a": 1', "not a JSON object"),
        (b"", "not a JSON object"),
    ],
)
def test_what_is_not_a_json_object_is_undecodable(value: bytes, message: str) -> None:
    decoded = JsonCodec().decode(json_records(b'{"a": 1}', value), NO_SCHEMAS)
    assert decoded.ids == [""] and [s.offset for s in decoded.sources] == [0]
    ((offset, reason, text),) = failures(decoded)
    assert (offset, reason) == (1, Reason.RECORD_UNDECODABLE) and message in text


# -- protobuf of a user's schema ---------------------------------------------------------------------


def loan_class() -> type[Message]:
    return message_class(LOANS_DESC, LOAN)


def loan(**fields: Any) -> bytes:
    data: bytes = loan_class()(**fields).SerializeToString()
    return data


def zigzag(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def confluent(payload: bytes, indexes: Sequence[int]) -> bytes:
    framing = b"\x00" if list(indexes) == [0] else b"".join(zigzag(i) for i in [len(indexes), *indexes])
    return b"\x00" + struct.pack(">I", 123_456) + framing + payload


def protobuf_records(*values: bytes, name: str = LOAN) -> list[SourceRecord]:
    return [
        SourceRecord(v, 1, i, Encoding.PROTOBUF, "loans", 100 + i, None, name) for i, v in enumerate(values)
    ]


def test_protobuf_records_with_and_without_confluent_framing() -> None:
    payloads = [
        loan(record_id="l-0", age=30, income=1.5, term_months=12, credit_score=700, employment="retired"),
        loan(record_id="l-1", age=41, income=2.5, region="north"),
        loan(age=52, credit_score=-3),  # no record_id: no id (the record has no key)
    ]
    values = [payloads[0], confluent(payloads[1], [0]), confluent(payloads[2], [2, 1, 300])]
    decoded = ProtobufCodec().decode(protobuf_records(*values), UserSchemas({LOAN: LOANS_DESC}))
    assert not decoded.failures
    assert (decoded.ids, decoded.timestamps) == (["l-0", "l-1", ""], [100, 101, 102])  # no ts field
    fields = decoded.fields
    assert fields.column("age") == [30, 41, 52]
    assert fields.column("income") == [1.5, 2.5, 0.0]  # proto3 scalars without presence: defaults
    assert fields.column("credit_score") == [700, 0, -3]
    assert fields.column("employment") == ["retired", "", ""]
    assert fields.column("region") == ["", "north", ""]
    assert fields.column("nope") is None and fields.default_matrix() is None
    assert {"age", "income", "loan_amount", "term_months", "credit_score", "region"} <= set(fields.names())


def test_protobuf_records_the_schema_cannot_read_are_undecodable() -> None:
    schemas = UserSchemas({LOAN: LOANS_DESC})
    decoded = ProtobufCodec().decode(protobuf_records(loan(age=1), b"\xff\xff\xff", b"\x00\x00\x01"), schemas)
    assert decoded.ids == [""] and [s.offset for s in decoded.sources] == [0]
    assert [(o, r) for o, r, _ in failures(decoded)] == [
        (1, Reason.RECORD_UNDECODABLE),
        (2, Reason.RECORD_UNDECODABLE),
    ]
    assert decoded.failures[0].message.startswith(f"not a {LOAN}")
    assert "Confluent framing cut short" in decoded.failures[1].message

    unknown = ProtobufCodec().decode(protobuf_records(loan(age=1), name="loans.Other"), schemas)
    ((_, reason, message),) = failures(unknown)
    assert reason == Reason.RECORD_UNDECODABLE and "'loans.Other'" in message and LOAN in message
    none_published = ProtobufCodec().decode(protobuf_records(loan(age=1)), NO_SCHEMAS)
    assert "none published" in none_published.failures[0].message
    # a record that names no message type is read with the data type's only schema
    only = ProtobufCodec().decode(protobuf_records(loan(age=7), name=""), schemas)
    assert only.fields.column("age") == [7]


def test_a_schema_that_does_not_build_says_why() -> None:
    with pytest.raises(
        SchemaError, match=r"no message 'loans\.Nope' in the schema; its messages: loans\.LoanApplication"
    ):
        UserSchemas({"loans.Nope": LOANS_DESC})
    with pytest.raises(SchemaError, match="not a FileDescriptorSet"):
        message_class(b"\xff\xff\xff", LOAN)


# -- Open Inference Protocol -------------------------------------------------------------------------

RAW_FORMATS = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "BOOL": "?"}
TYPED_FIELDS = {
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "BOOL": "bool_contents",
}
DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}


def request(
    tensors: dict[str, tuple[str, list[int], list[Any]]], raw: bool, request_id: str = "req"
) -> ModelInferRequest:
    """A request of ``name -> (datatype, shape, flat values)``, in typed contents or raw."""
    message = ModelInferRequest(model_name="digits", id=request_id)
    for name, (datatype, shape, values) in tensors.items():
        tensor = message.inputs.add(name=name, datatype=datatype, shape=shape)
        if datatype == "BYTES":
            elements = [v.encode() for v in values]
            if raw:
                message.raw_input_contents.append(b"".join(struct.pack("<I", len(e)) + e for e in elements))
            else:
                tensor.contents.bytes_contents.extend(elements)
        elif raw:
            message.raw_input_contents.append(np.asarray(values, dtype=RAW_FORMATS[datatype]).tobytes())
        elif datatype in TYPED_FIELDS:
            getattr(tensor.contents, TYPED_FIELDS[datatype]).extend(values)
    return message


def oip_records(*requests: ModelInferRequest | bytes, key: bytes | None = None) -> list[SourceRecord]:
    return [
        SourceRecord(
            r if isinstance(r, bytes) else r.SerializeToString(), 2, i, Encoding.OIP, "oip", 700, key, ""
        )
        for i, r in enumerate(requests)
    ]


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT32", "INT64", "BOOL"])
def test_oip_numeric_tensors_in_typed_or_raw_contents(datatype: str, raw: bool) -> None:
    values: list[Any] = (
        [True, False, True, True, False, False] if datatype == "BOOL" else [1, -2, 3, 4, 5, 250]
    )
    scalars: list[Any] = values[:2]
    tensors = {"x": (datatype, [2, 3], values), "y": (datatype, [2], scalars)}
    decoded = OipCodec().decode(oip_records(request(tensors, raw)), NO_SCHEMAS)
    assert not decoded.failures and len(decoded) == 2
    x, y = decoded.fields.column("x"), decoded.fields.column("y")
    assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
    assert x.dtype == DTYPES[datatype] and x.shape == (2, 3) and y.shape == (2,)
    np.testing.assert_array_equal(x, np.asarray(values, dtype=DTYPES[datatype]).reshape(2, 3))
    np.testing.assert_array_equal(y, np.asarray(scalars, dtype=DTYPES[datatype]))


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
def test_oip_bytes_tensors_are_text(raw: bool) -> None:
    words = ["north", "", "süd-ost " * 40]  # an element longer than 255 bytes: a 4-byte length
    decoded = OipCodec().decode(oip_records(request({"region": ("BYTES", [3], words)}, raw)), NO_SCHEMAS)
    region = decoded.fields.column("region")
    assert isinstance(region, np.ndarray) and region.dtype == object and region.tolist() == words


def test_oip_rows_are_the_first_dimension_with_ids_per_row() -> None:
    three = request({"pixels": ("FP32", [3, 2], [1, 2, 3, 4, 5, 6])}, raw=True, request_id="batch")
    one = request({"pixels": ("FP32", [1, 2], [7, 8])}, raw=False, request_id="single")
    unnamed = request({"pixels": ("FP32", [2, 2], [9, 10, 11, 12])}, raw=False, request_id="")
    decoded = OipCodec().decode(oip_records(three, one, unnamed, key=b"kafka-key"), NO_SCHEMAS)
    assert decoded.ids == ["batch[0]", "batch[1]", "batch[2]", "single", "kafka-key[0]", "kafka-key[1]"]
    assert [s.offset for s in decoded.sources] == [0, 0, 0, 1, 2, 2]
    assert decoded.timestamps == [700] * 6
    pixels = decoded.fields.column("pixels")
    assert isinstance(pixels, np.ndarray) and pixels.tolist() == [
        [1, 2],
        [3, 4],
        [5, 6],
        [7, 8],
        [9, 10],
        [11, 12],
    ]


def test_requests_without_a_tensor_get_it_missing_in_their_rows() -> None:
    both = request({"a": ("FP64", [1], [1.0]), "b": ("FP64", [1], [2.0])}, raw=False)
    only_a = request({"a": ("FP64", [2], [3.0, 4.0])}, raw=False)
    decoded = OipCodec().decode(oip_records(both, only_a), NO_SCHEMAS)
    assert decoded.fields.column("b") == [2.0, MISSING, MISSING]
    a = decoded.fields.column("a")
    assert isinstance(a, np.ndarray) and a.tolist() == [1.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("tensors", "raw", "message"),
    [
        ({"x": ("FP32", [2, 3], [1.0] * 5)}, False, "tensor 'x' has 5 elements, its shape [2, 3] needs 6"),
        ({"x": ("INT64", [2, 2], [1] * 6)}, True, "tensor 'x' has 6 elements, its shape [2, 2] needs 4"),
        (
            {"x": ("FP32", [2], [1.0, 2.0]), "y": ("FP32", [3], [1.0] * 3)},
            False,
            "disagree on the batch size",
        ),
        ({"x": ("FP32", [], [])}, False, "the first dimension is the batch"),
        ({"x": ("FP32", [0, 3], [])}, False, "0 rows"),
        ({"x": ("COMPLEX", [1], [])}, False, "datatype 'COMPLEX'"),
        ({}, False, "no input tensors"),
    ],
    ids=["count-typed", "count-raw", "batch", "no-shape", "no-rows", "datatype", "no-inputs"],
)
def test_oip_requests_that_do_not_hold_together_are_invalid(
    tensors: dict[str, tuple[str, list[int], list[Any]]], raw: bool, message: str
) -> None:
    good = request({"x": ("FP32", [1], [1.0])}, raw=False)
    decoded = OipCodec().decode(oip_records(good, request(tensors, raw)), NO_SCHEMAS)
    assert decoded.ids == ["req"]
    ((offset, reason, text),) = failures(decoded)
    assert (offset, reason) == (1, Reason.RECORD_INVALID) and message in text


def test_oip_raw_contents_that_do_not_split_are_invalid_and_garbage_undecodable() -> None:
    odd_bytes = ModelInferRequest(id="r", raw_input_contents=[b"\x00" * 7])
    odd_bytes.inputs.add(name="x", datatype="FP32", shape=[1])
    cut_element = ModelInferRequest(id="r", raw_input_contents=[struct.pack("<I", 10) + b"abc"])
    cut_element.inputs.add(name="s", datatype="BYTES", shape=[1])
    one_raw_for_two = request({"x": ("FP32", [1], [1.0]), "y": ("FP32", [1], [1.0])}, raw=True)
    del one_raw_for_two.raw_input_contents[1]
    decoded = OipCodec().decode(oip_records(odd_bytes, cut_element, one_raw_for_two, b"\xff\xff"), NO_SCHEMAS)
    assert len(decoded) == 0
    assert [(o, r) for o, r, _ in failures(decoded)] == [
        (0, Reason.RECORD_INVALID),
        (1, Reason.RECORD_INVALID),
        (2, Reason.RECORD_INVALID),
        (3, Reason.RECORD_UNDECODABLE),
    ]
    messages = [f.message for f in decoded.failures]
    assert "7 raw bytes are not whole FP32 elements" in messages[0]
    assert "cut short" in messages[1] and "1 raw_input_contents for 2 inputs" in messages[2]
    assert messages[3].startswith("not an inference.ModelInferRequest")


# -- groups and unsupported content types ------------------------------------------------------------


def test_a_batch_is_decoded_in_groups_of_one_encoding_and_unsupported_content_types_are_named() -> None:
    records = [
        source_record(WineRecord(record_id="w").SerializeToString(), offset=0),
        source_record(b'{"record_id": "j"}', Encoding.JSON, offset=1),
        source_record(b"a,b\n1,2", Encoding.UNSUPPORTED, offset=2, meta="text/csv"),
        source_record(WineRecord(record_id="w2").SerializeToString(), offset=3),
    ]
    groups = decode_groups(records, NO_SCHEMAS)
    assert [g.ids for g in groups] == [["w", "w2"], ["j"], []]
    ((offset, reason, message),) = failures(groups[2])
    assert (offset, reason) == (2, Reason.RECORD_UNDECODABLE)
    assert "content-type 'text/csv' is not read here" in message and "application/json" in message
