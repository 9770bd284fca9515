"""The serving core on records of other schemas than WineRecord, without Flink or Kafka: loans as JSON and
as protobuf of a published schema, digits as Open Inference Protocol requests, each scored as the model's
own runtime scores the same rows; schemas and models that cannot serve are dead-lettered with why."""

from __future__ import annotations

import csv
import struct
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
import pytest
from google.protobuf.message import Message

from modelstream.codecs.base import SourceRecord
from modelstream.codecs.protobuf import message_class
from modelstream.contract import ModelOptions
from modelstream.serving import ModelServer, ServingSettings
from modelstream.settings import PROJECT_ROOT
from modelstream.testing import CountingMetrics, ManualClock, MemoryKeyContext, letters, scores
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, RecordSchema, ScoreResult
from protobufs.open_inference_pb2 import ModelInferRequest

D = ModelDescriptor
LOANS_DIR = PROJECT_ROOT / "data" / "loans"
DIGITS_DIR = PROJECT_ROOT / "data" / "digits"
LOANS_DESC = (LOANS_DIR / "loans.desc").read_bytes()
LOAN = "loans.LoanApplication"
FLOATS, INTS = ("age", "income", "loan_amount"), ("term_months", "credit_score")
STRINGS = ("employment", "purpose", "region")
ROWS = 120


@pytest.fixture
def server(clock: ManualClock, metrics: CountingMetrics) -> ModelServer:
    return ModelServer(
        ServingSettings(stats_interval_ms=1000), ModelOptions(), clock_ms=clock, metrics=metrics
    )


@cache
def loans() -> list[dict[str, Any]]:
    """The loans CSV's rows, typed as a JSON producer would send them."""
    with open(LOANS_DIR / "loans.csv", encoding="utf-8", newline="") as f:
        rows: list[dict[str, Any]] = list(csv.DictReader(f))[:ROWS]
    for row in rows:
        row.update({c: float(row[c]) for c in FLOATS if c != "age"})
        row.update({c: int(row[c]) for c in ("age", *INTS)})
        row["dataType"] = "loans"
    return rows


def descriptor(path: str, version: str, data_type: str = "loans") -> bytes:
    data = (PROJECT_ROOT / "data" / path).read_bytes()
    name = path.rsplit("/", 1)[-1]
    return D(name=name, dataType=data_type, modeltype=D.ONNX, version=version, data=data).SerializeToString()


def record(value: bytes, offset: int, encoding: Encoding, topic: str, meta: str = "") -> SourceRecord:
    return SourceRecord(value, 0, offset, encoding, topic, 1_700_000_000_000, None, meta)


def json_records(rows: Sequence[dict[str, Any]]) -> list[SourceRecord]:
    return [record(orjson.dumps(row), i, Encoding.JSON, "loans-json") for i, row in enumerate(rows)]


def probabilities(results: list[ScoreResult], classes: Sequence[str]) -> np.ndarray[Any, Any]:
    return np.array([[r.probabilities[c] for c in classes] for r in results])


def loans_reference(model: str, rows: Sequence[dict[str, Any]]) -> tuple[list[str], np.ndarray[Any, Any]]:
    """onnxruntime's classes and probabilities (columns no, yes) for loans rows, called directly."""
    session = ort.InferenceSession(str(LOANS_DIR / model), providers=["CPUExecutionProvider"])
    feeds: dict[str, np.ndarray[Any, Any]] = {c: np.array([[r[c]] for r in rows], np.float32) for c in FLOATS}
    feeds |= {c: np.array([[r[c]] for r in rows], np.int64) for c in INTS}
    feeds |= {c: np.array([[r[c]] for r in rows], object) for c in STRINGS}
    label, proba = session.run(None, feeds)
    if isinstance(proba, list):  # ZipMap: a {class: probability} per row
        proba = [[p["no"], p["yes"]] for p in proba]
    return [str(x) for x in label], np.asarray(proba, dtype=np.float64)


# -- JSON -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["loans_pipeline.onnx", "loans_pipeline_nozipmap.onnx"])
def test_loans_json_records_score_as_onnxruntime_scores_the_same_rows(
    server: ModelServer, model: str
) -> None:
    ctx = MemoryKeyContext()
    assert not letters(server.on_model("loans", (descriptor(f"loans/{model}", "1"), 0, 0), ctx))
    rows = loans()
    results = scores(server.on_records("loans", json_records(rows), ctx))
    assert [r.record_id for r in results] == [row["record_id"] for row in rows]
    assert {(r.data_type, r.model_version, r.source_topic) for r in results} == {("loans", "1", "loans-json")}
    assert [r.source_offset for r in results] == list(range(ROWS))
    labels, proba = loans_reference(model, rows)
    assert [r.label for r in results] == labels and set(labels) == {"no", "yes"}
    np.testing.assert_allclose(probabilities(results, ("no", "yes")), proba, rtol=1e-6)
    assert all(set(r.probabilities) == {"no", "yes"} for r in results)


