"""The vertical slice through the real broker and the real PyFlink job."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from client import publish, topics
from client.messages import decode_dead_letter, decode_score, decode_stats
from modelstream.records import WINE, wine_record_from_row
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, WineRecord
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"


def _serving_version(settings: Settings) -> str | None:
    """The model version the latest stats snapshot says serves (None before any)."""
    messages = topics.consume(settings, settings.stats_topic, idle_timeout_s=0.5)
    snapshots = [decode_stats(m.value() or b"") for m in messages]
    return snapshots[-1].current.model.version if snapshots else None


def test_onnx_then_pmml_one_result_per_record(stack_settings: Settings, start_job: JobStarter) -> None:
    settings = stack_settings
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "wine-onnx", "wine", "onnx", version="o-1"
    )
    publish.publish_records(settings, CSV, count=1000, id_prefix="first")
    first = read_topic(settings, settings.scores_topic, 1000, job=job)
    assert len(first) == 1000

    publish.publish_model_file(
        settings,
        WINE_DIR / "winequalityDecisionTreeClassification.pmml",
        "wine-tree",
        "wine",
        "pmml",
        version="p-7",
    )
    wait_for(lambda: _serving_version(settings) == "p-7", 120, "the PMML model to serve")
    publish.publish_records(settings, CSV, count=1000, id_prefix="second")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 2000, job=job)]

    ids = [s.record_id for s in scores]
    assert len(ids) == 2000 and len(set(ids)) == 2000, "exactly one result per record"
    by_id = {s.record_id: s for s in scores}
    for i in range(1000):
        onnx, pmml = by_id[f"first-{i}"], by_id[f"second-{i}"]
        assert (onnx.model_name, onnx.model_version) == ("wine-onnx", "o-1")
        assert (pmml.model_name, pmml.model_version) == ("wine-tree", "p-7")
        assert onnx.label in {"3", "4", "5", "6", "7", "8"} and pmml.label in {"3", "4", "5", "6", "7", "8"}
        assert pmml.probabilities[pmml.label] == max(pmml.probabilities.values())
    assert job.poll() is None


def test_random_bytes_go_to_dead_letters_and_job_keeps_scoring(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(pending_timeout_ms=3000)
    job = start_job(settings)
    rng = random.Random(42)
    junk = [rng.randbytes(rng.randint(1, 200)) for _ in range(200)]
    p = topics.producer(settings)
    for i, raw in enumerate(junk):
        p.produce(settings.data_topic if i < 100 else settings.models_topic, value=raw)
    p.flush(30)
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 200, job=job)]

    assert sorted(d.raw for d in letters) == sorted(junk), (
        "each junk message is dead-lettered once, bytes intact"
    )
    reasons = {d.raw: d for d in letters}
    for raw in junk[:100]:
        assert reasons[raw].source_topic == settings.data_topic
        assert reasons[raw].reason in (
            DeadLetter.RECORD_UNDECODABLE,
            DeadLetter.RECORD_INVALID,
            DeadLetter.NO_MODEL,
        )
    for raw in junk[100:]:
        assert reasons[raw].source_topic == settings.models_topic
        assert reasons[raw].reason in (
            DeadLetter.MODEL_UNDECODABLE,
            DeadLetter.UNKNOWN_MODEL_TYPE,
            DeadLetter.MODEL_BUILD_FAILED,
        )
    assert all(d.message for d in letters)

    # still up and scoring; the data type is read from the wire form as protobuf reads it
    publish.publish_model_file(settings, WINE_DIR / "wine_quality_logreg.onnx", "wine-onnx", "wine", "onnx")
    publish.publish_records(settings, CSV, count=50, id_prefix="after")
    probe = list(WINE.probe)
    untyped = wine_record_from_row(probe, "", 1, "untyped").SerializeToString()
    not_finite = wine_record_from_row([*probe[:8], float("nan"), *probe[9:]], "wine", 1, "nan")
    # two dataType fields in one message: the last one wins
    retyped = (
        WineRecord(dataType="nowhere").SerializeToString()
        + wine_record_from_row(probe, "wine", 1, "retyped").SerializeToString()
    )
    for raw in (untyped, not_finite.SerializeToString(), retyped):
        p.produce(settings.data_topic, value=raw)
    p.flush(30)
    scored = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 51, job=job)]
    assert sorted(s.record_id for s in scored if not s.record_id.startswith("after-")) == ["retyped"]
    later = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 202, job=job)][
        200:
    ]
    # a record naming no data type takes its topic's default (the topic's name), which has no model
    assert {(d.raw, d.reason, d.data_type) for d in later} == {
        (untyped, DeadLetter.NO_MODEL, settings.data_topic),
        (not_finite.SerializeToString(), DeadLetter.RECORD_INVALID, "wine"),
    }
    assert job.poll() is None
    assert os.path.exists(settings.checkpoint_path)


def test_thread_execution_mode_scores_onnx_and_pmml_with_pypmml(
    stack_settings: Settings, start_job: JobStarter, tmp_path: Path
) -> None:
    settings = stack_settings.replace(python_execution_mode="thread", pmml_engine="pypmml")
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "o", "wine", "onnx", version="o-1"
    )
    tree = WINE_DIR / "winequalityDecisionTreeClassification.pmml"
    publish.publish_model_file(settings, tree, "t", "wine-pmml", "pmml", version="t-1")
    publish.publish_records(settings, CSV, count=300, id_prefix="o")
    publish.publish_records(settings, CSV, data_type="wine-pmml", count=300, id_prefix="t")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 600, job=job)]
    assert sorted((s.record_id, s.model_version) for s in scores) == sorted(
        [(f"o-{i}", "o-1") for i in range(300)] + [(f"t-{i}", "t-1") for i in range(300)]
    )
    # In thread mode Python's log lines leave through the gateway JVM's stderr: 400 rejections (about
    # 150 KiB of log) must not fill that pipe and stop the job (jobs/gateway.py)
    p = topics.producer(settings)
    for i in range(400):
        broken = ModelDescriptor(name=f"broken-{i}-" + "x" * 200, dataType="wine", version=f"b-{i}",
                                 modeltype=ModelDescriptor.ONNX, data=b"not an ONNX model")  # fmt: skip
        publish.produce(p, settings.models_topic, broken.SerializeToString(), b"wine")
    p.flush(30)
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 400, job=job)]
    assert {d.reason for d in letters} == {DeadLetter.MODEL_BUILD_FAILED}
    publish.publish_records(settings, CSV, count=50, id_prefix="after")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 650, job=job)][600:]
    assert sorted(s.record_id for s in scores) == sorted(f"after-{i}" for i in range(50))
    assert {s.model_version for s in scores} == {"o-1"}
    assert (tmp_path / "job-0.log").read_text(errors="replace").count("model rejected") == 400
    assert job.poll() is None
