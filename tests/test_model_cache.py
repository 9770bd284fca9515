"""The live-model cache without Flink or Kafka: least recently used out, busy models kept, rebuilt from
keyed state with the same scores, too-large models refused, what each model costs measured."""

from __future__ import annotations

import pytest

from modelstream.cache import CacheLimits, LiveModels, LoadMeter, allocated_bytes, resident_bytes
from modelstream.contract import ModelOptions
from modelstream.interface import Held, Sink
from modelstream.serving import ModelServer, ServingSettings
from modelstream.testing import CountingMetrics, ManualClock, MemoryKeyContext, letters, scores, sinks
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, StatsSnapshot
from tests.onnx_builders import wine_logistic, wine_logistic_scores
from tests.test_serving import incoming, rec, record

D = ModelDescriptor
MiB = 1024 * 1024
# the features of tests.test_serving.record()
FEATURES = [7.4, 0.7, 0.0, 1.9, 0.076, 11, 34, 0.9978, 3.51, 0.56, 9.4]


def model(index: int, version: str = "1") -> bytes:
    data_type = f"dt-{index}"
    return D(
        name=f"m-{index}", dataType=data_type, modeltype=D.ONNX, version=version, data=wine_logistic(index)
    ).SerializeToString()


class Resident:
    """A resident set that grows by ``per_build`` over every build a LoadMeter measures (it reads it
    before and after each)."""

    def __init__(self, per_build: int = MiB) -> None:
        self.per_build = per_build
        self.now = 100 * MiB
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        if self.reads % 2 == 0:  # the read after a build
            self.now += self.per_build
        return self.now


class Worker:
    """A ModelServer with data types dt-0, dt-1, ... each with its own keyed state."""

    def __init__(self, clock: ManualClock, metrics: CountingMetrics, **settings: int) -> None:
        self.resident = Resident()
        self.server = ModelServer(
            ServingSettings(stats_interval_ms=1000, **settings),  # type: ignore[arg-type]
            ModelOptions(),
            clock_ms=clock,
            metrics=metrics,
            meter=LoadMeter(self.resident, allocated=lambda: 0),
        )
        self.state: dict[int, MemoryKeyContext] = {}

    def ctx(self, index: int) -> MemoryKeyContext:
        return self.state.setdefault(index, MemoryKeyContext())

    def publish(self, index: int, version: str = "1") -> list[bytes]:
        out = self.server.on_model(f"dt-{index}", incoming(model(index, version)), self.ctx(index))
        assert not letters(out), letters(out)
        return sinks(out, Sink.STATS)

    def score(self, index: int, i: int = 0) -> float:
        (result,) = scores(self.server.on_records(f"dt-{index}", [rec(record(i))], self.ctx(index)))
        assert (result.model_name, result.data_type) == (f"m-{index}", f"dt-{index}")
        return result.value

    def live(self) -> list[str]:
        return self.server.live_data_types()


# -- the cache alone ---------------------------------------------------------------------------------


def cache(clock: ManualClock, **limits: int) -> tuple[LiveModels[str], list[str]]:
    evicted: list[str] = []
    live: LiveModels[str] = LiveModels(CacheLimits(**limits), clock, lambda key, value: evicted.append(key))
    return live, evicted


def test_the_least_recently_used_goes_first_and_a_lookup_refreshes(clock: ManualClock) -> None:
    live, evicted = cache(clock, max_models=2, idle_ms=0)
    live.put("a", "A", 1, 0)
    live.put("b", "B", 1, 0)
    assert live.get("a") == "A"  # now b is the least recently used
    assert live.put("c", "C", 1, 0) == 1
    assert evicted == ["b"] and live.in_order() == ["a", "c"]
    assert live.get("b") is None and live.peek("a") == "A"
    assert live.in_order() == ["a", "c"]  # a peek refreshes nothing
    live.put("d", "D", 1, 0)
    assert evicted == ["b", "a"]
    stats = live.stats
    assert (stats.entries, stats.models, stats.hits, stats.evictions, stats.evicted_models) == (2, 2, 1, 2, 2)


def test_entries_weigh_their_models_and_their_memory(clock: ManualClock) -> None:
    live, evicted = cache(clock, max_models=4, max_bytes=10 * MiB, idle_ms=0)
    live.put("a", "A", 2, MiB)
    live.put("b", "B", 2, MiB)
    live.put("c", "C", 1, MiB)  # 5 models
    assert evicted == ["a"]
    live.put("d", "D", 1, 9 * MiB)  # 11 MiB
    assert evicted == ["a", "b"] and (live.stats.models, live.stats.bytes) == (2, 10 * MiB)
    live.put("c", "C", 1, 3 * MiB)  # reweighed: 12 MiB, d goes even though c is the one that grew
    assert evicted == ["a", "b", "d"] and live.in_order() == ["c"]
    assert live.too_large(10 * MiB + 1) and not live.too_large(10 * MiB)
    assert (
        live.pop("c") == "C"
        and live.stats.evictions == 3
        and (live.stats.entries, live.stats.bytes) == (0, 0)
    )


