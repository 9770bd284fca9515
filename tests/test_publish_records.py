"""client/encode.py and the publish-data / publish-schema commands, without a broker."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from client import encode, publish, topics
from client.cli import build_parser, main
from client.errors import ExitCode
from client.messages import model_descriptor, to_dict
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import OutputTensor, RecordSchema, ScoreResult
from protobufs.open_inference_pb2 import ModelInferRequest

PROTO = """
syntax = "proto3";
package loans;
import "google/protobuf/timestamp.proto";

message Loan {
  string record_id = 1;
  string dataType = 2;
  int64 ts = 3;
  double amount = 4;
  int32 term = 5;
  bool secured = 6;
  string purpose = 7;
  google.protobuf.Timestamp applied = 8;
  message Note { string text = 1; }
  Note note = 9;
}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("schema")
    proto = write(folder / "loans.proto", PROTO)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={folder}", "--include_imports",
         f"--descriptor_set_out={folder / 'loans.desc'}", str(proto)],
        check=True,
    )  # fmt: skip
    return folder


def fixed_now() -> int:
    return 1_700_000_000_000


# -- reading rows ----------------------------------------------------------------------------------


def test_csv_values_are_typed() -> None:
    assert [encode.parse_csv_value(t) for t in ("7", "-3", "+4", "1.5", "2e3", ".5", "-0.25")] == [
        7, -3, 4, 1.5, 2000.0, 0.5, -0.25,
    ]  # fmt: skip
    texts = ("true", "false", "True", "", "  ", "abc", "1.2.3", "nan")
    assert [encode.parse_csv_value(t) for t in texts] == [
        True,
        False,
        True,
        None,
        None,
        "abc",
        "1.2.3",
        "nan",
    ]
    assert isinstance(encode.parse_csv_value("7"), int)
    assert isinstance(encode.parse_csv_value("7.0"), float)


def test_a_csv_with_a_header_becomes_typed_objects(tmp_path: Path) -> None:
    path = write(
        tmp_path / "loans.csv",
        'amount,term,secured,purpose,note\n1200.5,36,true,"car, used",\n9,12,false,home,x\n',
    )
    assert encode.file_kind(path) == "csv"
    assert encode.read_rows(path) == [
        {"amount": 1200.5, "term": 36, "secured": True, "purpose": "car, used", "note": None},
        {"amount": 9, "term": 12, "secured": False, "purpose": "home", "note": "x"},
    ]


def test_a_csv_row_with_the_wrong_number_of_columns_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", "a,b\n1,2\n\n3,4,5\n")
    with pytest.raises(ValueError, match=r"bad\.csv:4: 3 columns, the header has 2"):
        encode.read_csv_rows(path)


def test_the_wine_csv_is_told_apart_and_read_as_before() -> None:
    wine = Path(__file__).resolve().parent.parent / "data" / "wine" / "winequality_red.csv"
    assert encode.file_kind(wine) == "wine"
    rows = encode.read_wine_rows(wine)
    assert rows[0][:3] == [7.4, 0.7, 0.0]
    first = encode.read_rows(wine)[0]
    assert first["fixed_acidity"] == 7.4 and first["alcohol"] == 9.4 and "quality" in first


def test_wine_rows_with_the_wrong_column_count_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "w.csv", "1;2;3;4;5;6;7;8;9;10;11\n1,2,3\n")
    with pytest.raises(ValueError, match=r"w\.csv:2: 1 columns"):
        encode.read_wine_rows(path)


def test_missing_and_unsupported_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        encode.file_kind(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match=r"\.jsonl, or a \.csv"):
        encode.file_kind(write(tmp_path / "x.txt", "a"))


def test_jsonl_rows_get_defaults_only_where_absent(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.jsonl",
        '{"x": 1}\n\n{"x": 2, "dataType": "other", "record_id": "mine", "ts": 5}\n{"x": 3, "ts": null}\n',
    )
    rows = encode.read_rows(path)
    options = encode.Encoding(kind="json", data_type="loans", id_prefix="p")
    sent = list(encode.encode_rows(rows, options, None, fixed_now))
    objects = [orjson.loads(r.value) for r in sent]
    assert objects == [
        {"x": 1, "dataType": "loans", "record_id": "p-0", "ts": fixed_now()},
        {"x": 2, "dataType": "other", "record_id": "mine", "ts": 5},
        {"x": 3, "ts": fixed_now(), "dataType": "loans", "record_id": "p-2"},
    ]
    assert all(r.headers == [("content-type", b"application/json")] and r.rows == 1 for r in sent)
    assert rows[0] == {"x": 1}  # the rows read are not changed


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"r\.jsonl:2: not JSON"):
        encode.read_jsonl_rows(write(tmp_path / "r.jsonl", '{"a": 1}\n{"a": \n'))
    with pytest.raises(ValueError, match=r"s\.jsonl:1: a list, not a JSON object"):
        encode.read_jsonl_rows(write(tmp_path / "s.jsonl", "[1]\n"))


