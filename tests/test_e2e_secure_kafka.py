"""The vertical slice over SASL_SSL: `modelstream kafka start --secure` (SCRAM users, its own CA), then the
job, the CLI, publishing and the stats service all through one client.properties file; a wrong password
is named within seconds, by the CLI and by the job, which does not start."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import catalog, local_kafka, publish
from client.messages import decode_score
from client.stats_service import StatsStore
from modelstream.settings import PROJECT_ROOT, Settings
from tests.conftest import MODELSTREAM_CLI, WINE_DIR, JobStarter, free_port, read_topic, wait_for
from tests.test_cli import run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def secure_kafka(tmp_path: Path) -> Iterator[Settings]:
    """A broker of this test's own with only a SASL_SSL listener, and settings that reach it."""
    port = free_port()
    settings = Settings(
        bootstrap=f"127.0.0.1:{port}", kafka_port=port, kafka_controller_port=free_port(),
        home=str(tmp_path), jobmanager=f"127.0.0.1:{free_port()}", prometheus_ports="",
        checkpoint_interval_ms=1000,
    )  # fmt: skip
    env = {**os.environ, **settings.to_env()}
    try:
        started = subprocess.run(
            [*MODELSTREAM_CLI, "kafka", "start", "--secure"], env=env, cwd=PROJECT_ROOT,
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        properties = started.stdout.strip().splitlines()[-1]  # the fixed contract: its path, last
        assert Path(properties).is_file() and oct(Path(properties).stat().st_mode)[-3:] == "600"
        yield settings.replace(kafka_properties=properties)
    finally:
        local_kafka.stop(settings)


def test_the_slice_works_over_sasl_ssl_and_a_wrong_password_is_named(
    secure_kafka: Settings, start_job: JobStarter, tmp_path: Path
) -> None:
    settings = secure_kafka
    plaintext = settings.replace(kafka_properties="")
    wrong = tmp_path / "wrong.properties"
    text = Path(settings.kafka_properties).read_text()
    wrong.write_text(text.replace('password="', 'password="x'))

    # the CLI: no file, or a wrong password: a clear refusal within seconds, no secret in it
    for name, given in (
        ("no properties", plaintext),
        ("wrong password", settings.replace(kafka_properties=str(wrong))),
    ):
        began = time.monotonic()
        done = subprocess.run(
            [*MODELSTREAM_CLI, "models"], env={**os.environ, **given.to_env()}, cwd=PROJECT_ROOT,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 3 and time.monotonic() - began < 10, (name, done.stderr)
        assert "Traceback" not in done.stderr and "password=" not in done.stderr
    assert "refused the credentials" in done.stderr and str(wrong) in done.stderr

    # the job with a wrong password does not start, and says why
    failed = start_job(settings.replace(kafka_properties=str(wrong)))
    assert failed.wait(60) == 2
    log = (tmp_path / "job-0.log").read_text()
    assert "refused the credentials" in log and Path(settings.kafka_properties).read_text() not in log

    # with the right file: models, records, scores, stats service and CLI readers
    job = start_job(settings)
    publish.publish_model_file(
        settings, WINE_DIR / "wine_quality_logreg.onnx", "o", "wine", "onnx", version="1"
    )
    publish.publish_records(settings, WINE_DIR / "winequality_red.csv", count=200, id_prefix="s")
    scores = [decode_score(v) for v in read_topic(settings, settings.scores_topic, 200, job=job)]
    assert len({s.record_id for s in scores}) == 200 and {s.model_version for s in scores} == {"1"}
    store = StatsStore(settings).start()
    try:
        wait_for(
            lambda: (s := store.get("wine")) is not None and s.current.usage == 200, 60, "stats over TLS"
        )
    finally:
        store.stop()
    assert catalog.latest_stats(settings)["wine"].current.model.version == "1"
    assert len(run_cli(settings, "scores", "--json").splitlines()) == 200
    wait_for(lambda: "0 records behind" in run_cli(settings, "lag"), 60, "the job's offsets committed")
    password = (
        next(line for line in text.splitlines() if "password=" in line).split('password="')[1].split('"')[0]
    )
    assert password not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
