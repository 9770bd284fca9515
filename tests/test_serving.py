"""The serving core without Flink or Kafka: swap, validation, holding, stats, metrics, restore."""

from __future__ import annotations

from typing import cast

import pytest

from modelstream import stats as stats_ops
from modelstream.codecs.base import SourceRecord
from modelstream.contract import ModelOptions
from modelstream.interface import Incoming, Sink
from modelstream.serving import ModelServer, ServingSettings, model_version, route_model
from modelstream.testing import (
    CountingMetrics,
    ManualClock,
    MemoryKeyContext,
    letters,
    scores,
    sinks,
    source_record,
)
from modelstream.topics import RECORD_SCHEMA_CONTENT_TYPE
from protobufs.modelstream_pb2 import (
    DeadLetter,
    ModelDescriptor,
    ModelStats,
    RecordSchema,
    StatsSnapshot,
    WineRecord,
)
from tests.conftest import WINE_DIR

D = ModelDescriptor


def onnx_model(version: str = "1") -> bytes:
    data = (WINE_DIR / "wine_quality_logreg.onnx").read_bytes()
    return D(name="onnx", dataType="wine", modeltype=D.ONNX, version=version, data=data).SerializeToString()


def pmml_model(file: str = "winequalityLinearRegression.pmml", version: str = "") -> bytes:
    data = (WINE_DIR / file).read_bytes()
    return D(name="pmml", dataType="wine", modeltype=D.PMML, version=version, data=data).SerializeToString()


def record(i: int = 0, **overrides: float) -> bytes:
    values = dict(
        fixed_acidity=7.4, volatile_acidity=0.7, citric_acid=0.0, residual_sugar=1.9, chlorides=0.076,
        free_sulfur_dioxide=11, total_sulfur_dioxide=34, density=0.9978, pH=3.51, sulphates=0.56, alcohol=9.4,
    )  # fmt: skip
    values.update(overrides)
    return WineRecord(dataType="wine", ts=123, record_id=f"r-{i}", **values).SerializeToString()


def incoming(raw: bytes, offset: int = 0) -> Incoming:
    return (raw, 0, offset)


def rec(raw: bytes, offset: int = 0) -> SourceRecord:
    return source_record(raw, offset=offset)


@pytest.fixture
def server(clock: ManualClock, metrics: CountingMetrics) -> ModelServer:
    settings = ServingSettings(pending_max=3, pending_timeout_ms=500, stats_interval_ms=1000)
    return ModelServer(settings, ModelOptions(), clock_ms=clock, metrics=metrics)


def test_scores_with_the_model_and_reports_name_and_version(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    out = server.on_model("wine", incoming(onnx_model("v1")), ctx)
    assert len(sinks(out, Sink.STATS)) == 1 and not letters(out)
    (score,) = scores(server.on_records("wine", [rec(record(7))], ctx))
    assert (score.model_name, score.model_version, score.data_type) == ("onnx", "v1", "wine")
    assert (score.record_id, score.record_ts) == ("r-7", 123)
    assert score.label in score.probabilities and abs(sum(score.probabilities.values()) - 1) < 1e-5


def test_a_batch_is_scored_in_one_call_with_one_result_per_record(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(pmml_model(version="lr")), ctx)
    batch = [rec(record(i, alcohol=9 + i / 10), i) for i in range(50)]
    results = scores(server.on_records("wine", batch, ctx))
    assert [s.record_id for s in results] == [f"r-{i}" for i in range(50)]
    assert len({s.value for s in results}) == 50  # each row scored on its own features
    assert ctx.stats is not None and ctx.stats.current.usage == 50


def test_swap_takes_effect_immediately_and_keeps_history(server: ModelServer, clock: ManualClock) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(onnx_model("v1")), ctx)
    server.on_records("wine", [rec(record())], ctx)
    clock.now += 5000
    out = server.on_model("wine", incoming(pmml_model(version="v2")), ctx)
    (snapshot,) = [StatsSnapshot.FromString(v) for v in sinks(out, Sink.STATS)]
    assert snapshot.current.model.version == "v2" and snapshot.current.model.since == clock.now
    assert snapshot.current.usage == 0
    assert [h.model.version for h in snapshot.history] == ["v1"] and snapshot.history[0].usage == 1
    assert snapshot.history[0].until == clock.now
    (score,) = scores(server.on_records("wine", [rec(record())], ctx))
    assert score.model_version == "v2" and score.HasField("value") and not score.label


BAD_MODELS = [
    (b"\xff\xff\xff", DeadLetter.MODEL_UNDECODABLE),
    (
        D(name="x", dataType="wine", modeltype=D.ONNX, data=b"not onnx").SerializeToString(),
        DeadLetter.MODEL_BUILD_FAILED,
    ),
    (
        D(name="x", dataType="wine", modeltype=D.PMML, data=b"<PMML").SerializeToString(),
        DeadLetter.MODEL_BUILD_FAILED,
    ),
    (D(name="x", dataType="wine", modeltype=D.ONNX).SerializeToString(), DeadLetter.MODEL_BUILD_FAILED),
    (
        D(name="x", dataType="wine", modeltype=cast(D.ModelType, 17), data=b"?").SerializeToString(),
        DeadLetter.UNKNOWN_MODEL_TYPE,
    ),
]


