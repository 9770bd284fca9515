"""A runtime failure on some rows of a batch fails exactly those rows (modelstream.scoring)."""

from __future__ import annotations

import numpy as np
import pytest

from modelstream.contract import InputArrays, InputSpec, Model, ModelOptions, ModelSource, ScoreBatch
from modelstream.scoring import score_isolating

MARKER = -1.0  # a row holding this makes the fake runtime fail the whole call


class Fussy(Model):
    """Scores x * 10 (and x as a class label); fails any call that holds a marked row."""

    format_name = "FAKE"

    def __init__(self, empty_message: bool = False) -> None:
        self.inputs = (InputSpec("x", np.dtype(np.float64)),)
        self.calls: list[int] = []
        self.empty_message = empty_message

    @classmethod
    def load(cls, source: ModelSource, options: ModelOptions) -> Fussy:
        return cls()

    def score_batch(self, inputs: InputArrays) -> ScoreBatch:
        x = np.asarray(inputs["x"], dtype=np.float64)
        self.calls.append(len(x))
        marked = np.flatnonzero(x == MARKER)
        if len(marked):
            raise RuntimeError("" if self.empty_message else f"bad row with x={x[marked[0]]}")
        return ScoreBatch(
            labels=[str(int(v)) for v in x.tolist()],
            values=x * 10,
            tensors={"twice": np.stack([x, x], axis=1)},
        )

    def to_bytes(self) -> bytes:
        return b""


@pytest.mark.parametrize(
    "marked",
    [[], [0], [9], [3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 6, 8], list(range(1, 10, 2))],
)
def test_exactly_the_rows_the_runtime_fails_on_fail_the_others_are_scored_in_order(marked: list[int]) -> None:
    x = np.arange(10, dtype=np.float64) + 1
    x[marked] = MARKER
    model = Fussy()
    scored = score_isolating(model, {"x": x}, len(x))
    good = [i for i in range(10) if i not in marked]
    assert sorted(scored.failed) == marked
    assert all(message == "bad row with x=-1.0" for message in scored.failed.values())
    assert scored.rows.tolist() == good
    if not good:
        assert scored.batch is None
        return
    assert scored.batch is not None
    assert scored.batch.values is not None and scored.batch.values.tolist() == (x[good] * 10).tolist()
    assert scored.batch.labels == [str(int(v)) for v in x[good].tolist()]
    assert scored.batch.tensors["twice"].tolist() == np.stack([x[good]] * 2, axis=1).tolist()
    if not marked:
        assert model.calls == [10]  # one call when nothing fails


def test_a_runtime_failing_without_a_message_is_named_by_its_exception() -> None:
    scored = score_isolating(Fussy(empty_message=True), {"x": np.array([1.0, MARKER])}, 2)
    assert scored.failed == {1: "RuntimeError"} and scored.rows.tolist() == [0]


def test_scores_that_do_not_check_out_fail_like_an_exception() -> None:
    class NonFinite(Fussy):
        def score_batch(self, inputs: InputArrays) -> ScoreBatch:
            return ScoreBatch(values=np.asarray(inputs["x"], dtype=np.float64) / 0.0 * 0.0)  # all NaN

    with np.errstate(divide="ignore", invalid="ignore"):
        scored = score_isolating(NonFinite(), {"x": np.array([1.0, 2.0, 3.0])}, 3)
    assert scored.batch is None
    assert scored.failed == dict.fromkeys(range(3), "the model returned a non-finite value")
