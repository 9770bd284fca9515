"""Stats, metrics, traceability and dead letters through the real broker and the real job."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.request
from collections.abc import Iterator
from typing import Any, cast

import pytest

from client import catalog, job_control, publish, topics
from client.flink_rest import FlinkRest
from client.messages import decode_dead_letter, decode_score
from modelstream.settings import Settings
from modelstream.topics import RECORD_SCHEMA_CONTENT_TYPE
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, RecordSchema, WineRecord
from tests.conftest import WINE_DIR, JobStarter, free_port, read_topic, stats_service_running, wait_for
from tests.test_cli import run_cli

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"


@pytest.fixture
def stats_url(stack_settings: Settings) -> Iterator[str]:
    with stats_service_running(stack_settings) as url:
        yield url


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        return {"status": e.code}


def scrape_counter(ports: range, name: str) -> float | None:
    """The value of a Prometheus metric whose name ends with ``name`` on any of ``ports``."""
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if not line.startswith("#") and line.split("{", 1)[0].endswith(name):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_stats_are_queryable_while_running_and_restart_on_a_swap(
    stack_settings: Settings, start_job: JobStarter, stats_url: str
) -> None:
    prometheus = free_port()
    settings = stack_settings.replace(prometheus_ports=f"{prometheus}-{prometheus + 4}")
    job = start_job(settings)
    assert get(stats_url + "/healthz")["status"] == "ok"
    ready = lambda: get(stats_url + "/readyz").get("ready") is True  # noqa: E731
    wait_for(ready, 30, "the service to read the stats topic")
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "onnx", "wine", "onnx", version="v1"
    )
    publish.publish_records(settings, CSV, count=500, id_prefix="a")
    wait_for(lambda: get(stats_url + "/stats/wine").get("current", {}).get("usage") == 500, 180, "usage 500")
    first = get(stats_url + "/stats/wine")["current"]
    assert first["model"]["version"] == "v1"
    assert first["min_ns"] <= first["total_ns"] / first["usage"] <= first["max_ns"]
    assert 0 < first["p50_ns"] <= first["p99_ns"] and first["errors"] == 0 and first["last_scored_at"] > 0
    assert (
        get(stats_url + "/models")["models"][0] | {"data_type": "wine", "version": "v1"}
        == get(stats_url + "/models")["models"][0]
    )
    assert get(stats_url + "/stats/nope")["status"] == 404

    # the Flink REST API's counter equals the results written
    written = len(read_topic(settings, settings.scores_topic, 500, job=job))
    rest = FlinkRest(settings.jobmanager)
    job_id = rest.wait_for_job()
    assert written == 500  # the REST API refreshes metrics every 10 s (metrics.fetcher.update-interval)
    wait_for(
        lambda: rest.operator_metric(job_id, "serve-models", "records_scored") == written, 60, "REST counter"
    )
    assert scrape_counter(range(prometheus, prometheus + 5), "operator_records_scored") == 500.0

    publish.publish_model_file(
        settings,
        WINE_DIR / "winequalityRandonForrestClassification.pmml",
        "forest",
        "wine",
        "pmml",
        version="v2",
    )
    wait_for(lambda: get(stats_url + "/stats/wine")["current"]["model"]["version"] == "v2", 120, "the swap")
    swapped = get(stats_url + "/stats/wine")
    assert swapped["current"]["usage"] == 0 and swapped["current"]["model"]["since"] > first["model"]["since"]
    (previous,) = swapped["history"]
    assert previous["model"]["version"] == "v1" and previous["usage"] == 500 and previous["until"] > 0
    publish.publish_records(settings, CSV, count=200, id_prefix="b")
    wait_for(
        lambda: get(stats_url + "/stats/wine")["current"]["usage"] == 200, 120, "usage 200 after the swap"
    )

    listed = catalog.published_models(settings)
    assert [(m["name"], m["version"], m["serving"]) for m in listed] == [
        ("onnx", "v1", False),
        ("forest", "v2", True),
    ]
    assert listed[1]["type"] == "PMML" and listed[1]["size"] > 100_000
    table = run_cli(settings, "stats", "wine", "--url", stats_url)
    assert "forest" in table and "onnx" in table
    assert re.fullmatch(r"consumer lag: [\d,]+ records behind, the job's total .*", table.splitlines()[-1])
    assert job.poll() is None


def test_model_and_stats_survive_a_restart_from_a_checkpoint(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(checkpoint_interval_ms=1000, state_backend="rocksdb")
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "onnx", "wine", "onnx", version="v1"
    )
    publish.publish_records(settings, CSV, count=300, id_prefix="before")
    read_topic(settings, settings.scores_topic, 300, job=job)
    rest = FlinkRest(settings.jobmanager)
    job_id = rest.wait_for_job()
    done = rest.latest_checkpoint(job_id)
    first_id = done[0] if done else 0

    def two_more_checkpoints() -> bool:
        latest = rest.latest_checkpoint(job_id)
        return latest is not None and latest[0] > first_id + 1

    wait_for(two_more_checkpoints, 60, "two checkpoints after the records were scored")
    # no goodbye: the job and its mini-cluster's JVM (a child in the job's own session) vanish together;
    # killing the job process alone leaves the JVM checkpointing on for a while
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    checkpoint = job_control.newest_checkpoint(settings, job_id)
    assert checkpoint is not None

    restarted = start_job(settings.replace(restore_from=checkpoint.as_uri()))
    publish.publish_records(settings, CSV, count=100, id_prefix="after")  # no model republished
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 400, job=restarted)]
    after = [s for s in scores if s.record_id.startswith("after-")]
    assert len(after) == 100 and {s.model_version for s in after} == {"v1"}

    def usage() -> int:
        snapshot = catalog.latest_stats(settings).get("wine")
        return snapshot.current.usage if snapshot else -1

    wait_for(lambda: usage() == 400, 60, "usage 300 restored + 100 new")


def test_every_bad_input_case_is_dead_lettered_with_its_reason(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(pending_timeout_ms=2000)
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "onnx", "wine", "onnx", version="ok"
    )
    nan_pmml = (
        (WINE_DIR / "winequalityLinearRegression.pmml")
        .read_text()
        .replace('intercept="', 'intercept="NaN" a="', 1)
    )
    D = ModelDescriptor
    models = {
        DeadLetter.MODEL_UNDECODABLE: b"\xff\xfe not a descriptor",
        DeadLetter.UNKNOWN_MODEL_TYPE: D(
            name="u", dataType="wine", modeltype=cast(ModelDescriptor.ModelType, 9), data=b"x"
        ).SerializeToString(),
        DeadLetter.MODEL_BUILD_FAILED: D(
            name="b", dataType="wine", modeltype=D.ONNX, data=b"x"
        ).SerializeToString(),
        DeadLetter.MODEL_VALIDATION_FAILED: D(
            name="v", dataType="wine", modeltype=D.PMML, data=nan_pmml.encode()
        ).SerializeToString(),
    }
    records = {
        DeadLetter.RECORD_UNDECODABLE: b"\xff\xfe not a record",
        DeadLetter.RECORD_INVALID: WineRecord(
            dataType="wine", alcohol=float("inf"), record_id="inf"
        ).SerializeToString(),
        DeadLetter.NO_MODEL: WineRecord(dataType="beer", alcohol=5.0, record_id="beer").SerializeToString(),
    }
    missing_type = WineRecord(alcohol=5.0, record_id="untyped").SerializeToString()
    p = topics.producer(settings)
    for raw in models.values():
        p.produce(settings.models_topic, value=raw)
    bad_schema = RecordSchema(
        data_type="wine", message_name="x.Y", file_descriptor_set=b"\xff"
    ).SerializeToString()
    p.produce(settings.models_topic, value=bad_schema, headers=[("content-type", RECORD_SCHEMA_CONTENT_TYPE)])
    for raw in [*records.values(), missing_type]:
        p.produce(settings.data_topic, value=raw)
    p.flush(30)
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 9, job=job)]
    by_raw = {d.raw: d for d in letters}
    assert len(letters) == 9
    # a record naming no data type takes its topic's default (the topic's name), which has no model
    cases = [*models.items(), *records.items(), (DeadLetter.NO_MODEL, missing_type)]
    for reason, raw in [*cases, (DeadLetter.SCHEMA_INVALID, bad_schema)]:
        letter = by_raw[raw]
        assert letter.reason == reason, (DeadLetter.Reason.Name(reason), letter)
        assert letter.message and letter.HasField("partition") and letter.HasField("offset")
        assert letter.source_topic in (settings.models_topic, settings.data_topic)
    assert by_raw[records[DeadLetter.NO_MODEL]].data_type == "beer"
    assert by_raw[missing_type].data_type == settings.data_topic

    publish.publish_records(settings, CSV, count=20, id_prefix="still")  # and it keeps scoring
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 20, job=job)]
    assert sorted(s.record_id for s in scores) == sorted(f"still-{i}" for i in range(20))
    listed = run_cli(settings, "dead-letters")
    assert "NO_MODEL" in listed and "MODEL_VALIDATION_FAILED" in listed
