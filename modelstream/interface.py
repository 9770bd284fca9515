"""What the serving core hands the job and asks of it: outputs, keyed state, metrics (the job's interface)."""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from protobufs.modelstream_pb2 import StatsSnapshot

# a record held for want of a model: (the SourceRecord as a plain tuple, held since ms)
Held = tuple[tuple[object, ...], int]
# an input from the models topic: (raw bytes, partition, offset); partition and offset may be unknown
Incoming = tuple[bytes, int | None, int | None]


class Sink(IntEnum):
    """Where an output goes; the job maps each to a topic."""

    SCORES = 0
    STATS = 1
    DEAD_LETTERS = 2
    SHADOW_SCORES = 3
    DRIFT = 4


# (sink, Kafka key or None, Kafka value)
Output = tuple[Sink, bytes | None, bytes]


class KeyContext(Protocol):
    """The per-data-type state the core keeps between calls (Flink keyed state in the job)."""

    def load_model(self) -> bytes | None: ...  # the one model of state written before rollouts
    def load_versions(self) -> dict[str, bytes]: ...
    def store_versions(self, descriptors: dict[str, bytes]) -> None: ...
    def load_policy(self) -> bytes | None: ...
    def store_policy(self, policy: bytes) -> None: ...
    def load_stats(self) -> StatsSnapshot | None: ...
    def store_stats(self, snapshot: StatsSnapshot) -> None: ...
    def load_pending(self) -> list[Held]: ...
    def store_pending(self, records: list[Held]) -> None: ...
    def load_schemas(self) -> dict[str, bytes]: ...
    def store_schemas(self, schemas: dict[str, bytes]) -> None: ...
    def load_probe(self) -> tuple[object, ...] | None: ...
    def store_probe(self, record: tuple[object, ...]) -> None: ...
    def load_served(self) -> bytes | None: ...  # a ServedResults: what feedback matches
    def store_served(self, served: bytes) -> None: ...
    def load_performance(self) -> bytes | None: ...  # the PerformancePolicy in force (b"": none)
    def store_performance(self, policy: bytes) -> None: ...
    def schedule(self, at_ms: int) -> None: ...


class ServingMetrics(Protocol):
    """What the core reports as it goes (Flink metrics in the job)."""

    def scored(self, data_type: str, count: int) -> None: ...
    def version_scored(self, data_type: str, version: str, role: str, count: int) -> None: ...
    def dead_lettered(self, data_type: str, count: int) -> None: ...
    def model_loaded(self, data_type: str, since_ms: int) -> None: ...
    def model_rejected(self, data_type: str) -> None: ...
    def drift(self, data_type: str, version: str, max_psi: float, status: int) -> None: ...
    def feedback_without_model(self, data_type: str, count: int) -> None: ...


class NoMetrics:
    """ServingMetrics that records nothing."""

    def scored(self, data_type: str, count: int) -> None:
        pass

    def version_scored(self, data_type: str, version: str, role: str, count: int) -> None:
        pass

    def dead_lettered(self, data_type: str, count: int) -> None:
        pass

    def model_loaded(self, data_type: str, since_ms: int) -> None:
        pass

    def model_rejected(self, data_type: str) -> None:
        pass

    def drift(self, data_type: str, version: str, max_psi: float, status: int) -> None:
        pass

    def feedback_without_model(self, data_type: str, count: int) -> None:
        pass