@pytest.mark.parametrize(("descriptor", "reason"), BAD_MODELS)
def test_a_bad_model_never_replaces_the_serving_one(
    server: ModelServer, metrics: CountingMetrics, descriptor: bytes, reason: int
) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(onnx_model("good")), ctx)
    stored = dict(ctx.versions)
    (letter,) = letters(server.on_model("wine", (descriptor, 2, 41), ctx))
    assert letter.reason == reason and letter.message and letter.raw == descriptor
    assert (letter.source_topic, letter.partition, letter.offset) == ("models", 2, 41)
    assert ctx.versions == stored and metrics.rejected == ["wine"]
    (score,) = scores(server.on_records("wine", [rec(record())], ctx))
    assert score.model_version == "good"


def test_a_model_that_cannot_score_the_probe_is_rejected(server: ModelServer) -> None:
    xml = (WINE_DIR / "winequalityLinearRegression.pmml").read_text()
    # a regression whose intercept is NaN loads fine but scores NaN
    broken = xml.replace('intercept="', 'intercept="NaN" x-old="', 1)
    descriptor = D(name="nan", dataType="wine", modeltype=D.PMML, version="n", data=broken.encode())
    (letter,) = letters(server.on_model("wine", incoming(descriptor.SerializeToString()), MemoryKeyContext()))
    assert letter.reason == DeadLetter.MODEL_VALIDATION_FAILED and "probe record" in letter.message
    assert (letter.model_name, letter.model_version) == ("nan", "n")


def test_state_keeps_the_model_self_contained(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    location = D(
        name="loc", dataType="wine", modeltype=D.TENSORFLOWSAVED, location=str(WINE_DIR / "saved" / "1")
    )
    roots = ModelServer(ServingSettings(), ModelOptions(allowed_roots=(str(WINE_DIR),)))
    assert not letters(roots.on_model("wine", incoming(location.SerializeToString()), ctx))
    (stored,) = map(D.FromString, ctx.versions.values())
    assert stored.WhichOneof("MessageContent") == "data" and stored.version == model_version(location)


def test_undecodable_records_are_not_held_for_a_model(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    (letter,) = letters(server.on_records("wine", [rec(b"\xff\xfe", 4), rec(record(1), 5)], ctx))
    assert letter.reason == DeadLetter.RECORD_UNDECODABLE and letter.offset == 4
    assert [h[0][2] for h in ctx.pending] == [5]


def test_records_wait_for_a_model_then_are_scored(server: ModelServer, clock: ManualClock) -> None:
    ctx = MemoryKeyContext()
    assert server.on_records("wine", [rec(record(1))], ctx) == []
    assert server.on_records("wine", [rec(record(2))], ctx) == []
    assert ctx.timers == [clock.now + 500]
    out = server.on_model("wine", incoming(onnx_model()), ctx)
    assert [s.record_id for s in scores(out)] == ["r-1", "r-2"]
    assert ctx.pending == []
    assert server.on_timer("wine", ctx) == []


def test_held_records_beyond_the_bound_or_the_timeout_are_dead_lettered(
    server: ModelServer, clock: ManualClock
) -> None:
    ctx = MemoryKeyContext()
    out = server.on_records("wine", [rec(record(i), offset=i) for i in range(4)], ctx)
    (over,) = letters(out)
    assert over.reason == DeadLetter.NO_MODEL and over.raw == record(3) and over.offset == 3
    clock.now += 499
    assert (
        server.on_timer("wine", ctx) == []
    )  # an earlier timer (a stats flush's) does not cut the wait short
    clock.now += 1
    timed_out = letters(server.on_timer("wine", ctx))
    assert [d.raw for d in timed_out] == [record(i) for i in range(3)]
    assert [d.offset for d in timed_out] == [0, 1, 2]
    assert all(d.reason == DeadLetter.NO_MODEL and "wine" in d.message for d in timed_out)


def test_invalid_records_are_dead_lettered_counted_and_do_not_block_the_rest(
    server: ModelServer, metrics: CountingMetrics
) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(onnx_model()), ctx)
    records = [
        rec(record(1)),
        rec(record(2, alcohol=float("nan")), 9),
        rec(b"\xff"),
        rec(record(3, pH=float("inf"))),
        rec(record(4)),
    ]
    out = server.on_records("wine", records, ctx)
    assert [s.record_id for s in scores(out)] == ["r-1", "r-4"]
    undecodable, invalid, invalid_ph = letters(out)
    assert (
        invalid.reason == DeadLetter.RECORD_INVALID and "alcohol" in invalid.message and invalid.offset == 9
    )
    assert invalid_ph.reason == DeadLetter.RECORD_INVALID and "pH is not a finite" in invalid_ph.message
    assert undecodable.reason == DeadLetter.RECORD_UNDECODABLE
    assert ctx.stats is not None and ctx.stats.current.errors == 3
    assert (metrics.scored_count, metrics.dead_letter_count) == (2, 3)


def test_a_restarted_worker_restores_model_and_stats_from_state(
    server: ModelServer, clock: ManualClock
) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(onnx_model("v9")), ctx)
    for i in range(3):
        server.on_records("wine", [rec(record(i))], ctx)
    restarted = ModelServer(ServingSettings(), ModelOptions(), clock_ms=clock)
    (score,) = scores(restarted.on_records("wine", [rec(record(4))], ctx))
    assert score.model_version == "v9"
    assert ctx.stats is not None and ctx.stats.current.usage == 4


