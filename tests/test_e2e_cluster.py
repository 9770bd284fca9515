"""Fault tolerance on a real standalone Flink cluster (1 JobManager, 2 TaskManagers) from the pip
distribution: a TaskManager killed mid-stream, exactly-once, savepoint / stop / resume at parallelism 2."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from client import catalog, job_control, local_cluster, publish, rollout, topics
from client.flink_rest import FlinkRest
from client.messages import decode_score, model_descriptor
from modelstream.policies import Router, from_message
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import ScoreResult
from tests.conftest import WINE_DIR, free_port, read_topic, wait_for, with_own_topics
from tests.processes import command_line, descendants, running
from tests.test_e2e_rollout import loaded, policy_version, send

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"
RECORDS = 50_000


@pytest.fixture(scope="module")
def cluster(kafka: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = kafka.replace(
        jobmanager=f"127.0.0.1:{free_port()}",
        cluster_rpc_port=free_port(),
        prometheus_ports="",
        home=str(tmp_path_factory.mktemp("cluster")),
    )
    local_cluster.start(settings, taskmanagers=2, slots=2)
    yield settings
    local_cluster.stop(settings)
    assert not local_cluster.leftover_pids(settings), (
        "a killed TaskManager's Python worker outlived the cluster"
    )


@pytest.fixture
def cluster_settings(cluster: Settings, tmp_path: Path) -> Iterator[Settings]:
    # home stays the cluster's: its pid files are there
    settings = with_own_topics(cluster, checkpoint_dir=str(tmp_path / "checkpoints"))
    yield settings
    rest = FlinkRest(settings.jobmanager)
    if (job := rest.running_job()) is not None:
        rest.cancel(job)
        wait_for(lambda: rest.running_job() is None, 60, "the job to cancel")


def submit(settings: Settings) -> str:
    assert job_control.submit(settings, settings.jobmanager) == 0
    return FlinkRest(settings.jobmanager).wait_for_job()


def end_offset(settings: Settings, topic: str) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": "offsets",
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def committed_scores_until_every_record_has_one(settings: Settings, timeout_s: float) -> list[ScoreResult]:
    """Every committed score once each of the RECORDS record ids has one (fails after ``timeout_s``): the
    topic read again from the start until 3 s of quiet, so duplicates committed after the last new id count.

    The topic's end offset is no measure of that: after a recovery it holds duplicates (at-least-once) or
    aborted transactions and their markers (exactly-once) while the last records are still unscored."""
    deadline = time.monotonic() + timeout_s
    unscored = {f"r-{i}" for i in range(RECORDS)}

    def done() -> bool:
        return not unscored or time.monotonic() > deadline

    for message in topics.consume(settings, settings.scores_topic, follow=True, should_stop=done):
        unscored.discard(decode_score(message.value() or b"").record_id)
    assert not unscored, f"{len(unscored)} unscored after {timeout_s:.0f}s, e.g. {sorted(unscored)[:5]}"
    everything = topics.consume(settings, settings.scores_topic, idle_timeout_s=3.0)
    return [decode_score(message.value() or b"") for message in everything]


def kill_the_scoring_taskmanager(settings: Settings, job: str) -> str:
    rest = FlinkRest(settings.jobmanager)
    vertex = next(v for v in rest.call(f"/jobs/{job}")["vertices"] if "serve-models" in v["name"])
    (subtask,) = rest.call(f"/jobs/{job}/vertices/{vertex['id']}")["subtasks"]
    victim = subtask["taskmanager-id"]
    pid = local_cluster.taskmanager_pids(settings)[victim]
    assert set(settings.jvm_options.split()) <= set(command_line(pid)), "jvm_options reach the TaskManagers"
    workers = descendants(pid)
    assert workers, "the scoring TaskManager runs a Python worker"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(map(running, workers)), 15, "its Python worker to exit")
    return str(victim)


def run_through_a_taskmanager_kill(settings: Settings) -> list[str]:
    """Publish a model and 50,000 records, kill -9 the TaskManager scoring them a third of the way in,
    and return the record ids of every committed score once each record has one."""
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "onnx", "wine", "onnx", version="v1"
    )
    job = submit(settings)
    wait_for(lambda: "wine" in catalog.latest_stats(settings), 120, "the model to load")
    sender = threading.Thread(
        target=publish.publish_records, args=(settings, CSV), kwargs={"count": RECORDS, "id_prefix": "r"}
    )
    sender.start()
    wait_for(
        lambda: end_offset(settings, settings.scores_topic) >= RECORDS // 3, 180, "a third of the scores"
    )
    victim = kill_the_scoring_taskmanager(settings, job)
    sender.join()
    local_cluster.start_taskmanager(settings, victim)  # capacity back for the next test

    scores = committed_scores_until_every_record_has_one(settings, timeout_s=300)
    assert {s.model_version for s in scores} == {"v1"}, "the model kept serving without being republished"
    assert FlinkRest(settings.jobmanager).running_job() == job, "the same job recovered on its own"
    return [s.record_id for s in scores]


def test_a_killed_taskmanager_loses_no_record_and_no_model(cluster_settings: Settings) -> None:
    # big, slow micro-batches: when the TaskManager dies, up to 2,000 records sit in its micro-batch buffer,
    # which is not state (it is flushed before each checkpoint barrier): the source must re-read them
    settings = cluster_settings.replace(batch_max_records=2000, batch_max_delay_ms=1000)
    ids = run_through_a_taskmanager_kill(settings)
    assert set(ids) == {f"r-{i}" for i in range(RECORDS)}  # at least one result each (duplicates allowed)


def test_a_job_submitted_in_thread_mode_scores_pmml_with_jpmml_in_the_taskmanagers_jvm(
    cluster_settings: Settings,
) -> None:
    """The cluster's TaskManagers hold JPMML's jars (model/jpmml_jvm.py) whichever mode a job runs in."""
    settings = cluster_settings.replace(python_execution_mode="thread")
    submit(settings)
    tree = WINE_DIR / "winequalityDecisionTreeClassification.pmml"
    publish.publish_model_file(settings, tree, "tree", "wine", "pmml", version="t-1")
    publish.publish_records(settings, CSV, count=200, id_prefix="t")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 200, timeout_s=180)]
    assert sorted(s.record_id for s in scores) == sorted(f"t-{i}" for i in range(200))
    assert {s.model_version for s in scores} == {"t-1"} and all(s.label for s in scores)
    for pid in local_cluster.taskmanager_pids(settings).values():
        assert "pmml-evaluator-" in " ".join(command_line(pid)), "JPMML's jars on the class path"


def test_exactly_once_leaves_one_committed_result_per_record(cluster_settings: Settings) -> None:
    ids = run_through_a_taskmanager_kill(cluster_settings.replace(delivery="exactly-once"))
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates and len(ids) == RECORDS and set(ids) == {f"r-{i}" for i in range(RECORDS)}


def test_savepoint_stop_and_resume_at_parallelism_2_keeps_models_and_stats(
    cluster_settings: Settings,
) -> None:
    settings = cluster_settings
    data_types = ["wine-a", "wine-b", "wine-c", "wine-d"]
    for data_type in data_types:
        onnx = WINE_DIR / "wine_quality_logreg.onnx"
        publish.publish_model_file(settings, onnx, f"m-{data_type}", data_type, "onnx", version="v1")
    job = submit(settings)
    for data_type in data_types:
        publish.publish_records(
            settings, CSV, data_type=data_type, count=200, id_prefix=f"{data_type}-before"
        )
    read_topic(settings, settings.scores_topic, 800)
    wait_for(
        lambda: all(s.current.usage == 200 for s in catalog.latest_stats(settings).values()), 60, "stats"
    )
    savepoint = FlinkRest(settings.jobmanager).savepoint(
        job, (Path(settings.home) / "savepoints").as_uri(), stop=True
    )
    wait_for(lambda: FlinkRest(settings.jobmanager).running_job() is None, 60, "the job to stop")

    # while the job is down: a new model for one data type
    linear = WINE_DIR / "winequalityLinearRegression.pmml"
    publish.publish_model_file(settings, linear, "lr", "wine-a", "pmml", version="v2")
    submit(settings.replace(restore_from=savepoint, parallelism=2))

    def resumed_with_new_model() -> bool:
        stats = catalog.latest_stats(settings).get("wine-a")
        return stats is not None and stats.current.model.version == "v2"

    wait_for(resumed_with_new_model, 120, "the model published while down to serve")
    for data_type in data_types:
        publish.publish_records(settings, CSV, data_type=data_type, count=100, id_prefix=f"{data_type}-after")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 1200)]
    after = [s for s in scores if "-after-" in s.record_id]
    assert len({s.record_id for s in after}) == 400
    assert {(s.data_type, s.model_version) for s in after} == {("wine-a", "v2")} | {
        (t, "v1") for t in data_types[1:]
    }
    vertex = next(
        v
        for v in FlinkRest(settings.jobmanager).call(f"/jobs/{FlinkRest(settings.jobmanager).running_job()}")[
            "vertices"
        ]
        if "serve-models" in v["name"]
    )
    assert vertex["parallelism"] == 2

    def stats_continue() -> bool:
        latest = catalog.latest_stats(settings)
        restored = all(latest[t].current.usage == 300 for t in data_types[1:])
        swapped = latest["wine-a"].current.usage == 100 and latest["wine-a"].history[0].usage == 200
        return restored and swapped

    wait_for(stats_continue, 60, "stats restored from the savepoint and counting on")


def test_a_killed_taskmanager_during_a_ramp_keeps_the_policy_the_versions_and_the_routing(
    cluster_settings: Settings,
) -> None:
    settings = cluster_settings
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "onnx", "wine", "onnx", version="v1"
    )
    staged = model_descriptor(
        WINE_DIR / "winequalityLinearRegression.pmml", "lr", "wine", "pmml", version="v2"
    )
    staged.staged = True
    publish.publish_model(settings, staged)
    job = submit(settings)
    wait_for(lambda: loaded(settings) == ["v1", "v2"], 120, "both versions loaded")
    start = 1_700_000_000_000
    publish.publish_policy(settings, rollout.rollout_policy("wine", ramp="v2", over="100s", start_ts=start))
    wait_for(lambda: policy_version(settings) > 0, 60, "the ramp to apply")
    records = [(f"k-{i}", start + 50_000) for i in range(2000)]  # half way: about half to v2
    send(settings, records)
    first = read_topic(settings, settings.scores_topic, 2000)
    before = {s.record_id: s.model_version for s in map(decode_score, first)}
    rest = FlinkRest(settings.jobmanager)
    latest = (rest.latest_checkpoint(job) or (0,))[0]
    wait_for(lambda: (rest.latest_checkpoint(job) or (0,))[0] > latest, 60, "a checkpoint with the ramp")

    victim = kill_the_scoring_taskmanager(settings, job)
    local_cluster.start_taskmanager(settings, victim)
    send(settings, records)
    values = read_topic(settings, settings.scores_topic, 4000, timeout_s=240)
    after = [decode_score(v) for v in values[len(first) :]]
    assert len(after) >= 2000 and all(before[s.record_id] == s.model_version for s in after)
    assert 0.4 < Counter(before.values())["v2"] / 2000 < 0.6

    snapshot = catalog.latest_stats(settings)["wine"]
    assert [m.model.version for m in snapshot.versions] == ["v1", "v2"] and snapshot.policy.HasField("ramp")
    routed = Router(from_message(snapshot.policy)).route([r for r, _ in records], [t for _, t in records])
    assert routed is not None
    assert [before[r] for r, _ in records] == [("v1", "v2")[i] for i in routed.tolist()], "routing as planned"
