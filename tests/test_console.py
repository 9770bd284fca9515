"""The console's history (rates and percentiles between snapshots, per version, bounded, right across swaps,
gaps and job restores), the stats store's counting and the stats service's routes over real HTTP, without
Kafka."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import cli
from client.console import assets
from client.console.history import History
from client.stats_service import (
    MAX_DEAD_LETTER_TYPES,
    OTHER_DATA_TYPES,
    LagSample,
    StatsStore,
    answer,
    make_handler,
    page_file,
)
from modelstream.settings import Settings
from modelstream.stats import bucket_of
from protobufs.modelstream_pb2 import DeadLetter, ModelStats, StatsSnapshot


def model_stats(usage: int, times_ns: dict[int, int], version: str = "1", role: str = "") -> ModelStats:
    """A version's stats: ``usage`` records scored, times_ns maps a scoring time to its count."""
    stats = ModelStats(usage=usage, role=role)
    stats.model.name, stats.model.version = "m", version
    for ns, count in times_ns.items():
        stats.time_buckets[bucket_of(ns)] += count
    return stats


def snapshot(published_at: int, usage: int, times_ns: dict[int, int], version: str = "1") -> StatsSnapshot:
    """A data type's snapshot with no rollout policy: one serving version."""
    return StatsSnapshot(
        data_type="wine", current=model_stats(usage, times_ns, version), published_at=published_at
    )


def with_versions(published_at: int, *versions: ModelStats) -> StatsSnapshot:
    """A data type's snapshot under a rollout policy: every loaded version with its role."""
    snap = StatsSnapshot(data_type="wine", published_at=published_at)
    snap.current.CopyFrom(versions[0])
    snap.versions.extend(versions)
    return snap


def test_rate_and_percentiles_are_what_was_scored_between_two_snapshots() -> None:
    history = History(stale_after_ms=5000)
    history.observe(snapshot(10_000, 1000, {1_000_000: 1000}))  # baseline: a service started late
    history.sample(10_500, {"wine": 7})
    history.observe(snapshot(12_000, 1400, {1_000_000: 1000, 3_000_000: 390, 50_000_000: 10}))
    history.sample(12_500, {"wine": 3})
    points = history.scoring("wine")
    assert points["t"] == [10.5, 12.5]
    assert points["rate"] == [None, 200.0]  # unknown before two snapshots; then 400 records in 2 s
    assert points["p50_ms"][0] is None
    assert points["p50_ms"][1] == pytest.approx(3.0, rel=0.04)  # of the 400 new ones, not all 1400
    assert points["p99_ms"][1] == pytest.approx(50.0, rel=0.04)
    assert history.lag() == {"t": [10.5, 12.5], "wine": [7.0, 3.0]}


def test_a_shadow_or_retained_version_is_no_traffic() -> None:
    history = History(stale_after_ms=5000)
    history.observe(
        with_versions(
            1000,
            model_stats(100, {1_000_000: 100}, "1", "served"),
            model_stats(100, {90_000_000: 100}, "2", "shadow"),
            model_stats(50, {1_000_000: 50}, "0", "retained"),
        )
    )
    history.observe(
        with_versions(
            2000,
            model_stats(400, {1_000_000: 400}, "1", "served"),
            model_stats(400, {90_000_000: 400}, "2", "shadow"),  # scores the same records again
            model_stats(50, {1_000_000: 50}, "0", "retained"),
        )
    )
    history.sample(2100, None)
    points = history.scoring("wine")
    assert points["rate"] == [300.0]  # not 600: the shadow's copies are not records
    assert points["p99_ms"] == [pytest.approx(1.0, rel=0.04)]  # not the shadow's 90 ms


def test_an_ensemble_s_members_each_score_every_record_once() -> None:
    history = History(stale_after_ms=5000)
    history.observe(with_versions(1000, *(model_stats(0, {}, v, "member") for v in ("a", "b", "c"))))
    history.observe(with_versions(2000, *(model_stats(250, {}, v, "member") for v in ("a", "b", "c"))))
    history.sample(2100, None)
    assert history.scoring("wine")["rate"] == [250.0]  # 250 records, each scored by the 3 members


