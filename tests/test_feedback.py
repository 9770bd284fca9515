"""Feedback: parsing, the bounded ring of served results, live accuracy and errors per version (shadows
included), unmatched and invalid feedback counted, and the ring kept in state."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import orjson
import pytest

from modelstream.codecs import SourceRecord
from modelstream.contract import ModelOptions, ScoreBatch
from modelstream.feedback import MAX_VERSIONS, FeedbackError, ServedRing, parse, parse_batch
from modelstream.interface import Sink
from modelstream.policies.performance import PerformancePlan, choose
from modelstream.records import read_wine_csv, wine_record_from_row
from modelstream.serving import ModelServer, ServingSettings
from modelstream.testing import (
    CountingMetrics,
    ManualClock,
    MemoryKeyContext,
    letters,
    scores,
    shadow_scores,
    source_record,
)
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import (
    DeadLetter,
    LiveQuality,
    PerformancePolicy,
    RolloutPolicy,
    Route,
    ServedResults,
)
from tests.conftest import WINE_DIR
from tests.test_serving_rollout import batch, model


def message(record_id: str, **label: object) -> bytes:
    return orjson.dumps({"dataType": "wine", "record_id": record_id, **label})


def feedback(*messages: bytes) -> list[SourceRecord]:
    """Feedback messages as the JVM frames them among a micro-batch's records."""
    return [source_record(m, Encoding.FEEDBACK, offset=n, topic="feedback") for n, m in enumerate(messages)]


def test_feedback_messages_parse_or_say_what_is_wrong() -> None:
    assert parse(message("r-1", label=5.0)).label == "5"
    assert parse(message("r-1", value=5.5)).value == 5.5
    for raw, why in ((b"[1]", "not an object"), (b"{", "not JSON"), (b'{"record_id": "a"}', "no dataType")):
        with pytest.raises(FeedbackError, match=why):
            parse(raw)
    unkeyed = ModelServer(ServingSettings(), ModelOptions()).reject_untyped(feedback(b'{"record_id": "a"}'))
    assert [(sink, DeadLetter.FromString(v).reason) for sink, _, v in unkeyed] == [
        (Sink.DEAD_LETTERS, DeadLetter.FEEDBACK_INVALID)
    ]
    assert "no dataType" in DeadLetter.FromString(unkeyed[0][2]).message


def test_the_ring_is_bounded_in_records_and_in_time() -> None:
    ring = ServedRing(3, 1000)
    ring.add("v1", ["v1"], ["a", "b", "c", "d"], ScoreBatch(labels=["5", "6", "5", "7"]), now_ms=0)
    assert ring.take("a", 10) is None  # evicted by "d"
    assert ring.take("b", 10) == {"v1": "6"}
    assert ring.take("b", 10) is None  # taken once
    assert ring.take("c", 2000) is None  # too old
    restored = ServedRing(3, 1000, ServedResults.FromString(ring.to_message().SerializeToString()))
    assert restored.take("d", 10) == {"v1": "7"}


def test_the_ring_grows_with_its_records_up_to_its_bound_and_restores_at_its_size() -> None:
    ring = ServedRing(300, 1000)
    assert ring.size == 64  # a data type with few records keeps little
    ids = [f"r{n}" for n in range(200)]
    ring.add("v1", ["v1"], ids, ScoreBatch(values=np.arange(200, dtype=np.float64)), now_ms=0)
    assert ring.size == 256 and ring.take("r0", 0) == {"v1": 0.0}
    more = [f"s{n}" for n in range(200)]
    ring.add("v1", ["v1"], more, ScoreBatch(values=np.arange(200, dtype=np.float64)), now_ms=0)
    assert ring.size == 300 and ring.take("r1", 0) is None  # the oldest made room
    restored = ServedRing(300, 1000, ServedResults.FromString(ring.to_message().SerializeToString()))
    assert restored.size == 300 and restored.take("s199", 0) == {"v1": 199.0}


