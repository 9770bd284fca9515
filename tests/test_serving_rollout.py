"""Several versions per data type in the serving core: staged models, canary, shadow, rollback and
promote without a rebuild, bad policies, stats per version, and the same routing after a restore."""

from __future__ import annotations

from collections import Counter

import pytest

from modelstream.contract import ModelOptions
from modelstream.interface import Sink
from modelstream.serving import ModelServer, ServingSettings
from modelstream.testing import (
    CountingMetrics,
    ManualClock,
    MemoryKeyContext,
    letters,
    scores,
    shadow_scores,
    sinks,
    source_record,
)
from protobufs.modelstream_pb2 import (
    DeadLetter,
    ModelDescriptor,
    RolloutPolicy,
    Route,
    ScoreResult,
    StatsSnapshot,
)
from tests.test_serving import incoming, record

D = ModelDescriptor
WINE_ONNX = "wine_quality_logreg.onnx"


def model(version: str, staged: bool = False, file: str = "winequalityLinearRegression.pmml") -> bytes:
    from tests.conftest import WINE_DIR

    kind = D.ONNX if file.endswith(".onnx") else D.PMML
    data = (WINE_DIR / file).read_bytes()
    return D(
        name=f"m-{version}", dataType="wine", modeltype=kind, version=version, data=data, staged=staged
    ).SerializeToString()


def policy(version: int, **fields: object) -> bytes:
    return RolloutPolicy(data_type="wine", version=version, **fields).SerializeToString()  # type: ignore[arg-type]


def batch(n: int, start: int = 0) -> list:  # type: ignore[type-arg]
    return [source_record(record(i), offset=i) for i in range(start, start + n)]


@pytest.fixture
def server(clock: ManualClock, metrics: CountingMetrics) -> ModelServer:
    return ModelServer(
        ServingSettings(stats_interval_ms=1000), ModelOptions(), clock_ms=clock, metrics=metrics
    )


@pytest.fixture
def ctx(server: ModelServer) -> MemoryKeyContext:
    context = MemoryKeyContext()
    for raw in (model("v1"), model("v2", staged=True), model("v3", staged=True, file=WINE_ONNX)):
        assert not letters(server.on_model("wine", incoming(raw), context))
    return context


def test_a_staged_version_is_loaded_but_does_not_serve(server: ModelServer, ctx: MemoryKeyContext) -> None:
    results = scores(server.on_records("wine", batch(50), ctx))
    assert {r.model_version for r in results} == {"v1"} and len(results) == 50
    assert all(r.role == ScoreResult.SERVED and r.policy_version == 0 for r in results)
    assert list(ctx.versions) == ["v1", "v2", "v3"]


def test_a_canary_splits_records_by_id_and_a_shadow_scores_them_all(
    server: ModelServer, ctx: MemoryKeyContext, clock: ManualClock, metrics: CountingMetrics
) -> None:
    canary = policy(
        7,
        serve=[Route(weight=80), Route(model_version="v2", weight=20)],
        shadow=[Route(model_version="v3", weight=100)],
    )
    assert not letters(server.on_policy("wine", incoming(canary), ctx))
    outputs = server.on_records("wine", batch(2000), ctx)
    served, shadows = scores(outputs), shadow_scores(outputs)
    assert len(served) == 2000 and len({r.record_id for r in served}) == 2000, "one served result each"
    share = Counter(r.model_version for r in served)["v2"] / 2000
    assert 0.17 < share < 0.23
    assert all(r.policy_version == 7 and r.role == ScoreResult.SERVED for r in served)
    assert sorted(r.record_id for r in shadows) == sorted(r.record_id for r in served)
    assert all(r.model_version == "v3" and r.role == ScoreResult.SHADOW for r in shadows)

    clock.now += 2000
    (stats,) = sinks(server.on_records("wine", batch(10), ctx), Sink.STATS)
    snapshot = StatsSnapshot.FromString(stats)
    by_version = {m.model.version: m for m in snapshot.versions}
    assert (by_version["v1"].share, by_version["v2"].share, by_version["v3"].share) == (80, 20, 100)
    assert [by_version[v].role for v in ("v1", "v2", "v3")] == ["served", "served", "shadow"]
    assert by_version["v3"].usage == 2010 and by_version["v1"].usage + by_version["v2"].usage == 2010
    assert snapshot.current.model.version == "v1" and snapshot.policy.version == 7
    assert metrics.by_version[("wine", "v3", "shadow")] == 2010
    assert metrics.by_version[("wine", "v1", "served")] + metrics.by_version[("wine", "v2", "served")] == 2010


