"""A data type's rollout plan: a RolloutPolicy message checked against the versions loaded and resolved
(an empty version is the primary; rollback and promote become plain routes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protobufs.modelstream_pb2 import Ensemble, Ramp, RolloutPolicy, Route, Speculative

Action = RolloutPolicy.Action
Method = Ensemble.Method


class PolicyError(ValueError):
    """A policy that cannot apply; the message says why."""


@dataclass(frozen=True)
class RampPlan:
    base: str
    candidate: str
    start_percent: float
    end_percent: float
    start_ts: int
    end_ts: int

    def share_at(self, ts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The candidate's percent of records at record times ``ts``: linear from start to end."""
        span = max(self.end_ts - self.start_ts, 1)
        progress = np.clip((ts - self.start_ts) / span, 0.0, 1.0)
        return self.start_percent + (self.end_percent - self.start_percent) * progress


@dataclass(frozen=True)
class EnsemblePlan:
    """Every record scored by each member; one combined result served (policies/ensemble.py)."""

    method: int  # Ensemble.Method
    members: tuple[str, ...]
    weights: tuple[float, ...]  # one per member, > 0 (MEAN)
    member_results: bool
    name: str

    def to_message(self) -> Ensemble:
        message = Ensemble(method=self.method, member_results=self.member_results, name=self.name)  # type: ignore[arg-type]
        for version, weight in zip(self.members, self.weights, strict=True):
            message.members.add(model_version=version, weight=weight)
        return message


@dataclass(frozen=True)
class SpeculativePlan:
    """A primary under a deadline per micro-batch, and the fallback served when it misses it."""

    primary: str
    fallback: str
    deadline_ms: int  # 0: the job's setting

    def to_message(self) -> Speculative:
        return Speculative(
            primary_version=self.primary, fallback_version=self.fallback, deadline_ms=self.deadline_ms
        )


@dataclass(frozen=True)
class Plan:
    """Who serves and who shadows, with every version named."""

    version: int  # the policy's; 0 when no policy was published (the latest version serves)
    salt: str
    serve: tuple[tuple[str, float], ...]  # (model version, weight), weights > 0 somewhere
    ramp: RampPlan | None
    shadow: tuple[tuple[str, float], ...]  # (model version, percent of records)
    retain: int
    gate: int = 0  # clean shadow scores a candidate needs before it takes traffic
    gated: frozenset[str] = frozenset()  # candidates still behind the gate
    ensemble: EnsemblePlan | None = None  # then serve holds the first member alone
    speculative: SpeculativePlan | None = None  # then serve holds the primary alone

    def candidates(self) -> set[str]:
        """The serving versions besides the base."""
        if self.ramp is not None:
            return {self.ramp.candidate}
        return {version for version, weight in self.serve[1:] if weight > 0}

    def open_gate(self, version: str) -> Plan:
        """This plan with ``version`` past its gate."""
        return dataclasses.replace(self, gated=self.gated - {version})

    @property
    def base(self) -> str:
        """The version a rollback returns to, whose stats are the data type's current ones: the ramp's
        base, else the first route."""
        return self.ramp.base if self.ramp is not None else self.serve[0][0]

    @property
    def candidate(self) -> str:
        """The version a promote makes the only one: the ramp's candidate, else the last route with
        traffic (the base when it serves alone)."""
        if self.ramp is not None:
            return self.ramp.candidate
        return [version for version, weight in self.serve if weight > 0][-1]

    def versions(self) -> set[str]:
        """Every version this plan routes records to."""
        named = {version for version, _ in self.serve} | {version for version, _ in self.shadow}
        if self.ramp is not None:
            named |= {self.ramp.base, self.ramp.candidate}
        if self.ensemble is not None:
            named |= set(self.ensemble.members)
        if self.speculative is not None:
            named |= {self.speculative.primary, self.speculative.fallback}
        return named

    def to_message(self, data_type: str) -> RolloutPolicy:
        message = RolloutPolicy(
            data_type=data_type,
            version=self.version,
            salt=self.salt,
            retain=self.retain,
            gate_records=self.gate,
            gated_versions=sorted(self.gated),
        )
        message.serve.extend(Route(model_version=v, weight=w) for v, w in self.serve)
        message.shadow.extend(Route(model_version=v, weight=w) for v, w in self.shadow)
        if self.ensemble is not None:
            message.ensemble.CopyFrom(self.ensemble.to_message())
        if self.speculative is not None:
            message.speculative.CopyFrom(self.speculative.to_message())
        if self.ramp is not None:
            r = self.ramp
            message.ramp.CopyFrom(
                Ramp(
                    base_version=r.base,
                    candidate_version=r.candidate,
                    start_percent=r.start_percent,
                    end_percent=r.end_percent,
                    start_ts=r.start_ts,
                    end_ts=r.end_ts,
                )
            )
        return message