def test_the_ring_restores_from_raw_arrays_and_from_state_written_before_them() -> None:
    ring = ServedRing(4, 1000)
    ring.add("v1", ["v1", "v2"], ["a", "b"], ScoreBatch(values=np.array([1.5, 2.5])), now_ms=7)
    ring.add("v2", ["v1", "v2"], ["b"], ScoreBatch(values=np.array([3.0])), now_ms=8)
    written = ring.to_message()
    assert not written.predictions and len(written.predictions_raw) == 4 * 2 * 8  # two columns in use
    restored = ServedRing(4, 1000, ServedResults.FromString(written.SerializeToString()))
    assert restored.take("b", 9) == {"v1": 2.5, "v2": 3.0}
    older = ServedResults(
        record_ids=written.record_ids,
        stored_at=[7, 8, 0, 0],
        predictions=np.full((4, MAX_VERSIONS), np.nan).ravel().tolist(),
        versions=["v1"],
        classifier=[False],
    )
    older.predictions[0] = 1.5
    assert ServedRing(4, 1000, older).take("a", 9) == {"v1": 1.5}


def test_a_record_keeps_one_slot_with_a_column_per_version() -> None:
    ring = ServedRing(10, 1000)
    ring.add("v1", ["v1", "v2"], ["a"], ScoreBatch(values=np.array([5.5])), 0)
    ring.add("v2", ["v1", "v2"], ["a"], ScoreBatch(values=np.array([6.0])), 0)
    assert ring.take("a", 0) == {"v1": 5.5, "v2": 6.0}


def test_classifiers_count_correct_labels_and_regressions_sum_errors() -> None:
    ring = ServedRing(10, 1000)
    ring.add("c", ["c", "r"], ["a", "b"], ScoreBatch(labels=["5", "6"]), 0)
    ring.add("r", ["c", "r"], ["a", "b"], ScoreBatch(values=np.array([5.5, 4.0])), 0)
    qualities = {"c": LiveQuality(), "r": LiveQuality()}
    labels, broken = parse_batch([message("a", label=5), message("b", value=5, label="5")])
    assert not broken and ring.join(labels, 0, qualities) == (0, 0)
    assert (qualities["c"].labelled, qualities["c"].correct, qualities["c"].regression) == (2, 1, False)
    regression = qualities["r"]
    assert regression.regression and regression.abs_error_sum == 1.5 and regression.squared_error_sum == 1.25


def test_feedback_no_version_can_use_is_invalid_and_feedback_for_records_not_kept_unmatched() -> None:
    ring = ServedRing(10, 1000)
    ring.add("c", ["c", "r"], ["x"], ScoreBatch(labels=["5"]), 0)
    ring.add("r", ["c", "r"], ["y", "u"], ScoreBatch(values=np.array([1.0, 2.0])), 0)
    qualities = {"c": LiveQuality(), "r": LiveQuality()}
    messages = [
        message("x", value=5.0),
        message("y", label="high"),
        message("u", label="nan"),  # would make the error sums NaN for good
        message("z", label="5"),
        message("x", label="5"),
    ]
    labels, broken = parse_batch([*messages, b"[1]"])
    assert broken == [(5, "a JSON list, not an object")]
    assert ring.join(labels, 0, qualities) == (2, 3)  # x's second feedback: taken once already
    assert qualities == {"c": LiveQuality(), "r": LiveQuality()}
    ring.add("c", ["c"], ["w"], ScoreBatch(labels=["5"]), 0)
    assert ring.join(parse_batch([message("w", label="9")])[0], 0, qualities) == (0, 0)
    assert (qualities["c"].labelled, qualities["c"].correct) == (1, 0)  # a class no version predicted


