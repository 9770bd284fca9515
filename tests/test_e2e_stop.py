"""Stop means stop: SIGTERM or SIGINT to `modelstream job run`'s main process ends everything it started
within the bound, frees the REST port, and a new run resumes from the last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

import pytest

from client import job_control, local_kafka, publish
from client.flink_rest import FlinkRest
from client.messages import decode_score
from modelstream.settings import PROJECT_ROOT, Settings
from tests.conftest import WINE_DIR, free_port, read_topic, wait_for
from tests.processes import command_line, descendants, running
from tests.test_cli import MODELSTREAM

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"


def _job_run(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*MODELSTREAM, "job", "run"],
            env={**os.environ, **settings.to_env()},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _job_status(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODELSTREAM, "job", "status", "--json"],
        env={**os.environ, **settings.to_env()},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_job_run_stops_everything_and_a_restart_resumes(
    stack_settings: Settings, tmp_path: Path, sig: signal.Signals
) -> None:
    settings = stack_settings.replace(checkpoint_interval_ms=1000)
    cli = _job_run(settings, tmp_path / "run-1.log")
    restarted: subprocess.Popen[bytes] | None = None
    try:
        publish.publish_model_file(
            settings, WINE_DIR / "wine_quality_logreg.onnx", "o", "wine", "onnx", version="v1"
        )
        publish.publish_records(settings, CSV, count=100, id_prefix="before")
        read_topic(settings, settings.scores_topic, 100, job=cli)
        rest = FlinkRest(settings.jobmanager)
        job_id = rest.wait_for_job()
        first = (rest.latest_checkpoint(job_id) or (0,))[0]
        wait_for(
            lambda: (rest.latest_checkpoint(job_id) or (0,))[0] > first, 60, "a checkpoint after the scores"
        )
        started = descendants(cli.pid)
        assert started, "the job runs in processes of its own (its JVM, its Python worker)"
        gateways = [c for c in map(command_line, started) if any("PythonGatewayServer" in a for a in c)]
        assert len(gateways) == 1 and set(settings.jvm_options.split()) <= set(gateways[0]), gateways
        status = _job_status(settings)
        assert status.returncode == 0, status.stderr
        state = json.loads(status.stdout)
        assert (state["job_id"], state["state"], state["restarts"]) == (job_id, "RUNNING", 0)
        assert state["checkpoints"]["last"]["id"] > first and state["checkpoints"]["restored"] is None

        asked = time.monotonic()
        os.kill(cli.pid, sig)  # the main process only, as a supervisor does
        assert cli.wait(job_control.STOP_BOUND_S + 5) == 0, "a requested stop exits 0"
        wait_for(lambda: not any(map(running, started)), 5, "every process the job started to end")
        assert time.monotonic() - asked <= job_control.STOP_BOUND_S + 5
        assert _port_free(settings.rest_port), "the REST port is free for the next start"
        assert _job_status(settings).returncode == 3, "no REST API answers"
        events = (tmp_path / "run-1.log").read_text()
        for line in ("job running", "model loaded", "stop requested", "job stopped"):
            assert line in events, events

        publish.publish_records(settings, CSV, count=50, id_prefix="while-down")
        checkpoint = job_control.newest_checkpoint(settings, job_id)
        assert checkpoint is not None, "the cancelled job kept its last checkpoint"
        restarted = _job_run(settings, tmp_path / "run-2.log")  # as a supervisor restarts it: no flags
        scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 150, job=restarted)]
        wait_for(
            lambda: "checkpoint restored" in (tmp_path / "run-2.log").read_text(), 30, "the restore logged"
        )
        assert f"/{job_id}/chk-" in (tmp_path / "run-2.log").read_text(), "resumed from the stopped run"
        down = [s for s in scores if s.record_id.startswith("while-down-")]
        assert sorted(s.record_id for s in down) == sorted(f"while-down-{i}" for i in range(50))
        assert {s.model_version for s in down} == {"v1"}, "the model came back from the checkpoint"
    finally:
        for process in (cli, restarted):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(job_control.STOP_BOUND_S + 10)


def test_a_signal_to_stats_serve_stops_it_and_readyz_says_when_it_has_read_the_topic(
    stack_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    with (tmp_path / "stats.log").open("ab") as out:
        service = subprocess.Popen(
            [*MODELSTREAM, "stats", "serve", "--port", str(port)],
            env={**os.environ, **stack_settings.to_env()},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _status(f"http://127.0.0.1:{port}/readyz") == 200, 60, "/readyz to answer 200")
        assert _status(f"http://127.0.0.1:{port}/healthz") == 200
        service.send_signal(signal.SIGTERM)
        assert service.wait(10) == 0, "a requested stop exits 0"
        assert _port_free(port)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _logged(log: Path, text: str) -> bool:
    return text in log.read_text()


def _none_running(pids: list[int]) -> bool:
    return not any(map(running, pids))


def _kafka_foreground(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [*MODELSTREAM, "kafka", "start", "--foreground"],
            env={**os.environ, **settings.to_env()},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_kafka_start_in_the_foreground_stops_the_broker_on_a_signal_and_fails_when_it_dies(
    tmp_path: Path,
) -> None:
    port, controller = free_port(), free_port()
    settings = Settings(
        bootstrap=f"127.0.0.1:{port}", kafka_port=port, kafka_controller_port=controller, home=str(tmp_path)
    )
    logs = {sig: tmp_path / f"kafka-{sig.name}.log" for sig in (signal.SIGTERM, signal.SIGKILL)}
    for sig, log in logs.items():
        broker = _kafka_foreground(settings, log)
        try:
            wait_for(partial(_logged, log, "kafka running"), 90, "the broker to start")
            started = descendants(broker.pid)
            assert started and not _port_free(port)
            if sig == signal.SIGTERM:
                broker.send_signal(sig)  # the main process only
                assert broker.wait(job_control.STOP_BOUND_S + 5) == 0, "a requested stop exits 0"
            else:
                os.kill(local_kafka.running_pid(settings) or 0, sig)  # the broker dies on its own
                assert broker.wait(10) == 1, "a broker that died is a failure"
            wait_for(partial(_none_running, started), 5, "the broker to end")
            assert _port_free(port)
        finally:
            if broker.poll() is None:
                broker.send_signal(signal.SIGTERM)
                broker.wait(job_control.STOP_BOUND_S + 5)
    assert _logged(logs[signal.SIGTERM], "stop requested")
    assert _logged(logs[signal.SIGKILL], "the broker exited on its own")
