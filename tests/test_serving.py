"""The serving core without Flink or Kafka: swap, validation, holding, stats, restore."""

from __future__ import annotations

from typing import cast

import pytest

from model.base import ModelOptions
from modelstream.deadletters import Source
from modelstream.serving import (
    ModelServer,
    Output,
    ServingSettings,
    Sink,
    model_version,
    route_model,
    route_record,
)
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, ScoreResult, StatsSnapshot, WineRecord
from tests.conftest import WINE_DIR
from tests.fakes import MemoryKeyContext

RECORDS = Source("wine")
MODELS = Source("models")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def onnx_model(version: str = "1") -> bytes:
    return ModelDescriptor(
        name="onnx",
        dataType="wine",
        modeltype=ModelDescriptor.ONNX,
        version=version,
        data=(WINE_DIR / "wine_quality_logreg.onnx").read_bytes(),
    ).SerializeToString()


def pmml_model(file: str = "winequalityLinearRegression.pmml", version: str = "") -> bytes:
    return ModelDescriptor(
        name="pmml",
        dataType="wine",
        modeltype=ModelDescriptor.PMML,
        version=version,
        data=(WINE_DIR / file).read_bytes(),
    ).SerializeToString()


def record(i: int = 0, **overrides: float) -> bytes:
    values = dict(
        fixed_acidity=7.4,
        volatile_acidity=0.7,
        citric_acid=0.0,
        residual_sugar=1.9,
        chlorides=0.076,
        free_sulfur_dioxide=11,
        total_sulfur_dioxide=34,
        density=0.9978,
        pH=3.51,
        sulphates=0.56,
        alcohol=9.4,
    )
    values.update(overrides)
    return WineRecord(dataType="wine", ts=123, record_id=f"r-{i}", **values).SerializeToString()


def sinks(outputs: list[Output], sink: Sink) -> list[bytes]:
    return [value for s, _, value in outputs if s is sink]


