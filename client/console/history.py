"""What the console charts: a bounded history, sampled once a second, of each data type's scoring rate and
scoring-time p50/p99, and of the job's consumer lag per data topic.

Rates and percentiles come from the difference between two consecutive snapshots of a data type, taken
per model version (its usage and its scoring-time sketch) and then added over the versions that serve
records, so a swap or a shadow version never skews them. They are unknown (None) until a data type has two
snapshots close enough in time: the first one the service reads, one that follows a gap longer than
``stale_after_ms`` (the service or the job was down) and one with a counter smaller than before (the job
was restored from a checkpoint) each start a new baseline. A data type whose records stopped reports
nothing new: its rate drops to 0 once its last snapshot is older than ``stale_after_ms``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelstream.stats import quantile
from protobufs.modelstream_pb2 import ModelStats, StatsSnapshot

NS_PER_MS = 1_000_000
# the roles whose records are the data type's traffic ("": no rollout policy, the one serving version)
SERVING_ROLES = frozenset({"", "served"})
# the roles that each score every record of the data type (an ensemble's members, a speculative
# primary and its fallback): the records are as many as the busiest of them scored
EVERY_RECORD_ROLES = frozenset({"member", "primary", "fallback"})
# a version kept loaded for a rollback scores nothing: what it scored since the last snapshot it served
IDLE_ROLE = "retained"

# a model version: name, version and since (a version published again is a new one)
VersionKey = tuple[str, str, int]


def serving_stats(snapshot: StatsSnapshot) -> list[ModelStats]:
    """The stats of every loaded version (under a policy, with its role; else the current model)."""
    if snapshot.versions:
        return list(snapshot.versions)
    return [snapshot.current] if snapshot.HasField("current") else []


def _version_stats(snapshot: StatsSnapshot) -> Iterable[ModelStats]:
    """Every version whose counters may have moved since the previous snapshot: the loaded ones, then the
    retired ones (a model swapped out after scoring its last records; served, so with no role)."""
    yield from serving_stats(snapshot)
    yield from snapshot.history


@dataclass
class _Counters:
    role: str
    usage: int
    buckets: dict[int, int]


@dataclass
class _Latest:
    """A data type's latest snapshot's counters per version, and what was scored between it and the one
    before (None: unknown, this snapshot is a baseline)."""

    published_at: int
    versions: dict[VersionKey, _Counters]
    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


def _latest(snapshot: StatsSnapshot) -> _Latest:
    versions: dict[VersionKey, _Counters] = {}
    for stats in _version_stats(snapshot):
        key = (stats.model.name, stats.model.version, stats.model.since)
        if key not in versions:  # the loaded version's live counters win over a history entry's
            versions[key] = _Counters(stats.role, stats.usage, dict(stats.time_buckets))
    return _Latest(snapshot.published_at, versions)


def _counts_as_traffic(now: _Counters, before: _Counters | None) -> bool:
    if now.role in SERVING_ROLES or now.role in EVERY_RECORD_ROLES:
        return True
    return now.role == IDLE_ROLE and before is not None and before.role in SERVING_ROLES


def _between(previous: _Latest, latest: _Latest, stale_after_ms: int) -> None:
    """Set ``latest``'s rate and percentiles from what its serving versions scored since ``previous``,
    unless ``latest`` starts a new baseline (after a gap, or with a counter gone down)."""
    if latest.published_at - previous.published_at > stale_after_ms:
        return
    scored = scored_by_each = 0
    recent: dict[int, int] = {}
    for key, now in latest.versions.items():
        before = previous.versions.get(key)
        old_usage, old_buckets = (before.usage, before.buckets) if before is not None else (0, {})
        if now.usage < old_usage or any(now.buckets.get(b, 0) < n for b, n in old_buckets.items()):
            return  # restored from a checkpoint: counters went back
        if not _counts_as_traffic(now, before):
            continue
        if now.role in EVERY_RECORD_ROLES:
            scored_by_each = max(scored_by_each, now.usage - old_usage)
        else:
            scored += now.usage - old_usage
        for bucket, n in now.buckets.items():
            if n > old_buckets.get(bucket, 0):
                recent[bucket] = recent.get(bucket, 0) + n - old_buckets.get(bucket, 0)
    latest.rate = (scored + scored_by_each) / ((latest.published_at - previous.published_at) / 1000)
    if recent:
        latest.p50_ms = quantile(recent, 0.5) / NS_PER_MS
        latest.p99_ms = quantile(recent, 0.99) / NS_PER_MS


@dataclass
class Series:
    """Aligned columns of samples: time (s since the epoch) and one column per name. A column added later
    is padded with None for the samples before it."""

    names: tuple[str, ...]
    limit: int
    t: deque[float] = field(init=False)
    columns: dict[str, deque[float | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.t = deque(maxlen=self.limit)
        self.columns = {}
        for name in self.names:
            self.add_column(name)

    def add_column(self, name: str) -> None:
        if name not in self.columns:
            self.columns[name] = deque([None] * len(self.t), maxlen=self.limit)
            self.names = tuple(sorted(self.columns))

    def append(self, t: float, values: Mapping[str, float | None]) -> None:
        self.t.append(t)
        for name, column in self.columns.items():
            column.append(values.get(name))

    def to_json(self) -> dict[str, list[float | None]]:
        return {"t": list(self.t), **{name: list(self.columns[name]) for name in self.names}}


class History:
    """The console's bounded history: ``keep_s`` seconds at one sample per ``sample_every_s``."""

    def __init__(self, keep_s: float = 300, sample_every_s: float = 1.0, stale_after_ms: int = 6000) -> None:
        self.limit = max(1, round(keep_s / sample_every_s))
        self.stale_after_ms = stale_after_ms
        self._latest: dict[str, _Latest] = {}
        self._scoring: dict[str, Series] = {}
        self._lag: Series | None = None

    def observe(self, snapshot: StatsSnapshot) -> None:
        """A snapshot read from the stats topic (called in topic order)."""
        latest = _latest(snapshot)
        previous = self._latest.get(snapshot.data_type)
        if previous is not None:
            if latest.published_at <= previous.published_at:
                return
            _between(previous, latest, self.stale_after_ms)
        self._latest[snapshot.data_type] = latest

    def forget(self, data_type: str) -> None:
        self._latest.pop(data_type, None)
        self._scoring.pop(data_type, None)

    def sample(self, now_ms: int, lag_by_topic: Mapping[str, int] | None) -> None:
        """Append one point per data type, and the lag per topic (None for every topic seen so far when it
        could not be read: a gap in the chart)."""
        t = now_ms / 1000
        for data_type, latest in self._latest.items():
            series = self._scoring.get(data_type)
            if series is None:
                series = self._scoring[data_type] = Series(("rate", "p50_ms", "p99_ms"), self.limit)
            if now_ms - latest.published_at > self.stale_after_ms:
                series.append(t, {"rate": 0.0})  # its records stopped
            else:
                series.append(t, {"rate": latest.rate, "p50_ms": latest.p50_ms, "p99_ms": latest.p99_ms})
        if lag_by_topic is None:
            if self._lag is not None:
                self._lag.append(t, {})
            return
        if self._lag is None:
            self._lag = Series((), self.limit)
        for topic in lag_by_topic:
            self._lag.add_column(topic)
        self._lag.append(t, {topic: float(lag) for topic, lag in lag_by_topic.items()})

    def scoring(self, data_type: str) -> dict[str, list[float | None]]:
        series = self._scoring.get(data_type)
        return series.to_json() if series is not None else {"t": [], "rate": [], "p50_ms": [], "p99_ms": []}

    def lag(self) -> dict[str, Any]:
        return self._lag.to_json() if self._lag is not None else {"t": []}
