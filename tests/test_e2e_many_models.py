"""Many data types, each with a model of its own, through the real broker and the real job: every record is
scored by its own data type's model while at most a tenth of the models are live, the job's Python worker
keeps its memory, and models are evicted and built again from keyed state.

MODELSTREAM_MANY_MODELS data types (default 2,000, so the suite stays fast) and
MODELSTREAM_MANY_MODELS_LIVE live models (default a tenth); the issue's run:
    MODELSTREAM_MANY_MODELS=10000 MODELSTREAM_MANY_MODELS_LIVE=500 pytest -m e2e tests/test_e2e_many_models.py
"""

from __future__ import annotations

import os
import time

import pytest

from client import catalog, publish, topics
from client.flink_rest import FlinkRest
from client.messages import decode_dead_letter, decode_score
from modelstream.records import read_wine_csv, wine_record_from_row
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, ScoreResult
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for
from tests.onnx_builders import wine_logistic, wine_logistic_scores
from tests.processes import MemorySampler, memory_kib, python_workers

pytestmark = pytest.mark.e2e
D = ModelDescriptor
MiB = 1024 * 1024
N = int(os.environ.get("MODELSTREAM_MANY_MODELS", "2000"))
LIVE = int(os.environ.get("MODELSTREAM_MANY_MODELS_LIVE", max(N // 10, 1)))  # max_live_models
RECORDS_EACH = 2
ROWS = read_wine_csv(str(WINE_DIR / "winequality_red.csv"))
# What the Python worker's resident memory may grow by from the moment LIVE models are live and scoring
# until every one of the N data types has been scored: the live models stay LIVE, so what may grow is
# a little per data type (the worker's sets, PyFlink's state cache) and the allocator's slack. Without
# the bound every model stays: about 120 KiB resident per model measured in-process (benchmarks/
# many_models.py), 750 kB per model in the job (issue 20), (N - LIVE) * 120 KiB = 211 MiB for N = 2,000.
MEMORY_GROWTH_BOUND = 64 * MiB + N * 16 * 1024  # 95 MiB for N = 2,000; 220 MiB for 10,000
TIMEOUT_S = 180 + N * 0.1


def data_type(index: int) -> str:
    return f"dt-{index}"


def descriptor(index: int) -> ModelDescriptor:
    """Data type ``index``'s own model: a logistic regression with weights of its own (about 250 bytes)."""
    return D(
        name=f"m-{index}",
        dataType=data_type(index),
        modeltype=D.ONNX,
        version=f"v{index}",
        data=wine_logistic(index),
    )


def publish_models(settings: Settings, indices: range) -> None:
    producer = topics.producer(settings)
    for index in indices:
        publish.produce(
            producer, settings.models_topic, descriptor(index).SerializeToString(), data_type(index).encode()
        )
    assert producer.flush(60) == 0


def publish_records(settings: Settings, indices: range, rounds: int, prefix: str) -> int:
    """``rounds`` records per data type, round robin over them (each record names its data type); record
    ``PREFIX-INDEX-J`` carries the wine CSV's row J. How many were sent."""
    producer = topics.producer(settings)
    sent = 0
    for j in range(rounds):
        for index in indices:
            record_id = f"{prefix}-{index}-{j}"
            record = wine_record_from_row(ROWS[j], data_type(index), int(time.time() * 1000), record_id)
            publish.produce(producer, settings.data_topic, record.SerializeToString())
            sent += 1
    assert producer.flush(60) == 0
    return sent


def check_scores(values: list[bytes], prefix: str, indices: range, rounds: int) -> None:
    """Every record scored once, by its own data type's model, with that model's score."""
    scored: dict[str, ScoreResult] = {}
    for score in map(decode_score, values):
        if score.record_id.startswith(prefix + "-"):
            assert score.record_id not in scored, f"{score.record_id} scored twice"
            scored[score.record_id] = score
    expected = {f"{prefix}-{i}-{j}" for i in indices for j in range(rounds)}
    assert set(scored) == expected, f"{len(expected - set(scored))} records not scored"
    wanted = {i: wine_logistic_scores(i, ROWS[:rounds]) for i in indices}
    for record_id, score in scored.items():
        index, j = (int(part) for part in record_id.rsplit("-", 2)[1:])
        assert (score.data_type, score.model_name, score.model_version) == (
            data_type(index),
            f"m-{index}",
            f"v{index}",
        ), record_id
        assert score.value == pytest.approx(float(wanted[index][j]), abs=1e-5), record_id


@pytest.mark.timeout(int(600 + N * 0.5))
def test_thousands_of_data_types_each_scored_by_its_own_model_in_bounded_memory(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(
        max_live_models=LIVE,
        # the records of all N data types come within seconds: with the default busy window every model
        # would be busy and the bound would give way (docs/many-models.md); here it holds
        live_model_idle_ms=0,
        per_data_type_metrics=False,  # thousands of metric groups are the known cost this avoids
    )
    job = start_job(settings)
    live, rest = range(LIVE), range(LIVE, N)

    # LIVE data types with their models, scoring: the worker's memory with a full set of live models
    publish_models(settings, live)
    wait_for(lambda: len(catalog.latest_stats(settings)) >= LIVE, TIMEOUT_S, f"{LIVE} models loaded")
    warm = publish_records(settings, live, 1, "warm")
    read_topic(settings, settings.scores_topic, warm, timeout_s=TIMEOUT_S, job=job)
    workers = python_workers(job)
    before = {pid: memory_kib(pid)["VmRSS"] for pid in workers}
    sampler = MemorySampler(workers)
    try:
        # the other data types' models (each evicts an idle one), then records of every data type
        publish_models(settings, rest)
        wait_for(lambda: len(catalog.latest_stats(settings)) >= N, TIMEOUT_S, f"all {N} models loaded")
        sent = publish_records(settings, range(N), RECORDS_EACH, "r")
        values = read_topic(settings, settings.scores_topic, warm + sent, timeout_s=TIMEOUT_S, job=job)
    finally:
        peak = sampler.stop()
    assert job.poll() is None, "the job exited"

    check_scores(values, "r", range(N), RECORDS_EACH)
    check_scores(values, "warm", live, 1)
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 0)]
    assert not letters, [(DeadLetter.Reason.Name(d.reason), d.message) for d in letters[:5]]

    for pid, kib in peak.items():
        grown = (kib - before[pid]) * 1024
        assert grown < MEMORY_GROWTH_BOUND, (
            f"worker {pid}: resident memory {before[pid] // 1024} MiB -> peak {kib // 1024} MiB with "
            f"{LIVE} live models of {N}, more than {MEMORY_GROWTH_BOUND // MiB} MiB growth"
        )

    # evicted and built again: the stats say so per model, the job's metrics for the worker
    warm_types = {data_type(i) for i in live}

    def cold_loaded() -> int:
        """How many data types' models were built again from state, once their stats count every record
        (-1 before)."""
        latest = catalog.latest_stats(settings)
        usage = {name: RECORDS_EACH + (1 if name in warm_types else 0) for name in map(data_type, range(N))}
        done = [s for s in latest.values() if s.current.usage == usage.get(s.data_type)]
        if len(done) < N:
            return -1
        assert all(s.current.memory_bytes > 0 and s.current.load_ns > 0 for s in done)
        return sum(s.current.cold_loads >= 1 for s in done)

    wait_for(lambda: cold_loaded() >= N - LIVE, 120, f"at least {N - LIVE} models built again from state")

    flink = FlinkRest(settings.jobmanager)
    job_id = flink.wait_for_job()

    def metric(name: str) -> float:
        return flink.operator_metric(job_id, "serve-models", name) or 0.0

    wait_for(lambda: metric("live_model_evictions") >= N - LIVE, 60, "the evictions in the job's metrics")
    assert 0 < metric("live_models") <= LIVE
    assert metric("live_model_misses") >= N - LIVE and metric("live_model_bytes") > 0
    assert metric("live_models_over_bound") == 0
