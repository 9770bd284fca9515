"""Per-data-type scoring statistics: the current model's counters and its predecessors' final ones.

Scoring times go into a log-bucketed sketch (``ModelStats.time_buckets``): bucket b holds the times in
[GAMMA^b, GAMMA^(b+1)) ns, so a quantile read from it is within GAMMA - 1 = 4 % of the true one, the
sketch stays small (a few dozen buckets), and two sketches merge by adding their counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from protobufs.modelstream_pb2 import ModelStats, ServingModel, StatsSnapshot

HISTORY_LIMIT = 20
GAMMA = 1.04
_LOG_GAMMA = math.log(GAMMA)


def bucket_of(ns: int) -> int:
    return int(math.log(max(ns, 1)) / _LOG_GAMMA)


def _bucket_midpoint(bucket: int) -> int:
    value: float = GAMMA ** (bucket + 0.5)
    return round(value)


def quantile(buckets: Mapping[int, int], q: float) -> int:
    """The q-quantile (0..1) of the times in a sketch, as the midpoint of its bucket; 0 if empty."""
    total = sum(buckets.values())
    if total == 0:
        return 0
    rank = q * (total - 1)
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen > rank:
            return _bucket_midpoint(bucket)
    return _bucket_midpoint(max(buckets))


def merge(into: ModelStats, other: ModelStats) -> None:
    """Add ``other``'s counts to ``into`` (same model scored in two places)."""
    if other.usage:
        into.min_ns = min(into.min_ns, other.min_ns) if into.usage else other.min_ns
    into.max_ns = max(into.max_ns, other.max_ns)
    into.usage += other.usage
    into.total_ns += other.total_ns
    into.errors += other.errors
    into.last_scored_at = max(into.last_scored_at, other.last_scored_at)
    for bucket, count in other.time_buckets.items():
        into.time_buckets[bucket] += count


def start_model(snapshot: StatsSnapshot, model: ServingModel, now_ms: int) -> None:
    """Retire the current model's stats into history and start fresh ones for ``model``."""
    if snapshot.HasField("current"):
        retired = ModelStats()
        retired.CopyFrom(snapshot.current)
        retired.until = now_ms
        finish(retired)
        snapshot.history.insert(0, retired)
        del snapshot.history[HISTORY_LIMIT:]
    snapshot.current.Clear()
    snapshot.current.model.CopyFrom(model)


def record_scores(stats: ModelStats, count: int, each_ns: int, now_ms: int) -> None:
    """Account for ``count`` records scored in ``each_ns`` each (a batch's time over its size)."""
    if count <= 0:
        return
    if stats.usage == 0 or each_ns < stats.min_ns:
        stats.min_ns = each_ns
    stats.max_ns = max(stats.max_ns, each_ns)
    stats.usage += count
    stats.total_ns += each_ns * count
    stats.last_scored_at = now_ms
    stats.time_buckets[bucket_of(each_ns)] += count


def record_error(stats: ModelStats, count: int = 1) -> None:
    stats.errors += count


def finish(stats: ModelStats) -> None:
    """Fill the quantiles from the sketch (before publishing)."""
    stats.p50_ns = quantile(stats.time_buckets, 0.50)
    stats.p99_ns = quantile(stats.time_buckets, 0.99)