def test_the_core_keeps_live_accuracy_per_version_shadows_included() -> None:
    clock = ManualClock()
    server = ModelServer(ServingSettings(stats_interval_ms=0), ModelOptions(), clock_ms=clock)
    ctx = MemoryKeyContext()
    for raw in (
        model("v1", file="wine_quality_logreg.onnx"),
        model("v2", staged=True, file="winequalityDecisionTreeClassification.pmml"),
    ):
        assert not letters(server.on_model("wine", (raw, 0, 0), ctx))
    policy = RolloutPolicy(data_type="wine", version=1, serve=[Route(model_version="v1", weight=1)],
                           shadow=[Route(model_version="v2", weight=100)])  # fmt: skip
    assert not letters(server.on_policy("wine", (policy.SerializeToString(), 0, 0), ctx))
    outputs = server.on_records("wine", batch(40), ctx)
    served, shadowed = scores(outputs), shadow_scores(outputs)
    assert len(served) == len(shadowed) == 40
    truth = {s.record_id: ("5" if i % 2 else "6") for i, s in enumerate(served)}
    labels = [message(record_id, label=label) for record_id, label in truth.items()]
    assert not letters(server.on_feedback("wine", feedback(*labels[:10]), ctx))  # a micro-batch of them
    for raw in labels[10:]:
        server.on_feedback("wine", feedback(raw), ctx)
    server.on_feedback("wine", feedback(message("unknown", label="5")), ctx)
    server.on_feedback("wine", feedback(message(served[0].record_id, label="5")), ctx)  # again: unmatched
    extra = scores(server.on_records("wine", batch(1, start=500), ctx))
    server.on_feedback("wine", feedback(message(extra[0].record_id)), ctx)  # no label: invalid
    broken = server.on_feedback("wine", feedback(b'{"dataType": "wine", "record_id": "x"'), ctx)
    assert [d.reason for d in letters(broken)] == [DeadLetter.FEEDBACK_INVALID]
    assert ctx.stats is not None
    versions = {v.model.version: v.quality for v in ctx.stats.versions}
    for name, results in (("v1", served), ("v2", shadowed)):
        offline = sum(r.label == truth[r.record_id] for r in results)
        assert (versions[name].labelled, versions[name].correct) == (40, offline)
    assert (ctx.stats.feedback_unmatched, ctx.stats.feedback_invalid) == (2, 1)


def test_results_kept_in_state_match_feedback_after_a_restore() -> None:
    server = ModelServer(ServingSettings(stats_interval_ms=0), ModelOptions())
    ctx = MemoryKeyContext()
    server.on_model("wine", (model("v1", file="wine_quality_logreg.onnx"), 0, 0), ctx)
    served = scores(server.on_records("wine", batch(5), ctx))
    server.on_records("wine", batch(1, start=100), ctx)  # the stats (and the ring) are stored
    restored = ModelServer(ServingSettings(stats_interval_ms=0), ModelOptions())
    restored.on_feedback("wine", feedback(message(served[0].record_id, label=served[0].label)), ctx)
    assert ctx.stats is not None and ctx.stats.current.quality.correct == 1


def test_choose_serves_the_best_ranked_candidate_and_keeps_the_top_n() -> None:
    plan = PerformancePlan(5, ("v1", "v2", "v3"), 10, 0, 2)
    few = {"v1": LiveQuality(labelled=5, correct=5), "v2": LiveQuality(labelled=50, correct=40),
           "v3": LiveQuality()}  # fmt: skip
    assert choose(plan, few, "wine").serve == (("v1", 1.0),)  # only one ranked: the first serves
    ranked = {**few, "v1": LiveQuality(labelled=50, correct=30)}
    chosen = choose(plan, ranked, "wine")
    assert chosen.serve == (("v2", 1.0),) and chosen.shadow == (("v1", 100.0), ("v3", 100.0))
    top = choose(PerformancePlan(5, ("v1", "v2", "v3"), 10, 1, 2), ranked, "wine")
    assert top.shadow == (("v3", 100.0),)  # v1 ranked out; v3 not ranked yet
    rmse = {"a": LiveQuality(labelled=10, squared_error_sum=40.0, regression=True),
            "b": LiveQuality(labelled=10, squared_error_sum=10.0, regression=True)}  # fmt: skip
    assert choose(PerformancePlan(1, ("a", "b"), 10, 0, 2), rmse, "wine").serve == (("b", 1.0),)


