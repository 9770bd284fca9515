"""The `modelstream` command through the real broker and job: publish, read scores as JSON, demo."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from client import job_control, local_kafka
from client.cli import build_parser
from client.stats_service import StatsStore, answer
from modelstream.settings import PROJECT_ROOT, Settings
from tests.conftest import WINE_DIR, JobStarter, free_port, read_topic, wait_for
from tests.processes import descendants, running

MODELSTREAM = [sys.executable, "-m", "client.cli"]


def run_cli(settings: Settings, *args: str, timeout: float = 120) -> str:
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run(
        [*MODELSTREAM, *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout


def test_help_lists_every_subcommand_and_points_at_the_settings() -> None:
    text = build_parser().format_help()
    for word in ("kafka", "job", "publish-model", "publish-data", "scores", "dead-letters", "demo"):
        assert f"\n    {word} " in text
    assert "`modelstream settings`" in text and "MODELSTREAM_" in text


@pytest.mark.e2e
def test_publish_and_read_scores_as_json(stack_settings: Settings, start_job: JobStarter) -> None:
    settings = stack_settings
    job = start_job(settings)
    run_cli(
        settings,
        "publish-model",
        str(WINE_DIR / "winequalityLinearRegression.pmml"),
        "--name",
        "lr",
        "--version",
        "3",
    )
    run_cli(
        settings, "publish-data", str(WINE_DIR / "winequality_red.csv"), "--count", "20", "--id-prefix", "cli"
    )
    read_topic(settings, settings.scores_topic, 20, job=job)
    lines = run_cli(settings, "scores", "--json", "--limit", "20").splitlines()
    scores = [json.loads(line) for line in lines]
    assert sorted(s["record_id"] for s in scores) == sorted(f"cli-{i}" for i in range(20))
    assert all(s["model_name"] == "lr" and s["model_version"] == "3" and 3 < s["value"] < 8 for s in scores)
    assert all(isinstance(s["record_ts"], int) and s["data_type"] == "wine" for s in scores)


def _start_demo(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    args = ["demo", "--swap-every", "15", "--print-every", "200", "--rate", "300"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*MODELSTREAM, *args],
            env={**os.environ, **settings.to_env()},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals, log: Path) -> None:
    """Signal the main process only, as a supervisor does: everything it started ends in the bound."""
    started = descendants(process.pid)
    assert started, "the demo runs the broker and the job in processes of their own"
    asked = time.monotonic()
    process.send_signal(sig)
    assert process.wait(2 * job_control.STOP_BOUND_S) == 0, log.read_text()[-3000:]
    wait_for(lambda: not any(map(running, started)), 5, "every process the demo started to end")
    assert time.monotonic() - asked <= 2 * job_control.STOP_BOUND_S


@pytest.mark.e2e
def test_demo_swaps_models_by_itself_stops_on_a_signal_and_resumes(tmp_path: Path) -> None:
    port = 19192
    settings = Settings(
        bootstrap=f"127.0.0.1:{port}",
        kafka_port=port,
        kafka_controller_port=port + 1,
        home=str(tmp_path),
        checkpoint_interval_ms=2000,
        jobmanager=f"127.0.0.1:{free_port()}",
        prometheus_ports="",
        stats_port=free_port(),
    )
    first, second = tmp_path / "demo-1.log", tmp_path / "demo-2.log"
    demos = [_start_demo(settings, first)]
    try:

        def swaps(log: Path) -> list[str]:
            return [line for line in log.read_text().splitlines() if line.startswith("=== swap")]

        wait_for(lambda: len([s for s in swaps(first) if "serves wine " in s]) >= 2, 180, "two wine swaps")
        wait_for(lambda: any("loans-onnx v1 serves loans " in s for s in swaps(first)), 30, "loan scores")
        assert "scores=" in first.read_text()
        console = re.search(r"^console: (http://\S+/)", first.read_text(), re.MULTILINE)
        assert console and console.group(1) == f"http://127.0.0.1:{settings.stats_port}/"
        with urllib.request.urlopen(console.group(1) + "models", timeout=5) as response:
            assert {"wine", "loans"} <= {m["data_type"] for m in json.load(response)["models"]}
        wait_for(lambda: job_control.newest_checkpoint(settings) is not None, 30, "a checkpoint")
        _stop(demos[0], signal.SIGTERM, first)
        assert not local_kafka.running_pid(settings), "the demo stops the broker it started"

        demos.append(_start_demo(settings, second))
        wait_for(lambda: "checkpoint restored" in second.read_text(), 180, "the restart to resume")
        wait_for(lambda: bool(swaps(second)), 60, "scores after the restart")
        _stop(demos[1], signal.SIGINT, second)
    finally:
        for demo in demos:
            if demo.poll() is None:
                demo.send_signal(signal.SIGTERM)
                demo.wait(2 * job_control.STOP_BOUND_S)


def test_json_output_keeps_64_bit_integers_as_numbers_at_every_depth() -> None:
    from client.messages import to_dict
    from protobufs.modelstream_pb2 import StatsSnapshot

    snapshot = StatsSnapshot(data_type="wine", published_at=7)
    snapshot.current.usage = 500
    snapshot.current.time_buckets[3] = 2
    snapshot.history.add().total_ns = 9
    data = to_dict(snapshot)
    assert (data["published_at"], data["current"]["usage"], data["history"][0]["total_ns"]) == (7, 500, 9)
    assert data["current"]["time_buckets"] == {"3": 2}


def test_readyz_answers_503_until_the_stats_topic_has_been_read() -> None:
    status, body = answer(StatsStore(Settings()), "/readyz")  # not started: nothing read yet
    assert status == 503 and body["ready"] is False


def test_a_kraft_cluster_id_never_looks_like_an_option() -> None:
    from client.local_kafka import _cluster_id

    ids = [_cluster_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids) and all(len(i) == 22 for i in ids)
