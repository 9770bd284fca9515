"""Feedback: parsing, the bounded ring of served results, live accuracy and errors per version (shadows
included), unmatched and invalid feedback counted, and the ring kept in state."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from modelstream.contract import ModelOptions, ScoreBatch
from modelstream.feedback import FeedbackError, ServedRing, parse, score
from modelstream.interface import Sink
from modelstream.serving import ModelServer, ServingSettings, route_feedback
from modelstream.testing import ManualClock, MemoryKeyContext, letters, scores, shadow_scores
from protobufs.modelstream_pb2 import DeadLetter, LiveQuality, RolloutPolicy, Route, ServedResults
from tests.test_serving_rollout import batch, model


def message(record_id: str, **label: object) -> bytes:
    return orjson.dumps({"dataType": "wine", "record_id": record_id, **label})


def test_feedback_messages_parse_or_say_what_is_wrong() -> None:
    assert parse(message("r-1", label=5.0)).label == "5"
    assert parse(message("r-1", value=5.5)).value == 5.5
    for raw, why in ((b"[1]", "not an object"), (b"{", "not JSON"), (b'{"record_id": "a"}', "no dataType")):
        with pytest.raises(FeedbackError, match=why):
            parse(raw)
    data_type, letter = route_feedback("feedback", (b'{"dataType": "wine"}', 0, 7))
    assert data_type is None and letter is not None and letter[0] is Sink.DEAD_LETTERS
    assert DeadLetter.FromString(letter[2]).reason == DeadLetter.FEEDBACK_INVALID


def test_the_ring_is_bounded_in_records_and_in_time() -> None:
    ring = ServedRing(3, 1000)
    ring.add("v1", ["v1"], ["a", "b", "c", "d"], ScoreBatch(labels=["5", "6", "5", "7"]), now_ms=0)
    assert ring.take("a", 10) is None  # evicted by "d"
    assert ring.take("b", 10) == {"v1": "6"}
    assert ring.take("b", 10) is None  # taken once
    assert ring.take("c", 2000) is None  # too old
    restored = ServedRing(3, 1000, ServedResults.FromString(ring.to_message().SerializeToString()))
    assert restored.take("d", 10) == {"v1": "7"}


def test_a_record_keeps_one_slot_with_a_column_per_version() -> None:
    ring = ServedRing(10, 1000)
    ring.add("v1", ["v1", "v2"], ["a"], ScoreBatch(values=np.array([5.5])), 0)
    ring.add("v2", ["v1", "v2"], ["a"], ScoreBatch(values=np.array([6.0])), 0)
    assert ring.take("a", 0) == {"v1": 5.5, "v2": 6.0}


def test_classifiers_count_correct_labels_and_regressions_sum_errors() -> None:
    quality = LiveQuality()
    feedback = parse(message("r", label=5))
    assert score(quality, "5", feedback) and score(quality, "6", feedback)
    assert (quality.labelled, quality.correct, quality.regression) == (2, 1, False)
    regression = LiveQuality()
    assert score(regression, 5.5, parse(message("r", value=5))) and score(
        regression, 4.0, parse(message("r", label=5))
    )
    assert regression.regression and regression.abs_error_sum == 1.5 and regression.squared_error_sum == 1.25
    assert not score(LiveQuality(), "5", parse(message("r", value=5.0)))  # a classifier needs a label


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
    for record_id, label in truth.items():
        server.on_feedback("wine", (message(record_id, label=label), 0, 0), ctx)
    server.on_feedback("wine", (message("unknown", label="5"), 0, 0), ctx)
    server.on_feedback("wine", (message(served[0].record_id, label="5"), 0, 0), ctx)  # again: unmatched
    server.on_feedback("wine", (b'{"dataType": "wine", "record_id": "x"', 0, 0), ctx)
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
    restored.on_feedback("wine", (message(served[0].record_id, label=served[0].label), 0, 0), ctx)
    assert ctx.stats is not None and ctx.stats.current.quality.correct == 1
