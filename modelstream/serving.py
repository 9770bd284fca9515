"""The serving core: model lifecycle and swap, scoring, stats, routing and error handling per data type.

Plain Python. The Flink job drives it through a ``KeyContext`` (its keyed state and timers) and turns
the ``Output``s it returns into Kafka records; tests drive it with an in-memory context.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np
from google.protobuf.message import DecodeError

from model.base import Model, ModelLoadError, ModelOptions
from model.registry import UnknownModelType, load_model, self_contained
from modelstream import stats as stats_ops
from modelstream.deadletters import Reason, Source, dead_letter
from modelstream.records import (
    WINE,
    InvalidRecord,
    RecordSchema,
    decode_record,
    feature_matrix,
    record_features,
)
from modelstream.results import ResultEncoder
from protobufs.modelstream_pb2 import ModelDescriptor, ServingModel, StatsSnapshot, WineRecord


class Sink(IntEnum):
    """Where an output goes; the job maps each to a topic."""

    SCORES = 0
    STATS = 1
    DEAD_LETTERS = 2


# (sink, Kafka key or None, Kafka value)
Output = tuple[Sink, bytes | None, bytes]
# an input as read from Kafka: (raw bytes, partition, offset); partition and offset may be unknown
Incoming = tuple[bytes, int | None, int | None]
# a record held for want of a model: (raw bytes, partition, offset, held since ms)
Held = tuple[bytes, int | None, int | None, int]


class KeyContext(Protocol):
    """The per-data-type state the core keeps between calls (Flink keyed state in the job)."""

    def load_model(self) -> bytes | None: ...
    def store_model(self, descriptor: bytes) -> None: ...
    def load_stats(self) -> StatsSnapshot | None: ...
    def store_stats(self, snapshot: StatsSnapshot) -> None: ...
    def load_pending(self) -> list[Held]: ...
    def store_pending(self, records: list[Held]) -> None: ...
    def schedule(self, at_ms: int) -> None: ...


class ServingMetrics(Protocol):
    """What the core reports as it goes (Flink metrics in the job)."""

    def scored(self, data_type: str, count: int) -> None: ...
    def dead_lettered(self, data_type: str, count: int) -> None: ...
    def model_loaded(self, data_type: str, since_ms: int) -> None: ...
    def model_rejected(self, data_type: str) -> None: ...


class NoMetrics:
    """ServingMetrics that records nothing."""

    def scored(self, data_type: str, count: int) -> None:
        pass

    def dead_lettered(self, data_type: str, count: int) -> None:
        pass

    def model_loaded(self, data_type: str, since_ms: int) -> None:
        pass

    def model_rejected(self, data_type: str) -> None:
        pass


@dataclass(frozen=True)
class ServingSettings:
    pending_max: int = 10_000
    pending_timeout_ms: int = 30_000
    stats_interval_ms: int = 2_000
    records_topic: str = "wine"
    models_topic: str = "models"


def model_version(descriptor: ModelDescriptor) -> str:
    """The publisher's version, else a content hash of the model bytes (or of its location)."""
    if descriptor.version:
        return descriptor.version
    content = (
        descriptor.data if descriptor.WhichOneof("MessageContent") == "data" else descriptor.location.encode()
    )
    return "sha256:" + hashlib.sha256(content).hexdigest()[:12]


def _unroutable(reason: Reason, message: str, topic: str, incoming: Incoming, model_name: str = "") -> Output:
    raw, partition, offset = incoming
    letter = dead_letter(reason, message, raw, Source(topic, partition, offset), model_name=model_name)
    return Sink.DEAD_LETTERS, None, letter


def route_record(topic: str, incoming: Incoming) -> tuple[str, None] | tuple[None, Output]:
    """The data type a record is keyed by, or the dead letter for an undecodable or untyped record."""
    try:
        data_type = decode_record(incoming[0]).dataType
    except DecodeError as e:
        return None, _unroutable(Reason.RECORD_UNDECODABLE, f"not a WineRecord: {e}", topic, incoming)
    if not data_type:
        return None, _unroutable(Reason.RECORD_INVALID, "record has no dataType", topic, incoming)
    return data_type, None


def route_model(topic: str, incoming: Incoming) -> tuple[str, None] | tuple[None, Output]:
    """The data type a model serves, or the dead letter for an undecodable or untyped descriptor."""
    try:
        descriptor = ModelDescriptor.FromString(incoming[0])
    except DecodeError as e:
        return None, _unroutable(Reason.MODEL_UNDECODABLE, f"not a ModelDescriptor: {e}", topic, incoming)
    if not descriptor.dataType:
        message = "model descriptor has no dataType"
        return None, _unroutable(Reason.MODEL_UNDECODABLE, message, topic, incoming, descriptor.name)
    return descriptor.dataType, None


@dataclass
class _Serving:
    """The live model of one data type, with its stats, cached in the worker."""

    model: Model
    info: ServingModel
    snapshot: StatsSnapshot
    last_published_ms: int = 0
    unpublished: bool = False  # scored since the last snapshot went out
    flush_scheduled: bool = False  # a timer will publish the snapshot