def test_both_loans_pipelines_agree_and_a_record_lacking_a_column_is_dead_lettered(
    server: ModelServer,
) -> None:
    rows = [dict(row) for row in loans()[:10]]
    del rows[3]["region"]
    by_model = []
    for model in ("loans_pipeline.onnx", "loans_pipeline_nozipmap.onnx"):
        ctx = MemoryKeyContext()
        server.on_model(f"loans-{model}", (descriptor(f"loans/{model}", "1", f"loans-{model}"), 0, 0), ctx)
        out = server.on_records(f"loans-{model}", json_records(rows), ctx)
        (letter,) = letters(out)
        assert letter.reason == DeadLetter.RECORD_INVALID and letter.message == "missing field region"
        assert (letter.offset, letter.source_topic, letter.raw) == (3, "loans-json", orjson.dumps(rows[3]))
        by_model.append(scores(out))
    zipmap, plain = by_model
    assert [r.record_id for r in zipmap] == [row["record_id"] for i, row in enumerate(rows) if i != 3]
    assert [r.label for r in zipmap] == [r.label for r in plain]
    np.testing.assert_allclose(
        probabilities(zipmap, ("no", "yes")), probabilities(plain, ("no", "yes")), rtol=1e-6
    )


# -- protobuf of a published schema ----------------------------------------------------------------


def loan_messages(rows: Sequence[dict[str, Any]]) -> list[bytes]:
    cls = message_class(LOANS_DESC, LOAN)
    fields = ("record_id", *FLOATS, *INTS, *STRINGS)
    messages: list[Message] = [cls(**{f: row[f] for f in fields}, data_type="loans") for row in rows]
    return [m.SerializeToString() for m in messages]


def confluent(payload: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", 42) + b"\x00" + payload  # schema id 42, message index [0]


def test_a_published_record_schema_lets_protobuf_records_be_scored(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    schema = RecordSchema(data_type="loans", message_name=LOAN, file_descriptor_set=LOANS_DESC)
    assert server.on_schema("loans", (schema.SerializeToString(), 0, 3), ctx) == []
    assert ctx.schemas == {LOAN: LOANS_DESC}
    model = "loans_pipeline_nozipmap.onnx"
    assert not letters(server.on_model("loans", (descriptor(f"loans/{model}", "pb"), 0, 4), ctx))
    rows = loans()
    values = [v if i % 2 else confluent(v) for i, v in enumerate(loan_messages(rows))]
    records = [record(v, i, Encoding.PROTOBUF, "loans-pb", LOAN) for i, v in enumerate(values)]
    out = server.on_records("loans", records, ctx)
    assert not letters(out)
    results = scores(out)
    assert [r.record_id for r in results] == [row["record_id"] for row in rows]
    labels, proba = loans_reference(model, rows)
    assert [r.label for r in results] == labels
    np.testing.assert_allclose(probabilities(results, ("no", "yes")), proba, rtol=1e-6)

    # the schema is kept in state: a restarted worker reads the records too
    restarted = ModelServer(ServingSettings(), ModelOptions())
    assert [r.record_id for r in scores(restarted.on_records("loans", records[:3], ctx))] == [
        row["record_id"] for row in rows[:3]
    ]


def test_protobuf_records_wait_for_their_schema_then_time_out_as_undecodable() -> None:
    now = [1_000]
    server = ModelServer(ServingSettings(pending_timeout_ms=500), ModelOptions(), clock_ms=lambda: now[0])
    ctx = MemoryKeyContext()
    server.on_model("loans", (descriptor("loans/loans_pipeline_nozipmap.onnx", "1"), 0, 0), ctx)
    first, second = loan_messages(loans()[:2])
    assert server.on_records("loans", [record(first, 8, Encoding.PROTOBUF, "loans-pb", LOAN)], ctx) == []
    schema = RecordSchema(data_type="loans", message_name=LOAN, file_descriptor_set=LOANS_DESC)
    (score,) = scores(server.on_schema("loans", (schema.SerializeToString(), 0, 1), ctx))
    assert score.source_offset == 8 and ctx.pending == []

    other = MemoryKeyContext()
    server.on_model("other", (descriptor("loans/loans_pipeline_nozipmap.onnx", "1"), 0, 0), other)
    assert server.on_records("other", [record(second, 9, Encoding.PROTOBUF, "loans-pb", LOAN)], other) == []
    now[0] += 500
    (letter,) = letters(server.on_timer("other", other))
    assert (
        letter.reason == DeadLetter.RECORD_UNDECODABLE
        and "no schema" in letter.message
        and letter.offset == 9
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            RecordSchema(data_type="loans", message_name="loans.Nope", file_descriptor_set=LOANS_DESC),
            "loans.Nope",
        ),
        (
            RecordSchema(data_type="loans", message_name=LOAN, file_descriptor_set=b"\xff\xff"),
            "FileDescriptorSet",
        ),
    ],
    ids=["unknown-message", "not-a-descriptor-set"],
)
def test_a_schema_that_does_not_build_is_dead_lettered_and_the_good_one_stays(
    server: ModelServer, schema: RecordSchema, message: str
) -> None:
    ctx = MemoryKeyContext()
    good = RecordSchema(data_type="loans", message_name=LOAN, file_descriptor_set=LOANS_DESC)
    server.on_schema("loans", (good.SerializeToString(), 0, 1), ctx)
    raw = schema.SerializeToString()
    (letter,) = letters(server.on_schema("loans", (raw, 2, 7), ctx))
    assert letter.reason == DeadLetter.SCHEMA_INVALID and message in letter.message
    assert (letter.source_topic, letter.partition, letter.offset, letter.raw) == ("models", 2, 7, raw)
    assert letter.data_type == "loans" and ctx.schemas == {LOAN: LOANS_DESC}
    server.on_model("loans", (descriptor("loans/loans_pipeline_nozipmap.onnx", "1"), 0, 0), ctx)
    (value,) = loan_messages(loans()[:1])
    assert (
        len(scores(server.on_records("loans", [record(value, 0, Encoding.PROTOBUF, "loans-pb", LOAN)], ctx)))
        == 1
    )