def test_a_swap_counts_each_version_s_own_records_and_times() -> None:
    history = History(stale_after_ms=5000)
    history.observe(with_versions(1000, model_stats(1000, {2_000_000: 1000}, "1", "served")))
    # v2 takes over; v1 scored 100 more before the swap and is kept loaded for a rollback
    history.observe(
        with_versions(
            2000,
            model_stats(1100, {2_000_000: 1100}, "1", "retained"),
            model_stats(300, {10_000_000: 300}, "2", "served"),
        )
    )
    history.sample(2100, None)
    points = history.scoring("wine")
    assert points["rate"] == [400.0]  # v1's last 100 and v2's first 300
    assert points["p50_ms"] == [pytest.approx(10.0, rel=0.04)]  # 300 of 400 took 10 ms
    # the same without a policy: the retired model is in the history, the new one is current
    plain = History(stale_after_ms=5000)
    plain.observe(snapshot(1000, 1000, {2_000_000: 1000}))
    swapped = snapshot(2000, 300, {10_000_000: 300}, version="2")
    swapped.history.append(model_stats(1100, {2_000_000: 1100}, "1"))
    plain.observe(swapped)
    plain.sample(2100, None)
    assert plain.scoring("wine")["rate"] == [400.0]
    assert plain.scoring("wine")["p50_ms"] == [pytest.approx(10.0, rel=0.04)]


def test_a_gap_or_a_restore_starts_a_new_baseline() -> None:
    history = History(stale_after_ms=5000)
    history.observe(snapshot(1000, 100, {1_000_000: 100}))
    history.observe(snapshot(2000, 200, {1_000_000: 200}))
    history.sample(2000, None)
    history.observe(snapshot(30_000, 5000, {1_000_000: 5000}))  # after 28 s without a snapshot
    history.sample(30_000, None)
    history.observe(snapshot(31_000, 5100, {1_000_000: 5100}))
    history.sample(31_000, None)
    history.observe(snapshot(32_000, 4000, {1_000_000: 4000}))  # restored from a checkpoint
    history.sample(32_000, None)
    history.observe(snapshot(33_000, 4200, {1_000_000: 4200}))
    history.sample(33_000, None)
    assert history.scoring("wine")["rate"] == [100.0, None, 100.0, None, 200.0]
    assert history.scoring("wine")["p50_ms"][1::2] == [None, None]
    # a bucket that went down is a restore too, whatever the usage says
    buckets = History(stale_after_ms=5000)
    buckets.observe(snapshot(1000, 100, {1_000_000: 100}))
    buckets.observe(snapshot(2000, 200, {1_000_000: 50, 3_000_000: 150}))
    buckets.sample(2000, None)
    assert buckets.scoring("wine")["rate"] == [None]


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


def test_the_lag_history_keeps_a_column_per_topic_and_a_gap_when_unknown() -> None:
    history = History()
    history.sample(1000, None)  # no topic known yet: nothing to chart
    assert history.lag() == {"t": []}
    history.sample(2000, {"a": 5})
    history.sample(3000, None)  # the lag could not be read
    history.sample(4000, {"a": 2, "b": 9})  # a topic seen for the first time
    history.sample(5000, {"b": 1})
    assert history.lag() == {
        "t": [2.0, 3.0, 4.0, 5.0],
        "a": [5.0, None, 2.0, None],
        "b": [None, None, 9.0, 1.0],
    }


