"""PyFlink functions: short adapters between Flink's runtime and the plain-Python serving core."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import KeyedCoProcessFunction, OutputTag, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueState, ValueStateDescriptor

from jobs.bundle_sampler import skip_sampling_thread
from jobs.jvm_watch import watch_jvm
from model import jpmml_jvm
from modelstream import logs
from modelstream.cache import CacheStats
from modelstream.codecs.base import SourceRecord
from modelstream.frames import OutputWriter, read_records
from modelstream.interface import Held, Output
from modelstream.serving import ModelServer, ServingSettings, route_model
from modelstream.settings import Settings
from modelstream.topics import ModelsTopicKind, models_topic_kind
from protobufs.modelstream_pb2 import StatsSnapshot

BYTES = Types.PRIMITIVE_ARRAY(Types.BYTE())
# (data type, raw bytes, partition, offset, modelstream.topics.ModelsTopicKind): as the model router
# emits them
MODEL_TYPE = Types.ROW([Types.STRING(), BYTES, Types.INT(), Types.LONG(), Types.INT()])
# (data type, record batch): what jvm/ MicroBatchOperator emits (modelstream.frames)
RECORD_BATCH_TYPE = Types.ROW([Types.STRING(), BYTES])
# an output batch: what the Python functions emit and jvm/ OutputBatchSplitter splits for the sink
OUTPUT_BATCH_TYPE = BYTES
# dead letters of the model router, as output batches
REJECTED = OutputTag("rejected", OUTPUT_BATCH_TYPE)


def output_writer(settings: Settings) -> OutputWriter:
    """Writes outputs to the topic of their modelstream.serving.Sink."""
    return OutputWriter(
        (
            settings.scores_topic,
            settings.stats_topic,
            settings.dead_letters_topic,
            settings.shadow_scores_topic,
            settings.drift_topic,
        )
    )


LOG = logs.logger("job")


def bind_jpmml_in_jvm() -> None:
    """Thread mode: JPMML's classes, resolved while the function opens (``model.jpmml_jvm``). Without them
    the job keeps serving; a PMML model is then rejected with the reason."""
    try:
        jpmml_jvm.bind()
    except jpmml_jvm.JvmUnavailableError as e:
        logs.event(LOG, "JPMML unavailable in this JVM", logging.ERROR, error=str(e))


class RouteModels(ProcessFunction):  # type: ignore[misc]
    """Keys model descriptors and record schemas by data type; what cannot be keyed is dead-lettered."""

    def __init__(self, settings: Settings) -> None:
        self._writer = output_writer(settings)
        self._topic = settings.models_topic

    def process_element(self, value: Row, ctx: ProcessFunction.Context) -> Iterator[Any]:
        partition, offset, raw, content_type = value
        data_type, rejected = route_model(self._topic, (raw, partition, offset), content_type)
        if rejected is not None:
            yield REJECTED, self._writer.write((rejected,))
        else:
            yield Row(data_type, raw, partition, offset, int(models_topic_kind(content_type)))


class _FlinkKeyContext:
    """modelstream.serving.KeyContext over this operator's keyed state and timer service."""

    def __init__(self, states: dict[str, ValueState]) -> None:
        self._model, self._stats, self._pending = states["model"], states["stats"], states["pending"]
        self._schemas, self._probe = states["schemas"], states["probe"]
        self._versions, self._policy = states["versions"], states["policy"]
        self._served, self._performance = states["served"], states["performance"]
        self.timers: Any = None

    def load_model(self) -> bytes | None:
        value: bytes | None = self._model.value()
        return value

    def load_versions(self) -> dict[str, bytes]:
        value: dict[str, bytes] | None = self._versions.value()
        return dict(value or {})

    def store_versions(self, descriptors: dict[str, bytes]) -> None:
        self._versions.update(descriptors)
        self._model.clear()  # state written before rollout policies now lives in the versions

    def load_policy(self) -> bytes | None:
        value: bytes | None = self._policy.value()
        return value

    def store_policy(self, policy: bytes) -> None:
        self._policy.update(policy)

    def load_stats(self) -> StatsSnapshot | None:
        value: bytes | None = self._stats.value()
        return None if value is None else StatsSnapshot.FromString(value)

    def store_stats(self, snapshot: StatsSnapshot) -> None:
        # bytes, not the object: state must not depend on pickling generated classes
        self._stats.update(snapshot.SerializeToString())

    def load_pending(self) -> list[Held]:
        value: list[Held] | None = self._pending.value()
        return value or []

    def store_pending(self, records: list[Held]) -> None:
        if records:
            self._pending.update(records)
        else:  # clear rather than store an empty list
            self._pending.clear()

    def load_schemas(self) -> dict[str, bytes]:
        value: dict[str, bytes] | None = self._schemas.value()
        return dict(value or {})

    def store_schemas(self, schemas: dict[str, bytes]) -> None:
        self._schemas.update(schemas)

    def load_probe(self) -> tuple[object, ...] | None:
        value: tuple[object, ...] | None = self._probe.value()
        return value

    def store_probe(self, record: tuple[object, ...]) -> None:
        self._probe.update(record)

    def load_served(self) -> bytes | None:
        value: bytes | None = self._served.value()
        return value

    def store_served(self, served: bytes) -> None:
        self._served.update(served)

    def load_performance(self) -> bytes | None:
        value: bytes | None = self._performance.value()
        return value

    def store_performance(self, policy: bytes) -> None:
        self._performance.update(policy)

    def schedule(self, at_ms: int) -> None:
        self.timers.register_processing_time_timer(at_ms)