def test_count_cycles_rows_and_ids_count_records_sent() -> None:
    options = encode.Encoding(kind="json", data_type="t", id_prefix="c", data_type_header=True)
    sent = list(encode.encode_rows([{"v": 1}, {"v": 2}], options, 5, fixed_now))
    assert [orjson.loads(r.value)["v"] for r in sent] == [1, 2, 1, 2, 1]
    assert [orjson.loads(r.value)["record_id"] for r in sent] == [f"c-{i}" for i in range(5)]
    assert sent[0].headers == [("content-type", b"application/json"), ("data-type", b"t")]


# -- Open Inference Protocol -----------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {"record_id": "a", "dataType": "x", "ts": 1, "amount": 1.5, "term": 36, "ok": True, "who": "ann",
     "vec": [1, 2.5]},
    {"amount": 2, "term": 12, "ok": False, "who": "bé", "vec": [3, 4]},
]  # fmt: skip


def test_an_oip_request_with_typed_contents() -> None:
    raw = encode.oip_request(ROWS, "loans", "a").SerializeToString()
    request = ModelInferRequest.FromString(raw)
    assert (request.model_name, request.id, len(request.raw_input_contents)) == ("loans", "a", 0)
    tensors = {t.name: t for t in request.inputs}
    assert list(tensors) == ["amount", "term", "ok", "who", "vec"]
    assert {n: (t.datatype, list(t.shape)) for n, t in tensors.items()} == {
        "amount": ("FP64", [2]),
        "term": ("INT64", [2]),
        "ok": ("BOOL", [2]),
        "who": ("BYTES", [2]),
        "vec": ("FP32", [2, 2]),
    }
    assert list(tensors["amount"].contents.fp64_contents) == [1.5, 2.0]
    assert list(tensors["term"].contents.int64_contents) == [36, 12]
    assert list(tensors["ok"].contents.bool_contents) == [True, False]
    assert list(tensors["who"].contents.bytes_contents) == [b"ann", "bé".encode()]
    assert list(tensors["vec"].contents.fp32_contents) == [1.0, 2.5, 3.0, 4.0]


def test_an_oip_request_with_raw_contents() -> None:
    request = ModelInferRequest.FromString(
        encode.oip_request(ROWS, "loans", "a", raw=True).SerializeToString()
    )
    assert [t.name for t in request.inputs] == ["amount", "term", "ok", "who", "vec"]
    assert all(not t.HasField("contents") for t in request.inputs)
    amount, term, ok, who, vec = request.raw_input_contents
    assert amount == struct.pack("<2d", 1.5, 2.0)
    assert term == (36).to_bytes(8, "little", signed=True) + (12).to_bytes(8, "little", signed=True)
    assert ok == b"\x01\x00"
    assert who == b"\x03\x00\x00\x00ann" + b"\x03\x00\x00\x00" + "bé".encode()
    assert vec == struct.pack("<4f", 1.0, 2.5, 3.0, 4.0)


def test_oip_rows_batch_records_into_requests_with_the_first_rows_id() -> None:
    options = encode.Encoding(kind="oip", data_type="loans", id_prefix="q", oip_rows=2)
    sent = list(encode.encode_rows([{"v": 1}, {"v": 2}, {"v": 3}], options, None, fixed_now))
    assert [r.rows for r in sent] == [2, 1]
    first, last = (ModelInferRequest.FromString(r.value) for r in sent)
    assert (first.id, list(first.inputs[0].shape), list(first.inputs[0].contents.int64_contents)) == (
        "q-0", [2], [1, 2],
    )  # fmt: skip
    assert (last.id, last.model_name, list(last.inputs[0].shape)) == ("q-2", "loans", [1])
    assert sent[0].headers == [
        ("content-type", b"application/x-protobuf; messageType=inference.ModelInferRequest")
    ]