def letters(outputs: list[Output]) -> list[DeadLetter]:
    return [DeadLetter.FromString(v) for v in sinks(outputs, Sink.DEAD_LETTERS)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> ModelServer:
    return ModelServer(
        ServingSettings(pending_max=3, pending_timeout_ms=500, stats_interval_ms=1000),
        ModelOptions(),
        clock_ms=clock,
    )


def test_scores_with_the_model_and_reports_name_and_version(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    out = server.on_model("wine", onnx_model("v1"), ctx, MODELS)
    assert len(sinks(out, Sink.STATS)) == 1 and not letters(out)
    (score,) = [
        ScoreResult.FromString(v)
        for v in sinks(server.on_record("wine", record(7), ctx, RECORDS), Sink.SCORES)
    ]
    assert (score.model_name, score.model_version, score.data_type) == ("onnx", "v1", "wine")
    assert (score.record_id, score.record_ts) == ("r-7", 123)
    assert score.label in score.probabilities and abs(sum(score.probabilities.values()) - 1) < 1e-5


def test_swap_takes_effect_immediately_and_keeps_history(server: ModelServer, clock: Clock) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", onnx_model("v1"), ctx, MODELS)
    server.on_record("wine", record(), ctx, RECORDS)
    clock.now += 5000
    out = server.on_model("wine", pmml_model(version="v2"), ctx, MODELS)
    (snapshot,) = [StatsSnapshot.FromString(v) for v in sinks(out, Sink.STATS)]
    assert snapshot.current.model.version == "v2" and snapshot.current.model.since == clock.now
    assert snapshot.current.usage == 0
    assert [h.model.version for h in snapshot.history] == ["v1"] and snapshot.history[0].usage == 1
    assert snapshot.history[0].until == clock.now
    (score,) = [
        ScoreResult.FromString(v)
        for v in sinks(server.on_record("wine", record(), ctx, RECORDS), Sink.SCORES)
    ]
    assert score.model_version == "v2" and score.HasField("value") and not score.label


@pytest.mark.parametrize(
    ("descriptor", "reason"),
    [
        (b"\xff\xff\xff", DeadLetter.MODEL_UNDECODABLE),
        (
            ModelDescriptor(
                name="x", dataType="wine", modeltype=ModelDescriptor.ONNX, data=b"not onnx"
            ).SerializeToString(),
            DeadLetter.MODEL_BUILD_FAILED,
        ),
        (
            ModelDescriptor(
                name="x", dataType="wine", modeltype=ModelDescriptor.PMML, data=b"<PMML"
            ).SerializeToString(),
            DeadLetter.MODEL_BUILD_FAILED,
        ),
        (
            ModelDescriptor(name="x", dataType="wine", modeltype=ModelDescriptor.ONNX).SerializeToString(),
            DeadLetter.MODEL_BUILD_FAILED,
        ),
        (
            ModelDescriptor(
                name="x", dataType="wine", modeltype=cast(ModelDescriptor.ModelType, 17), data=b"?"
            ).SerializeToString(),
            DeadLetter.UNKNOWN_MODEL_TYPE,
        ),
    ],
)
def test_a_bad_model_never_replaces_the_serving_one(
    server: ModelServer, descriptor: bytes, reason: int
) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", onnx_model("good"), ctx, MODELS)
    out = server.on_model("wine", descriptor, ctx, MODELS)
    (letter,) = letters(out)
    assert letter.reason == reason and letter.message and letter.raw == descriptor
    assert ctx.model == onnx_model("good")
    (score,) = [
        ScoreResult.FromString(v)
        for v in sinks(server.on_record("wine", record(), ctx, RECORDS), Sink.SCORES)
    ]
    assert score.model_version == "good"


def test_pmml_needing_a_missing_field_is_rejected_with_its_name(
    server: ModelServer, tmp_path: object
) -> None:
    xml = (WINE_DIR / "winequalityLinearRegression.pmml").read_text().replace('"chlorides"', '"saltiness"')
    descriptor = ModelDescriptor(name="p", dataType="wine", modeltype=ModelDescriptor.PMML, data=xml.encode())
    (letter,) = letters(server.on_model("wine", descriptor.SerializeToString(), MemoryKeyContext(), MODELS))
    assert letter.reason == DeadLetter.MODEL_BUILD_FAILED and "saltiness" in letter.message


def test_records_wait_for_a_model_then_are_scored(server: ModelServer, clock: Clock) -> None:
    ctx = MemoryKeyContext()
    assert server.on_record("wine", record(1), ctx, RECORDS) == []
    assert server.on_record("wine", record(2), ctx, RECORDS) == []
    assert ctx.timers == [clock.now + 500]
    out = server.on_model("wine", onnx_model(), ctx, MODELS)
    assert [ScoreResult.FromString(v).record_id for v in sinks(out, Sink.SCORES)] == ["r-1", "r-2"]
    assert ctx.pending == []
    assert server.on_timer("wine", ctx, RECORDS) == []


def test_held_records_beyond_the_bound_or_the_timeout_are_dead_lettered(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    for i in range(4):
        out = server.on_record("wine", record(i), ctx, RECORDS)
    (over,) = letters(out)
    assert over.reason == DeadLetter.NO_MODEL and over.raw == record(3)
    timed_out = letters(server.on_timer("wine", ctx, RECORDS))
    assert [d.raw for d in timed_out] == [record(i) for i in range(3)]
    assert all(d.reason == DeadLetter.NO_MODEL and "wine" in d.message for d in timed_out)


def test_invalid_records_are_dead_lettered_and_counted(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", onnx_model(), ctx, MODELS)
    (letter,) = letters(server.on_record("wine", record(alcohol=float("nan")), ctx, RECORDS))
    assert letter.reason == DeadLetter.RECORD_INVALID and "alcohol" in letter.message
    assert StatsSnapshot.FromString(ctx.stats or b"").current.errors == 1


def test_a_restarted_worker_restores_model_and_stats_from_state(server: ModelServer, clock: Clock) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", onnx_model("v9"), ctx, MODELS)
    for i in range(3):
        server.on_record("wine", record(i), ctx, RECORDS)
    restarted = ModelServer(ServingSettings(), ModelOptions(), clock_ms=clock)
    out = restarted.on_record("wine", record(4), ctx, RECORDS)
    (score,) = [ScoreResult.FromString(v) for v in sinks(out, Sink.SCORES)]
    assert score.model_version == "v9"
    assert StatsSnapshot.FromString(ctx.stats or b"").current.usage == 4


def test_stats_account_for_every_score(server: ModelServer, clock: Clock) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", onnx_model(), ctx, MODELS)
    published = []
    for i in range(10):
        clock.now += 300
        published += sinks(server.on_record("wine", record(i), ctx, RECORDS), Sink.STATS)
    assert len(published) == 2  # at +1200 and +2400 ms: at least 1000 ms after the previous snapshot
    stats = StatsSnapshot.FromString(ctx.stats or b"").current
    assert stats.usage == 10 and stats.min_ns <= stats.total_ns / stats.usage <= stats.max_ns
    assert stats.last_scored_at == clock.now


def test_routing_keys_by_data_type_and_rejects_what_it_cannot_key() -> None:
    assert route_record(record(), RECORDS) == ("wine", None)
    assert route_model(onnx_model(), MODELS) == ("wine", None)
    key, (sink, _, raw) = route_record(b"\xff\x00garbage", RECORDS)  # type: ignore[misc]
    assert key is None and sink is Sink.DEAD_LETTERS
    assert DeadLetter.FromString(raw).reason == DeadLetter.RECORD_UNDECODABLE
    key, (sink, _, raw) = route_record(WineRecord(alcohol=1).SerializeToString(), RECORDS)  # type: ignore[misc]
    assert DeadLetter.FromString(raw).reason == DeadLetter.RECORD_INVALID


def test_version_is_the_publishers_else_a_content_hash() -> None:
    assert model_version(ModelDescriptor(version="7", data=b"x")) == "7"
    a, b = model_version(ModelDescriptor(data=b"x")), model_version(ModelDescriptor(data=b"y"))
    assert a.startswith("sha256:") and a != b