class _FlinkMetrics:
    """modelstream.serving.ServingMetrics as Flink counters and gauges: operator totals, and (unless
    ``per_data_type`` is off) per data type under the group ``data_type.<name>``."""

    def __init__(self, group: Any, per_data_type: bool = True) -> None:
        self._group = group
        self._per_data_type = per_data_type
        self._scored = group.counter("records_scored")
        self._dead = group.counter("dead_letters")
        self._loaded = group.counter("models_loaded")
        self._rejected = group.counter("models_rejected")
        self._feedback_without_model = group.counter("feedback_without_model")
        self._per_type: dict[str, tuple[Any, Any]] = {}
        self._per_version: dict[tuple[str, str, str], Any] = {}
        self._since: dict[str, int] = {}
        self._drift: dict[tuple[str, str], tuple[float, int]] = {}

    def watch_live_models(self, stats: CacheStats) -> None:
        """Gauges over the worker's live models (modelstream.cache), read when metrics are reported."""
        gauges = {
            "live_data_types": lambda: stats.entries,
            "live_models": lambda: stats.models,
            "live_model_bytes": lambda: stats.bytes,
            "live_model_hits": lambda: stats.hits,
            "live_model_misses": lambda: stats.misses,
            "live_model_evictions": lambda: stats.evictions,
            "live_models_over_bound": lambda: stats.over_bound,
            "cold_load_ms_last": lambda: stats.last_cold_load_ns // 1_000_000,
            "cold_load_us_mean": lambda: int(stats.mean_cold_load_ms * 1000),
        }
        for name, read in gauges.items():
            self._group.gauge(name, read)

    def _for(self, data_type: str) -> tuple[Any, Any] | None:
        if not self._per_data_type:
            return None
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
        counters = self._for(data_type)
        if counters is not None:
            counters[0].inc(count)

    def version_scored(self, data_type: str, version: str, role: str, count: int) -> None:
        """Counter ``data_type.<name>.version.<version>.<role>_records``."""
        if not self._per_data_type:
            return
        key = (data_type, version, role)
        counter = self._per_version.get(key)
        if counter is None:
            group = self._group.add_group("data_type", data_type).add_group("version", version)
            counter = self._per_version[key] = group.counter(f"{role}_records")
        counter.inc(count)

    def dead_lettered(self, data_type: str, count: int) -> None:
        self._dead.inc(count)
        counters = self._for(data_type)
        if counters is not None:
            counters[1].inc(count)

    def model_loaded(self, data_type: str, since_ms: int) -> None:
        self._loaded.inc()
        if self._per_data_type:
            self._since[data_type] = since_ms
            self._for(data_type)

    def model_rejected(self, data_type: str) -> None:
        self._rejected.inc()

    def feedback_without_model(self, data_type: str, count: int) -> None:
        self._feedback_without_model.inc(count)

    def drift(self, data_type: str, version: str, max_psi: float, status: int) -> None:
        """Gauges ``data_type.<name>.version.<version>.drift_max_psi_milli`` (PyFlink gauges are integers:
        the largest PSI of the last complete window x 1000) and ``.drift_status`` (0 OK, 1 WARN, 2 DRIFT)."""
        key = (data_type, version)
        if key not in self._drift:
            group = self._group.add_group("data_type", data_type).add_group("version", version)
            group.gauge("drift_max_psi_milli", lambda: round(self._drift[key][0] * 1000))
            group.gauge("drift_status", lambda: self._drift[key][1])
        self._drift[key] = (max_psi, status)


