"""Shared fixtures: a real Kafka broker for the session, a real embedded Flink job per test."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client import job_control, local_kafka, stats_service, topics
from modelstream.settings import PROJECT_ROOT, Settings
from modelstream.testing import CountingMetrics, ManualClock
from tests.processes import parent, running, start_ticks

WINE_DIR = PROJECT_ROOT / "data" / "wine"
KAFKA_PORT = 19092  # away from a developer's own broker on 9092


def free_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up), so that no client's outgoing
    connection is given it before the process it is for binds it (a job's REST API failed to start
    that way); above the ports the project and its benchmarks use (19092, 28081, 29092)."""
    for _ in range(200):
        port = random.randrange(20_000, 28_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 28000")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def metrics() -> CountingMetrics:
    return CountingMetrics()


MODELSTREAM_CLI = (sys.executable, "-m", "client.cli")
# waits until its parent (this test run) has gone, then runs its arguments as a command
_STOP_WHEN_ORPHANED = """
import os, subprocess, sys, time
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(1)
subprocess.run(sys.argv[1:], check=False)
"""


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A single-node KRaft broker on 127.0.0.1 for the whole session."""
    home = tmp_path_factory.mktemp("kafka-home")
    settings = Settings(
        bootstrap=f"127.0.0.1:{KAFKA_PORT}",
        kafka_port=KAFKA_PORT,
        kafka_controller_port=KAFKA_PORT + 1,
        home=str(home),
    )
    local_kafka.start(settings)
    # the broker runs in a session of its own, so a test run killed outright would leave it behind: a
    # watchdog stops it when this process is gone
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _STOP_WHEN_ORPHANED, *MODELSTREAM_CLI, "kafka", "stop"],
        env={**os.environ, **settings.to_env()},
        cwd=PROJECT_ROOT,
    )
    yield settings
    watchdog.terminate()
    watchdog.wait(10)
    local_kafka.stop(settings)


def with_own_topics(settings: Settings, **changes: object) -> Settings:
    """``settings`` with topics and a consumer group no other test uses (created), and ``changes``."""
    run = uuid.uuid4().hex[:8]
    own = settings.replace(
        models_topic=f"models-{run}",
        data_topic=f"wine-{run}",
        scores_topic=f"scores-{run}",
        shadow_scores_topic=f"shadow-scores-{run}",
        stats_topic=f"stats-{run}",
        dead_letters_topic=f"dead-letters-{run}",
        drift_topic=f"drift-{run}",
        feedback_topic=f"feedback-{run}",
        group_id=f"modelstream-{run}",
        checkpoint_interval_ms=2000,
        stats_interval_ms=500,
        **changes,
    )
    topics.ensure_topics(own)
    return own


@pytest.fixture
def stack_settings(kafka: Settings, tmp_path: Path) -> Settings:
    """Settings with topics and a consumer group of this test's own, on the session broker."""
    return with_own_topics(kafka, home=str(tmp_path), jobmanager=f"127.0.0.1:{free_port()}")


JobStarter = Callable[[Settings], subprocess.Popen[bytes]]


@pytest.fixture
def start_job(tmp_path: Path) -> Iterator[JobStarter]:
    """Starts the real job (embedded mini-cluster) with given settings; stops it after the test."""
    started: list[tuple[Settings, subprocess.Popen[bytes]]] = []

    def start(settings: Settings) -> subprocess.Popen[bytes]:
        job = job_control.start_embedded(settings, log_path=tmp_path / f"job-{len(started)}.log")
        started.append((settings, job))
        return job

    yield start
    for settings, job in started:
        job_control.stop_embedded(settings, job)  # the job, its JVM and its Python workers


@contextlib.contextmanager
def stats_service_running(settings: Settings) -> Iterator[str]:
    """The stats service (and its console) on a free port in a thread of this process: its base URL."""
    server = stats_service.serve(settings, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        server.store.stop()  # type: ignore[attr-defined]


def read_topic(
    settings: Settings,
    topic: str,
    expected: int,
    timeout_s: float = 180.0,
    job: subprocess.Popen[bytes] | None = None,
) -> list[bytes]:
    """Values on ``topic`` from the beginning, once at least ``expected`` arrived (or the timeout passed),
    then a short quiet period to catch any extra ones."""
    deadline = time.monotonic() + timeout_s
    values: list[bytes] = []
    while True:
        values = [m.value() or b"" for m in topics.consume(settings, topic, idle_timeout_s=1.0)]
        if len(values) >= expected or time.monotonic() > deadline:
            break
        if job is not None and job.poll() is not None:
            raise AssertionError(f"the job exited with code {job.returncode}")
        time.sleep(1.0)
    return values


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)


# -- nothing outlives the test session -----------------------------------------------------------------

_BOUND_TO_PARENT = "py4j.GatewayServer --die-on-broken-pipe"
_MARKERS = (str(PROJECT_ROOT / ".venv"), str(PROJECT_ROOT / ".cache" / "jvm"))


def _project_processes_since(ticks: int) -> dict[int, str]:
    """Running processes of this checkout (its venv or its JVM jars on their command line) started at or
    after ``ticks`` (clock ticks since boot), except this one."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ours = any(m in command for m in _MARKERS) and start_ticks(proc.name) >= ticks
        except OSError:  # it ended meanwhile
            continue
        # the pypmml engine's JVM (py4j, --die-on-broken-pipe) ends with this process: it is not left
        bound_to_us = _BOUND_TO_PARENT in command and parent(int(proc.name)) == os.getpid()
        if ours and not bound_to_us and running(int(proc.name)):
            found[int(proc.name)] = command[:160]
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left a process of this checkout behind (and end it)."""
    since = start_ticks(os.getpid())
    deadline = time.monotonic() + 15
    while (left := _project_processes_since(since)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        listing = "\n".join(f"  {pid} {command}" for pid, command in left.items())
        print(f"\nprocesses left behind by the tests (now killed):\n{listing}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
