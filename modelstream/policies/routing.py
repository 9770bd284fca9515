"""Deterministic routing: a record goes to a version by a stable hash of (salt, record id) into
10,000 buckets, never by a random draw, a counter or the wall clock, so a replay routes it the same way."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from modelstream.policies.plan import Plan

BUCKETS = 10_000
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads CRC32's values over 64 bits
_MIX = np.uint64(0xBF58476D1CE4E5B9)

Rows = npt.NDArray[np.int64]


def buckets(salt: str, ids: Sequence[str]) -> Rows:
    """Each id's bucket in [0, BUCKETS): CRC32 of the id seeded with the salt's, then a 64-bit mix."""
    seed = zlib.crc32(salt.encode())
    crc = zlib.crc32
    hashed = np.fromiter((crc(i.encode(), seed) for i in ids), dtype=np.uint64, count=len(ids))
    with np.errstate(over="ignore"):
        mixed = hashed * _GOLDEN
        mixed ^= mixed >> np.uint64(31)
        mixed *= _MIX
        mixed ^= mixed >> np.uint64(29)
    return (mixed % np.uint64(BUCKETS)).astype(np.int64)


class Router:
    """Assigns each row of a batch to one serving version, and picks the rows each shadow scores."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.served: tuple[str, ...]
        self._ramp = plan.ramp
        if plan.ramp is not None:
            gated = plan.ramp.candidate in plan.gated
            self.served = (plan.ramp.base,) if gated else (plan.ramp.base, plan.ramp.candidate)
            self._ramp = None if gated else plan.ramp
            self._weights: tuple[tuple[str, float], ...] = ()
            self._bounds = np.zeros(0, dtype=np.int64)
        else:
            self.served = tuple(version for version, _ in plan.serve)
            # a gated candidate's share goes to the base (the first route) until its gate opens
            held = sum(weight for version, weight in plan.serve if version in plan.gated)

            def effective(index: int, version: str, weight: float) -> float:
                if index == 0:
                    return weight + held
                return 0.0 if version in plan.gated else weight

            self._weights = tuple(
                (version, effective(i, version, weight)) for i, (version, weight) in enumerate(plan.serve)
            )
            weights = np.array([weight for _, weight in self._weights], dtype=np.float64)
            cumulative = np.cumsum(weights) / weights.sum() * BUCKETS
            self._bounds = np.floor(cumulative[:-1]).astype(np.int64)  # half-open [b_i-1, b_i)
        gated_shadows = tuple((v, 100.0) for v in sorted(plan.gated) if v not in dict(plan.shadow))
        self._shadows = plan.shadow + gated_shadows
        self.hashes = len(self.served) > 1 or bool(self._shadows)
        self._shadow_salt = plan.salt + "/shadow"

    def route(self, ids: Sequence[str], timestamps: Sequence[int]) -> Rows | None:
        """The index into ``served`` of each row; None when a single version serves them all."""
        if len(self.served) == 1:
            return None
        bucket = buckets(self.plan.salt, ids)
        ramp = self._ramp
        if ramp is None:
            return np.searchsorted(self._bounds, bucket, side="right").astype(np.int64)
        share = ramp.share_at(np.asarray(timestamps, dtype=np.int64))
        return (bucket < share * (BUCKETS / 100)).astype(np.int64)

    def shadow_rows(self, ids: Sequence[str]) -> list[tuple[str, Rows | None]]:
        """(version, its rows, or None for all) of each shadow version."""
        if not self._shadows:
            return []
        sampled = [(v, p) for v, p in self._shadows if p < 100]
        bucket = buckets(self._shadow_salt, ids) if sampled else None
        chosen: list[tuple[str, Rows | None]] = []
        for version, percent in self._shadows:
            if percent >= 100 or bucket is None:
                chosen.append((version, None))
            else:
                chosen.append((version, np.flatnonzero(bucket < percent * (BUCKETS / 100))))
        return chosen

    def shares(self, at_ts: int) -> dict[str, float]:
        """Each serving version's percent of records (a ramp's at record time ``at_ts``)."""
        if self.plan.ramp is not None:
            ramp = self.plan.ramp
            candidate = (
                0.0 if self._ramp is None else float(ramp.share_at(np.array([at_ts], dtype=np.int64))[0])
            )
            return {ramp.base: 100.0 - candidate, ramp.candidate: candidate}
        total = sum(weight for _, weight in self._weights)
        return {version: 100.0 * weight / total for version, weight in self._weights}

    @property
    def shadows(self) -> dict[str, float]:
        """Each shadow version's percent of records, gated candidates included."""
        return dict(self._shadows)
