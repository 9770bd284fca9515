"""Per-data-type scoring statistics: the current model's counters and its predecessors' final ones."""

from __future__ import annotations

from protobufs.modelstream_pb2 import ModelStats, ServingModel, StatsSnapshot

HISTORY_LIMIT = 20


def new_snapshot(data_type: str) -> StatsSnapshot:
    return StatsSnapshot(data_type=data_type)


def start_model(snapshot: StatsSnapshot, model: ServingModel, now_ms: int) -> None:
    """Retire the current model's stats into history and start fresh ones for ``model``."""
    if snapshot.HasField("current"):
        retired = ModelStats()
        retired.CopyFrom(snapshot.current)
        retired.until = now_ms
        snapshot.history.insert(0, retired)
        del snapshot.history[HISTORY_LIMIT:]
    snapshot.current.Clear()
    snapshot.current.model.CopyFrom(model)


def record_scores(
    stats: ModelStats, count: int, total_ns: int, min_ns: int, max_ns: int, now_ms: int
) -> None:
    """Account for ``count`` records scored in ``total_ns``, the fastest in min_ns, the slowest in max_ns."""
    if stats.usage == 0 or min_ns < stats.min_ns:
        stats.min_ns = min_ns
    stats.max_ns = max(stats.max_ns, max_ns)
    stats.usage += count
    stats.total_ns += total_ns
    stats.last_scored_at = now_ms


def record_error(stats: ModelStats, count: int = 1) -> None:
    stats.errors += count