def test_rollback_and_promote_switch_at_once_without_loading_a_model(
    server: ModelServer, ctx: MemoryKeyContext, metrics: CountingMetrics
) -> None:
    server.on_policy(
        "wine", incoming(policy(1, serve=[Route(weight=50), Route(model_version="v2", weight=50)])), ctx
    )
    loads = len(metrics.loaded)
    assert not letters(server.on_policy("wine", incoming(policy(2, action=RolloutPolicy.ROLLBACK)), ctx))
    assert {r.model_version for r in scores(server.on_records("wine", batch(200), ctx))} == {"v1"}
    assert not letters(
        server.on_policy(
            "wine", incoming(policy(3, action=RolloutPolicy.PROMOTE, serve=[Route(model_version="v2")])), ctx
        )
    )
    assert {r.model_version for r in scores(server.on_records("wine", batch(200), ctx))} == {"v2"}
    assert len(metrics.loaded) == loads, "no model was rebuilt"


def test_a_bad_policy_is_dead_lettered_and_the_current_plan_keeps_serving(
    server: ModelServer, ctx: MemoryKeyContext
) -> None:
    server.on_policy(
        "wine", incoming(policy(5, serve=[Route(weight=1), Route(model_version="v2", weight=1)])), ctx
    )
    before = [(r.record_id, r.model_version) for r in scores(server.on_records("wine", batch(300), ctx))]
    for raw in (
        policy(6, serve=[Route(model_version="nope", weight=1)]),
        policy(6, serve=[Route(model_version="v1", weight=0)]),
        policy(4, serve=[Route(model_version="v1", weight=1)]),
        b"\xff\xff not a policy",
    ):
        (letter,) = letters(server.on_policy("wine", (raw, 0, 99), ctx))
        assert letter.reason == DeadLetter.POLICY_INVALID and letter.message and letter.raw == raw
    after = [(r.record_id, r.model_version) for r in scores(server.on_records("wine", batch(300), ctx))]
    assert after == before


def test_a_restored_worker_routes_every_record_the_same_way(
    server: ModelServer, ctx: MemoryKeyContext, metrics: CountingMetrics
) -> None:
    server.on_policy(
        "wine", incoming(policy(1, serve=[Route(weight=70), Route(model_version="v2", weight=30)])), ctx
    )
    before = [(r.record_id, r.model_version) for r in scores(server.on_records("wine", batch(500), ctx))]
    restored = ModelServer(ServingSettings(), ModelOptions(), metrics=metrics)  # a new worker, same state
    after = [(r.record_id, r.model_version) for r in scores(restored.on_records("wine", batch(500), ctx))]
    assert after == before and {v for _, v in after} == {"v1", "v2"}


def test_publishing_a_model_unstaged_serves_it_alone_and_old_versions_are_dropped(
    server: ModelServer, ctx: MemoryKeyContext
) -> None:
    server.on_policy(
        "wine", incoming(policy(1, serve=[Route(weight=1), Route(model_version="v2", weight=1)])), ctx
    )
    for version in ("v4", "v5", "v6"):
        server.on_model("wine", incoming(model(version)), ctx)
    results = scores(server.on_records("wine", batch(100), ctx))
    assert {(r.model_version, r.policy_version) for r in results} == {("v6", 0)}
    assert list(ctx.versions) == ["v4", "v5", "v6"], "the two before the serving one stay (retain 2)"


def test_a_gated_canary_takes_traffic_after_enough_clean_shadow_scores(
    server: ModelServer, ctx: MemoryKeyContext
) -> None:
    gated = policy(1, serve=[Route(weight=50), Route(model_version="v2", weight=50)], gate_records=300)
    assert not letters(server.on_policy("wine", incoming(gated), ctx))
    outputs = server.on_records("wine", batch(200), ctx)
    assert {r.model_version for r in scores(outputs)} == {"v1"}
    assert len(shadow_scores(outputs)) == 200 and {r.model_version for r in shadow_scores(outputs)} == {"v2"}
    server.on_records("wine", batch(200, start=200), ctx)  # 400 clean: the gate opens after this batch
    restored = ModelServer(ServingSettings(), ModelOptions())  # the opened gate is in state
    outputs = restored.on_records("wine", batch(400, start=400), ctx)
    assert {r.model_version for r in scores(outputs)} == {"v1", "v2"} and not shadow_scores(outputs)


def test_policies_on_the_models_topic_are_keyed_by_their_data_type_or_dead_lettered() -> None:
    from modelstream.serving import route_model
    from modelstream.topics import ROLLOUT_POLICY_CONTENT_TYPE

    assert route_model("models", incoming(policy(1)), ROLLOUT_POLICY_CONTENT_TYPE) == ("wine", None)
    for raw, why in (
        (b"\xff\xff", "not a RolloutPolicy"),
        (RolloutPolicy(version=1).SerializeToString(), "no data_type"),
    ):
        data_type, rejected = route_model("models", incoming(raw), ROLLOUT_POLICY_CONTENT_TYPE)
        assert data_type is None and rejected is not None
        letter = DeadLetter.FromString(rejected[2])
        assert letter.reason == DeadLetter.POLICY_INVALID and why in letter.message