def test_console_data_has_serving_versions_usage_dead_letters_and_history() -> None:
    store = StatsStore(Settings())
    store.apply(b"wine", snapshot(1000, 10, {1_000_000: 10}).SerializeToString())
    store.apply(b"wine", snapshot(2000, 30, {1_000_000: 30}).SerializeToString())
    for reason, data_type in [(DeadLetter.RECORD_INVALID, "wine")] * 2 + [(DeadLetter.NO_MODEL, "loans")]:
        store.count_dead_letter(DeadLetter(reason=reason, data_type=data_type).SerializeToString())
    rows = [{"topic": "wine", "partition": 0, "end": 50, "committed": 45, "lag": 5}]
    store.sample(2500, rows)
    store.sample(3500, None, "no Kafka broker answers")
    status, body = answer(store, "/api/console")
    assert status == 200
    [wine] = body["data_types"]
    assert wine["serving"] == [{"model": "m", "version": "1", "role": "served", "share": 100.0, "usage": 30}]
    assert (wine["usage"], wine["dead_letters"]) == (30, {"RECORD_INVALID": 2})
    assert wine["history"]["rate"] == [20.0, 20.0]
    assert body["other_dead_letters"] == {"loans": {"NO_MODEL": 1}}
    assert (body["lag"], body["lag_error"]) == (None, "no Kafka broker answers")
    assert body["lag_history"] == {"t": [2.5, 3.5], "wine": [5.0, None]}
    store.sample(4500, rows)
    body = store.console_data()
    assert (body["lag"], body["lag_error"]) == ({"total": 5, "partitions": rows}, None)


def test_console_data_has_the_serving_version_s_drift_once_it_has_a_window() -> None:
    store = StatsStore(Settings())
    store.apply(b"wine", snapshot(1000, 10, {}).SerializeToString())
    assert store.console_data()["data_types"][0]["drift"] is None
    drifted = snapshot(2000, 30, {})
    drifted.drift.status, drifted.drift.windows = "DRIFT", 3
    drifted.drift.flagged.append("alcohol")
    store.apply(b"wine", drifted.SerializeToString())
    drift = store.console_data()["data_types"][0]["drift"]
    assert drift == {"status": "DRIFT", "flagged": ["alcohol"], "windows": 3}


def test_a_tombstone_forgets_a_data_type() -> None:
    store = StatsStore(Settings())
    store.apply(b"wine", snapshot(1000, 10, {}).SerializeToString())
    store.apply(b"wine", snapshot(2000, 30, {}).SerializeToString())
    store.sample(2500, None)
    store.apply(b"wine", None)
    assert store.get("wine") is None and store.snapshots_read == 3
    assert store.console_data()["data_types"] == []
    store.apply(b"wine", snapshot(3000, 5, {}).SerializeToString())  # back: a fresh history
    store.sample(3500, None)
    assert store.console_data()["data_types"][0]["history"]["rate"] == [None]


def test_dead_letters_undecodable_ones_and_too_many_data_types_are_counted() -> None:
    store = StatsStore(Settings())
    store.count_dead_letter(b"\xff\xff not a dead letter")
    store.count_dead_letter(DeadLetter(reason=DeadLetter.NO_MODEL, data_type="wine").SerializeToString())
    assert store.dead_letters() == {"": {"UNDECODABLE": 1}, "wine": {"NO_MODEL": 1}}
    for i in range(MAX_DEAD_LETTER_TYPES + 5):
        store.count_dead_letter(DeadLetter(reason=DeadLetter.NO_MODEL, data_type=f"t{i}").SerializeToString())
    counts = store.dead_letters()
    assert len(counts) == MAX_DEAD_LETTER_TYPES + 1
    assert counts[OTHER_DATA_TYPES] == {"NO_MODEL": 7}  # the 1,000 first data types have their own
    assert counts["wine"] == {"NO_MODEL": 1}


def test_lag_answers_with_the_store_s_fresh_read() -> None:
    store = StatsStore(Settings())
    now = int(time.time() * 1000)
    rows = [{"topic": "wine", "partition": 0, "end": 9, "committed": 4, "lag": 5}]
    store.record_lag(LagSample(rows, None, now))
    assert answer(store, "/lag") == (200, {"lag": 5, "partitions": rows, "sampled_at": now})
    store.record_lag(LagSample(None, "no Kafka broker answers at x", now))
    assert answer(store, "/lag") == (503, {"error": "no Kafka broker answers at x", "sampled_at": now})