def _invalid_feature(record: WineRecord) -> str:
    try:
        record_features(record)
    except InvalidRecord as e:
        return str(e)
    return "a feature is not finite"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ModelServer:
    """Serves the current model of every data type this worker owns."""

    def __init__(
        self,
        settings: ServingSettings,
        options: ModelOptions,
        schema: RecordSchema = WINE,
        clock_ms: Callable[[], int] = _now_ms,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._options = options
        self._schema = schema
        self._clock_ms = clock_ms
        self._metrics = metrics or NoMetrics()
        self._serving: dict[str, _Serving] = {}
        self._results = ResultEncoder()

    def close(self) -> None:
        for serving in self._serving.values():
            serving.model.close()
        self._serving.clear()

    # -- models ---------------------------------------------------------------------------------

    def on_model(self, data_type: str, incoming: Incoming, ctx: KeyContext) -> list[Output]:
        """Build, validate and swap in a published model; a failing one never replaces the current one."""
        try:
            descriptor = ModelDescriptor.FromString(incoming[0])
        except DecodeError as e:
            descriptor = ModelDescriptor()
            return self._reject(data_type, Reason.MODEL_UNDECODABLE, str(e), incoming, descriptor, "")
        version = model_version(descriptor)
        try:
            model = load_model(descriptor, self._schema, self._options)
        except UnknownModelType as e:
            return self._reject(data_type, Reason.UNKNOWN_MODEL_TYPE, str(e), incoming, descriptor, version)
        except ModelLoadError as e:
            return self._reject(data_type, Reason.MODEL_BUILD_FAILED, str(e), incoming, descriptor, version)
        try:
            model.score_batch(self._schema.probe_matrix()).check(1)
        except Exception as e:
            model.close()
            message = f"probe record: {e}"
            return self._reject(
                data_type, Reason.MODEL_VALIDATION_FAILED, message, incoming, descriptor, version
            )

        outputs: list[Output] = []
        now = self._clock_ms()
        info = ServingModel(
            name=descriptor.name,
            description=descriptor.description,
            model_type=descriptor.modeltype,
            version=version,
            since=now,
        )
        previous = self._current(data_type, ctx)
        if previous is not None:
            previous.model.close()
            snapshot = previous.snapshot
        else:
            snapshot = StatsSnapshot(data_type=data_type)
        stats_ops.start_model(snapshot, info, now)
        serving = _Serving(model, info, snapshot)
        self._serving[data_type] = serving
        ctx.store_model(self_contained(descriptor, model, version))
        self._metrics.model_loaded(data_type, now)
        pending = ctx.load_pending()
        if pending:
            ctx.store_pending([])
            outputs += self._score(data_type, [h[:3] for h in pending], serving)
        outputs.append(self._publish_stats(data_type, serving, ctx, now))
        return outputs

    def _reject(
        self,
        data_type: str,
        reason: Reason,
        message: str,
        incoming: Incoming,
        descriptor: ModelDescriptor,
        version: str,
    ) -> list[Output]:
        raw, partition, offset = incoming
        self._metrics.model_rejected(data_type)
        source = Source(self._settings.models_topic, partition, offset)
        letter = dead_letter(reason, message, raw, source, data_type, descriptor.name, version)
        return [(Sink.DEAD_LETTERS, None, letter)]

    # -- records --------------------------------------------------------------------------------

    def on_records(self, data_type: str, records: Sequence[Incoming], ctx: KeyContext) -> list[Output]:
        """Score records of one data type with its current model in one call to the model (or hold them
        until a model arrives)."""
        serving = self._current(data_type, ctx)
        if serving is None:
            return self._hold(data_type, records, ctx)
        outputs = self._score(data_type, records, serving)
        now = self._clock_ms()
        if now - serving.last_published_ms >= self._settings.stats_interval_ms:
            outputs.append(self._publish_stats(data_type, serving, ctx, now))
        else:
            ctx.store_stats(serving.snapshot)
            serving.unpublished = True
            if not serving.flush_scheduled:  # so the last records' stats go out even if no more come
                ctx.schedule(serving.last_published_ms + self._settings.stats_interval_ms)
                serving.flush_scheduled = True
        return outputs

    def on_timer(self, data_type: str, ctx: KeyContext) -> list[Output]:
        """Publish stats that are due, and dead-letter held records whose wait for a model ran out."""
        outputs: list[Output] = []
        serving = self._current(data_type, ctx)
        if serving is not None:
            serving.flush_scheduled = False
            if serving.unpublished:
                outputs.append(self._publish_stats(data_type, serving, ctx, self._clock_ms()))
            return outputs
        pending = ctx.load_pending()
        if not pending:
            return outputs
        timeout = self._settings.pending_timeout_ms
        now = self._clock_ms()
        expired = [h for h in pending if now - h[3] >= timeout]
        waiting = [h for h in pending if now - h[3] < timeout]
        ctx.store_pending(waiting)
        if waiting and expired:
            ctx.schedule(waiting[0][3] + timeout)
        message = f"no model for data type {data_type!r} within {timeout} ms"
        return outputs + [
            self._record_dead_letter(data_type, Reason.NO_MODEL, message, h[:3]) for h in expired
        ]

    def reject_untyped(self, records: Sequence[Incoming]) -> list[Output]:
        """Dead letters for records the job could not key by data type (undecodable, or no dataType)."""
        outputs = []
        for incoming in records:
            data_type, rejected = route_record(self._settings.records_topic, incoming)
            if rejected is None:  # decodes with a data type that key extraction could not read
                message = f"dataType {data_type!r} not readable from the record's wire form"
                rejected = _unroutable(Reason.RECORD_INVALID, message, self._settings.records_topic, incoming)
            outputs.append(rejected)
        return outputs

    def _hold(self, data_type: str, records: Sequence[Incoming], ctx: KeyContext) -> list[Output]:
        pending = ctx.load_pending()
        now = self._clock_ms()
        if not pending:
            ctx.schedule(now + self._settings.pending_timeout_ms)
        room = max(self._settings.pending_max - len(pending), 0)
        pending.extend((raw, partition, offset, now) for raw, partition, offset in records[:room])
        ctx.store_pending(pending)
        message = f"no model for data type {data_type!r} and {len(pending)} records already wait for one"
        return [self._record_dead_letter(data_type, Reason.NO_MODEL, message, r) for r in records[room:]]

    def _record_dead_letter(self, data_type: str, reason: Reason, message: str, incoming: Incoming) -> Output:
        raw, partition, offset = incoming
        self._metrics.dead_lettered(data_type, 1)
        source = Source(self._settings.records_topic, partition, offset)
        return Sink.DEAD_LETTERS, None, dead_letter(reason, message, raw, source, data_type)

    def _score(self, data_type: str, records: Sequence[Incoming], serving: _Serving) -> list[Output]:
        outputs: list[Output] = []
        reject = self._record_dead_letter
        decoded: list[WineRecord] = []
        sources: list[Incoming] = []
        stats = serving.snapshot.current
        for incoming in records:
            try:
                decoded.append(decode_record(incoming[0]))
            except DecodeError as e:
                stats_ops.record_error(stats)
                outputs.append(reject(data_type, Reason.RECORD_UNDECODABLE, str(e), incoming))
                continue
            sources.append(incoming)
        if not decoded:
            return outputs
        matrix, invalid = feature_matrix(decoded)
        if invalid:
            for i in invalid:
                stats_ops.record_error(stats)
                message = _invalid_feature(decoded[i])
                outputs.append(reject(data_type, Reason.RECORD_INVALID, message, sources[i]))
            bad = set(invalid)
            matrix = np.delete(matrix, invalid, axis=0)
            decoded = [r for i, r in enumerate(decoded) if i not in bad]
            sources = [s for i, s in enumerate(sources) if i not in bad]
            if not decoded:
                return outputs
        started = time.perf_counter_ns()
        try:
            batch = serving.model.score_batch(matrix)
            batch.check(len(decoded))
        except Exception as e:
            stats_ops.record_error(stats, len(decoded))
            message = f"model {serving.info.name} {serving.info.version} failed: {e}"
            outputs += [
                self._record_dead_letter(data_type, Reason.SCORING_FAILED, message, i) for i in sources
            ]
            return outputs
        each_ns = (time.perf_counter_ns() - started) // len(decoded)
        now = self._clock_ms()
        stats_ops.record_scores(stats, len(decoded), each_ns, now)
        self._metrics.scored(data_type, len(decoded))
        encoded = self._results.encode(serving.info, data_type, now, each_ns, decoded, batch)
        outputs += [(Sink.SCORES, None, result) for result in encoded]
        return outputs

    # -- state ----------------------------------------------------------------------------------

    def _current(self, data_type: str, ctx: KeyContext) -> _Serving | None:
        """The cached live model, rebuilt from keyed state after a restart or a rescale."""
        serving = self._serving.get(data_type)
        if serving is not None:
            return serving
        raw = ctx.load_model()
        if raw is None:
            return None
        try:
            model = load_model(ModelDescriptor.FromString(raw), self._schema, self._options)
        except (DecodeError, ModelLoadError):
            return None  # validated when it was published; if it cannot be rebuilt here, records wait
        snapshot = ctx.load_stats() or StatsSnapshot(data_type=data_type)
        info = ServingModel()
        info.CopyFrom(snapshot.current.model)
        serving = _Serving(model, info, snapshot)
        self._serving[data_type] = serving
        self._metrics.model_loaded(data_type, info.since)
        return serving

    def _publish_stats(self, data_type: str, serving: _Serving, ctx: KeyContext, now: int) -> Output:
        serving.last_published_ms = now
        serving.unpublished = False
        snapshot = serving.snapshot
        snapshot.published_at = now
        stats_ops.finish(snapshot.current)
        ctx.store_stats(snapshot)
        return Sink.STATS, data_type.encode(), snapshot.SerializeToString()
