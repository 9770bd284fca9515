"""Turning rows of a file into the bytes and Kafka headers of data-topic records, of any encoding.

Pure functions, no Kafka: reading rows (.jsonl, .csv with a header, the tutorial's wine CSV), filling in
a record's defaults, and encoding rows as JSON objects, Open Inference Protocol ``ModelInferRequest``s or
protobuf messages of a user's own schema (optionally Confluent Schema Registry framed). publish.py sends
what these build.
"""

from __future__ import annotations

import csv
import re
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.json_format import ParseDict, ParseError
from google.protobuf.message import DecodeError, Message

from modelstream.codecs.protobuf import message_class, message_names
from modelstream.records import WINE
from protobufs.modelstream_pb2 import RecordSchema
from protobufs.open_inference_pb2 import ModelInferRequest

Row = dict[str, Any]
Headers = list[tuple[str, bytes]]

ENCODINGS = ("auto", "json", "oip", "protobuf")
JSON_CONTENT_TYPE = "application/json"
OIP_MESSAGE = "inference.ModelInferRequest"
RECORD_SCHEMA_MESSAGE = "modelstream.RecordSchema"
# fields that say which record a row is, not what it holds: never an OIP input tensor
RECORD_KEYS = ("record_id", "dataType", "ts")


def protobuf_content_type(message_name: str) -> str:
    """The Kafka ``content-type`` header value of a protobuf record of message ``message_name``."""
    return f"application/x-protobuf; messageType={message_name}"


# -- reading rows ----------------------------------------------------------------------------------

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LETTER = re.compile(r"[^\W\d_]")


def parse_csv_value(text: str) -> Any:
    """A CSV cell typed: integral text -> int, other numeric text -> float, true/false -> bool,
    empty -> None, anything else -> the (stripped) string."""
    value = text.strip()
    if not value:
        return None
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def has_header(first_line: str) -> bool:
    """A CSV's first line is a header row when it holds a letter (the wine CSV's first line does not)."""
    return _LETTER.search(first_line) is not None


def _first_line(path: Path) -> str:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                return line
    return ""


def file_kind(path: Path) -> str:
    """``jsonl``, ``csv`` (comma separated, header row) or ``wine`` (the tutorial's CSV: semicolons, no
    header); raises FileNotFoundError / ValueError saying what is wrong with the file."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a data file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv" if has_header(_first_line(path)) else "wine"
    raise ValueError(f"cannot read records from {path.name}: give a .jsonl, or a .csv (with a header row)")


def read_csv_rows(path: Path) -> list[Row]:
    """The rows of a comma-separated file with a header row, as objects keyed by the header, values
    typed by ``parse_csv_value``; a row with the wrong number of columns is an error naming its line."""
    rows: list[Row] = []
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip() for c in cells]
                missing = [i + 1 for i, name in enumerate(header) if not name]
                if missing:
                    raise ValueError(f"{path}:{reader.line_num}: header column {missing[0]} has no name")
                duplicates = sorted({n for n in header if header.count(n) > 1})
                if duplicates:
                    raise ValueError(f"{path}:{reader.line_num}: header repeats {', '.join(duplicates)}")
                continue
            if len(cells) != len(header):
                raise ValueError(
                    f"{path}:{reader.line_num}: {len(cells)} columns, the header has {len(header)}"
                )
            rows.append({name: parse_csv_value(cell) for name, cell in zip(header, cells, strict=True)})
    return rows


def read_jsonl_rows(path: Path) -> list[Row]:
    """One JSON object per non-blank line; a line that is not an object is an error naming the line."""
    rows: list[Row] = []
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not JSON ({e})") from None
            if not isinstance(value, dict):
                raise ValueError(f"{path}:{number}: a {type(value).__name__}, not a JSON object")
            rows.append(value)
    return rows


def read_wine_rows(path: Path) -> list[list[float]]:
    """Rows of the tutorial's wine CSV (semicolons, no header): 11 features, optionally the quality."""
    rows = []
    wanted = len(WINE.features)
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cells = line.strip().split(";")
            if len(cells) not in (wanted, wanted + 1):
                raise ValueError(
                    f"{path}:{number}: {len(cells)} columns; the wine CSV has {wanted} features "
                    f"(+ quality), separated by ';' (a CSV of your own needs a header row)"
                )
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                raise ValueError(f"{path}:{number}: a value is not a number: {line.strip()!r}") from None
    return rows


