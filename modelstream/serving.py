"""The serving core: model lifecycle and swap, scoring, stats, routing and error handling per data type.

Plain Python. The Flink job drives it through a ``KeyContext`` (its keyed state and timers) and turns
the ``Output``s it returns into Kafka records; tests drive it with an in-memory context.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from modelstream import admission
from modelstream import stats as stats_ops
from modelstream.admission import ModelRejected, admit
from modelstream.binding import Binder, Bound
from modelstream.cache import CacheLimits, CacheStats, LiveModels, LoadMeter, release_freed_memory
from modelstream.codecs import Decoded, Failure, SourceRecord, decode_groups
from modelstream.codecs.protobuf import SchemaError, UserSchemas
from modelstream.contract import InputArrays, Model, ModelLoadError, ModelOptions, ScoreBatch
from modelstream.deadletters import Reason, Source, dead_letter
from modelstream.drift import DEFAULT_WINDOW, DriftMonitor, features_of, published, status_level
from modelstream.feedback import FeedbackBatch, FeedbackError, ServedRing, parse, parse_batch
from modelstream.interface import Held, Incoming, KeyContext, NoMetrics, Output, ServingMetrics, Sink
from modelstream.logs import event, logger
from modelstream.pmml_stats import model_stats_profile
from modelstream.policies import Plan, PolicyError, Router, from_message, kept, resolve, single_version
from modelstream.policies.ensemble import check_members, combine
from modelstream.policies.performance import PerformancePlan, choose, resolve_performance
from modelstream.policies.plan import Action, EnsemblePlan, SpeculativePlan
from modelstream.registry import load_model, self_contained
from modelstream.results import ResultEncoder
from modelstream.scoring import score_isolating
from modelstream.signing import Trust, Untrusted, verify
from modelstream.topics import Encoding, ModelsTopicKind, models_topic_kind
from protobufs.modelstream_pb2 import (
    ModelDescriptor,
    ModelStats,
    PerformancePolicy,
    RecordSchema,
    RolloutPolicy,
    ScoreResult,
    ServedResults,
    ServingModel,
    StatsSnapshot,
)

LOG = logger("serving")
_P = TypeVar("_P", RolloutPolicy, PerformancePolicy)


@dataclass(frozen=True)
class ServingSettings:
    pending_max: int = 10_000
    pending_timeout_ms: int = 30_000
    stats_interval_ms: int = 2_000
    records_topic: str = "wine"
    models_topic: str = "models"
    retain_versions: int = 2
    speculative_deadline_ms: int = 50
    # models and policies must be signed by a trusted key (require_signed_models); default: not checked
    trust: Trust = field(default_factory=Trust)
    drift_window: int = DEFAULT_WINDOW  # records per drift window
    feedback_max_records: int = 10_000  # results kept per data type for feedback to match
    feedback_max_age_ms: int = 600_000  # how long a result waits for its feedback
    # the live models (modelstream.cache): how many, in how much memory (0: no bound), and how long after
    # its last record a model stays busy (never evicted in favour of an idle one)
    max_live_models: int = 1000
    max_live_model_bytes: int = 0
    live_model_idle_ms: int = 5_000


def model_version(descriptor: ModelDescriptor) -> str:
    """The publisher's version, else a content hash of the model bytes (or of its location)."""
    if descriptor.version:
        return descriptor.version
    content = (
        descriptor.data if descriptor.WhichOneof("MessageContent") == "data" else descriptor.location.encode()
    )
    return "sha256:" + hashlib.sha256(content).hexdigest()[:12]


def _unkeyed_feedback(record: SourceRecord) -> str:
    """Why a feedback message could not be keyed by its data type."""
    try:
        parse(record.value)
    except FeedbackError as e:
        return f"feedback: {e}"
    return "feedback: no dataType"


def _unroutable(reason: Reason, message: str, topic: str, incoming: Incoming, model_name: str = "") -> Output:
    raw, partition, offset = incoming
    letter = dead_letter(reason, message, raw, Source(topic, partition, offset), model_name=model_name)
    return Sink.DEAD_LETTERS, None, letter


# messages of their own type on the models topic: (class, dead-letter reason, what it is)
_TYPED_MESSAGES: dict[
    ModelsTopicKind, tuple[type[RecordSchema] | type[RolloutPolicy] | type[PerformancePolicy], Reason, str]
] = {
    ModelsTopicKind.SCHEMA: (RecordSchema, Reason.SCHEMA_INVALID, "record schema"),
    ModelsTopicKind.POLICY: (RolloutPolicy, Reason.POLICY_INVALID, "rollout policy"),
    ModelsTopicKind.PERFORMANCE: (PerformancePolicy, Reason.POLICY_INVALID, "performance policy"),
}


def route_model(
    topic: str, incoming: Incoming, content_type: str = ""
) -> tuple[str, None] | tuple[None, Output]:
    """The data type a model, record schema or rollout policy is for, or the dead letter for an
    undecodable or untyped one."""
    typed = _TYPED_MESSAGES.get(models_topic_kind(content_type))
    if typed is not None:
        message_class, reason, what = typed
        try:
            keyed = message_class.FromString(incoming[0])
        except DecodeError as e:
            return None, _unroutable(reason, f"not a {message_class.DESCRIPTOR.name}: {e}", topic, incoming)
        if not keyed.data_type:
            return None, _unroutable(reason, f"{what} has no data_type", topic, incoming)
        return str(keyed.data_type), None
    try:
        descriptor = ModelDescriptor.FromString(incoming[0])
    except DecodeError as e:
        return None, _unroutable(Reason.MODEL_UNDECODABLE, f"not a ModelDescriptor: {e}", topic, incoming)
    if not descriptor.dataType:
        message = "model descriptor has no dataType"
        return None, _unroutable(Reason.MODEL_UNDECODABLE, message, topic, incoming, descriptor.name)
    return descriptor.dataType, None


@dataclass
class _Version:
    """One loaded version of a data type's model, with its own stats."""

    model: Model
    binder: Binder
    info: ServingModel
    stats: ModelStats
    descriptor: bytes  # self-contained, as kept in state
    quality: float | None = None  # published with the model (a best-quality ensemble's figure)
    drift: DriftMonitor | None = None  # its inputs and predictions against its reference profile


@dataclass
class _Run:
    """One version's scores of some of a batch's rows, before anything is counted or written."""

    failures: list[Failure]  # rows that did not bind, or that the model failed on
    sources: list[SourceRecord]  # the rows scored, in the batch's order
    ids: list[str]
    timestamps: list[int]
    positions: npt.NDArray[np.int64]  # their positions across the batch's decoded groups
    batch: ScoreBatch | None
    elapsed_ns: int = 0
    inputs: InputArrays | None = None  # the rows' bound inputs, in the batch's order (drift counts them)


