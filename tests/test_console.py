"""The console's history (rates and percentiles between snapshots, bounded, right across job restarts)
and the stats service's page routes, without Kafka."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from client.console import assets
from client.console.history import History
from client.stats_service import StatsStore, answer, page_file
from modelstream.settings import Settings
from modelstream.stats import bucket_of
from protobufs.modelstream_pb2 import DeadLetter, ModelStats, StatsSnapshot


def snapshot(published_at: int, usage: int, times_ns: dict[int, int], version: str = "1") -> StatsSnapshot:
    """A data type's snapshot: ``usage`` records scored by ``version``, times_ns maps a time to its count."""
    stats = ModelStats(usage=usage)
    stats.model.name, stats.model.version = "m", version
    for ns, count in times_ns.items():
        stats.time_buckets[bucket_of(ns)] += count
    return StatsSnapshot(data_type="wine", current=stats, published_at=published_at)


def test_rate_and_percentiles_are_what_was_scored_between_two_snapshots() -> None:
    history = History(stale_after_ms=5000)
    history.observe(snapshot(10_000, 1000, {1_000_000: 1000}))  # baseline: a service started late
    history.sample(10_500, {"wine": 7})
    history.observe(snapshot(12_000, 1400, {1_000_000: 1000, 3_000_000: 390, 50_000_000: 10}))
    history.sample(12_500, {"wine": 3})
    points = history.scoring("wine")
    assert points["t"] == [10.5, 12.5]
    assert points["rate"] == [0.0, 200.0]  # 400 records in 2 s; nothing known before the baseline
    assert points["p50_ms"][1] == pytest.approx(3.0, rel=0.04)  # of the 400 new ones, not all 1400
    assert points["p99_ms"][1] == pytest.approx(50.0, rel=0.04)
    assert history.lag() == {"t": [10.5, 12.5], "wine": [7.0, 3.0]}


def test_a_restored_job_or_a_new_version_never_makes_a_negative_or_inflated_rate() -> None:
    history = History(stale_after_ms=5000)
    history.observe(snapshot(1000, 500, {}))
    history.observe(snapshot(2000, 300, {}))  # restored from a checkpoint: counters went back
    history.observe(snapshot(3000, 400, {}, version="2"))  # a swap: the new version from zero
    history.observe(snapshot(2500, 10**6, {}))  # older than the last one (read out of order): ignored
    history.sample(3100, None)
    assert history.scoring("wine")["rate"] == [400.0]
    assert history.lag() == {"t": []}


def test_a_data_type_whose_records_stopped_drops_to_zero_and_history_is_bounded() -> None:
    history = History(keep_s=3, stale_after_ms=2000)
    history.observe(snapshot(0, 0, {}))
    history.observe(snapshot(1000, 100, {2_000_000: 100}))
    for second in range(1, 6):
        history.sample(second * 1000, {})
    points = history.scoring("wine")
    assert points["t"] == [3.0, 4.0, 5.0]  # the last 3 s only
    assert points["rate"] == [100.0, 0.0, 0.0]
    assert points["p99_ms"] == [pytest.approx(2.0, rel=0.04), None, None]
    history.forget("wine")
    assert history.scoring("wine")["t"] == []


def test_console_data_has_serving_versions_usage_dead_letters_and_history() -> None:
    store = StatsStore(Settings())
    store.apply(b"wine", snapshot(1000, 10, {1_000_000: 10}).SerializeToString())
    store.apply(b"wine", snapshot(2000, 30, {1_000_000: 30}).SerializeToString())
    for reason, data_type in [(DeadLetter.RECORD_INVALID, "wine")] * 2 + [(DeadLetter.NO_MODEL, "loans")]:
        store.count_dead_letter(DeadLetter(reason=reason, data_type=data_type).SerializeToString())
    rows = [{"topic": "wine", "partition": 0, "end": 50, "committed": 45, "lag": 5}]
    store.sample(2500, rows)
    status, body = answer(store, "/console/data")
    assert status == 200
    [wine] = body["data_types"]
    assert wine["serving"] == [{"model": "m", "version": "1", "role": "served", "share": 100.0, "usage": 30}]
    assert (wine["usage"], wine["dead_letters"]) == (30, {"RECORD_INVALID": 2})
    assert wine["history"]["rate"] == [20.0]
    assert body["other_dead_letters"] == {"loans": {"NO_MODEL": 1}}
    assert body["lag"] == {"total": 5, "partitions": rows}
    assert body["lag_history"] == {"t": [2.5], "wine": [5.0]}


def test_page_routes_serve_the_page_its_scripts_and_nothing_else() -> None:
    index = page_file("/")
    assert index is not None and index[0].name == "index.html" and index[0].is_file()
    assert page_file("/console/wine") == index  # a data type's model history: the same page
    script = page_file("/assets/console.js")
    assert script is not None and script[0].is_file() and script[1] == "text/javascript"
    assert page_file("/assets/../../settings.py") is None
    assert page_file("/console/data") is None and page_file("/models") is None


def test_the_chart_library_is_checked_against_its_pinned_integrity(tmp_path: Path) -> None:
    files = {member: member.encode() for member in assets.FILES}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="integrity"):
        assets.verify(buffer.getvalue())
    assets.unpack(buffer.getvalue(), tmp_path)
    assert assets.installed(tmp_path)
    assert assets.installed(), "make setup fetches uPlot into .cache/console"
