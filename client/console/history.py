"""What the console charts: a bounded history, sampled once a second, of each data type's scoring rate and
scoring-time p50/p99, and of the job's consumer lag per data topic.

Rates and percentiles come from the difference between two consecutive snapshots of a data type (usage
per model version, scoring-time sketches added over versions), so they are right whenever the service
starts: a job restored from a checkpoint reports smaller counters (a difference below zero counts as none),
and a data type whose records stopped reports nothing new (its rate drops to 0 once its last snapshot is
older than ``stale_after_ms``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelstream.stats import quantile
from protobufs.modelstream_pb2 import ModelStats, StatsSnapshot

NS_PER_MS = 1_000_000


def serving_stats(snapshot: StatsSnapshot) -> list[ModelStats]:
    """The stats of every version that scores records now (under a policy, all of them; else the current)."""
    if snapshot.versions:
        return list(snapshot.versions)
    return [snapshot.current] if snapshot.HasField("current") else []


@dataclass
class _Interval:
    """A data type's last snapshot and what happened between it and the one before."""

    published_at: int
    usage: dict[tuple[str, str], int]
    buckets: dict[int, int]
    rate: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None


def _interval(snapshot: StatsSnapshot) -> _Interval:
    usage: dict[tuple[str, str], int] = {}
    buckets: dict[int, int] = {}
    for stats in serving_stats(snapshot):
        usage[(stats.model.name, stats.model.version)] = stats.usage
        for bucket, count in stats.time_buckets.items():
            buckets[bucket] = buckets.get(bucket, 0) + count
    return _Interval(snapshot.published_at, usage, buckets)


def _between(previous: _Interval, latest: _Interval) -> None:
    """Set ``latest``'s rate and percentiles from what was scored since ``previous``."""
    seconds = (latest.published_at - previous.published_at) / 1000
    scored = sum(max(0, n - previous.usage.get(key, 0)) for key, n in latest.usage.items())
    latest.rate = scored / seconds
    recent: Mapping[int, int] = {
        b: n - previous.buckets.get(b, 0) for b, n in latest.buckets.items() if n > previous.buckets.get(b, 0)
    }
    if recent:
        latest.p50_ms = quantile(recent, 0.5) / NS_PER_MS
        latest.p99_ms = quantile(recent, 0.99) / NS_PER_MS


@dataclass
class Series:
    """Aligned columns of samples: time (s since the epoch) and one column per name."""

    names: tuple[str, ...]
    limit: int
    t: deque[float] = field(init=False)
    columns: dict[str, deque[float | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.t = deque(maxlen=self.limit)
        self.columns = {name: deque(maxlen=self.limit) for name in self.names}

    def append(self, t: float, values: Mapping[str, float | None]) -> None:
        self.t.append(t)
        for name, column in self.columns.items():
            column.append(values.get(name))

    def to_json(self) -> dict[str, list[float | None]]:
        return {"t": list(self.t), **{name: list(column) for name, column in self.columns.items()}}


class History:
    """The console's bounded history: ``keep_s`` seconds at one sample per ``sample_every_s``."""

    def __init__(self, keep_s: float = 300, sample_every_s: float = 1.0, stale_after_ms: int = 6000) -> None:
        self.limit = max(1, round(keep_s / sample_every_s))
        self.stale_after_ms = stale_after_ms
        self._latest: dict[str, _Interval] = {}
        self._scoring: dict[str, Series] = {}
        self._lag: Series | None = None

    def observe(self, snapshot: StatsSnapshot) -> None:
        """A snapshot read from the stats topic (called in topic order)."""
        latest = _interval(snapshot)
        previous = self._latest.get(snapshot.data_type)
        if previous is not None:
            if latest.published_at <= previous.published_at:
                return
            _between(previous, latest)
        self._latest[snapshot.data_type] = latest

    def forget(self, data_type: str) -> None:
        self._latest.pop(data_type, None)
        self._scoring.pop(data_type, None)

    def sample(self, now_ms: int, lag_by_topic: Mapping[str, int] | None) -> None:
        """Append one point per data type (and the lag per topic, None when it could not be read)."""
        t = now_ms / 1000
        for data_type, latest in self._latest.items():
            series = self._scoring.get(data_type)
            if series is None:
                series = self._scoring[data_type] = Series(("rate", "p50_ms", "p99_ms"), self.limit)
            if now_ms - latest.published_at > self.stale_after_ms:
                series.append(t, {"rate": 0.0})
            else:
                series.append(t, {"rate": latest.rate, "p50_ms": latest.p50_ms, "p99_ms": latest.p99_ms})
        if lag_by_topic is not None:
            if self._lag is None or set(self._lag.names) != set(lag_by_topic):
                self._lag = Series(tuple(sorted(lag_by_topic)), self.limit)
            self._lag.append(t, {topic: float(lag) for topic, lag in lag_by_topic.items()})

    def scoring(self, data_type: str) -> dict[str, list[float | None]]:
        series = self._scoring.get(data_type)
        return series.to_json() if series is not None else {"t": [], "rate": [], "p50_ms": [], "p99_ms": []}

    def lag(self) -> dict[str, Any]:
        return self._lag.to_json() if self._lag is not None else {"t": []}