# -- models whose inputs the records cannot feed --------------------------------------------------


def test_a_model_the_latest_good_record_cannot_feed_is_refused_and_the_current_one_keeps_serving(
    server: ModelServer, clock: ManualClock, metrics: CountingMetrics
) -> None:
    ctx = MemoryKeyContext()
    server.on_model("loans", (descriptor("loans/loans_pipeline_nozipmap.onnx", "v1"), 0, 0), ctx)
    rows = loans()[:5]
    clock.now += 5_000  # stats (and with them the latest good record) go to state
    assert len(scores(server.on_records("loans", json_records(rows), ctx))) == 5
    assert ctx.probe is not None

    digits = descriptor("digits/digits_mlp.onnx", "v2")
    for current in (server, ModelServer(ServingSettings(), ModelOptions())):  # also from state alone
        (letter,) = letters(current.on_model("loans", (digits, 1, 8), ctx))
        assert letter.reason == DeadLetter.MODEL_INPUTS_UNBOUND
        assert "pixels float32[n, 64]" in letter.message and "missing field pixels" in letter.message
        assert (letter.model_name, letter.model_version, letter.offset) == ("digits_mlp.onnx", "v2", 8)
        assert [D.FromString(v).version for v in ctx.versions.values()] == ["v1"]
        results = scores(current.on_records("loans", json_records(rows[:2]), ctx))
        assert [r.model_version for r in results] == ["v1", "v1"]
    assert metrics.rejected == ["loans"]

    accepted = server.on_model("loans", (descriptor("loans/loans_pipeline.onnx", "v3"), 0, 9), ctx)
    assert not letters(accepted)
    assert {r.model_version for r in scores(server.on_records("loans", json_records(rows), ctx))} == {"v3"}


# -- Open Inference Protocol ------------------------------------------------------------------------


@cache
def digits() -> list[dict[str, Any]]:
    lines = (DIGITS_DIR / "digits.jsonl").read_text(encoding="utf-8").splitlines()
    rows: list[dict[str, Any]] = [orjson.loads(line) for line in lines[:40]]
    return rows


def digits_request(rows: Sequence[dict[str, Any]], request_id: str, raw: bool) -> bytes:
    request = ModelInferRequest(model_name="digits", id=request_id)
    pixels = np.array([row["pixels"] for row in rows], dtype="<f4")
    tensor = request.inputs.add(name="pixels", datatype="FP32", shape=list(pixels.shape))
    if raw:
        request.raw_input_contents.append(pixels.tobytes())
    else:
        tensor.contents.fp32_contents.extend(pixels.ravel().tolist())
    return request.SerializeToString()


def test_digits_oip_requests_score_row_by_row_as_onnxruntime_does(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    assert not letters(
        server.on_model("digits", (descriptor("digits/digits_mlp.onnx", "1", "digits"), 0, 0), ctx)
    )
    rows = digits()
    sizes = [1, 3, 5, 1, 7, 2, 11, 10]  # 40 rows in 8 requests, typed and raw contents
    records, expected_ids, start = [], [], 0
    for i, size in enumerate(sizes):
        part = rows[start : start + size]
        records.append(
            record(digits_request(part, f"req-{i}", raw=i % 2 == 1), i, Encoding.OIP, "digits-oip")
        )
        expected_ids += [f"req-{i}"] if size == 1 else [f"req-{i}[{j}]" for j in range(size)]
        start += size
    out = server.on_records("digits", records, ctx)
    assert not letters(out)
    results = scores(out)
    assert [r.record_id for r in results] == expected_ids
    assert [r.source_offset for r in results] == [i for i, size in enumerate(sizes) for _ in range(size)]

    session = ort.InferenceSession(str(DIGITS_DIR / "digits_mlp.onnx"), providers=["CPUExecutionProvider"])
    classes = [str(c) for c in range(10)]
    for result, row in zip(results, rows, strict=True):
        label, proba = session.run(None, {"pixels": np.array([row["pixels"]], dtype=np.float32)})
        assert result.label == str(label[0])
        np.testing.assert_allclose(probabilities([result], classes)[0], proba[0], rtol=1e-5, atol=1e-7)