@dataclass
class _Serving:
    """A data type's loaded versions and the plan that routes its records to them, cached in the worker."""

    versions: dict[str, _Version]  # in publishing order
    plan: Plan
    router: Router
    snapshot: StatsSnapshot
    last_published_ms: int = 0
    unpublished: bool = False  # scored since the last snapshot went out
    flush_scheduled: bool = False  # a timer will publish the snapshot
    probe: SourceRecord | None = None  # the most recent record that scored
    probe_stored: bool = True
    last_ts: int = 0  # the newest record time routed (a ramp's share is reported at it)
    # speculative serving: the primary's calls past their deadline, and how many rows fell back
    late: list[tuple[Future[_Run], str]] = field(default_factory=list)
    speculated_rows: int = 0
    fallback_rows: int = 0
    primary_ms: float = 0.0  # a moving average of the speculative primary's recent call times
    probe_at: float = 0.0  # when a primary too slow for its deadline is called again (monotonic s)
    served: ServedRing | None = None  # recent results, for feedback to match (from state when first used)
    performance: PerformancePlan | None = None  # routing by live quality, when such a policy is in force
    served_changed: bool = False

    @property
    def primary(self) -> _Version:
        return self.versions[self.plan.base]

    def route(self, plan: Plan) -> None:
        self.plan, self.router = plan, Router(plan)


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
    """Serves the current model of every data type this worker owns: decode, bind, score, encode.

    The data types' live versions are a bounded cache (modelstream.cache) over their keyed state: an
    evicted data type's versions are built again from state on its next record."""

    def __init__(
        self,
        settings: ServingSettings,
        options: ModelOptions,
        clock_ms: Callable[[], int] = _now_ms,
        metrics: ServingMetrics | None = None,
        meter: LoadMeter | None = None,
    ) -> None:
        self._settings = settings
        self._options = options
        self._clock_ms = clock_ms
        self._metrics = metrics or NoMetrics()
        limits = CacheLimits(
            settings.max_live_models, settings.max_live_model_bytes, settings.live_model_idle_ms
        )
        # a data type whose speculative primary still runs (or whose late results wait) stays live
        self._live: LiveModels[_Serving] = LiveModels(
            limits, clock_ms, self._evicted, lambda serving: bool(serving.late), release_freed_memory
        )
        self._meter = meter or LoadMeter()
        self._unflushed: set[str] = set()  # evicted with stats not yet published: a timer publishes them
        # known to hold no records in their keyed state: their timers need not read it (a state read is
        # a round trip to the JVM in process mode); empty after a restart, learnt on the first read
        self._nothing_held: set[str] = set()
        self._reported: tuple[int, int, int] = (0, 0, 0)  # the live models' misses, evictions, over_bound
        self._reported_ms = 0
        self._schemas: dict[str, UserSchemas] = {}
        self._results = ResultEncoder()
        self._pool: ThreadPoolExecutor | None = None  # speculative primaries run here, off this thread

    @property
    def cache_stats(self) -> CacheStats:
        """The live models now and what the cache did (the same object throughout: read it any time)."""
        return self._live.stats

    def live_data_types(self) -> list[str]:
        """The data types whose models are live, least recently used first."""
        return self._live.in_order()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for data_type in self._live.in_order():
            serving = self._live.pop(data_type)
            assert serving is not None
            for version in serving.versions.values():
                version.model.close()

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
        """Verify (when signatures are required), build, validate and swap in a published model; a failing
        one never replaces the current one."""
        try:
            descriptor = ModelDescriptor.FromString(incoming[0])
        except DecodeError as e:
            descriptor = ModelDescriptor()
            return self._reject(data_type, Reason.MODEL_UNDECODABLE, str(e), incoming, descriptor, "")
        version = model_version(descriptor)
        signer = ""
        if self._settings.trust.required:
            # before anything is built: an untrusted model's bytes never reach a runtime
            try:
                signer = verify(descriptor, self._settings.trust.keys)
            except Untrusted as e:
                return self._reject(data_type, Reason.MODEL_UNTRUSTED, str(e), incoming, descriptor, version)
        previous = self._current(data_type, ctx)
        probe = previous.probe if previous is not None else None
        if probe is None:
            stored = ctx.load_probe()
            probe = None if stored is None else SourceRecord(*stored)  # type: ignore[arg-type]
        schemas = self._user_schemas(data_type, ctx)
        try:
            measured = self._meter.build(
                descriptor.modeltype,
                lambda: admit(descriptor, self._options, data_type, probe, schemas),
                lambda built: built[0].close(),
            )
        except ModelRejected as e:
            return self._reject(data_type, e.reason, e.message, incoming, descriptor, version)
        model, binder = measured.value
        state_bytes = self_contained(descriptor, model, version)
        memory = max(measured.memory_bytes, len(state_bytes))  # it holds its bytes at least
        if self._live.too_large(memory):
            model.close()
            budget = self._settings.max_live_model_bytes
            message = (
                f"loaded, the model takes {memory / MB:.1f} MB (the worker's memory growth over its build), "
                f"more than the whole live-model budget of {budget / MB:g} MB (max_live_model_mb)"
            )
            return self._reject(data_type, Reason.MODEL_TOO_LARGE, message, incoming, descriptor, version)

        now = self._clock_ms()
        info = ServingModel(
            name=descriptor.name,
            description=descriptor.description,
            model_type=descriptor.modeltype,
            version=version,
            since=now,
        )
        stats = ModelStats(model=info, memory_bytes=memory, load_ns=measured.load_ns)
        loaded = _Version(model, binder, info, stats, state_bytes, _quality(descriptor))
        loaded.drift = self._monitor(descriptor, model, loaded.stats)
        staged = descriptor.staged and previous is not None
        alone = single_version(version, data_type, self._settings.retain_versions)
        if previous is None:
            serving = _Serving({}, alone, Router(alone), StatsSnapshot(data_type=data_type))
            stats_ops.start_model(serving.snapshot, info, now)
        else:
            serving = previous
            if not staged:
                self._sync_snapshot(data_type, serving)
                stats_ops.start_model(serving.snapshot, info, now)
        replaced = serving.versions.pop(version, None)
        if replaced is not None:
            replaced.model.close()
        serving.versions[version] = loaded
        if not staged:
            serving.route(alone)
            self._end_performance(serving, ctx)
        self._keep_versions(data_type, serving, ctx)
        self._account(data_type, serving)
        self._metrics.model_loaded(data_type, now)
        primary = serving.primary.info
        model_format = ModelDescriptor.ModelType.Name(descriptor.modeltype)
        signed = {"signed_by": signer} if signer else {}
        event(LOG, "model staged" if staged else "model loaded", logging.INFO, data_type=data_type,
              model=descriptor.name, version=version, format=model_format,
              serving=f"{primary.name} {primary.version}", memory_mb=round(memory / MB, 2),
              load_ms=round(measured.load_ns / 1e6, 1), **signed)  # fmt: skip
        outputs = self._score_pending(data_type, serving, ctx)
        outputs.append(self._publish_stats(data_type, serving, ctx, now))
        return outputs

    def _keep_versions(self, data_type: str, serving: _Serving, ctx: KeyContext) -> None:
        """Drop the versions the plan neither routes to nor retains; store versions and plan."""
        keep = set(kept(list(serving.versions), serving.plan))
        if serving.performance is not None and serving.performance.keep_top:
            keep -= set(serving.performance.candidates) - serving.plan.versions()  # ranked out
        for name in [v for v in serving.versions if v not in keep]:
            serving.versions.pop(name).model.close()
            event(LOG, "model unloaded", data_type=data_type, version=name)
        ctx.store_versions({name: v.descriptor for name, v in serving.versions.items()})
        ctx.store_policy(serving.plan.to_message(data_type).SerializeToString())

    # -- live models ----------------------------------------------------------------------------

    def _account(self, data_type: str, serving: _Serving) -> None:
        """Weigh a data type's live versions in the cache, which may evict other data types' to stay
        within its bound."""
        size = sum(version.stats.memory_bytes for version in serving.versions.values())
        self._live.put(data_type, serving, len(serving.versions), size)

    def _evicted(self, data_type: str, serving: _Serving) -> None:
        """An evicted data type: its models closed; its keyed state keeps what builds them again."""
        for version in serving.versions.values():
            version.model.close()
        self._schemas.pop(data_type, None)
        if serving.unpublished:
            self._unflushed.add(data_type)
        event(LOG, "models evicted", logging.DEBUG, data_type=data_type, versions=",".join(serving.versions))

    def _report_live_models(self) -> None:
        """A log event on the live models, at most every REPORT_EVERY_MS and only when models were built
        again or evicted since the last one (a warning when the bound was exceeded)."""
        now = self._clock_ms()
        if now - self._reported_ms < REPORT_EVERY_MS:
            return
        stats = self._live.stats
        figures = (stats.misses, stats.evictions, stats.over_bound)
        if figures == self._reported:
            return
        above = stats.over_bound > self._reported[2]
        self._reported, self._reported_ms = figures, now
        limits = self._live.limits
        event(LOG, "live models above the bound: every other one is busy" if above else "live models",
              logging.WARNING if above else logging.INFO, data_types=stats.entries, models=stats.models,
              memory_mb=round(stats.bytes / MB, 1), max_models=limits.max_models,
              max_mb=round(limits.max_bytes / MB, 1), hits=stats.hits, misses=stats.misses,
              evictions=stats.evictions, over_bound=stats.over_bound,
              cold_load_ms=round(stats.mean_cold_load_ms, 2))  # fmt: skip

    # -- policies -------------------------------------------------------------------------------

    def on_policy(self, data_type: str, incoming: Incoming, ctx: KeyContext) -> list[Output]:
        """Apply a rollout policy to a data type's loaded versions; one that cannot apply (or, when
        signatures are required, is not signed by a trusted key) is dead-lettered and the current plan
        keeps serving."""
        opened = self._open_policy(RolloutPolicy, data_type, incoming, ctx)
        if isinstance(opened, list):
            return opened
        policy, serving = opened
        try:
            plan = resolve(
                policy, list(serving.versions), serving.plan, data_type, self._settings.retain_versions
            )
        except PolicyError as e:
            return self._reject_policy(data_type, str(e), incoming)
        if plan.ensemble is not None:
            try:
                self._check_ensemble(data_type, serving, plan.ensemble, ctx)
            except PolicyError as e:
                return self._reject_policy(data_type, str(e), incoming)
        now = self._clock_ms()
        before = serving.plan.base
        self._sync_snapshot(data_type, serving)
        if serving.plan.speculative is not None and plan.speculative != serving.plan.speculative:
            serving.speculated_rows = serving.fallback_rows = 0
        serving.route(plan)
        self._end_performance(serving, ctx)
        if plan.base != before:
            stats_ops.start_model(serving.snapshot, serving.primary.info, now)
        self._keep_versions(data_type, serving, ctx)
        shadow = ",".join(f"{v}:{p:g}%" for v, p in plan.shadow)
        action = Action.Name(policy.action)
        self._account(data_type, serving)
        event(LOG, "policy applied", data_type=data_type, policy=plan.version, action=action,
              serve=_describe(plan), shadow=shadow)  # fmt: skip
        return [self._publish_stats(data_type, serving, ctx, now)]

    def _open_policy(
        self, kind: type[_P], data_type: str, incoming: Incoming, ctx: KeyContext
    ) -> tuple[_P, _Serving] | list[Output]:
        """A policy message decoded and (when signatures are required) verified, with the data type's
        versions; else the dead letter saying why not."""
        try:
            policy = kind.FromString(incoming[0])
        except DecodeError as e:
            return self._reject_policy(data_type, f"not a {kind.DESCRIPTOR.name}: {e}", incoming)
        if self._settings.trust.required:
            try:
                verify(policy, self._settings.trust.keys)
            except Untrusted as e:
                return self._reject_policy(data_type, str(e), incoming, Reason.MODEL_UNTRUSTED)
        serving = self._current(data_type, ctx)
        if serving is None:
            return self._reject_policy(data_type, f"no model is loaded for {data_type!r}", incoming)
        return policy, serving

    def _check_ensemble(self, data_type: str, serving: _Serving, plan: EnsemblePlan, ctx: KeyContext) -> None:
        """PolicyError unless the members' outputs fit the method: each scores the data type's most
        recent record (or a made-up one)."""
        schemas = self._user_schemas(data_type, ctx)
        members = [serving.versions[name] for name in plan.members]
        batches = []
        for member in members:
            probe = serving.probe or admission.default_probe(member.binder, schemas)
            try:
                batches.append(admission.probe_scores(data_type, member.model, member.binder, probe, schemas))
            except ModelRejected as e:
                raise PolicyError(
                    f"member {member.info.version} cannot score a {data_type} record: {e}"
                ) from e
        check_members(plan, batches, [m.quality for m in members])

    def _reject_policy(
        self, data_type: str, message: str, incoming: Incoming, reason: Reason = Reason.POLICY_INVALID
    ) -> list[Output]:
        raw, partition, offset = incoming
        source = Source(self._settings.models_topic, partition, offset)
        event(LOG, "policy rejected", logging.WARNING, data_type=data_type, reason=Reason.Name(reason),
              why=message)  # fmt: skip
        return [(Sink.DEAD_LETTERS, None, dead_letter(reason, message, raw, source, data_type))]

    def _score_pending(self, data_type: str, serving: _Serving, ctx: KeyContext) -> list[Output]:
        """Score the records held for want of a model or a schema (those still waiting are held again)."""
        pending = self._load_held(data_type, ctx)
        if not pending:
            return []
        self._store_held(data_type, [], ctx)
        held = [_held_record(h[0], self._settings.records_topic) for h in pending]
        return self._score(data_type, held, serving, ctx)

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
        outputs += self._stats_changed(data_type, serving, ctx)
        self._report_live_models()
        return outputs

    def on_timer(self, data_type: str, ctx: KeyContext) -> list[Output]:
        """Publish stats that are due, and dead-letter held records whose wait for a model ran out. A timer
        builds nothing: an evicted data type's due stats are published from its keyed state."""
        outputs: list[Output] = []
        serving = self._live.peek(data_type)
        if serving is not None:
            serving.flush_scheduled = False
            if serving.unpublished:  # the batch that changed them stored them: publish, store nothing
                outputs.append(self._publish_stats(data_type, serving, ctx, self._clock_ms(), stored=True))
        elif data_type in self._unflushed:
            self._unflushed.discard(data_type)
            outputs += self._publish_stored_stats(data_type, ctx)
        pending = self._load_held(data_type, ctx)
        if not pending:
            return outputs
        timeout = self._settings.pending_timeout_ms
        now = self._clock_ms()
        expired = [h for h in pending if now - h[1] >= timeout]
        waiting = [h for h in pending if now - h[1] < timeout]
        self._store_held(data_type, waiting, ctx)
        if waiting and expired:
            ctx.schedule(waiting[0][1] + timeout)
        has_model = serving is not None or bool(ctx.load_versions()) or ctx.load_model() is not None
        reason, wanted = (Reason.RECORD_UNDECODABLE, "schema") if has_model else (Reason.NO_MODEL, "model")
        message = f"no {wanted} for data type {data_type!r} within {timeout} ms"
        topic = self._settings.records_topic
        return outputs + [
            self._record_dead_letter(data_type, Failure(_held_record(h[0], topic), reason, message))
            for h in expired
        ]

    def reject_untyped(self, records: Sequence[SourceRecord]) -> list[Output]:
        """Dead letters for records (and feedback) the job could not key by data type."""
        message = "the record has no data type (no data-type header, no data type field, no topic default)"
        return [
            self._record_dead_letter("", Failure(r, Reason.FEEDBACK_INVALID, _unkeyed_feedback(r)))
            if r.encoding == Encoding.FEEDBACK
            else self._record_dead_letter("", Failure(r, Reason.RECORD_INVALID, message))
            for r in records
        ]

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
        pending = self._load_held(data_type, ctx)
        now = self._clock_ms()
        if not pending:
            ctx.schedule(now + self._settings.pending_timeout_ms)
        room = max(self._settings.pending_max - len(pending), 0)
        pending.extend((tuple(record), now) for record in records[:room])
        self._store_held(data_type, pending, ctx)
        message = f"no model for data type {data_type!r} and {len(pending)} records already wait for one"
        return rejected + [
            self._record_dead_letter(data_type, Failure(r, Reason.NO_MODEL, message)) for r in records[room:]
        ]

    def _load_held(self, data_type: str, ctx: KeyContext) -> list[Held]:
        """The records held for the data type in its keyed state, read only if there may be some."""
        if data_type in self._nothing_held:
            return []
        pending = ctx.load_pending()
        if not pending:
            self._nothing_held.add(data_type)
        return pending

    def _store_held(self, data_type: str, pending: list[Held], ctx: KeyContext) -> None:
        ctx.store_pending(pending)
        if pending:
            self._nothing_held.discard(data_type)
        else:
            self._nothing_held.add(data_type)

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
        """Decode once; score each version's rows (the plan's routing) in one model call each."""
        self._live.served(data_type)  # busy: not evicted in favour of idle data types for a while
        failures: list[Failure] = []
        decoded: list[Decoded] = []
        for group in decode_groups(records, self._user_schemas(data_type, ctx)):
            failures += group.failures
            if len(group):
                decoded.append(group)
        waiting = [f.record for f in failures if f.waiting]
        if waiting:
            failures = [f for f in failures if not f.waiting]
        outputs = [self._record_dead_letter(data_type, f) for f in failures]
        if waiting:
            outputs += self._hold(data_type, waiting, ctx)
        if failures:
            stats_ops.record_error(serving.primary.stats, len(failures))
        if not decoded:
            return outputs
        router, plan = serving.router, serving.plan
        if plan.ensemble is not None:
            outputs += self._score_ensemble(data_type, serving, plan.ensemble, decoded, ctx)
        elif plan.speculative is not None:
            outputs += self._score_speculative(data_type, serving, plan.speculative, decoded, ctx)
        elif not router.hashes:
            outputs += self._score_version(data_type, serving, serving.primary, decoded, None, ctx)
            return outputs
        if not router.hashes:
            return outputs
        ids = [i for group in decoded for i in group.ids]
        timestamps = [t for group in decoded for t in group.timestamps]
        serving.last_ts = max(serving.last_ts, max(timestamps))
        if plan.ensemble is None and plan.speculative is None:
            assignment = router.route(ids, timestamps)
            for index, name in enumerate(router.served):
                rows = None if assignment is None else np.flatnonzero(assignment == index)
                if rows is None or rows.size:
                    version = serving.versions[name]
                    outputs += self._score_version(data_type, serving, version, decoded, rows, ctx)
        gated = {name: serving.versions[name].stats.errors for name in serving.plan.gated}
        for name, rows in router.shadow_rows(ids):
            if rows is None or rows.size:
                outputs += self._score_version(
                    data_type, serving, serving.versions[name], decoded, rows, ctx, ScoreResult.SHADOW
                )
        if gated:
            self._advance_gates(data_type, serving, gated, len(ids), ctx)
        return outputs

    def _advance_gates(
        self, data_type: str, serving: _Serving, errors_before: dict[str, int], scored: int, ctx: KeyContext
    ) -> None:
        """Count a batch's clean shadow scores toward each gated candidate's gate (an error starts the count
        again); open the gates that are passed."""
        plan = serving.plan
        for name, errors in errors_before.items():
            stats = serving.versions[name].stats
            stats.gate_clean = 0 if stats.errors > errors else stats.gate_clean + scored
            if stats.gate_clean >= plan.gate:
                plan = plan.open_gate(name)
                event(LOG, "gate opened", data_type=data_type, version=name, clean=stats.gate_clean)
        if plan is not serving.plan:
            serving.route(plan)
            ctx.store_policy(plan.to_message(data_type).SerializeToString())

    def _score_version(
        self,
        data_type: str,
        serving: _Serving,
        version: _Version,
        decoded: list[Decoded],
        rows: npt.NDArray[np.int64] | None,
        ctx: KeyContext,
        role: int = ScoreResult.SERVED,
    ) -> list[Output]:
        """Bind, score and encode the ``rows`` (positions across ``decoded``, None: all) with one version."""
        return self._emit(data_type, serving, version, self._run(version, decoded, rows), ctx, role)

    def _run(self, version: _Version, decoded: list[Decoded], rows: npt.NDArray[np.int64] | None) -> _Run:
        """Bind and score the ``rows`` with one version in one model call. Touches no shared state: a
        speculative primary runs it on another thread."""
        parts: list[Decoded] = []
        bound: list[Bound] = []
        offsets: list[int] = []
        failures: list[Failure] = []
        start = 0
        for group in decoded:
            if rows is None:
                binding = version.binder.bind(group)
            else:
                wanted = rows[(rows >= start) & (rows < start + len(group))] - start
                if not wanted.size:
                    start += len(group)
                    continue  # none of this group's rows go to this version: nothing to bind
                binding = version.binder.bind(group).only(wanted, group)
            failures += binding.failures
            if len(binding.rows):
                parts.append(group)
                bound.append(binding)
                offsets.append(start)
            start += len(group)
        if not bound:
            return _Run(failures, [], [], [], np.zeros(0, dtype=np.int64), None)
        sources, ids, timestamps = _rows(parts, bound)
        positions = np.concatenate([offset + b.rows for offset, b in zip(offsets, bound, strict=True)])
        inputs = _joined(bound)
        started = time.perf_counter_ns()
        scored = score_isolating(version.model, inputs, len(sources))
        elapsed = time.perf_counter_ns() - started
        if scored.failed:
            info = version.info
            for row, why in scored.failed.items():
                message = f"model {info.name} {info.version} failed on record {ids[row]!r}: {why}"
                failures.append(Failure(sources[row], Reason.SCORING_FAILED, message))
            keep = scored.rows.tolist()
            sources = [sources[i] for i in keep]
            ids = [ids[i] for i in keep]
            timestamps = [timestamps[i] for i in keep]
            positions = positions[scored.rows]
            inputs = {name: array[scored.rows] for name, array in inputs.items()}
        return _Run(
            failures, sources, ids, timestamps, positions.astype(np.int64), scored.batch, elapsed, inputs
        )

    def _emit(
        self,
        data_type: str,
        serving: _Serving,
        version: _Version,
        run: _Run,
        ctx: KeyContext,
        role: int = ScoreResult.SERVED,
        speculation: int = ScoreResult.NOT_SPECULATIVE,
    ) -> list[Output]:
        """Count a version's run in its stats and write its results as ``role``. Only what serves turns
        failures into dead letters: records get theirs from what serves."""
        served = role == ScoreResult.SERVED
        outputs: list[Output] = []
        if run.failures:
            stats_ops.record_error(version.stats, len(run.failures))
            if served:
                outputs += self._failed(data_type, run.failures, ctx)
        if run.batch is None or not run.sources:
            return outputs
        n = len(run.sources)
        each_ns = run.elapsed_ns // n
        now = self._clock_ms()
        stats_ops.record_scores(version.stats, n, each_ns, now)
        self._metrics.version_scored(data_type, version.info.version, _ROLES[role], n)
        if served:
            self._metrics.scored(data_type, n)
            serving.probe, serving.probe_stored = run.sources[-1], False
        encoded = self._results.encode(
            version.info, data_type, now, each_ns, run.ids, run.timestamps, run.sources, run.batch, role,
            serving.plan.version, speculation=speculation,
        )  # fmt: skip
        sink = Sink.SCORES if served else Sink.SHADOW_SCORES
        outputs += [(sink, None, result) for result in encoded]
        if role in (ScoreResult.SERVED, ScoreResult.SHADOW):
            outputs += self._observe_drift(data_type, version, run, now)
            if self._settings.feedback_max_records > 0:
                ring = self._served(serving, ctx)
                ring.add(version.info.version, serving.versions.keys(), run.ids, run.batch, now)
                serving.served_changed = True
        return outputs

    # -- feedback -------------------------------------------------------------------------------

    def _served(self, serving: _Serving, ctx: KeyContext) -> ServedRing:
        if serving.served is None:
            stored = ctx.load_served()
            message = None if stored is None else ServedResults.FromString(stored)
            s = self._settings
            serving.served = ServedRing(s.feedback_max_records, s.feedback_max_age_ms, message)
        return serving.served

    def on_feedback(self, data_type: str, messages: Sequence[SourceRecord], ctx: KeyContext) -> list[Output]:
        """Match labels with what each version predicted for their records: into the versions' live
        quality. Unmatched (unknown, late) feedback or feedback without a usable label is counted in the
        stats; a message that is not feedback (not a JSON object, no record_id) is dead-lettered.
        Feedback for a data type without a model has no stats to go in: it is counted in the metric
        ``feedback_without_model``."""
        serving = self._current(data_type, ctx)
        if serving is None:
            return self._feedback_without_model(data_type, messages)
        feedback, letters = self._parse_feedback(data_type, messages)
        given = len(feedback.record_ids)
        if self._settings.feedback_max_records > 0:
            qualities = {name: version.stats.quality for name, version in serving.versions.items()}
            ring = self._served(serving, ctx)
            unmatched, invalid = ring.join(feedback, self._clock_ms(), qualities)
            serving.served_changed = True
        else:
            unmatched, invalid = given, 0
        serving.snapshot.feedback_unmatched += unmatched
        serving.snapshot.feedback_invalid += invalid
        if given > unmatched + invalid and serving.performance is not None:
            self._rank(data_type, serving, serving.performance, ctx)
        return letters + self._stats_changed(data_type, serving, ctx)

    def _parse_feedback(
        self, data_type: str, messages: Sequence[SourceRecord]
    ) -> tuple[FeedbackBatch, list[Output]]:
        """The messages' feedback, and a dead letter for each message that is not feedback."""
        feedback, broken = parse_batch([message.value for message in messages])
        letters = [
            self._record_dead_letter(
                data_type, Failure(messages[at], Reason.FEEDBACK_INVALID, f"feedback: {why}")
            )
            for at, why in broken
        ]
        return feedback, letters

    def _feedback_without_model(self, data_type: str, messages: Sequence[SourceRecord]) -> list[Output]:
        feedback, letters = self._parse_feedback(data_type, messages)
        self._metrics.feedback_without_model(data_type, len(feedback.record_ids))
        return letters

    # -- performance-based policies ---------------------------------------------------------------

    def on_performance(self, data_type: str, incoming: Incoming, ctx: KeyContext) -> list[Output]:
        """Route by live quality: the best of the candidates serves once ranked, the others shadow."""
        opened = self._open_policy(PerformancePolicy, data_type, incoming, ctx)
        if isinstance(opened, list):
            return opened
        policy, serving = opened
        try:
            plan = resolve_performance(
                policy,
                list(serving.versions),
                serving.plan.version,
                data_type,
                self._settings.retain_versions,
            )
        except PolicyError as e:
            return self._reject_policy(data_type, str(e), incoming)
        serving.performance = plan
        ctx.store_performance(policy.SerializeToString())
        self._sync_snapshot(data_type, serving)
        self._rank(data_type, serving, plan, ctx, force=True)
        event(LOG, "performance policy applied", data_type=data_type, policy=plan.version,
              candidates=",".join(plan.candidates), min_labelled=plan.min_labelled)  # fmt: skip
        return [self._publish_stats(data_type, serving, ctx, self._clock_ms())]

    def _rank(
        self, data_type: str, serving: _Serving, plan: PerformancePlan, ctx: KeyContext, force: bool = False
    ) -> None:
        """Route to the best performer (the others in shadow) when that changes who serves or shadows."""
        qualities = {name: version.stats.quality for name, version in serving.versions.items()}
        chosen = choose(plan, qualities, data_type)
        if not force and (chosen.serve, chosen.shadow) == (serving.plan.serve, serving.plan.shadow):
            return
        before = serving.plan.base
        serving.route(chosen)
        if chosen.base != before:
            stats_ops.start_model(serving.snapshot, serving.primary.info, self._clock_ms())
            event(LOG, "best performer serves", data_type=data_type, version=chosen.base, previous=before)
        self._keep_versions(data_type, serving, ctx)

    def _end_performance(self, serving: _Serving, ctx: KeyContext) -> None:
        """A rollout policy or a model published to serve replaces routing by performance."""
        if serving.performance is not None:
            serving.performance = None
            ctx.store_performance(b"")

    def _stats_changed(self, data_type: str, serving: _Serving, ctx: KeyContext) -> list[Output]:
        """Publish the stats if they are due, else store them and make sure a timer publishes them."""
        now = self._clock_ms()
        if now - serving.last_published_ms >= self._settings.stats_interval_ms:
            return [self._publish_stats(data_type, serving, ctx, now)]
        # the drift windows' counts go with published stats only: a restart may miss up to an interval's
        self._sync_snapshot(data_type, serving, windows=False)
        ctx.store_stats(serving.snapshot)
        serving.unpublished = True
        if not serving.flush_scheduled:  # so the last changes go out even if nothing more comes
            ctx.schedule(serving.last_published_ms + self._settings.stats_interval_ms)
            serving.flush_scheduled = True
        return []

    # -- drift ----------------------------------------------------------------------------------

    def _monitor(self, descriptor: ModelDescriptor, model: Model, stats: ModelStats) -> DriftMonitor | None:
        """A version's drift monitor: its reference profile, its window and status as kept in its stats
        (none when drift_window is 0)."""
        if self._settings.drift_window <= 0:
            return None
        features = features_of(model.inputs, tuple(descriptor.input_fields))
        profile = descriptor.reference_profile if descriptor.HasField("reference_profile") else None
        if profile is None and descriptor.modeltype == ModelDescriptor.PMML:
            profile = model_stats_profile(descriptor.data, features)
        return DriftMonitor(features, profile, self._settings.drift_window, stats.drift)

    def _observe_drift(self, data_type: str, version: _Version, run: _Run, now: int) -> list[Output]:
        """Count a run's records into the version's drift window; a drift report when its status changed."""
        monitor = version.drift
        if monitor is None or run.inputs is None or run.batch is None:
            return []
        windows = monitor.report.windows
        changed = monitor.observe(run.inputs, run.batch, now)
        if monitor.report.windows != windows:
            status = monitor.report.status
            self._metrics.drift(data_type, version.info.version, monitor.max_psi(), status_level(status))
        if not changed:
            return []
        report = published(monitor.report, data_type, version.info.version)
        event(LOG, "drift status changed", logging.WARNING if report.status != "OK" else logging.INFO,
              data_type=data_type, version=version.info.version, status=report.status,
              flagged=",".join(report.flagged))  # fmt: skip
        return [(Sink.DRIFT, data_type.encode(), report.SerializeToString())]

    def _failed(self, data_type: str, failures: list[Failure], ctx: KeyContext) -> list[Output]:
        """Dead letters for failed records; those waiting (for a schema) are held."""
        waiting = [f.record for f in failures if f.waiting]
        outputs = [self._record_dead_letter(data_type, f) for f in failures if not f.waiting]
        if waiting:
            outputs += self._hold(data_type, waiting, ctx)
        return outputs

    # -- ensembles and speculative serving ---------------------------------------------------------

    def _score_ensemble(
        self, data_type: str, serving: _Serving, plan: EnsemblePlan, decoded: list[Decoded], ctx: KeyContext
    ) -> list[Output]:
        """Each member scores every row; the rows all members scored get one combined result. A row a
        member could not score gets that member's dead letter (the first member's, if several)."""
        members = [serving.versions[name] for name in plan.members]
        runs = [self._run(member, decoded, None) for member in members]
        outputs: list[Output] = []
        dead: set[int] = set()
        for member, run in zip(members, runs, strict=True):
            if run.failures:
                stats_ops.record_error(member.stats, len(run.failures))
                fresh = [f for f in run.failures if id(f.record) not in dead]
                dead.update(id(f.record) for f in fresh)
                outputs += self._failed(data_type, fresh, ctx)
        common = runs[0].positions
        for run in runs[1:]:
            common = np.intersect1d(common, run.positions, assume_unique=True)
        if not common.size:
            return outputs
        now = self._clock_ms()
        batches: list[ScoreBatch] = []
        total_ns = 0
        for member, run in zip(members, runs, strict=True):
            assert run.batch is not None
            take = np.searchsorted(run.positions, common)
            batch = run.batch if take.size == len(run.positions) else run.batch.take(take)
            batches.append(batch)
            each_ns = run.elapsed_ns // max(len(run.positions), 1)
            total_ns += each_ns
            stats_ops.record_scores(member.stats, common.size, each_ns, now)
            self._metrics.version_scored(data_type, member.info.version, "member", int(common.size))
            if plan.member_results:
                outputs += [(Sink.SHADOW_SCORES, None, result) for result in self._results.encode(
                    member.info, data_type, now, each_ns, [run.ids[i] for i in take.tolist()],
                    [run.timestamps[i] for i in take.tolist()], [run.sources[i] for i in take.tolist()],
                    batch, ScoreResult.MEMBER, serving.plan.version,
                )]  # fmt: skip
        first, take = runs[0], np.searchsorted(runs[0].positions, common).tolist()
        sources = [first.sources[i] for i in take]
        combined = combine(plan, batches, [m.quality for m in members])
        info = ServingModel(name="ensemble", version=plan.name, since=members[0].info.since)
        self._metrics.scored(data_type, len(sources))
        serving.probe, serving.probe_stored = sources[-1], False
        encoded = self._results.encode(
            info, data_type, now, total_ns, [first.ids[i] for i in take],
            [first.timestamps[i] for i in take], sources, combined, ScoreResult.SERVED,
            serving.plan.version, members=plan.members,
        )  # fmt: skip
        return outputs + [(Sink.SCORES, None, result) for result in encoded]

    def _score_speculative(
        self,
        data_type: str,
        serving: _Serving,
        plan: SpeculativePlan,
        decoded: list[Decoded],
        ctx: KeyContext,
    ) -> list[Output]:
        """The primary scores on a pool thread under the deadline while the fallback scores here; the
        primary's results serve if they come in time, else the fallback's, and the primary's go to
        shadow-scores as LATE when they come. A primary still busy with an earlier batch is not called;
        one whose recent calls took longer than the deadline cannot make it, and is called only to probe
        it (a batch per PROBE_EVERY_S) without waiting, so it does not take a core from what serves."""
        started = time.monotonic()
        primary, fallback = serving.versions[plan.primary], serving.versions[plan.fallback]
        outputs = self.late_results(data_type, serving, ctx)
        deadline_ms = plan.deadline_ms or self._settings.speculative_deadline_ms
        hopeful = serving.primary_ms <= deadline_ms
        busy = any(not future.done() for future, _ in serving.late)
        future = None
        if not busy and (hopeful or started >= serving.probe_at):
            if not hopeful:
                serving.probe_at = started + PROBE_EVERY_S
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix="modelstream-primary", initializer=_yielding
                )
            if primary.model.scores_on_any_thread:
                future = self._pool.submit(self._run, primary, decoded, None)
            else:  # scored here, before the fallback: its deadline cannot cut it short
                future = Future()
                future.set_result(self._run(primary, decoded, None))
        fallback_run = self._run(fallback, decoded, None)
        primary_run: _Run | None = None
        if future is not None:
            left = started + deadline_ms / 1000 - time.monotonic() if hopeful else 0.0
            try:
                primary_run = future.result(timeout=max(0.0, left))
                serving.primary_ms = _moving(serving.primary_ms, primary_run.elapsed_ns / 1e6)
            except FutureTimeout:
                serving.late.append((future, plan.primary))
        rows = sum(len(group) for group in decoded)
        serving.speculated_rows += rows
        if primary_run is not None:
            self._count_only(data_type, fallback, fallback_run, "fallback")
            in_time = ScoreResult.PRIMARY_IN_TIME
            return outputs + self._emit(data_type, serving, primary, primary_run, ctx, speculation=in_time)
        serving.fallback_rows += rows
        missed = ScoreResult.FALLBACK
        return outputs + self._emit(data_type, serving, fallback, fallback_run, ctx, speculation=missed)

    def late_results(self, data_type: str, serving: _Serving, ctx: KeyContext) -> list[Output]:
        """The results of speculative primaries that missed their deadline and have since finished."""
        outputs: list[Output] = []
        still: list[tuple[Future[_Run], str]] = []
        for future, name in serving.late:
            version = serving.versions.get(name)
            if not future.done():
                still.append((future, name))
            elif version is not None and future.exception() is None:
                run = future.result()
                serving.primary_ms = _moving(serving.primary_ms, run.elapsed_ns / 1e6)
                outputs += self._emit(
                    data_type, serving, version, run, ctx, ScoreResult.LATE, ScoreResult.FALLBACK
                )
        serving.late = still
        return outputs

    def _count_only(self, data_type: str, version: _Version, run: _Run, role: str) -> None:
        """A run's latency and errors in its version's stats, with nothing written."""
        if run.failures:
            stats_ops.record_error(version.stats, len(run.failures))
        if run.sources:
            each_ns = run.elapsed_ns // len(run.sources)
            stats_ops.record_scores(version.stats, len(run.sources), each_ns, self._clock_ms())
            self._metrics.version_scored(data_type, version.info.version, role, len(run.sources))

    # -- state ----------------------------------------------------------------------------------

    def _current(self, data_type: str, ctx: KeyContext) -> _Serving | None:
        """The live versions, built again from keyed state when they are not live: evicted from the live
        models, or after a restart or a rescale (a cold load)."""
        serving = self._live.get(data_type)
        if serving is not None:
            return serving
        descriptors = ctx.load_versions()
        if not descriptors:
            legacy = ctx.load_model()  # state written before rollout policies: one model
            if legacy is None:
                return None
            descriptors = {model_version(ModelDescriptor.FromString(legacy)): legacy}
        snapshot = ctx.load_stats() or StatsSnapshot(data_type=data_type)
        stored_stats = {m.model.version: m for m in snapshot.versions}
        versions: dict[str, _Version] = {}
        started = time.perf_counter_ns()
        for name, raw in descriptors.items():
            # a model built before has its memory figure in its stats: a cold load only times the build
            known = stored_stats[name].memory_bytes if name in stored_stats else 0
            if not known and snapshot.current.model.version == name:
                known = snapshot.current.memory_bytes
            try:
                descriptor = ModelDescriptor.FromString(raw)
                build = functools.partial(load_model, descriptor, self._options)
                measured = self._meter.build(descriptor.modeltype, build, Model.close, memory=not known)
            except (DecodeError, ModelLoadError):
                continue  # validated when it was published; if it cannot be rebuilt here, it is not served
            model = measured.value
            stats = ModelStats()
            if name in stored_stats:
                stats.CopyFrom(stored_stats[name])
            elif snapshot.current.model.version == name:
                stats.CopyFrom(snapshot.current)
            else:
                stats.model.CopyFrom(
                    ServingModel(name=descriptor.name, version=name, model_type=descriptor.modeltype)
                )
            stats.ClearField("share")
            stats.ClearField("role")
            # the larger figure: a build that reuses memory an eviction freed shows less than it takes
            stats.memory_bytes = max(stats.memory_bytes, measured.memory_bytes, len(raw))
            stats.load_ns = measured.load_ns
            stats.cold_loads += 1
            binder = Binder(model.inputs, tuple(descriptor.input_fields))
            versions[name] = _Version(model, binder, stats.model, stats, raw, _quality(descriptor))
            versions[name].drift = self._monitor(descriptor, model, stats)
            self._metrics.model_loaded(data_type, stats.model.since)
        if not versions:
            return None  # records wait
        stored_plan = ctx.load_policy()
        plan = None if stored_plan is None else from_message(RolloutPolicy.FromString(stored_plan))
        if plan is None or not plan.versions() <= set(versions):  # none yet, or a version failed to rebuild
            plan = single_version(list(versions)[-1], data_type, self._settings.retain_versions)
        serving = _Serving(versions, plan, Router(plan), snapshot, last_published_ms=snapshot.published_at)
        stored_performance = ctx.load_performance()
        if stored_performance:
            p = PerformancePolicy.FromString(stored_performance)
            retain = p.retain if p.HasField("retain") else self._settings.retain_versions
            serving.performance = PerformancePlan(
                p.version, tuple(p.candidates), p.min_labelled, p.keep_top, retain
            )
        if data_type in self._unflushed:
            self._unflushed.discard(data_type)
            serving.unpublished = True
        load_ns = time.perf_counter_ns() - started
        self._live.cold_loaded(load_ns)
        # after a restart (nothing evicted yet) an info event per data type; a reload after an eviction
        # is routine
        level = logging.INFO if not self._live.stats.evictions else logging.DEBUG
        event(LOG, "models restored from state", level, data_type=data_type, versions=",".join(versions),
              policy=plan.version, load_ms=round(load_ns / 1e6, 1))  # fmt: skip
        self._account(data_type, serving)
        return serving

    def _sync_snapshot(self, data_type: str, serving: _Serving, windows: bool = True) -> None:
        """Bring the snapshot up to date with every version's stats, shares and roles, and the plan (and,
        if ``windows``, with the counts of the drift windows being filled)."""
        snapshot = serving.snapshot
        for version in serving.versions.values():
            if version.drift is not None and windows:
                version.drift.save()
        snapshot.current.CopyFrom(serving.primary.stats)
        snapshot.drift.CopyFrom(serving.primary.stats.drift)
        del snapshot.versions[:]
        if len(serving.versions) == 1 and not serving.plan.version:
            return
        plan = serving.plan
        shares = serving.router.shares(serving.last_ts)
        roles: dict[str, str] = {}
        if plan.ensemble is not None:
            shares = dict.fromkeys(plan.ensemble.members, 100.0)
            roles = dict.fromkeys(plan.ensemble.members, "member")
        elif plan.speculative is not None:
            fell_back = 100.0 * serving.fallback_rows / max(serving.speculated_rows, 1)
            shares = {plan.speculative.primary: 100.0 - fell_back, plan.speculative.fallback: fell_back}
            roles = {plan.speculative.primary: "primary", plan.speculative.fallback: "fallback"}
        shadows = serving.router.shadows
        for name, version in serving.versions.items():
            entry = snapshot.versions.add()
            entry.CopyFrom(version.stats)
            if name in roles:
                entry.share, entry.role = shares[name], roles[name]
            elif name in serving.plan.gated:
                entry.share, entry.role = 0.0, "gated"
            elif name in shares:
                entry.share, entry.role = shares[name], "served"
            elif name in shadows:
                entry.share, entry.role = shadows[name], "shadow"
            else:
                entry.role = "retained"
        if serving.plan.version:
            snapshot.policy.CopyFrom(serving.plan.to_message(data_type))
        else:
            snapshot.ClearField("policy")

    def _publish_stats(
        self, data_type: str, serving: _Serving, ctx: KeyContext, now: int, stored: bool = False
    ) -> Output:
        """The stats snapshot out, and into keyed state unless ``stored`` (state holds the same counts: only
        the publishing time and the percentiles read from them differ)."""
        serving.last_published_ms = now
        serving.unpublished = False
        snapshot = serving.snapshot
        snapshot.published_at = now
        for version in serving.versions.values():
            stats_ops.finish(version.stats)
        self._sync_snapshot(data_type, serving)
        if not stored:
            ctx.store_stats(snapshot)
        if serving.probe is not None and not serving.probe_stored:
            ctx.store_probe(tuple(serving.probe))
            serving.probe_stored = True
        if serving.served is not None and serving.served_changed:
            # with the stats, not per batch: a restart may miss the results of the last interval
            ctx.store_served(serving.served.to_message().SerializeToString())
            serving.served_changed = False
        return Sink.STATS, data_type.encode(), snapshot.SerializeToString()

    def _publish_stored_stats(self, data_type: str, ctx: KeyContext) -> list[Output]:
        """An evicted data type's stats as its keyed state holds them (kept after every batch), published."""
        snapshot = ctx.load_stats()
        if snapshot is None:
            return []
        for stats in (snapshot.current, *snapshot.versions):
            stats_ops.finish(stats)
        snapshot.published_at = self._clock_ms()
        ctx.store_stats(snapshot)
        return [(Sink.STATS, data_type.encode(), snapshot.SerializeToString())]