class ServeModels(KeyedCoProcessFunction):  # type: ignore[misc]
    """Input 1: record batches, input 2: model descriptors, both keyed by data type. Emits output batches."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def open(self, runtime_context: RuntimeContext) -> None:
        watch_jvm()
        skip_sampling_thread()
        s = self._settings
        logs.configure(s.log_format, s.log_level)
        if s.python_execution_mode == "thread" and s.pmml_engine == "jpmml":
            bind_jpmml_in_jvm()
        self._writer = output_writer(s)
        metrics = _FlinkMetrics(runtime_context.get_metrics_group(), s.per_data_type_metrics)
        self._server = ModelServer(
            ServingSettings(
                s.pending_max,
                s.pending_timeout_ms,
                s.stats_interval_ms,
                s.data_topic,
                s.models_topic,
                s.retain_versions,
                s.speculative_deadline_ms,
                s.trust(),  # the trusted keys, read once here
                s.drift_window,
                s.feedback_max_records,
                s.feedback_max_age_ms,
                max_live_models=s.max_live_models,
                max_live_model_bytes=s.max_live_model_mb * 1024 * 1024,
                live_model_idle_ms=s.live_model_idle_ms,
            ),
            s.model_options(),
            metrics=metrics,
        )
        metrics.watch_live_models(self._server.cache_stats)
        self._topics = [spec.topic for spec in s.job_topic_specs()]
        self._handlers = {
            ModelsTopicKind.MODEL: self._server.on_model,
            ModelsTopicKind.SCHEMA: self._server.on_schema,
            ModelsTopicKind.POLICY: self._server.on_policy,
            ModelsTopicKind.PERFORMANCE: self._server.on_performance,
        }
        # pickled bytes rather than BYTES: PyFlink's thread mode fails reading an empty BYTES state
        names = {
            "model": "model-descriptor",
            "stats": "stats",
            "pending": "pending-records",
            "schemas": "record-schemas",
            "probe": "probe-record",
            "versions": "model-versions",
            "policy": "rollout-policy",
            "served": "served-results",
            "performance": "performance-policy",
        }
        self._ctx = _FlinkKeyContext(
            {
                key: runtime_context.get_state(ValueStateDescriptor(name, Types.PICKLED_BYTE_ARRAY()))
                for key, name in names.items()
            }
        )

    def close(self) -> None:
        self._server.close()

    def _emit(self, outputs: list[Output]) -> Iterator[bytes]:
        if outputs:
            yield self._writer.write(outputs)

    def process_element1(self, value: bytes, ctx: KeyedCoProcessFunction.Context) -> Iterator[bytes]:
        self._ctx.timers = ctx.timer_service()
        data_type: str = ctx.get_current_key()
        feedback: list[SourceRecord] = []
        records = read_records(value, self._topics, feedback)
        if not data_type:
            return self._emit(self._server.reject_untyped(records + feedback))
        outputs = self._server.on_records(data_type, records, self._ctx) if records else []
        if feedback:
            outputs += self._server.on_feedback(data_type, feedback, self._ctx)
        return self._emit(outputs)

    def process_element2(self, value: Row, ctx: KeyedCoProcessFunction.Context) -> Iterator[bytes]:
        self._ctx.timers = ctx.timer_service()
        data_type, raw, partition, offset, kind = value
        handle = self._handlers[kind]
        return self._emit(handle(data_type, (raw, partition, offset), self._ctx))

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Iterator[bytes]:
        self._ctx.timers = ctx.timer_service()
        return self._emit(self._server.on_timer(ctx.get_current_key(), self._ctx))
