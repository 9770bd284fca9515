"""The serving core: model lifecycle and swap, scoring, stats, routing and error handling per data type.

Plain Python. The Flink job drives it through a ``KeyContext`` (its keyed state and timers) and turns
the ``Output``s it returns into Kafka records; tests drive it with an in-memory context.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

import numpy as np
from google.protobuf.message import DecodeError

from model.base import Model, ModelLoadError, ModelOptions
from model.registry import UnknownModelType, load_model, self_contained
from modelstream import stats as stats_ops
from modelstream.deadletters import Reason, Source, dead_letter
from modelstream.records import WINE, InvalidRecord, RecordSchema, decode_record, record_features
from protobufs.modelstream_pb2 import ModelDescriptor, ScoreResult, ServingModel, StatsSnapshot


class Sink(IntEnum):
    """Where an output goes; the job maps each to a topic."""

    SCORES = 0
    STATS = 1
    DEAD_LETTERS = 2


# (sink, Kafka key or None, Kafka value)
Output = tuple[Sink, bytes | None, bytes]


class KeyContext(Protocol):
    """The per-data-type state the core keeps between calls (Flink keyed state in the job)."""

    def load_model(self) -> bytes | None: ...
    def store_model(self, descriptor: bytes) -> None: ...
    def load_stats(self) -> bytes | None: ...
    def store_stats(self, snapshot: bytes) -> None: ...
    def load_pending(self) -> list[bytes]: ...
    def store_pending(self, records: list[bytes]) -> None: ...
    def schedule(self, at_ms: int) -> None: ...


@dataclass(frozen=True)
class ServingSettings:
    pending_max: int = 10_000
    pending_timeout_ms: int = 30_000
    stats_interval_ms: int = 2_000


def model_version(descriptor: ModelDescriptor) -> str:
    """The publisher's version, else a content hash of the model bytes (or of its location)."""
    if descriptor.version:
        return descriptor.version
    content = (
        descriptor.data if descriptor.WhichOneof("MessageContent") == "data" else descriptor.location.encode()
    )
    return "sha256:" + hashlib.sha256(content).hexdigest()[:12]


@dataclass
class _Serving:
    """The live model of one data type, with its stats, cached in the worker."""

    model: Model
    info: ServingModel
    snapshot: StatsSnapshot
    last_published_ms: int = 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def route_record(raw: bytes, source: Source) -> tuple[str, None] | tuple[None, Output]:
    """The data type a record is keyed by, or the dead letter for an undecodable or untyped record."""
    try:
        data_type = decode_record(raw).dataType
    except DecodeError as e:
        return None, (
            Sink.DEAD_LETTERS,
            None,
            dead_letter(Reason.RECORD_UNDECODABLE, f"not a WineRecord: {e}", raw, source),
        )
    if not data_type:
        return None, (
            Sink.DEAD_LETTERS,
            None,
            dead_letter(Reason.RECORD_INVALID, "record has no dataType", raw, source),
        )
    return data_type, None


def route_model(raw: bytes, source: Source) -> tuple[str, None] | tuple[None, Output]:
    """The data type a model serves, or the dead letter for an undecodable or untyped descriptor."""
    try:
        descriptor = ModelDescriptor.FromString(raw)
    except DecodeError as e:
        return None, (
            Sink.DEAD_LETTERS,
            None,
            dead_letter(Reason.MODEL_UNDECODABLE, f"not a ModelDescriptor: {e}", raw, source),
        )
    if not descriptor.dataType:
        letter = dead_letter(
            Reason.MODEL_UNDECODABLE,
            "model descriptor has no dataType",
            raw,
            source,
            model_name=descriptor.name,
        )
        return None, (Sink.DEAD_LETTERS, None, letter)
    return descriptor.dataType, None