def wine_row_object(row: Sequence[float]) -> Row:
    """A wine CSV row as an object keyed by the WineRecord feature names (and ``quality``)."""
    names = [*WINE.features, "quality"]
    return dict(zip(names, row, strict=False))


def read_rows(path: Path) -> list[Row]:
    """The rows of any supported file as objects (wine CSV rows keyed by feature name)."""
    kind = file_kind(path)
    if kind == "jsonl":
        rows = read_jsonl_rows(path)
    elif kind == "csv":
        rows = read_csv_rows(path)
    else:
        rows = [wine_row_object(r) for r in read_wine_rows(path)]
    if not rows:
        raise ValueError(f"{path} has no rows")
    return rows


def with_defaults(row: Row, data_type: str, record_id: str, ts: int) -> Row:
    """A copy of ``row`` with ``dataType``, ``record_id`` and ``ts`` (ms since the epoch) set where the
    row lacks them (or has them null); values the row has win."""
    filled = dict(row)
    for key, value in (("dataType", data_type), ("record_id", record_id), ("ts", ts)):
        if filled.get(key) is None:
            filled[key] = value
    return filled


# -- JSON ------------------------------------------------------------------------------------------


def json_value(row: Row) -> bytes:
    """The UTF-8 JSON object of one record."""
    return orjson.dumps(row)


# -- Open Inference Protocol -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    datatype: str
    values: list[Any]  # one per row; a list per row for FP32 [rows, k]
    width: int | None = None  # k for array columns