def test_oip_refuses_what_a_tensor_cannot_hold() -> None:
    with pytest.raises(ValueError, match="'v' mixes types"):
        encode.oip_request([{"v": 1}, {"v": "a"}], "t", "i")
    with pytest.raises(ValueError, match="'v' is null or missing"):
        encode.oip_request([{"v": 1}, {"w": 2}], "t", "i")
    with pytest.raises(ValueError, match="arrays of different lengths"):
        encode.oip_request([{"v": [1]}, {"v": [1, 2]}], "t", "i")
    with pytest.raises(ValueError, match="nothing to send"):
        encode.oip_request([{"record_id": "r"}], "t", "i")


# -- protobuf of a user's schema -------------------------------------------------------------------


def test_confluent_framing_bytes() -> None:
    assert encode.confluent_frame(b"PAYLOAD", 1) == b"\x00\x00\x00\x00\x01\x00PAYLOAD"
    assert encode.confluent_frame(b"p", 0x01020304) == b"\x00\x01\x02\x03\x04\x00p"
    # indexes other than [0]: the count, then each, zigzag varints
    assert encode.confluent_frame(b"", 7, [1, 70]) == b"\x00\x00\x00\x00\x07" + bytes([4, 2, 140, 1])
    assert [encode.zigzag_varint(v) for v in (0, -1, 1, 2, 64)] == [
        b"\x00",
        b"\x01",
        b"\x02",
        b"\x04",
        b"\x80\x01",
    ]
    with pytest.raises(ValueError, match="4-byte"):
        encode.confluent_frame(b"", 2**32)


def test_protobuf_rows_of_a_compiled_schema(schema_dir: Path, tmp_path: Path) -> None:
    fds = encode.read_descriptor_set(schema_dir / "loans.desc")
    cls = encode.message_class(fds, "loans.Loan")
    csv = write(
        tmp_path / "loans.csv", "amount,term,secured,purpose,extra\n1200.5,36,true,car,zzz\n7,,false,,1\n"
    )
    options = encode.Encoding(kind="protobuf", data_type="loans", id_prefix="L", message=cls, schema_id=42)
    sent = list(encode.encode_rows(encode.read_rows(csv), options, None, fixed_now))
    assert sent[0].headers == [("content-type", b"application/x-protobuf; messageType=loans.Loan")]
    assert all(r.value[:6] == b"\x00\x00\x00\x00\x2a\x00" for r in sent)
    first, second = (cls.FromString(r.value[6:]) for r in sent)
    assert to_dict(first) == {
        "record_id": "L-0", "dataType": "loans", "ts": fixed_now(), "amount": 1200.5, "term": 36,
        "secured": True, "purpose": "car",
    }  # fmt: skip
    assert (to_dict(second)["amount"], to_dict(second)["term"], to_dict(second)["purpose"]) == (7.0, 0, "")


def test_a_proto_file_is_compiled_and_a_row_that_does_not_fit_is_named(schema_dir: Path) -> None:
    fds = encode.read_descriptor_set(schema_dir / "loans.proto")
    cls = encode.message_class(fds, "loans.Loan.Note")
    assert cls.DESCRIPTOR.full_name == "loans.Loan.Note"
    loan = encode.message_class(fds, "loans.Loan")
    with pytest.raises(ValueError, match=r"record 'r-1' does not fit loans\.Loan"):
        encode.protobuf_message(loan, {"record_id": "r-1", "term": "long"})


def test_an_unknown_message_name_lists_the_messages(schema_dir: Path) -> None:
    fds = (schema_dir / "loans.desc").read_bytes()
    with pytest.raises(
        ValueError, match=r"no message 'loans\.Lone'.*messages: loans\.Loan, loans\.Loan\.Note$"
    ):
        encode.message_class(fds, "loans.Lone")
    assert "google.protobuf.Timestamp" in encode.message_names(fds)


def test_a_set_in_any_file_order_builds_and_a_set_without_imports_is_refused(schema_dir: Path) -> None:
    fds = FileDescriptorSet.FromString((schema_dir / "loans.desc").read_bytes())
    reversed_set = FileDescriptorSet(file=list(reversed(fds.file)))
    assert encode.message_class(reversed_set.SerializeToString(), "loans.Loan").DESCRIPTOR.name == "Loan"
    alone = FileDescriptorSet(file=[f for f in fds.file if f.name == "loans.proto"])
    with pytest.raises(ValueError, match=r"lacks imported files google/protobuf/timestamp\.proto"):
        encode.message_class(alone.SerializeToString(), "loans.Loan")


