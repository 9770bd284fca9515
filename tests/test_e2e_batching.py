"""Micro-batches under load, through the real broker and the real job: they wait longer while records
arrive fast, and no longer than batch_max_delay_ms when they arrive slowly."""

from __future__ import annotations

import threading

import pytest

from client import publish
from client.messages import decode_score
from modelstream.settings import Settings
from tests.conftest import WINE_DIR, JobStarter, free_port, read_topic
from tests.test_e2e_stats import scrape_counter

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"


def test_batches_wait_longer_while_records_arrive_fast(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    prometheus = free_port()
    ports = range(prometheus, prometheus + 5)
    settings = stack_settings.replace(
        prometheus_ports=f"{prometheus}-{prometheus + 4}",
        batch_max_delay_ms=2,
        batch_busy_rate=2000,
        batch_busy_delay_ms=20,
    )
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "onnx", "wine", "onnx", version="v1"
    )
    publish.publish_records(settings, CSV, count=1, id_prefix="first")
    read_topic(settings, settings.scores_topic, 1, job=job)  # running: what follows arrives live
    assert publish.publish_records(settings, CSV, count=50, rate=100, id_prefix="slow-a") == 50
    read_topic(settings, settings.scores_topic, 51, job=job)

    def delay() -> float | None:
        return scrape_counter(ports, "operator_batch_delay_ms")

    assert delay() == 2.0  # 100 records/s: the low-rate bound
    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            value = delay()
            if value is not None:
                seen.append(value)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        publish.publish_records(settings, CSV, count=40_000, id_prefix="fast")
        read_topic(settings, settings.scores_topic, 40_051, job=job)
    finally:
        done.set()
        watcher.join()
    # thousands of records per second: batches waited longer than 2 ms, at most the busy bound
    assert seen and max(seen) > 2.0 and max(seen) <= 20.0, seen

    publish.publish_records(settings, CSV, count=50, rate=100, id_prefix="slow-b")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 40_101, job=job)]
    assert delay() == 2.0  # slow again: back to the low-rate bound
    ids = {s.record_id for s in scores}
    assert len(ids) == 40_101 and {f"fast-{i}" for i in (0, 39_999)} <= ids
    batches = scrape_counter(ports, "operator_batches")
    records = scrape_counter(ports, "operator_batched_records")
    assert batches and records == 40_101 and records / batches > 2
    assert job.poll() is None
