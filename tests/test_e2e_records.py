"""Records of any schema through the real broker and the real job: JSON, user protobuf (bare and with
Confluent framing), Open Inference Protocol requests and WineRecords, interleaved on one topic and spread
over two, each scored by its own data type's model and equal to the runtime called directly."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
import pytest

from client import job_control, publish, topics
from client.encode import (
    Encoding,
    confluent_frame,
    encode_rows,
    read_descriptor_set,
    read_rows,
    record_schema,
)
from client.flink_rest import FlinkRest
from client.messages import decode_dead_letter, decode_score
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import DeadLetter, ScoreResult
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for

pytestmark = pytest.mark.e2e
LOANS = PROJECT_ROOT / "data" / "loans"
DIGITS = PROJECT_ROOT / "data" / "digits"
LOAN_MESSAGE = "loans.LoanApplication"
LOAN_INPUTS = {
    "age": np.float32,
    "income": np.float32,
    "loan_amount": np.float32,
    "term_months": np.int64,
    "credit_score": np.int64,
    "employment": object,
    "purpose": object,
    "region": object,
}


def _now() -> int:
    return time.time_ns() // 1_000_000


def _send(settings: Settings, topic: str, rows: list[dict[str, Any]], encoding: Encoding) -> None:
    sent = publish.publish_encoded(settings, topic, encode_rows(rows, encoding, None, _now))
    assert sent == len(rows)


def _loan_reference(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """The loans pipeline (ZipMap) called directly on the rows: (class, class -> probability) each."""
    session = ort.InferenceSession(str(LOANS / "loans_pipeline.onnx"), providers=["CPUExecutionProvider"])
    feed = {name: np.array([[row[name]] for row in rows], dtype=dtype) for name, dtype in LOAN_INPUTS.items()}
    labels, probabilities = session.run(None, feed)
    return [
        (str(label), {str(k): float(v) for k, v in p.items()})
        for label, p in zip(labels, probabilities, strict=True)
    ]


def _pmml_reference(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """The loans PMML tree in JPMML-Evaluator, called directly on the rows."""
    import pandas as pd
    from jpmml_evaluator import make_evaluator

    evaluator = make_evaluator(str(LOANS / "loans_tree.pmml"), backend="jpype").verify()
    result = evaluator.evaluateAll(pd.DataFrame([{name: row[name] for name in LOAN_INPUTS} for row in rows]))
    classes = [c[len("probability(") : -1] for c in result.columns if c.startswith("probability(")]
    return [
        (str(r["approved"]), {c: float(r[f"probability({c})"]) for c in classes})
        for r in result.to_dict("records")
    ]


def _digit_reference(rows: list[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    session = ort.InferenceSession(str(DIGITS / "digits_mlp.onnx"), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(
        None, {"pixels": np.array([r["pixels"] for r in rows], dtype=np.float32)}
    )
    return [(str(label), p.tolist()) for label, p in zip(labels, probabilities, strict=True)]


def _assert_same(score: ScoreResult, label: str, probabilities: dict[str, float]) -> None:
    assert score.label == label, score.record_id
    assert set(score.probabilities) == set(probabilities)
    for cls, p in probabilities.items():
        assert abs(score.probabilities[cls] - p) <= 1e-6, (score.record_id, cls)


def test_records_of_any_schema_are_each_scored_by_their_data_types_model(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    pb_topic = stack_settings.data_topic + "-loans-pb"
    settings = stack_settings.replace(
        data_topics=f"{stack_settings.data_topic}, {pb_topic};encoding=protobuf;message={LOAN_MESSAGE};"
        "data-type-field=11;data-type=loans",
        checkpoint_interval_ms=1000,
    )
    topics.ensure_topics(settings)
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "wine-onnx", "wine", "onnx", version="w1"
    )
    publish.publish_model_file(
        settings, LOANS / "loans_pipeline.onnx", "loans-onnx", "loans", "onnx", version="l1"
    )
    publish.publish_model_file(
        settings, DIGITS / "digits_mlp.onnx", "digits-onnx", "digits", "onnx", version="d1"
    )
    publish.publish_model_file(
        settings, LOANS / "loans_tree.pmml", "loans-pmml", "loans-pmml", "pmml", version="p1"
    )
    descriptor_set = read_descriptor_set(LOANS / "loans.desc")
    publish.publish_record_schema(settings, record_schema("loans", LOAN_MESSAGE, descriptor_set))
    loan_class = _message_class(descriptor_set)

    loans = read_rows(LOANS / "loans.csv")
    digits = read_rows(DIGITS / "digits.jsonl")
    data = settings.data_topic
    json_loans = Encoding("json", "loans", "json")
    # interleaved on the default topic: wine, loans as JSON, digits as OIP (4 rows a request, typed and raw
    # contents) and as JSON, loans as protobuf named by its content-type header (and typed by a data-type
    # header: the default topic names no data-type field)
    for part in range(4):
        publish.publish_records(settings, WINE_DIR / "winequality_red.csv", count=50, id_prefix=f"wine{part}")
        _send(settings, data, loans[part * 75 : (part + 1) * 75], json_loans)
        _send(
            settings,
            data,
            digits[part * 50 : (part + 1) * 50],
            Encoding("oip", "digits", "oip", 4, part % 2 == 1),
        )
        _send(
            settings, data, digits[200 + part * 25 : 200 + (part + 1) * 25], Encoding("json", "digits", "dj")
        )
        _send(
            settings,
            data,
            loans[300 + part * 25 : 300 + (part + 1) * 25],
            Encoding("protobuf", "loans", "pb", message=loan_class, data_type_header=True),
        )
    # on a topic of their own, without headers: loans as protobuf in Confluent framing
    _send(
        settings,
        pb_topic,
        loans[400:500],
        Encoding("protobuf", "loans", "cf", message=loan_class, schema_id=7),
    )

    # bad input, each in a batch with good records of its data type
    bad_loans = [dict(loans[500]), dict(loans[501])]
    del bad_loans[0]["age"]
    bad_loans[1]["income"] = "plenty"
    bad_digit = dict(digits[300], pixels=digits[300]["pixels"][:63], record_id="short")
    p = topics.producer(settings)
    json_type = [("content-type", b"application/json")]
    undecodable = {
        b"{not json": [*json_type, ("data-type", b"loans")],
        b"\xff\x01garbage": [
            ("content-type", b"application/x-protobuf; messageType=inference.ModelInferRequest"),
            ("data-type", b"digits"),
        ],
        b"\x0a\xff\xff": [
            ("content-type", f"application/x-protobuf; messageType={LOAN_MESSAGE}".encode()),
            ("data-type", b"loans"),
        ],
    }
    for value, headers in undecodable.items():
        p.produce(data, value=value, headers=list[tuple[str, str | bytes | None]](headers))
    p.produce(pb_topic, value=confluent_frame(b"\x0a\xff\xff", 7))
    p.flush(30)
    _send(settings, data, [*bad_loans, *loans[502:510]], json_loans)
    _send(settings, data, [bad_digit, *digits[301:305]], Encoding("json", "digits", "dj"))
    # the same loan columns into a PMML tree: categorical strings as PMML categorical fields
    _send(settings, data, loans[600:700], Encoding("json", "loans-pmml", "pmml"))
    # the fixed contract: JSON objects on the default topic need no header at all
    for row in loans[700:720]:
        p.produce(data, value=orjson.dumps({**row, "dataType": "loans"}))
    p.flush(30)

    expected = 200 + 300 + 200 + 100 + 100 + 100 + 8 + 4 + 100 + 20
    scores = {
        s.record_id: s
        for s in map(decode_score, read_topic(settings, settings.scores_topic, expected, job=job))
    }
    assert len(scores) == expected, sorted({i.rstrip("0123456789[]-") for i in scores})
    for i in range(4):
        assert {scores[f"wine{i}-{n}"].model_version for n in range(50)} == {"w1"}
    loan_rows = loans[:500] + loans[502:510] + loans[700:720]
    for row, (label, probabilities) in zip(loan_rows, _loan_reference(loan_rows), strict=True):
        score = scores[row["record_id"]]
        assert (score.data_type, score.model_version) == ("loans", "l1")
        _assert_same(score, label, probabilities)
    for row, (label, probabilities) in zip(loans[600:700], _pmml_reference(loans[600:700]), strict=True):
        score = scores[row["record_id"]]
        assert (score.data_type, score.model_version) == ("loans-pmml", "p1")
        _assert_same(score, label, probabilities)
    assert {scores[r["record_id"]].source_topic for r in loans[400:500]} == {pb_topic}
    assert {scores[r["record_id"]].source_topic for r in loans[:400]} == {data}
    digit_rows = digits[:305]
    # requests of 4 rows within each part of 50: row j of the request that starts at row `first`
    firsts = [i // 50 * 50 + i % 50 // 4 * 4 for i in range(200)]
    ids = [f"{digits[first]['record_id']}[{i - first}]" for i, first in enumerate(firsts)]
    ids += [r["record_id"] for r in digits[200:305]]
    for i, (digit, digit_probabilities) in enumerate(_digit_reference(digit_rows)):
        if i == 300:
            continue  # the short one, dead-lettered below
        _assert_same(scores[ids[i]], digit, {str(k): p for k, p in enumerate(digit_probabilities)})

    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 7, job=job)]
    by_reason: dict[int, list[DeadLetter]] = {}
    for letter in letters:
        by_reason.setdefault(letter.reason, []).append(letter)
    invalid = sorted(d.message for d in by_reason[DeadLetter.RECORD_INVALID])
    assert len(invalid) == 3
    assert "missing field age" in invalid[2] and "income is a string, expected float32" in invalid[0]
    assert "pixels has shape [n, 63], expected [n, 64]" in invalid[1]
    assert sorted(d.raw for d in by_reason[DeadLetter.RECORD_UNDECODABLE]) == sorted(
        [*undecodable, confluent_frame(b"\x0a\xff\xff", 7)]
    )

    # a model whose inputs the data type's records cannot feed is refused; the serving one keeps serving
    publish.publish_model_file(settings, DIGITS / "digits_mlp.onnx", "wrong", "loans", "onnx", version="x")
    unbound = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 8, job=job)][
        7:
    ]
    assert [(d.reason, d.model_version) for d in unbound] == [(DeadLetter.MODEL_INPUTS_UNBOUND, "x")]
    assert "pixels" in unbound[0].message
    _send(settings, data, loans[510:520], json_loans)
    later = read_topic(settings, settings.scores_topic, expected + 10, job=job)
    assert {decode_score(v).model_version for v in later[expected:]} == {"l1"}

    # a restart from a checkpoint keeps the schema: protobuf records decode without publishing it again
    rest = FlinkRest(settings.jobmanager)
    job_id = rest.wait_for_job()
    first = (rest.latest_checkpoint(job_id) or (0,))[0]
    wait_for(lambda: (rest.latest_checkpoint(job_id) or (0,))[0] > first + 1, 60, "two more checkpoints")
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    checkpoint = job_control.newest_checkpoint(settings, job_id)
    assert checkpoint is not None
    restarted = start_job(settings.replace(restore_from=checkpoint.as_uri()))
    _send(
        settings,
        pb_topic,
        loans[520:540],
        Encoding("protobuf", "loans", "cf", message=loan_class, schema_id=7),
    )
    after = [
        decode_score(v) for v in read_topic(settings, settings.scores_topic, expected + 30, job=restarted)
    ]
    restored = {s.record_id: s for s in after if s.source_topic == pb_topic}
    assert {r["record_id"] for r in loans[520:540]} <= set(restored)
    assert restarted.poll() is None


def _message_class(descriptor_set: bytes) -> Any:
    from client.encode import message_class

    return message_class(descriptor_set, LOAN_MESSAGE)
