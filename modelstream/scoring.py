"""Scoring a bound batch in one model call, and finding the rows a runtime fails on when it fails on the
batch: the batch is scored again in halves, down to single rows, so the others are still scored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modelstream.contract import Model, ScoreBatch

Array = npt.NDArray[np.generic]


@dataclass(frozen=True)
class Scored:
    """The scores of the rows that scored (positions into the batch, in order), and why each other row
    failed."""

    batch: ScoreBatch | None
    rows: npt.NDArray[np.intp]
    failed: dict[int, str]


def _slice(arrays: Mapping[str, Array], start: int, stop: int) -> dict[str, Array]:
    return {name: array[start:stop] for name, array in arrays.items()}


def score_isolating(model: Model, arrays: Mapping[str, Array], n: int) -> Scored:
    """Score n rows; if the runtime fails on them, halve until each failing row is alone."""
    try:
        batch = model.score_batch(arrays)
        batch.check(n)
        return Scored(batch, np.arange(n), {})
    except Exception as e:
        if n == 1:
            return Scored(None, np.arange(0), {0: str(e) or type(e).__name__})
    middle = n // 2
    first = score_isolating(model, _slice(arrays, 0, middle), middle)
    second = score_isolating(model, _slice(arrays, middle, n), n - middle)
    parts = [p.batch for p in (first, second) if p.batch is not None]
    failed = first.failed | {row + middle: message for row, message in second.failed.items()}
    rows = np.concatenate([first.rows, second.rows + middle])
    return Scored(ScoreBatch.concat(parts) if parts else None, rows, failed)