def test_busy_entries_are_never_evicted_for_idle_ones_and_the_bound_gives_way_when_all_are_busy(
    clock: ManualClock,
) -> None:
    live, evicted = cache(clock, max_models=2, idle_ms=5000)
    live.put("a", "A", 1, 0)
    live.put("b", "B", 1, 0)
    live.served("a")  # a is the least recently used, but busy
    live.put("c", "C", 1, 0)
    assert evicted == ["b"]
    live.served("c")
    live.put("d", "D", 1, 0)  # a and c busy: above the bound rather than evict what serves now
    assert evicted == ["b"] and live.in_order() == ["a", "c", "d"] and live.stats.over_bound == 1
    clock.now += 5000  # a and c idle now
    live.put("e", "E", 1, 0)
    assert evicted == ["b", "a", "c"] and live.in_order() == ["d", "e"]


def test_pinned_entries_stay_and_freed_memory_is_released_at_most_every_second(clock: ManualClock) -> None:
    evicted: list[str] = []
    released: list[int] = []
    live: LiveModels[str] = LiveModels(
        CacheLimits(max_models=1, idle_ms=0),
        clock,
        lambda k, v: evicted.append(k),
        pinned=lambda v: v == "A",
        release=lambda: released.append(clock.now),
    )
    live.put("a", "A", 1, 0)
    live.put("b", "B", 1, 0)
    assert released == []  # nothing evicted
    live.put("c", "C", 1, 0)
    assert evicted == ["b"] and live.in_order() == ["a", "c"] and released == [clock.now]
    clock.now += 999
    live.put("d", "D", 1, 0)
    assert evicted == ["b", "c"] and len(released) == 1
    clock.now += 1
    live.put("e", "E", 1, 0)
    assert len(released) == 2


def test_the_first_build_of_a_kind_is_measured_on_a_second_build() -> None:
    resident = Resident(per_build=MiB)
    built: list[int] = []
    closed: list[int] = []

    def build() -> int:
        built.append(len(built))
        resident.per_build = 50 * MiB if len(built) == 1 else MiB  # the first build also sets a runtime up
        return built[-1]

    meter = LoadMeter(resident, allocated=lambda: 0)
    first = meter.build("onnx", build, closed.append)
    assert first.value == 0 and built == [0, 1] and closed == [1]  # the second one measured, then closed
    assert first.memory_bytes == MiB and first.load_ns > 0
    second = meter.build("onnx", build, closed.append)
    assert second.value == 2 and second.memory_bytes == MiB and closed == [1]
    assert resident_bytes() > 0  # Linux: /proc/self/statm


def test_a_builds_heap_growth_counts_when_it_reuses_memory_freed_earlier() -> None:
    heap = iter([10 * MiB, 10 * MiB + 300_000, 20 * MiB, 20 * MiB + 200_000])
    meter = LoadMeter(resident=lambda: 50 * MiB, allocated=lambda: next(heap))  # no resident growth
    assert meter.build("onnx", lambda: "model", lambda m: None).memory_bytes == 200_000
    assert allocated_bytes() > 0  # glibc: mallinfo2


# -- the serving core over it ------------------------------------------------------------------------


def test_every_data_type_is_scored_by_its_own_model_within_the_bound(
    clock: ManualClock, metrics: CountingMetrics
) -> None:
    worker = Worker(clock, metrics, max_live_models=3, live_model_idle_ms=0)
    for index in range(8):
        worker.publish(index)
    assert worker.live() == ["dt-5", "dt-6", "dt-7"]
    for index in range(8):
        assert worker.score(index) == pytest.approx(wine_logistic_scores(index, [FEATURES])[0], abs=1e-6)
        assert len(worker.live()) == 3
    stats = worker.server.cache_stats
    assert (stats.entries, stats.models) == (3, 3)
    # a scan of 8 through 3 live models (least recently used first out): each one was built again
    assert (stats.misses, stats.hits) == (8, 0)
    assert stats.evictions == 5 + 8 and stats.evicted_models == 13  # 5 when published, 8 when scored
    assert stats.cold_load_ns > 0 and stats.mean_cold_load_ms > 0
    assert [worker.score(index, 1) for index in (5, 6, 7)]
    assert (stats.misses, stats.hits) == (8, 3)
    assert metrics.scored_count == 11