def test_a_broken_schema_file_says_what_to_give(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a FileDescriptorSet"):
        encode.read_descriptor_set(write(tmp_path / "x.desc", "\xff\xff garbage"))
    with pytest.raises(ValueError, match="cannot compile"):
        encode.read_descriptor_set(write(tmp_path / "bad.proto", 'syntax = "proto3"; message {'))
    with pytest.raises(FileNotFoundError):
        encode.read_descriptor_set(tmp_path / "none.desc")


def test_the_record_schema_message(schema_dir: Path) -> None:
    fds = (schema_dir / "loans.desc").read_bytes()
    schema = RecordSchema.FromString(encode.record_schema("loans", "loans.Loan", fds).SerializeToString())
    assert (schema.data_type, schema.message_name, schema.file_descriptor_set) == ("loans", "loans.Loan", fds)
    with pytest.raises(ValueError, match="no message"):
        encode.record_schema("loans", "Loan", fds)


# -- the commands, without a broker ----------------------------------------------------------------


class FakeProducer:
    """Records what would be produced; acks everything."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None,
                on_delivery: Any = None) -> None:  # fmt: skip
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0

    def list_topics(self, _topic: str, timeout: float) -> None:
        pass


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProducer]:
    fake = FakeProducer()
    monkeypatch.setattr(publish, "producer", lambda _settings, **_config: fake)
    monkeypatch.setattr(topics, "require_broker", lambda _settings: None)
    yield fake


def test_publish_schema_sends_a_record_schema_to_the_models_topic(
    schema_dir: Path, fake_producer: FakeProducer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["publish-schema", str(schema_dir / "loans.proto"), "--message", "loans.Loan", "--data-type", "loans"]
    )
    assert code == 0, capsys.readouterr().err
    [sent] = fake_producer.sent
    assert (sent["topic"], sent["key"]) == (Settings().models_topic, b"loans")
    assert sent["headers"] == [
        ("content-type", b"application/x-protobuf; messageType=modelstream.RecordSchema")
    ]
    schema = RecordSchema.FromString(sent["value"])
    assert (schema.data_type, schema.message_name) == ("loans", "loans.Loan")
    assert "loans.Loan" in encode.message_names(schema.file_descriptor_set)


def test_publish_schema_with_an_unknown_message_fails_before_sending(
    schema_dir: Path, fake_producer: FakeProducer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["publish-schema", str(schema_dir / "loans.desc"), "--message", "Loan", "--data-type", "loans"]
    )
    assert code == ExitCode.REJECTED and not fake_producer.sent
    error = capsys.readouterr().err
    assert "SCHEMA_INVALID: record schema: no message 'Loan' in the schema; its messages: loans.Loan, " \
        "loans.Loan.Note\n" in error  # fmt: skip


def test_publish_data_oip_raw_to_a_topic(
    tmp_path: Path, fake_producer: FakeProducer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "r.jsonl", '{"a": 1.5}\n{"a": 2.5}\n{"a": 3.5}\n')
    code = main(["publish-data", str(path), "--data-type", "t", "--encoding", "oip", "--oip-rows", "2",
                 "--oip-raw", "--topic", "in", "--count", "4", "--id-prefix", "z"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert [s["topic"] for s in fake_producer.sent] == ["in", "in"]
    requests = [ModelInferRequest.FromString(s["value"]) for s in fake_producer.sent]
    assert [r.id for r in requests] == ["z-0", "z-2"]
    assert requests[1].raw_input_contents[0] == struct.pack("<2d", 3.5, 1.5)
    assert "published 4 OIP" in capsys.readouterr().out


def test_publish_data_protobuf_confluent_with_the_data_type_header(
    schema_dir: Path, tmp_path: Path, fake_producer: FakeProducer
) -> None:
    path = write(tmp_path / "r.csv", "amount,term\n1.5,3\n")
    schema = str(schema_dir / "loans.desc")
    code = main(["publish-data", str(path), "--data-type", "loans", "--schema", schema, "--message",
                 "loans.Loan", "--confluent", "--schema-id", "9", "--data-type-header"])  # fmt: skip
    assert code == 0
    [sent] = fake_producer.sent
    assert sent["topic"] == Settings().data_topic
    assert sent["value"][:6] == b"\x00\x00\x00\x00\x09\x00"
    assert sent["headers"] == [
        ("content-type", b"application/x-protobuf; messageType=loans.Loan"),
        ("data-type", b"loans"),
    ]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["missing.jsonl"], "no such file"),
        (["ok.jsonl", "--encoding", "protobuf"], "--encoding protobuf needs --schema"),
        (["ok.jsonl", "--message", "a.B"], "--encoding protobuf needs --schema"),
        (["ok.jsonl", "--oip-rows", "2"], "--oip-rows is for --encoding oip, not json"),
        (["ok.jsonl", "--confluent"], "--confluent is for --encoding protobuf"),
        (["bad.csv"], "bad.csv:3: 1 columns, the header has 2"),
        (["ok.jsonl", "--encoding", "oip", "--oip-rows", "0"], "--oip-rows must be at least 1"),
    ],
)
def test_publish_data_errors_a_user_can_act_on(
    argv: list[str],
    error: str,
    tmp_path: Path,
    fake_producer: FakeProducer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(tmp_path / "ok.jsonl", '{"a": 1}\n')
    write(tmp_path / "bad.csv", "a,b\n1,2\n3\n")
    monkeypatch.chdir(tmp_path)
    assert main(["publish-data", *argv]) == 2
    assert error in capsys.readouterr().err
    assert not fake_producer.sent


def test_publish_model_input_fields(tmp_path: Path, fake_producer: FakeProducer) -> None:
    model = write(tmp_path / "m.pmml", "<PMML/>")
    assert main(["publish-model", str(model), "--input-fields", "a, b,c", "--name", "m", "--version", "2",
                 "--data-type", "loans", "--input-name", "x", "--output-name", "y",
                 "--no-check"]) == 0  # fmt: skip
    [sent] = fake_producer.sent
    from protobufs.modelstream_pb2 import ModelDescriptor

    descriptor = ModelDescriptor.FromString(sent["value"])
    assert list(descriptor.input_fields) == ["a", "b", "c"]
    assert (descriptor.name, descriptor.version, descriptor.dataType, descriptor.input_name) == (
        "m",
        "2",
        "loans",
        "x",
    )
    assert descriptor.data == b"<PMML/>" and descriptor.modeltype == ModelDescriptor.PMML
    assert list(model_descriptor(model, "m", "t", "pmml").input_fields) == []
    assert main(["publish-model", str(model), "--input-fields", "a,,b"]) == 2


def test_score_json_has_the_source_and_outputs() -> None:
    score = ScoreResult(
        record_id="r", data_type="t", label="good", model_name="m", model_version="1", source_topic="in",
        source_partition=2, source_offset=12345678901, probabilities={"good": 0.75, "bad": 0.25},
        outputs={"emb": OutputTensor(shape=[2], values=[0.5, 1.5]), "tag": OutputTensor(strings=["x"])},
    )  # fmt: skip
    data = orjson.loads(orjson.dumps(to_dict(score)))
    keys = ("record_id", "data_type", "label", "model_name", "model_version")
    assert [data[k] for k in keys] == ["r", "t", "good", "m", "1"]
    assert data["probabilities"] == {"good": 0.75, "bad": 0.25}
    assert (data["source_topic"], data["source_partition"], data["source_offset"]) == ("in", 2, 12345678901)
    assert data["outputs"] == {
        "emb": {"shape": [2], "values": [0.5, 1.5], "strings": []},
        "tag": {"shape": [], "values": [], "strings": ["x"]},
    }
    assert "value" not in data
    assert to_dict(ScoreResult(value=0.0))["value"] == 0.0


def test_help_texts_of_the_new_commands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    choices: dict[str, Any] = sub.choices  # type: ignore[assignment]
    data = choices["publish-data"].format_help()
    for flag in ("--data-type", "--topic", "--encoding", "auto,json,oip,protobuf", "--schema", "--message",
                 "--confluent", "--schema-id", "--oip-rows", "--oip-raw", "--data-type-header", "--rate",
                 "--count", "--id-prefix", ".jsonl", "header row"):  # fmt: skip
        assert flag in data, flag
    schema = choices["publish-schema"].format_help()
    for word in ("--message", "--data-type", "FileDescriptorSet", ".proto", "RecordSchema"):
        assert word in schema, word
    assert "--input-fields" in choices["publish-model"].format_help()
    assert "publish-schema" in parser.format_help()
