"""The job's consumer lag through the real broker and job: the whole backlog before the job runs, zero
once it has scored the records and checkpointed; from `modelstream lag` and the stats service's /lag."""

from __future__ import annotations

import json

import pytest

from client import cli, lag, publish
from client.stats_service import StatsStore, answer
from modelstream.settings import Settings
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for

pytestmark = pytest.mark.e2e


def test_lag_is_the_backlog_before_the_job_and_zero_after_its_checkpoint(
    stack_settings: Settings,
    start_job: JobStarter,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = stack_settings.replace(checkpoint_interval_ms=1000)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    publish.publish_records(settings, WINE_DIR / "winequality_red.csv", count=300, id_prefix="early")
    [before] = lag.consumer_lag(settings)
    assert (before["topic"], before["end"], before["committed"], before["lag"]) == (
        settings.data_topic, 300, None, 300
    )  # fmt: skip
    assert cli.main(["lag", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lag"] == 300

    job = start_job(settings)
    publish.publish_model_file(settings, WINE_DIR / "wine_quality_logreg.onnx", "o", "wine", "onnx")
    read_topic(settings, settings.scores_topic, 300, job=job)
    wait_for(lambda: lag.consumer_lag(settings)[0]["lag"] == 0, 60, "a checkpoint to commit the offsets")
    status, body = answer(StatsStore(settings), "/lag")
    assert status == 200 and body["lag"] == 0 and body["partitions"][0]["committed"] == 300
    assert cli.main(["lag"]) == 0
    assert "0 records behind" in capsys.readouterr().out
