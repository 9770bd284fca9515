"""Rollout policies from the command line: build a RolloutPolicy from flags, check it against what the
job last reported, say in words what it will do."""

from __future__ import annotations

import re
import time

from modelstream.policies.plan import Action, Method
from protobufs.modelstream_pb2 import Ramp, RolloutPolicy, Route, StatsSnapshot

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
PRIMARY = "the serving version"


def duration_ms(text: str) -> int:
    """``500ms``, ``90s``, ``10m``, ``2h``, ``1d``; a bare number is seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 10m, 2h)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    if value <= 0:
        raise ValueError(f"a duration must be positive, not {text!r}")
    return int(value * _UNIT_MS[unit])


def _percent(value: float, what: str, low_open: bool = False) -> float:
    if not (0 < value <= 100 if low_open else 0 <= value <= 100):
        raise ValueError(f"{what} must be a percent in {'(0' if low_open else '[0'}, 100], not {value:g}")
    return value


def weights(text: str, default: float | None = None) -> list[Route]:
    """``v1=80,v2=20`` as routes in that order; with a ``default``, ``v1,v2`` too (that weight each)."""
    routes = []
    for item in text.split(","):
        version, sep, weight = item.partition("=")
        try:
            value = float(weight) if sep or default is None else default
        except ValueError:
            value = -1.0
        if (not sep and default is None) or not version.strip() or value < 0:
            flag = "--weights" if default is None else "--members"
            raise ValueError(f"{flag} takes VERSION=WEIGHT,... with weights >= 0, not {item!r}")
        routes.append(Route(model_version=version.strip(), weight=value))
    if sum(r.weight for r in routes) <= 0:
        raise ValueError("--weights must sum to more than 0")
    return routes


def shadow(text: str) -> Route:
    """``v3`` (every record) or ``v3:10`` (10 % of records)."""
    version, sep, percent = text.partition(":")
    try:
        value = float(percent) if sep else 100.0
    except ValueError:
        raise ValueError(f"--shadow takes VERSION or VERSION:PERCENT, not {text!r}") from None
    return Route(model_version=version, weight=_percent(value, f"shadow {version}", low_open=True))


def policy_version() -> int:
    """A new policy's version: the time in ms, so each one published is newer than the last."""
    return time.time_ns() // 1_000_000


def rollout_policy(
    data_type: str,
    *,
    canary: str | None = None,
    percent: float | None = None,
    weighted: str | None = None,
    ramp: str | None = None,
    ramp_from: float = 0.0,
    ramp_to: float = 100.0,
    over: str | None = None,
    start_ts: int | None = None,
    shadows: tuple[str, ...] = (),
    retain: int | None = None,
    gate: int = 0,
    version: int | None = None,
    ensemble: str | None = None,
    members: str | None = None,
    member_results: bool = False,
    speculative: str | None = None,
    fallback: str | None = None,
    deadline_ms: int | None = None,
) -> RolloutPolicy:
    """The policy the flags of `modelstream rollout` ask for; ValueError says what is wrong."""
    ways = (("--canary", canary), ("--weights", weighted), ("--ramp", ramp), ("--ensemble", ensemble),
            ("--speculative", speculative))  # fmt: skip
    chosen = [flag for flag, value in ways if value]
    if len(chosen) > 1:
        raise ValueError(f"{' and '.join(chosen)} cannot go together: pick one way to serve")
    if not chosen and not shadows:
        raise ValueError(
            "say what to roll out: --canary, --weights, --ramp, --ensemble, --speculative and/or --shadow"
        )
    policy = RolloutPolicy(data_type=data_type, version=version or policy_version())
    _combined(policy, ensemble, members, member_results, speculative, fallback, deadline_ms)
    if canary:
        if percent is None:
            raise ValueError("--canary needs --percent")
        share = _percent(percent, "--percent")
        policy.serve.extend([Route(weight=100 - share), Route(model_version=canary, weight=share)])
    elif percent is not None:
        raise ValueError("--percent goes with --canary")
    if weighted:
        policy.serve.extend(weights(weighted))
    if ramp:
        if over is None:
            raise ValueError("--ramp needs --over DURATION")
        start = policy.version if start_ts is None else start_ts
        policy.ramp.CopyFrom(
            Ramp(
                candidate_version=ramp,
                start_percent=_percent(ramp_from, "--from"),
                end_percent=_percent(ramp_to, "--to"),
                start_ts=start,
                end_ts=start + duration_ms(over),
            )
        )
    policy.shadow.extend(shadow(text) for text in shadows)
    if gate < 0:
        raise ValueError(f"--gate must be >= 0, not {gate}")
    if gate and not (canary or weighted or ramp):
        raise ValueError("--gate holds back a candidate: it goes with --canary, --weights or --ramp")
    policy.gate_records = gate
    if retain is not None:
        if retain < 0:
            raise ValueError(f"--retain must be >= 0, not {retain}")
        policy.retain = retain
    return policy


ENSEMBLE_METHODS = {"vote": Method.VOTE, "mean": Method.MEAN, "max-confidence": Method.MAX_CONFIDENCE,
                    "best-quality": Method.BEST_QUALITY}  # fmt: skip