def single_version(version: str, data_type: str, retain: int, policy_version: int = 0) -> Plan:
    """The latest-serves plan: ``version`` takes every record."""
    return Plan(policy_version, data_type, ((version, 1.0),), None, (), retain)


def resolve(
    policy: RolloutPolicy, loaded: Sequence[str], current: Plan, data_type: str, default_retain: int
) -> Plan:
    """The plan ``policy`` asks for, given the versions ``loaded`` and the ``current`` plan; raises
    PolicyError saying why it cannot apply."""
    if policy.data_type and policy.data_type != data_type:
        raise PolicyError(f"policy for data type {policy.data_type!r} arrived keyed as {data_type!r}")
    if policy.version <= current.version:
        raise PolicyError(f"policy version {policy.version} is not newer than the current {current.version}")
    retain = policy.retain if policy.HasField("retain") else default_retain
    if retain < 0:
        raise PolicyError(f"retain must be >= 0, not {retain}")
    salt = policy.salt or data_type
    primary = current.base

    def known(version: str) -> str:
        name = version or primary
        if name not in loaded:
            have = ", ".join(loaded) or "none"
            raise PolicyError(f"version {name!r} is not loaded for {data_type!r} (loaded: {have})")
        return name

    if policy.action == Action.ROLLBACK:
        target = current.base
        if current.ramp is None and len({v for v, w in current.serve if w > 0}) == 1:
            earlier = list(loaded[: loaded.index(target)]) if target in loaded else []
            if not earlier:
                raise PolicyError(f"no earlier version of {data_type!r} is loaded to roll back to")
            target = earlier[-1]
        return Plan(policy.version, salt, ((target, 1.0),), None, (), retain)
    if policy.action == Action.PROMOTE:
        target = known(policy.serve[0].model_version) if policy.serve else current.candidate
        return Plan(policy.version, salt, ((target, 1.0),), None, (), retain)

    shadow = tuple((known(r.model_version), r.weight) for r in policy.shadow)
    for version, percent in shadow:
        if not 0 < percent <= 100:
            raise PolicyError(f"shadow {version!r}: percent must be in (0, 100], not {percent}")
    ensemble: EnsemblePlan | None = None
    speculative: SpeculativePlan | None = None
    ramp: RampPlan | None = None
    serve: tuple[tuple[str, float], ...] = ()
    chosen = [f for f in ("ensemble", "speculative", "ramp") if policy.HasField(f)]
    if len(chosen) > 1 or (chosen and policy.serve):
        raise PolicyError(f"a policy has one of weighted routes, {', '.join(chosen)}; not several")
    if policy.HasField("ensemble"):
        ensemble = _ensemble(policy.ensemble, [known(m.model_version) for m in policy.ensemble.members])
        serve = ((ensemble.members[0], 1.0),)
    elif policy.HasField("speculative"):
        s = policy.speculative
        speculative = SpeculativePlan(known(s.primary_version), known(s.fallback_version), s.deadline_ms)
        if speculative.primary == speculative.fallback:
            raise PolicyError(f"the primary and the fallback are both {speculative.primary!r}")
        if speculative.deadline_ms < 0:
            raise PolicyError(f"deadline_ms must be >= 0, not {speculative.deadline_ms}")
        serve = ((speculative.primary, 1.0),)
    elif policy.HasField("ramp"):
        if policy.serve:
            raise PolicyError("a policy has either weighted routes or a ramp, not both")
        r = policy.ramp
        ramp = RampPlan(
            known(r.base_version),
            known(r.candidate_version),
            r.start_percent,
            r.end_percent,
            r.start_ts,
            r.end_ts,
        )
        if ramp.base == ramp.candidate:
            raise PolicyError(f"the ramp's base and candidate are both {ramp.base!r}")
        if not (0 <= ramp.start_percent <= 100 and 0 <= ramp.end_percent <= 100):
            raise PolicyError("ramp percents must be in [0, 100]")
        if ramp.end_ts <= ramp.start_ts:
            raise PolicyError("the ramp must end after it starts (end_ts > start_ts)")
    else:
        serve = tuple((known(r.model_version), r.weight) for r in policy.serve) or ((primary, 1.0),)
        if any(weight < 0 for _, weight in serve):
            raise PolicyError("weights must be >= 0")
        if sum(weight for _, weight in serve) <= 0:
            raise PolicyError("weights must sum to more than 0")
        if len({version for version, _ in serve}) != len(serve):
            raise PolicyError("a version appears twice among the routes")
    if policy.gate_records < 0:
        raise PolicyError(f"gate_records must be >= 0, not {policy.gate_records}")
    plan = Plan(
        policy.version, salt, serve, ramp, shadow, retain, policy.gate_records,
        ensemble=ensemble, speculative=speculative,
    )  # fmt: skip
    return dataclasses.replace(plan, gated=frozenset(plan.candidates()) if plan.gate else frozenset())


