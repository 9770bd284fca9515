"""The serving core: model lifecycle and swap, scoring, stats, routing and error handling per data type.

Plain Python. The Flink job drives it through a ``KeyContext`` (its keyed state and timers) and turns
the ``Output``s it returns into Kafka records; tests drive it with an in-memory context.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from modelstream import stats as stats_ops
from modelstream.binding import Binder, Bound, synthesized_inputs
from modelstream.codecs import Decoded, Failure, SourceRecord, decode_groups
from modelstream.codecs.protobuf import SchemaError, UserSchemas
from modelstream.contract import InputArrays, Model, ModelLoadError, ModelOptions
from modelstream.deadletters import Reason, Source, dead_letter
from modelstream.interface import Incoming, KeyContext, NoMetrics, Output, ServingMetrics, Sink
from modelstream.logs import event, logger
from modelstream.records import WINE
from modelstream.registry import UnknownModelType, load_model, self_contained
from modelstream.results import ResultEncoder
from modelstream.scoring import score_isolating
from modelstream.topics import RECORD_SCHEMA_MESSAGE, Encoding, message_type
from protobufs.modelstream_pb2 import ModelDescriptor, RecordSchema, ServingModel, StatsSnapshot

LOG = logger("serving")


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


def is_record_schema(content_type: str) -> bool:
    """Whether a message on the models topic is a RecordSchema (else a ModelDescriptor)."""
    return message_type(content_type) == RECORD_SCHEMA_MESSAGE


def route_model(
    topic: str, incoming: Incoming, content_type: str = ""
) -> tuple[str, None] | tuple[None, Output]:
    """The data type a model (or record schema) serves, or the dead letter for an undecodable or untyped
    one."""
    if is_record_schema(content_type):
        try:
            schema = RecordSchema.FromString(incoming[0])
        except DecodeError as e:
            return None, _unroutable(Reason.SCHEMA_INVALID, f"not a RecordSchema: {e}", topic, incoming)
        if not schema.data_type:
            return None, _unroutable(Reason.SCHEMA_INVALID, "record schema has no data_type", topic, incoming)
        return schema.data_type, None
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
    binder: Binder
    info: ServingModel
    snapshot: StatsSnapshot
    last_published_ms: int = 0
    unpublished: bool = False  # scored since the last snapshot went out
    flush_scheduled: bool = False  # a timer will publish the snapshot
    probe: SourceRecord | None = None  # the most recent record that scored
    probe_stored: bool = True


_WINE_PROBE = decode_groups(
    [SourceRecord(WINE.probe_record().SerializeToString(), None, None, Encoding.WINE, "", 0, None, "")],
    UserSchemas(),
)[0]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _held_record(held: tuple[object, ...], records_topic: str) -> SourceRecord:
    """A held record from state (state written before round 2 held a WineRecord's raw, partition, offset)."""
    if len(held) == 3:
        raw, partition, offset = held
        return SourceRecord(raw, partition, offset, Encoding.WINE, records_topic, 0, None, "")  # type: ignore[arg-type]
    return SourceRecord(*held)  # type: ignore[arg-type]


def _joined(bound: list[Bound]) -> InputArrays:
    if len(bound) == 1:
        return bound[0].arrays
    return {name: np.concatenate([b.arrays[name] for b in bound]) for name in bound[0].arrays}


class ModelServer:
    """Serves the current model of every data type this worker owns: decode, bind, score, encode."""

    def __init__(
        self,
        settings: ServingSettings,
        options: ModelOptions,
        clock_ms: Callable[[], int] = _now_ms,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._options = options
        self._clock_ms = clock_ms
        self._metrics = metrics or NoMetrics()
        self._serving: dict[str, _Serving] = {}
        self._schemas: dict[str, UserSchemas] = {}
        self._results = ResultEncoder()

    def close(self) -> None:
        for serving in self._serving.values():
            serving.model.close()
        self._serving.clear()

    # -- schemas --------------------------------------------------------------------------------

    def on_schema(self, data_type: str, incoming: Incoming, ctx: KeyContext) -> list[Output]:
        """Keep a data type's record schema (a message class of a FileDescriptorSet) in state."""
        try:
            schema = RecordSchema.FromString(incoming[0])
            UserSchemas({schema.message_name: schema.file_descriptor_set})
        except (DecodeError, SchemaError) as e:
            raw, partition, offset = incoming
            source = Source(self._settings.models_topic, partition, offset)
            letter = dead_letter(Reason.SCHEMA_INVALID, f"record schema: {e}", raw, source, data_type)
            event(LOG, "record schema rejected", logging.WARNING, data_type=data_type, why=str(e)[:300])
            return [(Sink.DEAD_LETTERS, None, letter)]
        schemas = ctx.load_schemas()
        schemas[schema.message_name] = schema.file_descriptor_set
        ctx.store_schemas(schemas)
        self._schemas[data_type] = UserSchemas(schemas)
        event(LOG, "record schema loaded", data_type=data_type, schema=schema.message_name)
        serving = self._current(data_type, ctx)
        return [] if serving is None else self._score_pending(data_type, serving, ctx)

    def _user_schemas(self, data_type: str, ctx: KeyContext) -> UserSchemas:
        schemas = self._schemas.get(data_type)
        if schemas is None:
            schemas = self._schemas[data_type] = UserSchemas(ctx.load_schemas())
        return schemas

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
            model = load_model(descriptor, self._options)
        except UnknownModelType as e:
            return self._reject(data_type, Reason.UNKNOWN_MODEL_TYPE, str(e), incoming, descriptor, version)
        except ModelLoadError as e:
            return self._reject(data_type, Reason.MODEL_BUILD_FAILED, str(e), incoming, descriptor, version)
        binder = Binder(model.inputs, tuple(descriptor.input_fields))
        previous = self._current(data_type, ctx)
        rejection = self._validate(data_type, model, binder, previous, ctx)
        if rejection is not None:
            model.close()
            reason, message = rejection
            return self._reject(data_type, reason, message, incoming, descriptor, version)

        outputs: list[Output] = []
        now = self._clock_ms()
        info = ServingModel(
            name=descriptor.name,
            description=descriptor.description,
            model_type=descriptor.modeltype,
            version=version,
            since=now,
        )
        probe = None
        if previous is not None:
            previous.model.close()
            snapshot, probe = previous.snapshot, previous.probe
        else:
            snapshot = StatsSnapshot(data_type=data_type)
        stats_ops.start_model(snapshot, info, now)
        serving = _Serving(model, binder, info, snapshot, probe=probe)
        self._serving[data_type] = serving
        ctx.store_model(self_contained(descriptor, model, version))
        self._metrics.model_loaded(data_type, now)
        replaced = f"{previous.info.name} {previous.info.version}" if previous is not None else ""
        event(LOG, "model loaded", data_type=data_type, model=descriptor.name, version=version,
              format=ModelDescriptor.ModelType.Name(descriptor.modeltype), replaces=replaced)  # fmt: skip
        outputs += self._score_pending(data_type, serving, ctx)
        outputs.append(self._publish_stats(data_type, serving, ctx, now))
        return outputs

    def _score_pending(self, data_type: str, serving: _Serving, ctx: KeyContext) -> list[Output]:
        """Score the records held for want of a model or a schema (those still waiting are held again)."""
        pending = ctx.load_pending()
        if not pending:
            return []
        ctx.store_pending([])
        held = [_held_record(h[0], self._settings.records_topic) for h in pending]
        return self._score(data_type, held, serving, ctx)

    def _validate(
        self, data_type: str, model: Model, binder: Binder, previous: _Serving | None, ctx: KeyContext
    ) -> tuple[Reason, str] | None:
        """Why a new model may not serve, or None: it must bind to the data type's most recent good record
        (else one made up from its schema or its declared inputs) and score it finitely."""
        probe = previous.probe if previous is not None else None
        if probe is None:
            stored = ctx.load_probe()
            probe = None if stored is None else SourceRecord(*stored)  # type: ignore[arg-type]
        schemas = self._user_schemas(data_type, ctx)
        if probe is None and schemas.names():
            name = schemas.names()[-1]
            probe = SourceRecord(b"", None, None, Encoding.PROTOBUF, "", 0, None, name)
        if probe is None and binder.bind(_WINE_PROBE).rows.size:
            probe = _WINE_PROBE.sources[0]  # a model of the tutorial's records, before any arrived
        arrays: InputArrays
        if probe is None:
            arrays = synthesized_inputs(model.inputs)
        else:
            decoded = decode_groups([probe], schemas)[0]
            if decoded.failures:
                arrays = synthesized_inputs(model.inputs)  # e.g. its schema was replaced since
            else:
                bound = binder.bind(decoded)
                if bound.failures:
                    inputs = ", ".join(spec.describe() for spec in model.inputs)
                    why = bound.failures[0].message
                    message = f"inputs ({inputs}) cannot be bound from {data_type} records: {why}"
                    return Reason.MODEL_INPUTS_UNBOUND, message
                arrays = bound.arrays
        try:
            model.score_batch(arrays).check(1)
        except Exception as e:
            return Reason.MODEL_VALIDATION_FAILED, f"probe record: {e}"
        return None

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
        event(LOG, "model rejected", logging.WARNING, data_type=data_type, model=descriptor.name,
              version=version, reason=Reason.Name(reason), why=message[:300])  # fmt: skip
        source = Source(self._settings.models_topic, partition, offset)
        letter = dead_letter(reason, message, raw, source, data_type, descriptor.name, version)
        return [(Sink.DEAD_LETTERS, None, letter)]

    # -- records --------------------------------------------------------------------------------

    def on_records(self, data_type: str, records: Sequence[SourceRecord], ctx: KeyContext) -> list[Output]:
        """Score records of one data type with its current model in one call to the model (or hold them
        until a model arrives)."""
        serving = self._current(data_type, ctx)
        if serving is None:
            return self._hold(data_type, records, ctx)
        outputs = self._score(data_type, records, serving, ctx)
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
        pending = ctx.load_pending()
        if not pending:
            return outputs
        timeout = self._settings.pending_timeout_ms
        now = self._clock_ms()
        expired = [h for h in pending if now - h[1] >= timeout]
        waiting = [h for h in pending if now - h[1] < timeout]
        ctx.store_pending(waiting)
        if waiting and expired:
            ctx.schedule(waiting[0][1] + timeout)
        reason, wanted = (
            (Reason.NO_MODEL, "model") if serving is None else (Reason.RECORD_UNDECODABLE, "schema")
        )
        message = f"no {wanted} for data type {data_type!r} within {timeout} ms"
        topic = self._settings.records_topic
        return outputs + [
            self._record_dead_letter(data_type, Failure(_held_record(h[0], topic), reason, message))
            for h in expired
        ]

    def reject_untyped(self, records: Sequence[SourceRecord]) -> list[Output]:
        """Dead letters for records the job could not key by data type."""
        message = "the record has no data type (no data-type header, no data type field, no topic default)"
        return [self._record_dead_letter("", Failure(r, Reason.RECORD_INVALID, message)) for r in records]

    def _hold(self, data_type: str, records: Sequence[SourceRecord], ctx: KeyContext) -> list[Output]:
        """Keep records until a model (or their schema) arrives; what cannot decode goes now."""
        groups = decode_groups(records, self._user_schemas(data_type, ctx))
        failures = [f for group in groups for f in group.failures if not f.waiting]
        rejected = [self._record_dead_letter(data_type, f) for f in failures]
        if failures:
            failed = {id(f.record) for f in failures}
            records = [r for r in records if id(r) not in failed]
            if not records:
                return rejected
        pending = ctx.load_pending()
        now = self._clock_ms()
        if not pending:
            ctx.schedule(now + self._settings.pending_timeout_ms)
        room = max(self._settings.pending_max - len(pending), 0)
        pending.extend((tuple(record), now) for record in records[:room])
        ctx.store_pending(pending)
        message = f"no model for data type {data_type!r} and {len(pending)} records already wait for one"
        return rejected + [
            self._record_dead_letter(data_type, Failure(r, Reason.NO_MODEL, message)) for r in records[room:]
        ]

    def _record_dead_letter(self, data_type: str, failure: Failure) -> Output:
        record = failure.record
        self._metrics.dead_lettered(data_type, 1)
        source = Source(record.topic, record.partition, record.offset)
        return (
            Sink.DEAD_LETTERS,
            None,
            dead_letter(failure.reason, failure.message, record.value, source, data_type),
        )

    def _score(
        self, data_type: str, records: Sequence[SourceRecord], serving: _Serving, ctx: KeyContext
    ) -> list[Output]:
        stats = serving.snapshot.current
        failures: list[Failure] = []
        decoded: list[Decoded] = []
        bound: list[Bound] = []
        for group in decode_groups(records, self._user_schemas(data_type, ctx)):
            failures += group.failures
            if len(group):
                binding = serving.binder.bind(group)
                failures += binding.failures
                if len(binding.rows):
                    decoded.append(group)
                    bound.append(binding)
        waiting = [f.record for f in failures if f.waiting]
        if waiting:
            failures = [f for f in failures if not f.waiting]
        outputs = [self._record_dead_letter(data_type, f) for f in failures]
        if waiting:
            outputs += self._hold(data_type, waiting, ctx)
        if failures:
            stats_ops.record_error(stats, len(failures))
        if not bound:
            return outputs
        sources, ids, timestamps = _rows(decoded, bound)
        started = time.perf_counter_ns()
        scored = score_isolating(serving.model, _joined(bound), len(sources))
        elapsed = time.perf_counter_ns() - started
        if scored.failed:
            stats_ops.record_error(stats, len(scored.failed))
            info = serving.info
            for row, why in scored.failed.items():
                message = f"model {info.name} {info.version} failed on record {ids[row]!r}: {why}"
                outputs.append(
                    self._record_dead_letter(data_type, Failure(sources[row], Reason.SCORING_FAILED, message))
                )
            keep = scored.rows.tolist()
            sources = [sources[i] for i in keep]
            ids = [ids[i] for i in keep]
            timestamps = [timestamps[i] for i in keep]
        if scored.batch is None:
            return outputs
        each_ns = elapsed // len(sources)
        now = self._clock_ms()
        stats_ops.record_scores(stats, len(sources), each_ns, now)
        self._metrics.scored(data_type, len(sources))
        serving.probe, serving.probe_stored = sources[-1], False
        encoded = self._results.encode(
            serving.info, data_type, now, each_ns, ids, timestamps, sources, scored.batch
        )
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
            descriptor = ModelDescriptor.FromString(raw)
            model = load_model(descriptor, self._options)
        except (DecodeError, ModelLoadError):
            return None  # validated when it was published; if it cannot be rebuilt here, records wait
        snapshot = ctx.load_stats() or StatsSnapshot(data_type=data_type)
        info = ServingModel()
        info.CopyFrom(snapshot.current.model)
        serving = _Serving(model, Binder(model.inputs, tuple(descriptor.input_fields)), info, snapshot)
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
        if serving.probe is not None and not serving.probe_stored:
            ctx.store_probe(tuple(serving.probe))
            serving.probe_stored = True
        return Sink.STATS, data_type.encode(), snapshot.SerializeToString()


def _rows(decoded: list[Decoded], bound: list[Bound]) -> tuple[list[SourceRecord], list[str], list[int]]:
    """The source, id and ts of each row that bound, in the order the joined inputs hold them."""
    if len(decoded) == 1 and len(bound[0].rows) == len(decoded[0]):
        only = decoded[0]
        return only.sources, only.ids, only.timestamps
    sources: list[SourceRecord] = []
    ids: list[str] = []
    timestamps: list[int] = []
    for group, binding in zip(decoded, bound, strict=True):
        rows = binding.rows.tolist()
        sources += [group.sources[i] for i in rows]
        ids += [group.ids[i] for i in rows]
        timestamps += [group.timestamps[i] for i in rows]
    return sources, ids, timestamps