def test_page_routes_serve_the_page_its_scripts_and_nothing_else() -> None:
    index = page_file("/")
    assert index is not None and index[0].name == "index.html" and index[0].is_file()
    assert page_file("/console/wine") == index  # a data type's model history: the same page
    assert page_file("/console/data") == index  # a data type named "data" too
    script = page_file("/assets/console.js")
    assert script is not None and script[0].is_file() and script[1] == "text/javascript"
    assert page_file("/assets/../../settings.py") is None
    assert page_file("/api/console") is None and page_file("/models") is None


@pytest.fixture
def served_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, StatsStore]]:
    """A store (never started: no Kafka) behind the service's real HTTP handler, with no chart library."""
    from http.server import ThreadingHTTPServer

    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path / "no-assets")
    store = StatsStore(Settings())
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(store))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_the_service_answers_over_http(served_store: tuple[str, StatsStore]) -> None:
    url, store = served_store
    data = snapshot(1000, 10, {})
    data.data_type = "data"  # a data type whose page is /console/data
    store.apply(b"data", data.SerializeToString())
    status, content_type, page = fetch(url + "/")
    assert (status, content_type) == (200, "text/html; charset=utf-8") and b"console.js" in page
    assert fetch(url + "/console/data")[:2] == (200, "text/html; charset=utf-8")
    assert fetch(url + "/assets/console.js")[:2] == (200, "text/javascript")
    assert fetch(url + "/assets/console.css")[:2] == (200, "text/css")
    status, content_type, body = fetch(url + "/api/console")
    assert (status, content_type) == (200, "application/json")
    assert [t["data_type"] for t in json.loads(body)["data_types"]] == ["data"]
    status, content_type, body = fetch(url + "/assets/uPlot.iife.min.js")
    assert (status, content_type) == (404, "text/plain") and b"make setup" in body
    status, content_type, body = fetch(url + "/nothing?x=1")
    assert (status, content_type) == (404, "application/json")
    assert "/api/console" in json.loads(body)["routes"]
    status, _, body = fetch(url + "/stats/data")
    assert status == 200 and json.loads(body)["current"]["usage"] == 10


def test_stats_says_why_the_lag_is_unknown(
    served_store: tuple[str, StatsStore], capsys: pytest.CaptureFixture[str]
) -> None:
    url, store = served_store
    store.apply(b"wine", snapshot(1000, 10, {}).SerializeToString())
    store.record_lag(LagSample(None, "no Kafka broker answers at x", int(time.time() * 1000)))
    assert cli.main(["stats", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "consumer lag: unknown (the stats service answered 503: no Kafka broker answers at x)" in out
    rows = [{"topic": "wine", "partition": 0, "end": 9, "committed": 4, "lag": 5}]
    store.record_lag(LagSample(rows, None, int(time.time() * 1000)))
    assert cli.main(["stats", "--url", url]) == 0
    assert "5 records behind, the job's total over all data topics" in capsys.readouterr().out


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_chart_library_is_checked_against_its_pinned_integrity(tmp_path: Path) -> None:
    data = tarball({member: member.encode() for member in assets.FILES})
    with pytest.raises(ValueError, match="integrity"):
        assets.verify(data)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    assets.verify(data, integrity)  # what the npm registry's integrity string says: it matches
    assert not assets.installed(tmp_path, integrity)
    assets.unpack(data, tmp_path, integrity)
    assert assets.installed(tmp_path, integrity)
    assert (tmp_path / "uPlot.min.css").read_bytes() == b"package/dist/uPlot.min.css"
    assert not assets.installed(tmp_path)  # files of another tarball than the pinned one: fetched again
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*assets.FILES.values(), assets.STAMP])


def test_the_pinned_chart_library_when_make_setup_fetched_it() -> None:
    if not assets.installed():
        pytest.skip("no chart library in .cache/console (`make setup` fetches it)")
    script = (assets.ASSETS_DIR / "uPlot.iife.min.js").read_text()
    assert "uPlot" in script