class ModelServer:
    """Serves the current model of every data type this worker owns."""

    def __init__(
        self,
        settings: ServingSettings,
        options: ModelOptions,
        schema: RecordSchema = WINE,
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self._settings = settings
        self._options = options
        self._schema = schema
        self._clock_ms = clock_ms
        self._serving: dict[str, _Serving] = {}
        self._result = ScoreResult()

    def close(self) -> None:
        for serving in self._serving.values():
            serving.model.close()
        self._serving.clear()

    # -- models ---------------------------------------------------------------------------------

    def on_model(self, data_type: str, raw: bytes, ctx: KeyContext, source: Source) -> list[Output]:
        """Build, validate and swap in a published model; a failing one never replaces the current one."""
        try:
            descriptor = ModelDescriptor.FromString(raw)
        except DecodeError as e:
            return [
                (
                    Sink.DEAD_LETTERS,
                    None,
                    dead_letter(Reason.MODEL_UNDECODABLE, str(e), raw, source, data_type),
                )
            ]
        version = model_version(descriptor)

        def reject(reason: Reason, message: str) -> list[Output]:
            letter = dead_letter(reason, message, raw, source, data_type, descriptor.name, version)
            return [(Sink.DEAD_LETTERS, None, letter)]

        try:
            model = load_model(descriptor, self._schema, self._options)
        except UnknownModelType as e:
            return reject(Reason.UNKNOWN_MODEL_TYPE, str(e))
        except ModelLoadError as e:
            return reject(Reason.MODEL_BUILD_FAILED, str(e))
        try:
            model.score_batch(self._schema.probe_matrix()).check(1)
        except Exception as e:
            model.close()
            return reject(Reason.MODEL_VALIDATION_FAILED, f"probe record: {e}")

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
            snapshot = stats_ops.new_snapshot(data_type)
        stats_ops.start_model(snapshot, info, now)
        serving = _Serving(model, info, snapshot)
        self._serving[data_type] = serving
        ctx.store_model(self_contained(descriptor, model, version))
        outputs = self._score_pending(data_type, serving, ctx)
        outputs.append(self._publish_stats(data_type, serving, ctx, now))
        return outputs

    # -- records --------------------------------------------------------------------------------

    def on_record(self, data_type: str, raw: bytes, ctx: KeyContext, source: Source) -> list[Output]:
        """Score one record with the data type's current model (or hold it until a model arrives)."""
        serving = self._current(data_type, ctx)
        if serving is None:
            return self._hold(data_type, raw, ctx, source)
        outputs = [self._score(data_type, raw, serving, source)]
        now = self._clock_ms()
        if now - serving.last_published_ms >= self._settings.stats_interval_ms:
            outputs.append(self._publish_stats(data_type, serving, ctx, now))
        else:
            ctx.store_stats(serving.snapshot.SerializeToString())
        return outputs

    def on_timer(self, data_type: str, ctx: KeyContext, source: Source) -> list[Output]:
        """Held records whose wait for a model ran out go to dead letters."""
        if self._current(data_type, ctx) is not None:
            return []
        pending = ctx.load_pending()
        if not pending:
            return []
        ctx.store_pending([])
        message = f"no model for data type {data_type!r} within {self._settings.pending_timeout_ms} ms"
        return [
            (Sink.DEAD_LETTERS, None, dead_letter(Reason.NO_MODEL, message, raw, source, data_type))
            for raw in pending
        ]

    def _hold(self, data_type: str, raw: bytes, ctx: KeyContext, source: Source) -> list[Output]:
        pending = ctx.load_pending()
        if len(pending) >= self._settings.pending_max:
            message = f"no model for data type {data_type!r} and {len(pending)} records already wait for one"
            return [(Sink.DEAD_LETTERS, None, dead_letter(Reason.NO_MODEL, message, raw, source, data_type))]
        if not pending:
            ctx.schedule(self._clock_ms() + self._settings.pending_timeout_ms)
        pending.append(raw)
        ctx.store_pending(pending)
        return []

    def _score_pending(self, data_type: str, serving: _Serving, ctx: KeyContext) -> list[Output]:
        pending = ctx.load_pending()
        if not pending:
            return []
        ctx.store_pending([])
        return [self._score(data_type, raw, serving, Source("held")) for raw in pending]

    def _score(self, data_type: str, raw: bytes, serving: _Serving, source: Source) -> Output:
        try:
            record = decode_record(raw)
            features = np.asarray([record_features(record)], dtype=np.float64)
        except (DecodeError, InvalidRecord) as e:
            stats_ops.record_error(serving.snapshot.current)
            reason = Reason.RECORD_INVALID if isinstance(e, InvalidRecord) else Reason.RECORD_UNDECODABLE
            return Sink.DEAD_LETTERS, None, dead_letter(reason, str(e), raw, source, data_type)
        started = time.perf_counter_ns()
        try:
            batch = serving.model.score_batch(features)
            batch.check(1)
        except Exception as e:
            stats_ops.record_error(serving.snapshot.current)
            message = f"model {serving.info.name} {serving.info.version} failed: {e}"
            return (
                Sink.DEAD_LETTERS,
                None,
                dead_letter(Reason.SCORING_FAILED, message, raw, source, data_type),
            )
        elapsed = time.perf_counter_ns() - started
        now = self._clock_ms()
        stats_ops.record_scores(serving.snapshot.current, 1, elapsed, elapsed, elapsed, now)

        result = self._result
        result.Clear()
        result.model_name = serving.info.name
        result.model_version = serving.info.version
        result.model_type = serving.info.model_type
        result.data_type = data_type
        result.record_id = record.record_id
        result.record_ts = record.ts
        result.scored_at = now
        result.scoring_time_ns = elapsed
        if batch.labels is not None:
            result.label = batch.labels[0]
        if batch.values is not None:
            result.value = float(batch.values[0])
        if batch.probabilities is not None:
            result.probabilities.update(zip(batch.classes, batch.probabilities[0].tolist(), strict=True))
        return Sink.SCORES, None, result.SerializeToString()

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
        snapshot = StatsSnapshot()
        stored = ctx.load_stats()
        if stored:
            snapshot.ParseFromString(stored)
        info = ServingModel()
        info.CopyFrom(snapshot.current.model)
        serving = _Serving(model, info, snapshot)
        self._serving[data_type] = serving
        return serving

    def _publish_stats(self, data_type: str, serving: _Serving, ctx: KeyContext, now: int) -> Output:
        serving.last_published_ms = now
        serving.snapshot.published_at = now
        data = serving.snapshot.SerializeToString()
        ctx.store_stats(data)
        return Sink.STATS, data_type.encode(), data
