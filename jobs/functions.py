"""PyFlink functions: short adapters between Flink's runtime and the plain-Python serving core."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedCoProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueState, ValueStateDescriptor

from modelstream.serving import (
    Held,
    Incoming,
    ModelServer,
    Output,
    ServingSettings,
    route_model,
    route_record,
)
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import StatsSnapshot

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
# (partition, offset, value): what the Kafka sources emit (see jvm/ RecordWithOffsetDeserializationSchema)
SOURCE_TYPE = Types.ROW([Types.INT(), Types.LONG(), BYTES])
# (data type, raw bytes, partition, offset): what the routers emit and the serving function is keyed by
KEYED_TYPE = Types.ROW([Types.STRING(), BYTES, Types.INT(), Types.LONG()])
# (topic, key, value): what the single Kafka sink writes (see jvm/ RoutedRecordSerializationSchema)
SINK_TYPE = Types.ROW([Types.STRING(), BYTES, BYTES])
# dead letters of the routers, as SINK_TYPE rows
REJECTED = OutputTag("rejected", SINK_TYPE)


def _topics(settings: Settings) -> tuple[str, str, str]:
    """Topic per modelstream.serving.Sink value."""
    return settings.scores_topic, settings.stats_topic, settings.dead_letters_topic


def _rows(topics: tuple[str, str, str], outputs: list[Output]) -> Iterator[Row]:
    for sink, key, value in outputs:
        yield Row(topics[sink], key, value)


class RouteByDataType(ProcessFunction):  # type: ignore[misc]
    """Keys raw records (or model descriptors) by data type; what cannot be keyed is dead-lettered."""

    def __init__(self, settings: Settings, models: bool) -> None:
        self._topics = _topics(settings)
        self._topic = settings.models_topic if models else settings.data_topic
        self._route = route_model if models else route_record

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        partition, offset, raw = value
        data_type, rejected = self._route(self._topic, (raw, partition, offset))
        if rejected is not None:
            yield REJECTED, Row(self._topics[rejected[0]], rejected[1], rejected[2])
        else:
            yield Row(data_type, raw, partition, offset)


def _load_list(state: ValueState) -> list[Any]:
    value: list[Any] | None = state.value()
    return value or []


def _store_list(state: ValueState, records: list[Any]) -> None:
    """An empty list clears the state rather than storing an empty value."""
    if records:
        state.update(records)
    else:
        state.clear()


class _FlinkKeyContext:
    """modelstream.serving.KeyContext over this operator's keyed state and timer service."""

    def __init__(self, model: ValueState, stats: ValueState, pending: ValueState, batch: ValueState) -> None:
        self._model, self._stats, self._pending, self._batch = model, stats, pending, batch
        self.timers: Any = None

    def load_model(self) -> bytes | None:
        value: bytes | None = self._model.value()
        return value

    def store_model(self, descriptor: bytes) -> None:
        self._model.update(descriptor)

    def load_stats(self) -> StatsSnapshot | None:
        value: bytes | None = self._stats.value()
        return None if value is None else StatsSnapshot.FromString(value)

    def store_stats(self, snapshot: StatsSnapshot) -> None:
        # bytes, not the object: state must not depend on pickling generated classes
        self._stats.update(snapshot.SerializeToString())

    def load_pending(self) -> list[Held]:
        return _load_list(self._pending)

    def store_pending(self, records: list[Held]) -> None:
        _store_list(self._pending, records)

    def load_batch(self) -> list[Incoming]:
        return _load_list(self._batch)

    def store_batch(self, records: list[Incoming]) -> None:
        _store_list(self._batch, records)

    def schedule(self, at_ms: int) -> None:
        self.timers.register_processing_time_timer(at_ms)


class _FlinkMetrics:
    """modelstream.serving.ServingMetrics as Flink counters and gauges: operator totals, and per data
    type under the group ``data_type.<name>``."""

    def __init__(self, group: Any) -> None:
        self._group = group
        self._scored = group.counter("records_scored")
        self._dead = group.counter("dead_letters")
        self._loaded = group.counter("models_loaded")
        self._rejected = group.counter("models_rejected")
        self._per_type: dict[str, tuple[Any, Any]] = {}
        self._since: dict[str, int] = {}

    def _for(self, data_type: str) -> tuple[Any, Any]:
        counters = self._per_type.get(data_type)
        if counters is None:
            group = self._group.add_group("data_type", data_type)
            counters = (group.counter("records_scored"), group.counter("dead_letters"))
            group.gauge(
                "model_age_seconds",
                lambda: (time.time_ns() // 1_000_000 - self._since.get(data_type, 0)) // 1000,
            )
            self._per_type[data_type] = counters
        return counters

    def scored(self, data_type: str, count: int) -> None:
        self._scored.inc(count)
        self._for(data_type)[0].inc(count)

    def dead_lettered(self, data_type: str, count: int) -> None:
        self._dead.inc(count)
        self._for(data_type)[1].inc(count)

    def model_loaded(self, data_type: str, since_ms: int) -> None:
        self._loaded.inc()
        self._since[data_type] = since_ms
        self._for(data_type)

    def model_rejected(self, data_type: str) -> None:
        self._rejected.inc()


class ServeModels(KeyedCoProcessFunction):  # type: ignore[misc]
    """Input 1: records, input 2: model descriptors, both keyed by data type. Emits SINK_TYPE rows."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topics = _topics(settings)

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self._settings
        self._server = ModelServer(
            ServingSettings(
                s.pending_max,
                s.pending_timeout_ms,
                s.stats_interval_ms,
                s.data_topic,
                s.models_topic,
                s.batch_max_records,
                s.batch_max_delay_ms,
            ),
            s.model_options(),
            metrics=_FlinkMetrics(runtime_context.get_metrics_group()),
        )
        self._ctx = _FlinkKeyContext(
            runtime_context.get_state(ValueStateDescriptor("model-descriptor", BYTES)),
            runtime_context.get_state(ValueStateDescriptor("stats", BYTES)),
            runtime_context.get_state(ValueStateDescriptor("pending-records", Types.PICKLED_BYTE_ARRAY())),
            runtime_context.get_state(ValueStateDescriptor("micro-batch", Types.PICKLED_BYTE_ARRAY())),
        )

    def close(self) -> None:
        self._server.close()

    def process_element1(self, value: Row, ctx: KeyedCoProcessFunction.Context) -> Iterator[Row]:
        self._ctx.timers = ctx.timer_service()
        return _rows(
            self._topics, self._server.on_record(value[0], (value[1], value[2], value[3]), self._ctx)
        )

    def process_element2(self, value: Row, ctx: KeyedCoProcessFunction.Context) -> Iterator[Row]:
        self._ctx.timers = ctx.timer_service()
        return _rows(self._topics, self._server.on_model(value[0], (value[1], value[2], value[3]), self._ctx))

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Iterator[Row]:
        self._ctx.timers = ctx.timer_service()
        return _rows(self._topics, self._server.on_timer(ctx.get_current_key(), self._ctx))