def test_stats_account_for_every_score(server: ModelServer, clock: ManualClock) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(onnx_model()), ctx)
    published = []
    for i in range(10):
        clock.now += 300
        published += sinks(server.on_records("wine", [rec(record(i))], ctx), Sink.STATS)
    assert len(published) == 2  # at +1200 and +2400 ms: at least 1000 ms after the previous snapshot
    stats = StatsSnapshot.FromString(published[-1]).current
    assert stats.usage == 8 and stats.min_ns <= stats.total_ns / stats.usage <= stats.max_ns
    assert 0 < stats.p50_ns <= stats.p99_ns
    assert (
        ctx.stats is not None
        and ctx.stats.current.usage == 10
        and ctx.stats.current.last_scored_at == clock.now
    )


def test_untyped_records_are_dead_lettered_with_their_reason(server: ModelServer) -> None:
    untyped = source_record(WineRecord(ts=1).SerializeToString(), offset=8)
    (letter,) = letters(server.reject_untyped([untyped]))
    assert letter.reason == DeadLetter.RECORD_INVALID and "no data type" in letter.message
    assert (letter.partition, letter.offset, letter.raw) == (0, 8, untyped.value)


def test_the_last_records_stats_are_published_by_a_timer(server: ModelServer, clock: ManualClock) -> None:
    ctx = MemoryKeyContext()
    server.on_model("wine", incoming(onnx_model()), ctx)
    published_at = clock.now
    clock.now += 100
    assert not sinks(server.on_records("wine", [rec(record())], ctx), Sink.STATS)
    assert ctx.timers == [published_at + 1000]
    clock.now = published_at + 1000
    (snapshot,) = [StatsSnapshot.FromString(v) for v in sinks(server.on_timer("wine", ctx), Sink.STATS)]
    assert snapshot.current.usage == 1
    assert server.on_timer("wine", ctx) == []  # nothing new to publish


def test_latency_sketch_quantiles_are_within_four_percent_and_merge() -> None:
    a, b = ModelStats(), ModelStats()
    for ns in range(1_000, 101_000, 1_000):  # 1..100 us, uniformly
        stats_ops.record_scores(a if ns % 2000 else b, 1, ns, 0)
    stats_ops.merge(a, b)
    assert a.usage == 100 and a.min_ns == 1_000 and a.max_ns == 100_000
    assert stats_ops.quantile(a.time_buckets, 0.5) == pytest.approx(50_500, rel=0.04)
    assert stats_ops.quantile(a.time_buckets, 0.99) == pytest.approx(99_000, rel=0.04)
    assert len(a.time_buckets) < 130


def test_routing_keys_models_and_schemas_by_data_type_and_rejects_what_it_cannot_key() -> None:
    assert route_model("models", (onnx_model(), None, None)) == ("wine", None)
    schema = RecordSchema(data_type="loans", message_name="x.Y").SerializeToString()
    assert route_model("models", (schema, 0, 1), RECORD_SCHEMA_CONTENT_TYPE) == ("loans", None)
    for raw, content_type, reason in [
        (b"\xff\x00garbage", "", DeadLetter.MODEL_UNDECODABLE),
        (D(name="x").SerializeToString(), "", DeadLetter.MODEL_UNDECODABLE),
        (
            RecordSchema(message_name="x.Y").SerializeToString(),
            RECORD_SCHEMA_CONTENT_TYPE,
            DeadLetter.SCHEMA_INVALID,
        ),
    ]:
        key, rejected = route_model("models", (raw, 0, 5), content_type)
        assert key is None and rejected is not None and rejected[0] is Sink.DEAD_LETTERS
        letter = DeadLetter.FromString(rejected[2])
        assert letter.reason == reason and (letter.partition, letter.offset) == (0, 5)


def test_version_is_the_publishers_else_a_content_hash() -> None:
    assert model_version(D(version="7", data=b"x")) == "7"
    a, b = model_version(D(data=b"x")), model_version(D(data=b"y"))
    assert a.startswith("sha256:") and a != b
