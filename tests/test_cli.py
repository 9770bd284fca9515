"""The `modelstream` command through the real broker and job: publish, read scores as JSON, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client.cli import build_parser
from client.stats_service import StatsStore, answer
from modelstream.settings import PROJECT_ROOT, Settings
from tests.conftest import WINE_DIR, JobStarter, read_topic

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


def test_help_lists_every_subcommand_and_setting() -> None:
    text = build_parser().format_help()
    for word in (
        "kafka",
        "job",
        "publish-model",
        "publish-data",
        "scores",
        "dead-letters",
        "demo",
        "--bootstrap",
        "MODELSTREAM_",
    ):
        assert word in text


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


@pytest.mark.e2e
def test_demo_streams_scores_and_swaps_models_by_itself(tmp_path: Path) -> None:
    port = 19192
    settings = Settings(
        bootstrap=f"127.0.0.1:{port}",
        kafka_port=port,
        kafka_controller_port=port + 1,
        home=str(tmp_path),
        checkpoint_interval_ms=2000,
    )
    env = {**os.environ, **settings.to_env()}
    done = subprocess.run(
        [
            *MODELSTREAM,
            "demo",
            "--duration",
            "75",
            "--swap-every",
            "15",
            "--print-every",
            "200",
            "--rate",
            "300",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    swaps = [line for line in out.splitlines() if line.startswith("=== swap")]
    assert len([line for line in swaps if "serves wine " in line]) >= 2, out
    assert any("loans-onnx v1 serves loans " in line for line in swaps), "JSON loan records beside wine"
    assert any("scores=" in line for line in out.splitlines()), out
    assert (
        "kafka"
        not in subprocess.run(
            ["pgrep", "-af", f"kafka.Kafka {tmp_path}"], capture_output=True, text=True
        ).stdout
    ), "the demo stops the broker it started"


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
