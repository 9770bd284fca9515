"""In-memory stand-ins for the Flink side of modelstream.serving, and record builders (unit tests,
in-process benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from modelstream.binding import Binder
from modelstream.codecs.base import SourceRecord
from modelstream.codecs.protobuf import UserSchemas
from modelstream.codecs.wine import WineCodec
from modelstream.contract import Model
from modelstream.interface import Held, Output, Sink
from modelstream.records import wine_record_from_row
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import DeadLetter, ScoreResult, StatsSnapshot, WineRecord

__test__ = False


def source_record(
    value: bytes,
    encoding: Encoding = Encoding.WINE,
    offset: int = 0,
    topic: str = "wine",
    key: bytes | None = None,
    meta: str = "",
) -> SourceRecord:
    """A record as the JVM frames it, from partition 0 at ``offset`` (Kafka timestamp 0)."""
    return SourceRecord(value, 0, offset, encoding, topic, 0, key, meta)


class ManualClock:
    """A clock in ms since the epoch that moves only when told (``clock.now += 500``)."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class MemoryKeyContext:
    """modelstream.serving.KeyContext kept in plain attributes, with the timers it was asked for."""

    def __init__(self) -> None:
        self.model: bytes | None = None  # state written before rollout policies
        self.versions: dict[str, bytes] = {}
        self.policy: bytes | None = None
        self.stats: StatsSnapshot | None = None
        self.pending: list[Held] = []
        self.schemas: dict[str, bytes] = {}
        self.probe: tuple[object, ...] | None = None
        self.served: bytes | None = None
        self.performance: bytes | None = None
        self.timers: list[int] = []

    def load_model(self) -> bytes | None:
        return self.model

    def load_versions(self) -> dict[str, bytes]:
        return dict(self.versions)

    def store_versions(self, descriptors: dict[str, bytes]) -> None:
        self.versions = dict(descriptors)

    def load_policy(self) -> bytes | None:
        return self.policy

    def store_policy(self, policy: bytes) -> None:
        self.policy = policy

    def load_stats(self) -> StatsSnapshot | None:
        return self.stats

    def store_stats(self, snapshot: StatsSnapshot) -> None:
        self.stats = snapshot

    def load_served(self) -> bytes | None:
        return self.served

    def store_served(self, served: bytes) -> None:
        self.served = served

    def load_performance(self) -> bytes | None:
        return self.performance

    def store_performance(self, policy: bytes) -> None:
        self.performance = policy

    def load_pending(self) -> list[Held]:
        return list(self.pending)

    def store_pending(self, records: list[Held]) -> None:
        self.pending = list(records)

    def load_schemas(self) -> dict[str, bytes]:
        return dict(self.schemas)

    def store_schemas(self, schemas: dict[str, bytes]) -> None:
        self.schemas = dict(schemas)

    def load_probe(self) -> tuple[object, ...] | None:
        return self.probe

    def store_probe(self, record: tuple[object, ...]) -> None:
        self.probe = record

    def schedule(self, at_ms: int) -> None:
        self.timers.append(at_ms)


class CountingMetrics:
    """modelstream.serving.ServingMetrics that keeps counts."""

    def __init__(self) -> None:
        self.scored_count = 0
        self.dead_letter_count = 0
        self.loaded: list[str] = []
        self.rejected: list[str] = []
        self.by_version: dict[tuple[str, str, str], int] = {}
        self.drift_gauges: dict[tuple[str, str], tuple[float, int]] = {}
        self.feedback_without_model_count = 0

    def scored(self, data_type: str, count: int) -> None:
        self.scored_count += count

    def version_scored(self, data_type: str, version: str, role: str, count: int) -> None:
        key = (data_type, version, role)
        self.by_version[key] = self.by_version.get(key, 0) + count

    def dead_lettered(self, data_type: str, count: int) -> None:
        self.dead_letter_count += count

    def model_loaded(self, data_type: str, since_ms: int) -> None:
        self.loaded.append(data_type)

    def model_rejected(self, data_type: str) -> None:
        self.rejected.append(data_type)

    def drift(self, data_type: str, version: str, max_psi: float, status: int) -> None:
        self.drift_gauges[(data_type, version)] = (max_psi, status)

    def feedback_without_model(self, data_type: str, count: int) -> None:
        self.feedback_without_model_count += count


def wine_records(rows: Iterable[Iterable[float]], data_type: str = "wine") -> list[WineRecord]:
    """WineRecords of feature rows (the tutorial's CSV columns; a 12th, the quality, is ignored), with ids
    ``r-0``, ``r-1``, ..."""
    return [wine_record_from_row(list(row), data_type, 0, f"r-{i}") for i, row in enumerate(rows)]


def wine_inputs(model: Model, rows: Iterable[Iterable[float]]) -> dict[str, npt.NDArray[np.generic]]:
    """A model's input arrays for feature rows, made as the job makes them: WineRecords decoded by the
    WineCodec and bound to the model's declared inputs. Raises ValueError if a row does not bind."""
    raw = [record.SerializeToString() for record in wine_records(rows)]
    decoded = WineCodec().decode(
        [source_record(value, offset=i) for i, value in enumerate(raw)], UserSchemas()
    )
    bound = Binder(model.inputs).bind(decoded)
    failures = decoded.failures + bound.failures
    if failures:
        raise ValueError(f"{len(failures)} rows do not bind to the model's inputs: {failures[0].message}")
    return bound.arrays


def sinks(outputs: list[Output], sink: Sink) -> list[bytes]:
    """The values of the outputs that go to ``sink``."""
    return [value for s, _, value in outputs if s is sink]


def scores(outputs: list[Output]) -> list[ScoreResult]:
    """The ScoreResults among outputs."""
    return [ScoreResult.FromString(v) for v in sinks(outputs, Sink.SCORES)]


def shadow_scores(outputs: list[Output]) -> list[ScoreResult]:
    """The shadow ScoreResults among outputs."""
    return [ScoreResult.FromString(v) for v in sinks(outputs, Sink.SHADOW_SCORES)]


def letters(outputs: list[Output]) -> list[DeadLetter]:
    """The DeadLetters among outputs."""
    return [DeadLetter.FromString(v) for v in sinks(outputs, Sink.DEAD_LETTERS)]
