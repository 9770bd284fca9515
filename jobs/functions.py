"""PyFlink functions: short adapters between Flink's runtime and the plain-Python serving core."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedCoProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueState, ValueStateDescriptor

from modelstream.deadletters import Source
from modelstream.serving import ModelServer, Output, ServingSettings, route_model, route_record
from modelstream.settings import Settings

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
# (data type, raw bytes): what the routers emit and the serving function is keyed by
KEYED_TYPE = Types.ROW([Types.STRING(), BYTES])
# (topic, key, value): what the single Kafka sink writes (see jvm/ RoutedRecordSerializationSchema)
SINK_TYPE = Types.ROW([Types.STRING(), BYTES, BYTES])
# dead letters of the routers, as SINK_TYPE rows
REJECTED = OutputTag("rejected", SINK_TYPE)


def _topics(settings: Settings) -> tuple[str, str, str]:
    """Topic per modelstream.serving.Sink value."""
    return settings.scores_topic, settings.stats_topic, settings.dead_letters_topic


def _to_row(topics: tuple[str, str, str], output: Output) -> Row:
    sink, key, value = output
    return Row(topics[sink], key, value)


class RouteByDataType(ProcessFunction):  # type: ignore[misc]
    """Keys raw records (or model descriptors) by data type; what cannot be keyed is dead-lettered."""

    def __init__(self, settings: Settings, models: bool) -> None:
        self._topics = _topics(settings)
        self._source = Source(settings.models_topic if models else settings.data_topic)
        self._route = route_model if models else route_record

    def process_element(self, value: bytes, ctx: ProcessFunction.Context) -> Iterator[Any]:
        data_type, rejected = self._route(value, self._source)
        if rejected is not None:
            yield REJECTED, _to_row(self._topics, rejected)
        else:
            yield Row(data_type, value)


class _FlinkKeyContext:
    """modelstream.serving.KeyContext over this operator's keyed state and timer service."""

    def __init__(self, model: ValueState, stats: ValueState, pending: ValueState) -> None:
        self._model, self._stats, self._pending = model, stats, pending
        self.timers: Any = None

    def load_model(self) -> bytes | None:
        value: bytes | None = self._model.value()
        return value

    def store_model(self, descriptor: bytes) -> None:
        self._model.update(descriptor)

    def load_stats(self) -> bytes | None:
        value: bytes | None = self._stats.value()
        return value

    def store_stats(self, snapshot: bytes) -> None:
        self._stats.update(snapshot)

    def load_pending(self) -> list[bytes]:
        value: list[bytes] | None = self._pending.value()
        return value or []

    def store_pending(self, records: list[bytes]) -> None:
        if records:
            self._pending.update(records)
        else:
            self._pending.clear()

    def schedule(self, at_ms: int) -> None:
        self.timers.register_processing_time_timer(at_ms)


class ServeModels(KeyedCoProcessFunction):  # type: ignore[misc]
    """Input 1: records, input 2: model descriptors, both keyed by data type. Emits SINK_TYPE rows."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topics = _topics(settings)
        self._records = Source(settings.data_topic)
        self._models = Source(settings.models_topic)

    def open(self, runtime_context: RuntimeContext) -> None:
        s = self._settings
        self._server = ModelServer(
            ServingSettings(s.pending_max, s.pending_timeout_ms, s.stats_interval_ms),
            s.model_options(),
        )
        self._ctx = _FlinkKeyContext(
            runtime_context.get_state(ValueStateDescriptor("model-descriptor", BYTES)),
            runtime_context.get_state(ValueStateDescriptor("stats", BYTES)),
            runtime_context.get_state(ValueStateDescriptor("pending-records", Types.PICKLED_BYTE_ARRAY())),
        )

    def close(self) -> None:
        self._server.close()

    def process_element1(self, value: Row, ctx: KeyedCoProcessFunction.Context) -> Iterator[Row]:
        self._ctx.timers = ctx.timer_service()
        for output in self._server.on_record(value[0], value[1], self._ctx, self._records):
            yield _to_row(self._topics, output)

    def process_element2(self, value: Row, ctx: KeyedCoProcessFunction.Context) -> Iterator[Row]:
        self._ctx.timers = ctx.timer_service()
        for output in self._server.on_model(value[0], value[1], self._ctx, self._models):
            yield _to_row(self._topics, output)

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Iterator[Row]:
        self._ctx.timers = ctx.timer_service()
        for output in self._server.on_timer(ctx.get_current_key(), self._ctx, self._records):
            yield _to_row(self._topics, output)