def test_a_model_built_again_from_state_scores_the_same_and_counts_its_cold_load(
    clock: ManualClock, metrics: CountingMetrics
) -> None:
    worker = Worker(clock, metrics, max_live_models=1, live_model_idle_ms=0)
    worker.publish(0)
    before = [worker.score(0, i) for i in range(3)]
    worker.publish(1)  # dt-0 evicted
    assert worker.live() == ["dt-1"]
    after = [worker.score(0, i) for i in range(3)]
    assert after == before and worker.live() == ["dt-0"]
    snapshot = worker.ctx(0).stats  # as keyed state keeps it after every batch
    assert snapshot is not None
    current = snapshot.current
    assert current.usage == 6 and current.cold_loads == 1 and current.load_ns > 0
    assert current.memory_bytes >= MiB  # as measured (Resident grows by 1 MiB a build)
    assert worker.server.cache_stats.misses == 1


def test_a_busy_data_type_stays_live_while_idle_ones_go(clock: ManualClock, metrics: CountingMetrics) -> None:
    worker = Worker(clock, metrics, max_live_models=2, live_model_idle_ms=5000)
    worker.publish(0)
    worker.score(0)  # dt-0 serves: busy for 5 s
    worker.publish(1)
    worker.publish(2)  # dt-1 is idle (loaded, never served): it goes, although dt-0 is older
    assert worker.live() == ["dt-0", "dt-2"]
    worker.score(2)
    worker.publish(3)  # both busy: above the bound
    assert worker.live() == ["dt-0", "dt-2", "dt-3"] and worker.server.cache_stats.over_bound == 1
    clock.now += 5000
    worker.score(3)  # dt-0 and dt-2 idle again: back within the bound
    worker.publish(4)
    assert worker.live() == ["dt-3", "dt-4"]


def test_a_model_too_large_for_the_budget_alone_is_refused_and_the_serving_one_kept(
    clock: ManualClock, metrics: CountingMetrics
) -> None:
    worker = Worker(clock, metrics, max_live_model_bytes=4 * MiB, live_model_idle_ms=0)
    worker.publish(0, "small")  # 1 MiB
    worker.resident.per_build = 5 * MiB
    out = worker.server.on_model("dt-0", incoming(model(0, "big")), worker.ctx(0))
    (letter,) = letters(out)
    assert letter.reason == DeadLetter.MODEL_TOO_LARGE and (letter.model_name, letter.model_version) == (
        "m-0",
        "big",
    )
    assert "5.0 MB" in letter.message and "4 MB (max_live_model_mb)" in letter.message
    assert metrics.rejected == ["dt-0"]
    worker.resident.per_build = MiB
    (result,) = scores(worker.server.on_records("dt-0", [rec(record())], worker.ctx(0)))
    assert result.model_version == "small"
    assert list(worker.ctx(0).versions) == ["small"]


def test_the_memory_budget_evicts_by_measured_memory(clock: ManualClock, metrics: CountingMetrics) -> None:
    worker = Worker(clock, metrics, max_live_models=0, max_live_model_bytes=3 * MiB, live_model_idle_ms=0)
    for index in range(5):
        worker.publish(index)  # 1 MiB each (as Resident measures)
    assert worker.live() == ["dt-2", "dt-3", "dt-4"] and worker.server.cache_stats.bytes == 3 * MiB


def test_what_a_model_costs_is_in_its_stats(clock: ManualClock, metrics: CountingMetrics) -> None:
    server = ModelServer(ServingSettings(), ModelOptions(), clock_ms=clock, metrics=metrics)  # measured
    ctx = MemoryKeyContext()
    (published,) = sinks(server.on_model("dt-0", incoming(model(0)), ctx), Sink.STATS)
    current = StatsSnapshot.FromString(published).current
    assert current.memory_bytes >= len(ctx.versions["1"])  # at least its bytes
    assert current.load_ns > 0 and current.cold_loads == 0
    assert server.cache_stats.bytes == current.memory_bytes and server.cache_stats.models == 1


def test_an_evicted_data_types_due_stats_are_published_from_state_without_building_it(
    clock: ManualClock, metrics: CountingMetrics
) -> None:
    worker = Worker(clock, metrics, max_live_models=1, live_model_idle_ms=0)
    worker.publish(0)
    clock.now += 100
    worker.score(0)  # not yet published: a timer is due at +1000
    assert worker.ctx(0).timers
    worker.publish(1)  # dt-0 evicted with its stats unpublished
    clock.now += 1000
    (published,) = sinks(worker.server.on_timer("dt-0", worker.ctx(0)), Sink.STATS)
    snapshot = StatsSnapshot.FromString(published)
    assert snapshot.current.usage == 1 and snapshot.current.p50_ns > 0 and snapshot.published_at == clock.now
    assert worker.server.cache_stats.misses == 0 and worker.live() == ["dt-1"]  # nothing built
    assert worker.server.on_timer("dt-0", worker.ctx(0)) == []  # published once