def _combined(
    policy: RolloutPolicy,
    ensemble: str | None,
    members: str | None,
    member_results: bool,
    speculative: str | None,
    fallback: str | None,
    deadline_ms: int | None,
) -> None:
    """The --ensemble or --speculative part of a policy, after checking the flags that go with them."""
    if ensemble:
        if ensemble not in ENSEMBLE_METHODS:
            raise ValueError(f"--ensemble takes {', '.join(ENSEMBLE_METHODS)}, not {ensemble!r}")
        if not members:
            raise ValueError("--ensemble needs --members V1,V2,... (MEAN: V1=W1,V2=W2,... for weights)")
        policy.ensemble.method = ENSEMBLE_METHODS[ensemble]
        policy.ensemble.members.extend(weights(members, default=1.0))
        policy.ensemble.member_results = member_results
    elif members or member_results:
        raise ValueError("--members and --member-results go with --ensemble")
    if speculative:
        if not fallback:
            raise ValueError("--speculative needs --fallback VERSION")
        if deadline_ms is not None and deadline_ms <= 0:
            raise ValueError(f"--deadline-ms must be > 0, not {deadline_ms}")
        policy.speculative.primary_version = speculative
        policy.speculative.fallback_version = fallback
        policy.speculative.deadline_ms = deadline_ms or 0
    elif fallback or deadline_ms is not None:
        raise ValueError("--fallback and --deadline-ms go with --speculative")


def action_policy(data_type: str, action: int, version: str = "") -> RolloutPolicy:
    """A rollback (to the version before the candidate) or a promote (of the candidate, or ``version``)."""
    policy = RolloutPolicy(data_type=data_type, version=policy_version(), action=action)  # type: ignore[arg-type]
    if version:
        policy.serve.append(Route(model_version=version, weight=1))
    return policy


def describe(policy: RolloutPolicy) -> str:
    """What the job will do with ``policy``, in words."""
    name = policy.data_type
    if policy.action == Action.ROLLBACK:
        return f"{name}: roll back to the version that served before the candidate (or the one before it)"
    if policy.action == Action.PROMOTE:
        target = policy.serve[0].model_version if policy.serve else "the candidate"
        return f"{name}: {target} serves every record"
    parts = []
    if policy.HasField("ensemble"):
        e = policy.ensemble
        method = Method.Name(e.method).lower().replace("_", "-")
        names = ", ".join(
            f"{m.model_version} (weight {m.weight:g})"
            if method == "mean" and m.weight != 1
            else m.model_version
            for m in e.members
        )
        extra = "; each member's own result to shadow-scores" if e.member_results else ""
        parts.append(f"serve the {method} of {names}{extra}")
    elif policy.HasField("speculative"):
        sp = policy.speculative
        deadline = f"{sp.deadline_ms} ms" if sp.deadline_ms else "the job's speculative_deadline_ms"
        parts.append(
            f"serve {sp.primary_version} when it answers a micro-batch within {deadline}, else "
            f"{sp.fallback_version} (scored meanwhile); late results to shadow-scores"
        )
    elif policy.serve:
        total = sum(r.weight for r in policy.serve)
        parts.append(
            "serve "
            + ", ".join(f"{r.model_version or PRIMARY} {100 * r.weight / total:g} %" for r in policy.serve)
        )
    elif policy.HasField("ramp"):
        r = policy.ramp
        minutes = (r.end_ts - r.start_ts) / 60_000
        shares = f"from {r.start_percent:g} % to {r.end_percent:g} %"
        parts.append(
            f"ramp {r.candidate_version} {shares} over {minutes:g} min of record time "
            f"(ts {r.start_ts}..{r.end_ts}), the rest to {r.base_version or PRIMARY}"
        )
    else:
        parts.append(f"{PRIMARY} keeps serving every record")
    if policy.shadow:
        parts.append("shadow " + ", ".join(f"{r.model_version} on {r.weight:g} %" for r in policy.shadow))
    if policy.gate_records:
        parts.append(f"candidates take traffic after {policy.gate_records:,} clean shadow scores")
    if policy.HasField("retain"):
        parts.append(f"keep {policy.retain} earlier versions loaded")
    return f"{name} (policy {policy.version}): " + "; ".join(parts)


def loaded_versions(snapshot: StatsSnapshot) -> list[str]:
    """The versions the job last reported loaded for a data type."""
    if snapshot.versions:
        return [m.model.version for m in snapshot.versions]
    return [snapshot.current.model.version] if snapshot.current.model.version else []


def unknown_versions(policy: RolloutPolicy, snapshot: StatsSnapshot) -> list[str]:
    """The versions ``policy`` names that the job's last stats do not list as loaded."""
    routes = (*policy.serve, *policy.shadow, *policy.ensemble.members)
    named = [r.model_version for r in routes if r.model_version]
    if policy.HasField("speculative"):
        named += [policy.speculative.primary_version, policy.speculative.fallback_version]
    if policy.HasField("ramp"):
        named += [v for v in (policy.ramp.base_version, policy.ramp.candidate_version) if v]
    loaded = set(loaded_versions(snapshot))
    return [v for v in dict.fromkeys(named) if v not in loaded]
