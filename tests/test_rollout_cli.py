"""`modelstream rollout` flags to RolloutPolicy messages, their checks and their description."""

from __future__ import annotations

import pytest

from client import rollout
from client.cli import build_parser
from protobufs.modelstream_pb2 import ModelStats, RolloutPolicy, ServingModel, StatsSnapshot


def test_a_canary_is_the_serving_version_and_the_candidate_by_percent() -> None:
    policy = rollout.rollout_policy("wine", canary="v2", percent=20, shadows=("v3", "v4:10"), version=5)
    assert [(r.model_version, r.weight) for r in policy.serve] == [("", 80), ("v2", 20)]
    assert [(r.model_version, r.weight) for r in policy.shadow] == [("v3", 100), ("v4", 10)]
    text = rollout.describe(policy)
    assert "serve the serving version 80 %, v2 20 %" in text and "shadow v3 on 100 %, v4 on 10 %" in text


def test_a_ramp_runs_over_record_time_from_now_or_a_given_start() -> None:
    policy = rollout.rollout_policy("wine", ramp="v2", over="10m", start_ts=1_000, ramp_from=5)
    r = policy.ramp
    assert (r.candidate_version, r.start_percent, r.end_percent, r.start_ts, r.end_ts) == (
        "v2",
        5,
        100,
        1_000,
        601_000,
    )
    assert rollout.duration_ms("90s") == 90_000 and rollout.duration_ms("2h") == 7_200_000
    assert rollout.duration_ms("250ms") == 250 and rollout.duration_ms("3") == 3000


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        ({}, "say what to roll out"),
        ({"canary": "v2"}, "needs --percent"),
        ({"canary": "v2", "percent": 120}, r"\[0, 100\]"),
        ({"canary": "v2", "percent": 10, "weighted": "v1=1"}, "cannot go together"),
        ({"weighted": "v1=0,v2=0"}, "sum to more than 0"),
        ({"weighted": "v1"}, "VERSION=WEIGHT"),
        ({"ramp": "v2"}, "needs --over"),
        ({"ramp": "v2", "over": "soon"}, "not a duration"),
        ({"shadows": ("v3:0",)}, r"\(0, 100\]"),
        ({"percent": 5, "shadows": ("v3",)}, "goes with --canary"),
        ({"shadows": ("v3",), "retain": -1}, "--retain"),
    ],
)
def test_bad_flags_say_what_is_wrong(flags: dict[str, object], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        rollout.rollout_policy("wine", **flags)  # type: ignore[arg-type]


def test_versions_the_job_has_not_reported_are_named() -> None:
    snapshot = StatsSnapshot(data_type="wine")
    snapshot.current.model.CopyFrom(ServingModel(version="v1"))
    policy = rollout.rollout_policy("wine", canary="v2", percent=5, shadows=("v1",))
    assert rollout.unknown_versions(policy, snapshot) == ["v2"]
    snapshot.versions.extend([ModelStats(model=ServingModel(version=v)) for v in ("v1", "v2")])
    assert rollout.unknown_versions(policy, snapshot) == []


def test_the_fixed_contract_commands_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(["rollout", "wine", "--canary", "v2", "--percent", "20"])
    assert (args.data_type, args.canary, args.percent) == ("wine", "v2", 20)
    assert parser.parse_args(["rollout", "wine", "--shadow", "v3"]).shadow == ["v3"]
    assert parser.parse_args(["rollback", "wine"]).data_type == "wine"
    assert parser.parse_args(["scores", "--shadow", "--json"]).shadow
    rollback = rollout.action_policy("wine", RolloutPolicy.ROLLBACK)
    assert rollback.action == RolloutPolicy.ROLLBACK and rollback.version > 0