def test_held_records_of_an_evicted_data_type_wait_for_their_schema_not_a_model(
    clock: ManualClock, metrics: CountingMetrics
) -> None:
    worker = Worker(clock, metrics, max_live_models=1, live_model_idle_ms=0, pending_timeout_ms=500)
    worker.publish(0)
    worker.publish(1)  # dt-0 evicted
    # restarted from a checkpoint whose keyed state holds a record of dt-0 that waits for a schema
    restarted = Worker(clock, metrics, max_live_models=1, live_model_idle_ms=0, pending_timeout_ms=500)
    restarted.state = worker.state
    ctx = restarted.ctx(0)
    ctx.pending = [((b"x", 0, 0), clock.now)]
    clock.now += 500
    (letter,) = letters(restarted.server.on_timer("dt-0", ctx))
    assert letter.reason == DeadLetter.RECORD_UNDECODABLE and "no schema" in letter.message
    assert restarted.live() == []  # nothing built


class CountingKeyContext(MemoryKeyContext):
    """Keyed state that counts reads of held records and writes of stats (round trips in process mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending_reads = 0
        self.stats_writes = 0

    def load_pending(self) -> list[Held]:
        self.pending_reads += 1
        return super().load_pending()

    def store_stats(self, snapshot: StatsSnapshot) -> None:
        self.stats_writes += 1
        super().store_stats(snapshot)


def test_a_stats_timer_reads_no_state_when_nothing_is_held_and_publishes_what_state_holds(
    clock: ManualClock, metrics: CountingMetrics
) -> None:
    worker = Worker(clock, metrics)
    ctx = worker.state[0] = CountingKeyContext()
    worker.publish(0)  # looked for held records once: none
    reads = ctx.pending_reads
    clock.now += 100
    worker.score(0)
    assert ctx.stats is not None and ctx.stats.current.usage == 1 and ctx.stats_writes == 2
    clock.now += 1000
    (published,) = sinks(worker.server.on_timer("dt-0", ctx), Sink.STATS)
    assert StatsSnapshot.FromString(published).current.usage == 1
    assert (ctx.pending_reads, ctx.stats_writes) == (reads, 2)  # no read, and no write of the same counts
    # a record held for want of a model: its timer reads it and dead-letters it
    waiting = worker.state[5] = CountingKeyContext()
    assert worker.server.on_records("dt-5", [rec(record(0))], waiting) == [] and waiting.pending
    clock.now += ServingSettings().pending_timeout_ms
    (letter,) = letters(worker.server.on_timer("dt-5", waiting))
    assert letter.reason == DeadLetter.NO_MODEL and waiting.pending_reads == 2 and not waiting.pending


# -- Flink metrics -----------------------------------------------------------------------------------


class FakeGroup:
    """A Flink metric group that keeps what was registered, by dotted name."""

    def __init__(self, registry: dict[str, object], prefix: str = "") -> None:
        self.registry = registry
        self.prefix = prefix

    def counter(self, name: str) -> FakeCounter:
        counter = FakeCounter()
        self.registry[self.prefix + name] = counter
        return counter

    def gauge(self, name: str, read: object) -> None:
        self.registry[self.prefix + name] = read

    def add_group(self, key: str, value: str) -> FakeGroup:
        return FakeGroup(self.registry, f"{self.prefix}{key}.{value}.")


class FakeCounter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n


@pytest.mark.parametrize("per_data_type", [True, False])
def test_per_data_type_metrics_are_optional_and_the_live_models_are_gauges(
    clock: ManualClock, per_data_type: bool
) -> None:
    from jobs.functions import _FlinkMetrics

    registry: dict[str, object] = {}
    metrics = _FlinkMetrics(FakeGroup(registry), per_data_type)
    server = ModelServer(
        ServingSettings(max_live_models=1, live_model_idle_ms=0), ModelOptions(), clock, metrics
    )
    metrics.watch_live_models(server.cache_stats)
    contexts = [MemoryKeyContext(), MemoryKeyContext()]
    for index, ctx in enumerate(contexts):
        server.on_model(f"dt-{index}", incoming(model(index)), ctx)
    server.on_records("dt-0", [rec(record())], contexts[0])
    per_type = sorted(name for name in registry if name.startswith("data_type."))
    if per_data_type:
        assert "data_type.dt-0.records_scored" in per_type
        assert "data_type.dt-0.version.1.served_records" in per_type
    else:
        assert per_type == []
    read = {name: registry[name]() for name in registry if callable(registry[name])}  # type: ignore[operator]
    assert read["live_data_types"] == read["live_models"] == 1 and read["live_model_bytes"] > 0
    assert (read["live_model_misses"], read["live_model_evictions"]) == (1, 2)
    assert read["cold_load_us_mean"] > 0
    records = registry["records_scored"]
    assert isinstance(records, FakeCounter) and records.count == 1
