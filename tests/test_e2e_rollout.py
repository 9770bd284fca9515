"""Rollout policies through the real broker and job: a canary that routes the same records the same way
after a restart, a bad policy dead-lettered, a rollback within a second with no model rebuilt, a ramp
over record time, shadows paired with served results."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from client import catalog, job_control, topics
from client.encode import read_wine_rows
from client.messages import decode_dead_letter, decode_score
from modelstream.records import wine_record_from_row
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ScoreResult
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for
from tests.test_cli import run_cli

pytestmark = pytest.mark.e2e
ROWS = read_wine_rows(WINE_DIR / "winequality_red.csv")


def send(settings: Settings, records: list[tuple[str, int]]) -> None:
    """WineRecords with these (id, ts), on the data topic."""
    producer = topics.producer(settings)
    for n, (record_id, ts) in enumerate(records):
        record = wine_record_from_row(ROWS[n % len(ROWS)], "wine", ts, record_id)
        producer.produce(settings.data_topic, value=record.SerializeToString())
        if n % 5000 == 4999:
            producer.flush(30)
    assert producer.flush(60) == 0


def publish_versions(settings: Settings, *staged: tuple[str, str]) -> None:
    """v1 (ONNX) serving, then each (version, file) staged, as a data scientist does with the CLI."""
    run_cli(settings, "publish-model", str(WINE_DIR / "wine_quality_logreg.onnx"), "--version", "v1")
    for version, file in staged:
        run_cli(settings, "publish-model", str(WINE_DIR / file), "--version", version, "--stage")
    names = ["v1", *(v for v, _ in staged)]
    wait_for(lambda: loaded(settings) == names, 120, f"versions {names} loaded")


def loaded(settings: Settings) -> list[str]:
    snapshot = catalog.latest_stats(settings).get("wine")
    return [m.model.version for m in snapshot.versions] if snapshot is not None else []


def policy_version(settings: Settings) -> int:
    snapshot = catalog.latest_stats(settings).get("wine")
    return snapshot.policy.version if snapshot is not None else 0


def rollout(settings: Settings, *flags: str) -> int:
    """Run `modelstream rollout wine FLAGS` and wait until the job reports the policy applied."""
    before = policy_version(settings)
    print(run_cli(settings, "rollout", "wine", *flags))
    wait_for(lambda: policy_version(settings) > before, 60, "the policy to apply")
    return policy_version(settings)


def scores_of(settings: Settings, expected: int, topic: str = "") -> list[ScoreResult]:
    values = read_topic(settings, topic or settings.scores_topic, expected)
    return [decode_score(v) for v in values]


def test_a_canary_routes_by_record_id_across_a_restart_and_rolls_back_in_a_second(
    stack_settings: Settings, start_job: JobStarter, tmp_path: Path
) -> None:
    settings = stack_settings.replace(checkpoint_interval_ms=1000)
    job = start_job(settings)
    publish_versions(settings, ("v2", "winequalityLinearRegression.pmml"))
    policy = rollout(settings, "--canary", "v2", "--percent", "20")

    ids = [(f"c-{i}", 1_000 + i) for i in range(10_000)]
    send(settings, ids)
    first = {s.record_id: s.model_version for s in scores_of(settings, 10_000)}
    assert len(first) == 10_000
    share = Counter(first.values())["v2"] / 10_000
    assert abs(share - 0.20) <= 0.015, share
    objects = [
        json.loads(line) for line in run_cli(settings, "scores", "--json", "--limit", "3").splitlines()
    ]
    assert all(
        o["role"] == "SERVED" and o["policy_version"] == policy and o["model_version"] for o in objects
    )

    # a policy naming a version the job does not have: dead-lettered, the canary keeps serving
    run_cli(settings, "rollout", "wine", "--canary", "v9", "--percent", "50", "--force")
    letters = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 1)]
    assert [d.reason for d in letters] == [DeadLetter.POLICY_INVALID] and "'v9' is not loaded" in letters[
        0
    ].message

    # the same records again, to a new job resumed from the first one's checkpoint
    checkpoints = job_control.newest_checkpoint(settings)
    wait_for(lambda: job_control.newest_checkpoint(settings) != checkpoints, 30, "a checkpoint")
    job_control.stop_embedded(settings, job)
    resumed = job_control.newest_checkpoint(settings)
    assert resumed is not None
    start_job(settings.replace(restore_from=resumed.as_uri()))
    send(settings, ids)
    again = scores_of(settings, 20_000)[10_000:]
    assert len(again) == 10_000 and all(first[s.record_id] == s.model_version for s in again)
    assert {s.policy_version for s in again} == {policy}

    log = tmp_path / "job-1.log"
    loads = log.read_text().count("model loaded")
    asked = time.monotonic()
    run_cli(settings, "rollback", "wine")
    after: list[tuple[str, int]] = []

    def keep_sending() -> None:
        producer = topics.producer(settings)
        while time.monotonic() - asked < 3:
            ms = int((time.monotonic() - asked) * 1000)
            after.append((f"rb-{ms}-{len(after)}", 2_000_000 + len(after)))
            record = wine_record_from_row(ROWS[0], "wine", after[-1][1], after[-1][0])
            producer.produce(settings.data_topic, value=record.SerializeToString())
            producer.flush(10)
            time.sleep(0.01)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    sender.join()
    late = scores_of(settings, 20_000 + len(after))[20_000:]
    versions_by_ms = sorted((int(s.record_id.split("-")[1]), s.model_version) for s in late)
    assert versions_by_ms and all(v == "v1" for ms, v in versions_by_ms if ms >= 1000), versions_by_ms[:20]
    assert log.read_text().count("model loaded") == loads, "the rollback rebuilt no model"
    assert "action=ROLLBACK" in log.read_text()


def test_a_ramp_over_record_time_never_sends_an_id_back_and_shadows_pair_with_served_results(
    stack_settings: Settings, start_job: JobStarter
) -> None:
    settings = stack_settings
    start_job(settings)
    publish_versions(
        settings,
        ("v2", "winequalityLinearRegression.pmml"),
        ("v3", "winequalityDecisionTreeClassification.pmml"),
    )
    start = 1_700_000_000_000
    policy = rollout(settings, "--ramp", "v2", "--over", "100s", "--start-ts", str(start), "--shadow", "v3")
    # 400 ids, each sent once in every tenth of the ramp's span (at its middle)
    records = [(f"r-{j}", start + tenth * 10_000 + 5_000) for tenth in range(10) for j in range(400)]
    send(settings, records)
    served = scores_of(settings, len(records))
    shadows = scores_of(settings, len(records), settings.shadow_scores_topic)
    assert len(served) == len(records) and len(shadows) == len(records)

    by_record = {(s.record_id, s.record_ts): s for s in served}
    assert len(by_record) == len(records), "exactly one served result per record"
    shares = [
        sum(by_record[(f"r-{j}", start + tenth * 10_000 + 5_000)].model_version == "v2" for j in range(400))
        / 400
        for tenth in range(10)
    ]
    assert shares == sorted(shares) and shares[0] < 0.15 and shares[-1] > 0.85, shares
    for j in range(400):
        path = [by_record[(f"r-{j}", start + tenth * 10_000 + 5_000)].model_version for tenth in range(10)]
        assert path == sorted(path), f"r-{j} went back to v1 after v2: {path}"
    assert all(s.policy_version == policy and s.role == ScoreResult.SERVED for s in served)

    paired = Counter((s.record_id, s.record_ts) for s in shadows)
    assert set(paired) == set(by_record) and set(paired.values()) == {1}, "one shadow result per record"
    assert {(s.model_version, s.role) for s in shadows} == {("v3", ScoreResult.SHADOW)}
    line = json.loads(run_cli(settings, "scores", "--shadow", "--json", "--limit", "1"))
    assert (line["role"], line["model_version"], line["policy_version"]) == ("SHADOW", "v3", policy)
    # a gated canary: v2 shadows every record until 500 clean scores, then takes its share
    gated = rollout(settings, "--canary", "v2", "--percent", "50", "--gate", "500")
    before = len(served)
    send(settings, [(f"g-{i}", 1) for i in range(400)])
    behind = [s for s in scores_of(settings, before + 400) if s.policy_version == gated]
    assert len(behind) == 400 and {s.model_version for s in behind} == {"v1"}
    send(settings, [(f"g-{i}", 1) for i in range(400, 1000)])
    scores_of(settings, before + 1000)
    send(settings, [(f"open-{i}", 1) for i in range(1000)])
    opened = [s for s in scores_of(settings, before + 2000) if s.record_id.startswith("open-")]
    assert 0.4 < Counter(s.model_version for s in opened)["v2"] / 1000 < 0.6

    shown = json.loads(run_cli(settings, "policy", "show", "wine", "--json"))
    roles = {v["version"]: (v["role"], v["share"]) for v in shown["versions"]}
    assert (
        shown["policy"]["version"] == gated
        and roles["v1"] == ("served", 50)
        and roles["v2"] == ("served", 50)
    )
    assert roles["v3"][0] == "retained"
    before_promote = policy_version(settings)
    run_cli(settings, "promote", "wine", "v2")
    wait_for(lambda: policy_version(settings) > before_promote, 60, "the promote to apply")
    send(settings, [(f"p-{i}", 1) for i in range(100)])
    promoted = [s for s in scores_of(settings, before + 2100) if s.record_id.startswith("p-")]
    assert len(promoted) == 100 and {s.model_version for s in promoted} == {"v2"}