_ROLES: dict[int, str] = {
    ScoreResult.SERVED: "served",
    ScoreResult.SHADOW: "shadow",
    ScoreResult.MEMBER: "member",
    ScoreResult.LATE: "late",
}


PROBE_EVERY_S = 1.0  # how often a speculative primary slower than its deadline is still called
REPORT_EVERY_MS = 30_000  # the most often the live models are reported in the log
MB = 1024 * 1024


def _moving(average: float, value: float, weight: float = 0.3) -> float:
    return value if average == 0.0 else average + weight * (value - average)


def _yielding() -> None:
    """Run this (pool) thread at the lowest CPU priority: a speculative primary's work is best effort,
    and on a busy machine the batches being served come first (Linux: a thread's own nice value)."""
    with contextlib.suppress(OSError):  # not permitted: it runs at the worker's priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _quality(descriptor: ModelDescriptor) -> float | None:
    return descriptor.quality if descriptor.HasField("quality") else None


def _describe(plan: Plan) -> str:
    """The plan's serving part in a few words (for logs)."""
    if plan.ensemble is not None:
        return plan.ensemble.name
    if plan.speculative is not None:
        sp = plan.speculative
        return f"speculative {sp.primary} (deadline {sp.deadline_ms or 'default'} ms) else {sp.fallback}"
    if plan.ramp is not None:
        r = plan.ramp
        shares = f"{r.start_percent:g}%..{r.end_percent:g}%"
        return f"ramp {r.base}->{r.candidate} {shares} over ts {r.start_ts}..{r.end_ts}"
    total = sum(weight for _, weight in plan.serve)
    return ",".join(f"{v}:{100 * w / total:g}%" for v, w in plan.serve)


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
