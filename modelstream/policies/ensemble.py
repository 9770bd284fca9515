"""Ensembles: several versions score the same records and one result per record is served.

Pure functions over the members' ScoreBatches (rows aligned, members in the policy's order), so an
ensemble decides the same way on a replay.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from modelstream.contract import ScoreBatch
from modelstream.policies.plan import EnsemblePlan, Method, PolicyError


def check_members(
    plan: EnsemblePlan, probes: Sequence[ScoreBatch], qualities: Sequence[float | None]
) -> None:
    """PolicyError unless the members' outputs (each scored on a probe) fit the method."""
    kinds = [_kind(batch) for batch in probes]
    method = plan.method
    described = ", ".join(f"{m} ({k})" for m, k in zip(plan.members, kinds, strict=True))
    if len(set(kinds)) > 1 and not (method == Method.VOTE and "regression" not in kinds):
        raise PolicyError(f"the members mix kinds of output: {described}")
    if method == Method.VOTE and "regression" in kinds:
        raise PolicyError(f"a vote needs classifiers: {described}")
    if method == Method.MEAN and kinds[0] == "classifier without probabilities":
        raise PolicyError(f"a mean of classifiers needs class probabilities: {described}")
    if method == Method.MAX_CONFIDENCE and kinds[0] != "classifier":
        raise PolicyError(f"max-confidence needs classifiers with probabilities: {described}")
    if "other" in kinds and method != Method.BEST_QUALITY:
        raise PolicyError(f"only best-quality serves models with neither class nor value: {described}")
    if method == Method.BEST_QUALITY:
        unrated = [m for m, q in zip(plan.members, qualities, strict=True) if q is None]
        if unrated:
            raise PolicyError(f"best-quality needs a quality published with each member: {unrated} have none")


def _kind(batch: ScoreBatch) -> str:
    if batch.labels is not None:
        return "classifier" if batch.probabilities is not None else "classifier without probabilities"
    return "regression" if batch.values is not None else "other"


def best_member(qualities: Sequence[float | None]) -> int:
    """The member with the highest quality (the earliest on a tie)."""
    return int(np.argmax([-np.inf if q is None else q for q in qualities]))


def combine(
    plan: EnsemblePlan, batches: Sequence[ScoreBatch], qualities: Sequence[float | None]
) -> ScoreBatch:
    """One ScoreBatch from the members' (rows aligned)."""
    method = plan.method
    if method == Method.BEST_QUALITY:
        return batches[best_member(qualities)]
    if method == Method.VOTE:
        return _vote(batches)
    if method == Method.MAX_CONFIDENCE:
        return _max_confidence(batches)
    if batches[0].values is not None:
        weights = np.asarray(plan.weights, dtype=np.float64)
        stacked = np.stack([b.values for b in batches if b.values is not None])
        return ScoreBatch(values=weights @ stacked / weights.sum())
    return _mean_probabilities(batches, plan.weights)


def _classes(batches: Sequence[ScoreBatch]) -> tuple[str, ...]:
    """Every class any member names, in the order first seen."""
    seen: dict[str, None] = {}
    for batch in batches:
        for name in batch.classes or sorted(set(batch.labels or ())):
            seen.setdefault(name, None)
    return tuple(seen)


def _aligned(batch: ScoreBatch, classes: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """The batch's probabilities [n, len(classes)], 0 for a class it does not name."""
    assert batch.probabilities is not None
    out = np.zeros((len(batch.probabilities), len(classes)))
    index = {name: i for i, name in enumerate(classes)}
    out[:, [index[c] for c in batch.classes]] = batch.probabilities
    return out


def _vote(batches: Sequence[ScoreBatch]) -> ScoreBatch:
    classes = _classes(batches)
    index = {name: i for i, name in enumerate(classes)}
    votes = np.zeros((len(batches[0]), len(classes)))
    # a tie goes to the earliest member's class: member k's vote also adds 2**-(k+2), more than all
    # later members' together and, summed over all, less than one vote
    for rank, batch in enumerate(batches):
        assert batch.labels is not None
        columns = np.fromiter((index[label] for label in batch.labels), dtype=np.int64)
        votes[np.arange(len(columns)), columns] += 1.0 + 0.5 ** (rank + 2)
    winners = votes.argmax(axis=1)
    shares = np.floor(votes) / len(batches)
    return ScoreBatch(labels=[classes[i] for i in winners.tolist()], probabilities=shares, classes=classes)


def _mean_probabilities(batches: Sequence[ScoreBatch], weights: Sequence[float]) -> ScoreBatch:
    classes = _classes(batches)
    w = np.asarray(weights, dtype=np.float64)
    mean = sum(wi * _aligned(b, classes) for wi, b in zip(w, batches, strict=True)) / w.sum()
    winners = np.asarray(mean).argmax(axis=1)
    return ScoreBatch(
        labels=[classes[i] for i in winners.tolist()], probabilities=np.asarray(mean), classes=classes
    )


def _max_confidence(batches: Sequence[ScoreBatch]) -> ScoreBatch:
    top = np.stack([b.probabilities.max(axis=1) for b in batches if b.probabilities is not None])
    chosen = top.argmax(axis=0)  # per row, the member (the earliest on a tie)
    classes = _classes(batches)
    aligned = [_aligned(b, classes) for b in batches]
    rows = np.arange(len(chosen))
    probabilities = np.stack(aligned)[chosen, rows]
    member_labels = [b.labels or [] for b in batches]
    labels = [member_labels[m][r] for r, m in enumerate(chosen.tolist())]
    return ScoreBatch(labels=labels, probabilities=probabilities, classes=classes)