def _column(name: str, values: list[Any]) -> _Column:
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "BOOL"
        if isinstance(v, int):
            return "INT64"
        if isinstance(v, float):
            return "FP64"
        if isinstance(v, str):
            return "BYTES"
        if isinstance(v, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
            return "FP32"
        if v is None:
            raise ValueError(f"field {name!r} is null or missing in a row: a tensor cannot hold it")
        raise ValueError(f"field {name!r} holds {type(v).__name__} {v!r}: not a number, bool, string or "
                         "array of numbers")  # fmt: skip

    kinds = {kind(v) for v in values}
    if kinds == {"INT64", "FP64"}:
        kinds = {"FP64"}
    if len(kinds) != 1:
        raise ValueError(f"field {name!r} mixes types across rows: {', '.join(sorted(kinds))}")
    datatype = kinds.pop()
    if datatype == "FP64":
        return _Column(name, datatype, [float(v) for v in values])
    if datatype == "FP32":
        widths = {len(v) for v in values}
        if len(widths) != 1:
            raise ValueError(f"field {name!r}: arrays of different lengths {sorted(widths)} in one request")
        return _Column(name, datatype, values, widths.pop())
    return _Column(name, datatype, values)


def _raw_bytes(column: _Column) -> bytes:
    values = column.values
    if column.datatype == "FP64":
        return struct.pack(f"<{len(values)}d", *values)
    if column.datatype == "INT64":
        return struct.pack(f"<{len(values)}q", *values)
    if column.datatype == "BOOL":
        return bytes(1 if v else 0 for v in values)
    if column.datatype == "FP32":
        flat = [float(x) for row in values for x in row]
        return struct.pack(f"<{len(flat)}f", *flat)
    out = bytearray()
    for v in values:
        encoded = v.encode()
        out += struct.pack("<I", len(encoded)) + encoded
    return bytes(out)


def oip_request(rows: Sequence[Row], data_type: str, request_id: str, raw: bool = False) -> ModelInferRequest:
    """One ModelInferRequest for ``rows`` (the batch): ``model_name`` = the data type, ``id`` =
    ``request_id``, one input tensor per field except record_id/dataType/ts, in the first row's field
    order. Numbers are FP64 (INT64 when every value is an int), bools BOOL, strings BYTES, each of shape
    [rows]; arrays of numbers FP32 of shape [rows, k]. Contents go in the typed ``contents``, or with
    ``raw`` in ``raw_input_contents`` (little-endian; BYTES as a 4-byte little-endian length + bytes)."""
    if not rows:
        raise ValueError("an inference request needs at least one row")
    names = [k for k in rows[0] if k not in RECORD_KEYS]
    for row in rows[1:]:
        names += [k for k in row if k not in RECORD_KEYS and k not in names]
    if not names:
        raise ValueError("the rows have no field but record_id, dataType and ts: nothing to send as inputs")
    request = ModelInferRequest(model_name=data_type, id=request_id)
    for name in names:
        column = _column(name, [row.get(name) for row in rows])
        tensor = request.inputs.add(name=name, datatype=column.datatype)
        tensor.shape.extend([len(rows)] if column.width is None else [len(rows), column.width])
        if raw:
            request.raw_input_contents.append(_raw_bytes(column))
        elif column.datatype == "FP64":
            tensor.contents.fp64_contents.extend(column.values)
        elif column.datatype == "INT64":
            tensor.contents.int64_contents.extend(column.values)
        elif column.datatype == "BOOL":
            tensor.contents.bool_contents.extend(column.values)
        elif column.datatype == "FP32":
            tensor.contents.fp32_contents.extend(float(x) for row in column.values for x in row)
        else:
            tensor.contents.bytes_contents.extend(v.encode() for v in column.values)
    return request


# -- protobuf of a user's own schema ---------------------------------------------------------------


def compile_proto(proto: Path) -> bytes:
    """A serialized FileDescriptorSet of ``proto`` and everything it imports, compiled by grpc_tools'
    protoc in a subprocess with the .proto's folder as the proto path."""
    if not proto.is_file():
        raise FileNotFoundError(f"no such file: {proto}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.desc"
        done = subprocess.run(
            [
                sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={proto.parent.resolve()}",
                "--include_imports", f"--descriptor_set_out={out}", str(proto.resolve()),
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            if "No module named grpc_tools" in detail:
                detail = "grpcio-tools is not installed (pip install grpcio-tools, or give a .desc file)"
            raise ValueError(f"cannot compile {proto}: {detail}")
        return out.read_bytes()


def read_descriptor_set(path: Path) -> bytes:
    """A serialized FileDescriptorSet from a ``.desc``/``.pb`` file, or compiled from a ``.proto``."""
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix.lower() == ".proto":
        return compile_proto(path)
    data = path.read_bytes()
    try:
        FileDescriptorSet.FromString(data)
    except DecodeError:
        raise ValueError(
            f"{path} is not a FileDescriptorSet (make one with protoc --include_imports "
            "--descriptor_set_out=FILE.desc, or give the .proto)"
        ) from None
    return data


def protobuf_message(cls: type[Message], row: Row) -> Message:
    """A message of ``cls`` filled from a row by the protobuf JSON mapping; fields the message lacks
    are ignored, null values leave a field unset."""
    message = cls()
    try:
        ParseDict(row, message, ignore_unknown_fields=True)
    except ParseError as e:
        raise ValueError(
            f"record {row.get('record_id')!r} does not fit {cls.DESCRIPTOR.full_name}: {e}"
        ) from None
    return message


def zigzag_varint(value: int) -> bytes:
    """``value`` zigzag-encoded as a protobuf varint (signed, 64-bit)."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def confluent_frame(payload: bytes, schema_id: int, indexes: Sequence[int] = (0,)) -> bytes:
    """Confluent Schema Registry wire framing: magic byte 0, the 4-byte big-endian schema id, the
    message indexes (a single 0 byte for [0], else their count and each, zigzag varints), the payload."""
    if not 0 <= schema_id < 2**32:
        raise ValueError(f"schema id {schema_id} is not a 4-byte unsigned integer")
    index_bytes = (
        b"\x00" if list(indexes) == [0] else b"".join(zigzag_varint(i) for i in [len(indexes), *indexes])
    )
    return b"\x00" + struct.pack(">I", schema_id) + index_bytes + payload


def record_schema(data_type: str, message_name: str, file_descriptor_set: bytes) -> RecordSchema:
    """The RecordSchema message telling the job how to read a data type's protobuf records; raises
    ValueError unless ``message_name`` builds a message class from the set."""
    message_class(file_descriptor_set, message_name)
    return RecordSchema(
        data_type=data_type, message_name=message_name, file_descriptor_set=file_descriptor_set
    )


# -- rows to records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """How publish-data turns rows into data-topic records."""

    kind: str  # json | oip | protobuf
    data_type: str
    id_prefix: str
    oip_rows: int = 1
    oip_raw: bool = False
    message: type[Message] | None = None
    schema_id: int | None = None  # Confluent framing with this schema id
    data_type_header: bool = False

    def headers(self) -> Headers:
        if self.kind == "json":
            content_type = JSON_CONTENT_TYPE
        elif self.kind == "oip":
            content_type = protobuf_content_type(OIP_MESSAGE)
        elif self.message is not None:
            content_type = protobuf_content_type(self.message.DESCRIPTOR.full_name)
        else:
            raise ValueError("the protobuf encoding needs a message class (--schema and --message)")
        headers = [("content-type", content_type.encode())]
        if self.data_type_header:
            headers.append(("data-type", self.data_type.encode()))
        return headers


@dataclass(frozen=True)
class EncodedRecord:
    """One Kafka record to send: its value, headers, and how many rows (records) it carries."""

    value: bytes
    headers: Headers
    rows: int


def encode_rows(
    rows: Sequence[Row], encoding: Encoding, count: int | None, now_ms: Callable[[], int]
) -> Iterator[EncodedRecord]:
    """``count`` rows (default: each row once; cycling when more), each with its defaults (record id
    PREFIX-N, N counting rows sent; ts = ``now_ms()``), encoded; OIP puts ``oip_rows`` rows in each
    request (the last may hold fewer)."""
    if not rows:
        raise ValueError("no rows to send")
    if encoding.kind not in ("json", "oip", "protobuf"):
        raise ValueError(f"unknown encoding {encoding.kind!r}; one of json, oip, protobuf")
    headers = encoding.headers()
    total = len(rows) if count is None else count
    per_record = encoding.oip_rows if encoding.kind == "oip" else 1
    if per_record < 1:
        raise ValueError("--oip-rows must be at least 1")
    n = 0
    while n < total:
        size = min(per_record, total - n)
        now = now_ms()
        batch = [
            with_defaults(rows[i % len(rows)], encoding.data_type, f"{encoding.id_prefix}-{i}", now)
            for i in range(n, n + size)
        ]
        if encoding.kind == "json":
            value = json_value(batch[0])
        elif encoding.kind == "oip":
            value = oip_request(
                batch, encoding.data_type, str(batch[0]["record_id"]), encoding.oip_raw
            ).SerializeToString()
        else:
            assert encoding.message is not None  # headers() checked it
            value = protobuf_message(encoding.message, batch[0]).SerializeToString()
            if encoding.schema_id is not None:
                value = confluent_frame(value, encoding.schema_id)
        n += size
        yield EncodedRecord(value, headers, size)


__all__ = ["message_class", "message_names"]  # with the functions above: what publish-data uses