def test_a_best_performer_policy_ends_up_serving_the_better_version() -> None:
    server = ModelServer(ServingSettings(stats_interval_ms=0), ModelOptions())
    ctx = MemoryKeyContext()
    tree = "winequalityDecisionTreeClassification.pmml"
    for raw in (model("v1", file="wine_quality_logreg.onnx"), model("v2", staged=True, file=tree)):
        assert not letters(server.on_model("wine", (raw, 0, 0), ctx))
    policy = PerformancePolicy(
        data_type="wine", version=1, candidates=["v1", "v2"], min_labelled=30, keep_top=1
    )
    assert not letters(server.on_performance("wine", (policy.SerializeToString(), 0, 0), ctx))
    outputs = server.on_records("wine", wine_batch(60), ctx)
    served, shadowed = scores(outputs), shadow_scores(outputs)
    assert {s.model_version for s in served} == {"v1"} and {s.model_version for s in shadowed} == {"v2"}
    truth = {s.record_id: s.label for s in shadowed}  # v2 is right every time
    for record_id, label in truth.items():
        server.on_feedback("wine", feedback(message(record_id, label=label)), ctx)
    after = scores(server.on_records("wine", wine_batch(10, start=1000), ctx))
    assert {s.model_version for s in after} == {"v2"}
    assert list(ctx.versions) == ["v2"]  # keep_top 1: v1 ranked out and unloaded
    restored = ModelServer(ServingSettings(stats_interval_ms=0), ModelOptions())
    assert {s.model_version for s in scores(restored.on_records("wine", wine_batch(5), ctx))} == {"v2"}


def test_a_performance_policy_naming_a_version_not_loaded_is_dead_lettered() -> None:
    server = ModelServer(ServingSettings(stats_interval_ms=0), ModelOptions())
    ctx = MemoryKeyContext()
    server.on_model("wine", (model("v1", file="wine_quality_logreg.onnx"), 0, 0), ctx)
    policy = PerformancePolicy(data_type="wine", version=1, candidates=["v1", "v9"], min_labelled=5)
    rejected = letters(server.on_performance("wine", (policy.SerializeToString(), 0, 0), ctx))
    assert [r.reason for r in rejected] == [DeadLetter.POLICY_INVALID] and "v9" in rejected[0].message


def wine_batch(n: int, start: int = 0) -> list[SourceRecord]:
    """Varied wine records (the tutorial's CSV rows), so versions disagree on some."""
    rows = read_wine_csv(str(WINE_DIR / "winequality_red.csv"))
    return [
        source_record(
            wine_record_from_row(rows[i % len(rows)], "wine", 0, f"w-{i}").SerializeToString(), offset=i
        )
        for i in range(start, start + n)
    ]


def test_no_results_are_kept_for_feedback_when_its_bound_is_zero() -> None:
    server = ModelServer(ServingSettings(stats_interval_ms=0, feedback_max_records=0), ModelOptions())
    ctx = MemoryKeyContext()
    server.on_model("wine", (model("v1", file="wine_quality_logreg.onnx"), 0, 0), ctx)
    served = scores(server.on_records("wine", batch(5), ctx))
    server.on_feedback("wine", feedback(message(served[0].record_id, label=served[0].label)), ctx)
    assert ctx.stats is not None and ctx.stats.current.quality.labelled == 0
    assert ctx.stats.feedback_unmatched == 1 and ctx.served is None


def test_a_batch_of_new_records_takes_the_slots_the_one_by_one_path_would() -> None:
    class OneByOne(ServedRing):
        def _claim(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
            return self._claim_each(ids)

    rng = np.random.default_rng(7)
    fast, slow = ServedRing(300, 10**9), OneByOne(300, 10**9)
    seen: list[str] = []
    for step in range(200):
        size = int(rng.integers(1, 90))
        new = [f"r-{step}-{i}" for i in range(size)]
        ids = new if step % 3 else new[: size // 2] + rng.choice(seen or new, size - size // 2).tolist()
        seen += new
        values = rng.normal(size=len(ids))
        for ring in (fast, slow):
            ring.add("v1", ["v1"], ids, ScoreBatch(values=values), step)
            ring.take(seen[int(rng.integers(len(seen)))] if step % 5 == 0 else "", step)
    assert fast.to_message() == slow.to_message()


def test_feedback_for_a_data_type_without_a_model_is_counted_and_a_broken_one_dead_lettered() -> None:
    metrics = CountingMetrics()
    server = ModelServer(ServingSettings(), ModelOptions(), metrics=metrics)
    ctx = MemoryKeyContext()
    outputs = server.on_feedback("wine", feedback(message("r-1", label="5"), b"[1, 2]", message("r-2")), ctx)
    assert [d.reason for d in letters(outputs)] == [DeadLetter.FEEDBACK_INVALID]
    assert metrics.feedback_without_model_count == 2 and ctx.stats is None and not scores(outputs)
