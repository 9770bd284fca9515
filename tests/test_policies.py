"""Rollout plans and deterministic routing, without a model: buckets, weights, ramps, retention."""

from __future__ import annotations

import numpy as np
import pytest

from modelstream.policies import BUCKETS, PolicyError, Router, buckets, kept, resolve, single_version
from modelstream.policies.plan import Action
from protobufs.modelstream_pb2 import Ramp, RolloutPolicy, Route

IDS = [f"rec-{i}" for i in range(10_000)]
CURRENT = single_version("v1", "wine", retain=2)


def _policy(version: int = 1, **fields: object) -> RolloutPolicy:
    return RolloutPolicy(data_type="wine", version=version, **fields)  # type: ignore[arg-type]


def test_buckets_are_stable_spread_and_salted() -> None:
    first = buckets("wine", IDS)
    assert np.array_equal(first, buckets("wine", IDS)), "the same id always lands in the same bucket"
    assert first.min() >= 0 and first.max() < BUCKETS
    counts = np.bincount(first // 1000, minlength=10)  # tenths of the bucket range
    assert counts.min() > 900 and counts.max() < 1100
    assert (first != buckets("other salt", IDS)).mean() > 0.99


def test_a_canary_takes_its_share_and_the_same_records_go_the_same_way() -> None:
    plan = resolve(
        _policy(serve=[Route(model_version="", weight=80), Route(model_version="v2", weight=20)]),
        ["v1", "v2"],
        CURRENT,
        "wine",
        2,
    )
    assert plan.serve == (("v1", 80.0), ("v2", 20.0)) and plan.base == "v1" and plan.candidate == "v2"
    router = Router(plan)
    routed = router.route(IDS, [0] * len(IDS))
    assert routed is not None
    assert abs(routed.mean() - 0.20) < 0.015
    again = Router(plan).route(IDS, [5] * len(IDS))
    assert again is not None and np.array_equal(routed, again), "no clock, no counter"
    assert router.shares(0) == {"v1": 80.0, "v2": 20.0}


def test_a_zero_weight_takes_nothing_and_a_single_version_needs_no_hash() -> None:
    plan = resolve(
        _policy(serve=[Route(model_version="v1", weight=0), Route(model_version="v2", weight=3)]),
        ["v1", "v2"],
        CURRENT,
        "wine",
        2,
    )
    routed = Router(plan).route(IDS, [0] * len(IDS))
    assert routed is not None and routed.min() == 1
    assert Router(CURRENT).route(IDS, [0] * len(IDS)) is None and not Router(CURRENT).hashes


def test_a_ramp_grows_with_record_time_and_never_sends_an_id_back() -> None:
    ramp = Ramp(candidate_version="v2", start_percent=0, end_percent=100, start_ts=1000, end_ts=11_000)
    router = Router(resolve(_policy(ramp=ramp), ["v1", "v2"], CURRENT, "wine", 2))
    assert router.served == ("v1", "v2")
    shares, previous = [], np.zeros(len(IDS), dtype=bool)
    for tenth in range(11):
        routed = router.route(IDS, [1000 + 1000 * tenth] * len(IDS))
        assert routed is not None
        now = routed == 1
        assert not (previous & ~now).any(), "an id that went to the candidate stays there"
        previous = now
        shares.append(now.mean())
    assert shares[0] == 0 and shares[-1] == 1 and shares == sorted(shares)
    assert abs(shares[5] - 0.5) < 0.015
    assert router.shares(6000) == {"v1": 50.0, "v2": 50.0}


def test_shadows_score_every_record_or_a_sample() -> None:
    policy = _policy(shadow=[Route(model_version="v2", weight=100), Route(model_version="v3", weight=10)])
    router = Router(resolve(policy, ["v1", "v2", "v3"], CURRENT, "wine", 2))
    (all_rows, sampled) = router.shadow_rows(IDS)
    assert all_rows == ("v2", None)
    assert sampled[0] == "v3" and sampled[1] is not None and abs(len(sampled[1]) / len(IDS) - 0.10) < 0.015
    assert router.route(IDS, [0] * len(IDS)) is None, "v1 still serves alone"


@pytest.mark.parametrize(
    ("policy", "why"),
    [
        (_policy(serve=[Route(model_version="v9", weight=1)]), "'v9' is not loaded"),
        (_policy(serve=[Route(model_version="v1", weight=0)]), "sum to more than 0"),
        (_policy(serve=[Route(model_version="v1", weight=-1), Route(model_version="v2", weight=2)]), ">= 0"),
        (_policy(serve=[Route(model_version="v1", weight=1), Route(model_version="v1", weight=1)]), "twice"),
        (_policy(shadow=[Route(model_version="v2", weight=0)]), "percent must be in"),
        (_policy(ramp=Ramp(candidate_version="v2", start_ts=5, end_ts=5)), "end after it starts"),
        (_policy(ramp=Ramp(candidate_version="v1", start_ts=0, end_ts=5)), "both 'v1'"),
        (_policy(version=0), "not newer"),
        (RolloutPolicy(data_type="loans", version=1), "keyed as 'wine'"),
    ],
)
def test_a_policy_that_cannot_apply_says_why(policy: RolloutPolicy, why: str) -> None:
    with pytest.raises(PolicyError, match=why):
        resolve(policy, ["v1", "v2"], CURRENT, "wine", 2)


def test_rollback_returns_to_the_base_and_promote_to_the_candidate() -> None:
    canary = resolve(
        _policy(serve=[Route(weight=80), Route(model_version="v2", weight=20)]),
        ["v1", "v2"],
        CURRENT,
        "wine",
        2,
    )
    back = resolve(_policy(2, action=Action.ROLLBACK), ["v1", "v2"], canary, "wine", 2)
    assert back.serve == (("v1", 1.0),) and back.version == 2
    ahead = resolve(_policy(2, action=Action.PROMOTE), ["v1", "v2"], canary, "wine", 2)
    assert ahead.serve == (("v2", 1.0),)
    # with one version serving, a rollback goes to the one published before it
    latest = single_version("v2", "wine", 2)
    assert resolve(_policy(action=Action.ROLLBACK), ["v1", "v2"], latest, "wine", 2).serve == (("v1", 1.0),)
    with pytest.raises(PolicyError, match="no earlier version"):
        resolve(_policy(action=Action.ROLLBACK), ["v1", "v2"], CURRENT, "wine", 2)


def test_retention_keeps_what_the_plan_routes_to_and_the_latest_others() -> None:
    loaded = ["v1", "v2", "v3", "v4", "v5"]
    assert kept(loaded, single_version("v5", "wine", retain=2)) == ["v3", "v4", "v5"]
    assert kept(loaded, single_version("v5", "wine", retain=0)) == ["v5"]
    plan = resolve(_policy(serve=[Route(model_version="v1", weight=1)], retain=1), loaded, CURRENT, "wine", 2)
    assert kept(loaded, plan) == ["v1", "v5"]


def test_a_gated_candidate_shadows_every_record_until_its_gate_opens() -> None:
    policy = _policy(serve=[Route(weight=80), Route(model_version="v2", weight=20)], gate_records=500)
    plan = resolve(policy, ["v1", "v2"], CURRENT, "wine", 2)
    assert plan.gated == {"v2"} and plan.gate == 500
    gated = Router(plan)
    assert gated.route(IDS, [0] * len(IDS)).max() == 0  # type: ignore[union-attr]
    assert gated.shadow_rows(IDS) == [("v2", None)] and gated.shares(0) == {"v1": 100.0, "v2": 0.0}
    opened = Router(plan.open_gate("v2"))
    routed = opened.route(IDS, [0] * len(IDS))
    assert routed is not None and abs(routed.mean() - 0.2) < 0.015 and opened.shadow_rows(IDS) == []
    ramp = Ramp(candidate_version="v2", start_percent=50, end_percent=50, start_ts=0, end_ts=1)
    behind = Router(resolve(_policy(ramp=ramp, gate_records=1), ["v1", "v2"], CURRENT, "wine", 2))
    assert behind.route(IDS, [5] * len(IDS)) is None and behind.served == ("v1",)
