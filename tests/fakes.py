"""In-memory stand-ins for the Flink side of modelstream.serving (fast unit tests only)."""

from __future__ import annotations


class MemoryKeyContext:
    """modelstream.serving.KeyContext kept in plain attributes, with the timers it was asked for."""

    def __init__(self) -> None:
        self.model: bytes | None = None
        self.stats: bytes | None = None
        self.pending: list[bytes] = []
        self.timers: list[int] = []

    def load_model(self) -> bytes | None:
        return self.model

    def store_model(self, descriptor: bytes) -> None:
        self.model = descriptor

    def load_stats(self) -> bytes | None:
        return self.stats

    def store_stats(self, snapshot: bytes) -> None:
        self.stats = snapshot

    def load_pending(self) -> list[bytes]:
        return list(self.pending)

    def store_pending(self, records: list[bytes]) -> None:
        self.pending = list(records)

    def schedule(self, at_ms: int) -> None:
        self.timers.append(at_ms)
