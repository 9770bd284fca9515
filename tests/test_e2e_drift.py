"""Drift and feedback through the real broker and job: unchanged wine records raise no drift, alcohol
shifted by +0.5 sigma flags DRIFT on alcohol alone within 2 windows (in /stats and on the drift topic),
live accuracy from feedback equals the accuracy computed offline from the same results, a best-performer
policy ends up serving the better version, and a restart from a checkpoint keeps profiles, windows and
feedback figures.

Records are replayed in a fixed shuffled order of the tutorial's CSV: its file order is not exchangeable
(windows of 1,000 consecutive rows differ from the whole file in density and fixed acidity enough to WARN,
though never to DRIFT; docs/drift.md)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from client import catalog, job_control, publish, topics
from client.encode import read_wine_rows
from client.messages import decode_score
from modelstream.records import WINE, wine_record_from_row
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DriftReport, ReferenceProfile, ScoreResult
from tests.conftest import WINE_DIR, JobStarter, read_topic, stats_service_running, wait_for
from tests.pmml_builders import with_model_stats
from tests.test_cli import run_cli

pytestmark = pytest.mark.e2e
WINE_CSV = WINE_DIR / "winequality_red.csv"
ROWS = read_wine_rows(WINE_CSV)
ORDER = np.random.default_rng(16).permutation(len(ROWS))
ALCOHOL = WINE.features.index("alcohol")
SIGMA = float(np.std([row[ALCOHOL] for row in ROWS]))
WINDOW = 1000


def row(n: int, shift: float = 0.0) -> list[float]:
    values = list(ROWS[int(ORDER[n % len(ROWS)])])
    values[ALCOHOL] += shift * SIGMA
    return values


def quality(n: int) -> str:
    return str(int(ROWS[int(ORDER[n % len(ROWS)])][11]))


def send(settings: Settings, start: int, count: int, shift: float = 0.0) -> None:
    """WineRecords ``d-<n>`` for n in [start, start + count), alcohol shifted by ``shift`` sigma."""
    producer = topics.producer(settings)
    for n in range(start, start + count):
        record = wine_record_from_row(row(n, shift), "wine", 1_000 + n, f"d-{n}")
        producer.produce(settings.data_topic, value=record.SerializeToString())
        if n % 5000 == 4999:
            producer.flush(30)
    assert producer.flush(60) == 0


def stats(base: str) -> dict[str, Any]:
    """/stats/wine ({"drift": {}} while the service has not read the stats topic yet)."""
    try:
        with urllib.request.urlopen(f"{base}/stats/wine", timeout=10) as response:
            detail: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        return {"drift": {}}
    return detail


def drift_reports(settings: Settings) -> list[DriftReport]:
    return [DriftReport.FromString(m.value() or b"") for m in topics.consume(settings, settings.drift_topic)]


def windows(settings: Settings) -> int:
    snapshot = catalog.latest_stats(settings).get("wine")
    return snapshot.drift.windows if snapshot is not None else 0


def served(settings: Settings, expected: int, topic: str = "") -> list[ScoreResult]:
    return [decode_score(v) for v in read_topic(settings, topic or settings.scores_topic, expected)]


def test_unchanged_records_raise_no_drift_and_shifted_alcohol_drifts_within_two_windows(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(drift_window=WINDOW)
    start_job(settings)
    out = run_cli(settings, "publish-model", str(WINE_DIR / "wine_quality_logreg.onnx"), "--version", "v1",
                  "--reference", str(WINE_CSV))  # fmt: skip
    assert "reference profile of 1599 records (11 features)" in out
    send(settings, 0, 20 * WINDOW)
    wait_for(lambda: windows(settings) >= 20, 180, "20 drift windows")
    with stats_service_running(settings) as base:
        wait_for(lambda: stats(base)["drift"].get("windows", 0) >= 20, 60, "the stats service")
        drift = stats(base)["drift"]
        assert drift["status"] == "OK" and set(drift["psi"]) == set(WINE.features), drift
        assert not drift_reports(settings)

        send(settings, 20 * WINDOW, 2 * WINDOW, shift=0.5)
        wait_for(lambda: windows(settings) >= 22, 120, "2 more windows")
        wait_for(lambda: stats(base)["drift"].get("status") == "DRIFT", 30, "DRIFT in /stats/wine")
        drift = stats(base)["drift"]
        assert drift["flagged"] == ["alcohol"] and drift["psi"]["alcohol"] >= 0.25, drift
        assert all(value < 0.1 for name, value in drift["psi"].items() if name != "alcohol"), drift
    reports = drift_reports(settings)
    assert [(r.status, r.data_type, r.model_version, list(r.flagged)) for r in reports] == [
        ("DRIFT", "wine", "v1", ["alcohol"])
    ]
    assert "DRIFT" in run_cli(settings, "drift", "wine")


def test_feedback_accuracy_equals_offline_accuracy_and_survives_a_restart(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings.replace(checkpoint_interval_ms=1000, drift_window=WINDOW)
    job = start_job(settings)
    run_cli(settings, "publish-model", str(WINE_DIR / "wine_quality_logreg.onnx"), "--version", "v1",
            "--reference", str(WINE_CSV))  # fmt: skip
    send(settings, 0, 5000)
    results = served(settings, 5000)
    assert len(results) == 5000
    truth = {f"d-{n}": quality(n) for n in range(5000)}
    offline = sum(r.label == truth[r.record_id] for r in results) / len(results)
    feedback = [{"dataType": "wine", "record_id": rid, "label": label} for rid, label in truth.items()]
    feedback.append({"dataType": "wine", "record_id": "never-scored", "label": "5"})
    publish.publish_feedback(settings, feedback)

    def current() -> Any:
        snapshot = catalog.latest_stats(settings).get("wine")
        return None if snapshot is None else snapshot

    wait_for(lambda: (s := current()) is not None and s.current.quality.labelled == 5000, 120, "feedback")
    snapshot = current()
    assert snapshot.current.quality.correct / 5000 == pytest.approx(offline, abs=1e-12)
    assert snapshot.feedback_unmatched == 1
    with stats_service_running(settings) as base:
        wait_for(lambda: stats(base).get("current", {}).get("labelled") == 5000, 60, "the stats service")
        assert stats(base)["current"]["accuracy"] == pytest.approx(offline, abs=1e-12)
    before_windows = snapshot.drift.windows

    # a restart from the checkpoint: profile, windows and feedback figures are kept
    checkpoint = job_control.newest_checkpoint(settings)
    wait_for(lambda: job_control.newest_checkpoint(settings) != checkpoint, 30, "a checkpoint")
    job_control.stop_embedded(settings, job)
    resumed = job_control.newest_checkpoint(settings)
    assert resumed is not None
    start_job(settings.replace(restore_from=resumed.as_uri()))
    send(settings, 5000, 1000)
    wait_for(lambda: windows(settings) > before_windows, 120, "the next window after the restart")
    snapshot = current()
    assert snapshot.current.quality.labelled == 5000 and snapshot.feedback_unmatched == 1
    assert snapshot.drift.windows == before_windows + 1 and snapshot.drift.status == "OK"
    assert snapshot.drift.profile_source == 0  # the published reference, not a warm-up


def test_a_best_performer_policy_ends_up_serving_the_better_version(
    stack_settings: Settings, start_job: JobStarter, tmp_path: Path
) -> None:
    """...and v2, a PMML model with ModelStats published without a reference, is profiled from them."""
    settings = stack_settings
    start_job(settings)
    forest = tmp_path / "forest.pmml"
    rows = np.asarray(ROWS, dtype=np.float64)[:, :11]
    names = [name.replace("_", " ") for name in WINE.features]  # as the PMML file names its fields
    forest.write_bytes(
        with_model_stats((WINE_DIR / "winequalityRandonForrestClassification.pmml").read_bytes(), rows, names)
    )
    run_cli(settings, "publish-model", str(WINE_DIR / "wine_quality_logreg.onnx"), "--version", "v1")
    run_cli(settings, "publish-model", str(forest), "--version", "v2", "--stage")
    wait_for(
        lambda: [m.model.version for m in catalog.latest_stats(settings)["wine"].versions] == ["v1", "v2"]
        if "wine" in catalog.latest_stats(settings) else False,
        120, "both versions loaded",
    )  # fmt: skip
    print(run_cli(settings, "best-of", "wine", "v1,v2", "--min-labelled", "500"))
    wait_for(lambda: catalog.latest_stats(settings)["wine"].policy.version > 0, 60, "the policy")
    send(settings, 0, 2000)
    first = served(settings, 2000)
    shadow = served(settings, 2000, settings.shadow_scores_topic)
    truth = {f"d-{n}": quality(n) for n in range(2000)}
    accuracy = {
        version: sum(r.label == truth[r.record_id] for r in results) / len(results)
        for version, results in (("v1", first), ("v2", shadow))
    }
    better = max(accuracy, key=lambda v: accuracy[v])
    assert {r.model_version for r in first} == {"v1"} and accuracy["v1"] != accuracy["v2"]
    publish.publish_feedback(
        settings, [{"dataType": "wine", "record_id": k, "label": v} for k, v in truth.items()]
    )
    wait_for(
        lambda: catalog.latest_stats(settings)["wine"].current.model.version == better, 120, "the switch"
    )
    send(settings, 2000, 500)
    after = served(settings, 2500)[2000:]
    assert {r.model_version for r in after} == {better}, accuracy
    v2 = next(m for m in catalog.latest_stats(settings)["wine"].versions if m.model.version == "v2")
    assert v2.drift.profile_source == ReferenceProfile.PMML_MODEL_STATS and v2.drift.windows >= 2
    assert v2.drift.status == "OK" and "alcohol" in v2.drift.psi, v2.drift
