"""Performance-based policies: serve the version that performs best on live feedback, keep the top N.

Pure: given each version's ``LiveQuality`` (modelstream.feedback), which candidate serves, which shadow,
and which stay loaded. A version is ranked once it has ``min_labelled`` labelled results: classifiers by
accuracy, regressions by RMSE (lower is better); ties go to the earlier candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelstream.policies.plan import Plan, PolicyError
from protobufs.modelstream_pb2 import LiveQuality, PerformancePolicy


@dataclass(frozen=True)
class PerformancePlan:
    version: int
    candidates: tuple[str, ...]
    min_labelled: int
    keep_top: int
    retain: int


def resolve_performance(
    policy: PerformancePolicy, loaded: list[str], current_version: int, data_type: str, default_retain: int
) -> PerformancePlan:
    """The performance plan ``policy`` asks for; PolicyError says why it cannot apply."""
    if policy.data_type and policy.data_type != data_type:
        raise PolicyError(f"policy for data type {policy.data_type!r} arrived keyed as {data_type!r}")
    if policy.version <= current_version:
        raise PolicyError(f"policy version {policy.version} is not newer than the current {current_version}")
    candidates = tuple(policy.candidates)
    if len(candidates) < 2:
        raise PolicyError("a performance policy compares at least two candidate versions")
    if len(set(candidates)) != len(candidates):
        raise PolicyError("a version appears twice among the candidates")
    missing = [c for c in candidates if c not in loaded]
    if missing:
        have = ", ".join(loaded) or "none"
        raise PolicyError(f"versions {', '.join(missing)} are not loaded for {data_type!r} (loaded: {have})")
    if policy.min_labelled < 1 or policy.keep_top < 0:
        raise PolicyError("min_labelled must be >= 1 and keep_top >= 0")
    retain = policy.retain if policy.HasField("retain") else default_retain
    return PerformancePlan(policy.version, candidates, policy.min_labelled, policy.keep_top, max(retain, 0))


def figure(quality: LiveQuality) -> float:
    """Higher is better: accuracy, or minus the RMSE."""
    if quality.regression:
        rmse: float = (quality.squared_error_sum / quality.labelled) ** 0.5
        return -rmse
    return quality.correct / quality.labelled


def ranked(plan: PerformancePlan, qualities: Mapping[str, LiveQuality]) -> list[str]:
    """The candidates with enough labelled results, best first."""
    ready = [c for c in plan.candidates if c in qualities and qualities[c].labelled >= plan.min_labelled]
    return sorted(ready, key=lambda c: -figure(qualities[c]))  # stable: ties keep the candidates' order


def choose(plan: PerformancePlan, qualities: Mapping[str, LiveQuality], data_type: str) -> Plan:
    """Who serves now: the best ranked candidate once two are ranked, else the first; the candidates still
    kept (keep_top) shadow every record."""
    candidates = [c for c in plan.candidates if c in qualities]  # those still loaded
    order = ranked(plan, qualities)
    serving = order[0] if len(order) >= 2 else candidates[0]
    keep = set(candidates)
    if plan.keep_top and len(order) >= 2:
        keep -= set(order[plan.keep_top :])
        keep.add(serving)
    shadow = tuple((c, 100.0) for c in candidates if c in keep and c != serving)
    return Plan(plan.version, data_type, ((serving, 1.0),), None, shadow, plan.retain)