def _ensemble(message: Ensemble, members: list[str]) -> EnsemblePlan:
    if len(members) < 2:
        raise PolicyError("an ensemble needs at least two members")
    if len(set(members)) != len(members):
        raise PolicyError("a version appears twice among the ensemble's members")
    weights = tuple(m.weight or 1.0 for m in message.members)
    if any(w < 0 for w in weights):
        raise PolicyError("ensemble weights must be >= 0")
    method = Method.Name(message.method).lower().replace("_", "-")
    name = message.name or f"{method}({','.join(members)})"
    return EnsemblePlan(message.method, tuple(members), weights, message.member_results, name)


def from_message(message: RolloutPolicy) -> Plan:
    """A plan stored resolved (every version named) back from its message."""
    ramp = None
    if message.HasField("ramp"):
        r = message.ramp
        ramp = RampPlan(
            r.base_version, r.candidate_version, r.start_percent, r.end_percent, r.start_ts, r.end_ts
        )
    return Plan(
        message.version,
        message.salt,
        tuple((r.model_version, r.weight) for r in message.serve),
        ramp,
        tuple((r.model_version, r.weight) for r in message.shadow),
        message.retain,
        message.gate_records,
        frozenset(message.gated_versions),
        _ensemble(message.ensemble, [m.model_version for m in message.ensemble.members])
        if message.HasField("ensemble")
        else None,
        SpeculativePlan(
            message.speculative.primary_version,
            message.speculative.fallback_version,
            message.speculative.deadline_ms,
        )
        if message.HasField("speculative")
        else None,
    )


def kept(loaded: Sequence[str], plan: Plan) -> list[str]:
    """The loaded versions to keep, in publishing order: those the plan routes to, and the ``retain``
    most recent others."""
    routed = plan.versions()
    others = [version for version in loaded if version not in routed]
    keep = routed | set(others[len(others) - plan.retain :] if plan.retain else [])
    return [version for version in loaded if version in keep]
