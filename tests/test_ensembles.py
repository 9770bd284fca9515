"""Ensembles and speculative serving in the serving core: combinations checked against the members' own
results, bad ensembles refused, a slow primary served by its fallback within the deadline."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from modelstream.contract import InputArrays, ModelOptions, ScoreBatch
from modelstream.policies import PolicyError, from_message, kept, resolve, single_version
from modelstream.policies.ensemble import combine
from modelstream.policies.plan import EnsemblePlan, Method
from modelstream.serving import ModelServer, ServingSettings
from modelstream.testing import CountingMetrics, ManualClock, MemoryKeyContext, letters, scores, shadow_scores
from protobufs.modelstream_pb2 import (
    DeadLetter,
    Ensemble,
    ModelDescriptor,
    RolloutPolicy,
    Route,
    ScoreResult,
    Speculative,
)
from tests.conftest import WINE_DIR
from tests.onnx_builders import wine_regression
from tests.test_serving import incoming
from tests.test_serving_rollout import batch

D = ModelDescriptor
CLASSIFIERS = {
    "tree": "winequalityDecisionTreeClassification.pmml",
    "forest": "winequalityRandonForrestClassification.pmml",
    "mlp": "winequalityMultilayerPerceptron.pmml",
}
REGRESSIONS = {
    "linear": "winequalityLinearRegression.pmml",
    "gaussian": "winequalityGeneralizedLinearRegressionGaussian.pmml",
}


def plan(method: int, members: tuple[str, ...], weights: tuple[float, ...] = ()) -> EnsemblePlan:
    return EnsemblePlan(method, members, weights or (1.0,) * len(members), False, "e")


def test_a_vote_takes_the_most_frequent_class_and_a_tie_goes_to_the_earliest_member() -> None:
    members = [
        ScoreBatch(labels=["a", "a", "b", "c"]),
        ScoreBatch(labels=["b", "a", "c", "d"]),
        ScoreBatch(labels=["b", "b", "a", "c"]),
        ScoreBatch(labels=["a", "c", "b", "d"]),
    ]
    voted = combine(plan(Method.VOTE, ("1", "2", "3", "4")), members, [None] * 4)
    # row 0: a 2, b 2 -> member 1's a; row 1: a 2; row 2: b 2 -> b; row 3: c 2, d 2 -> member 1's c
    assert voted.labels == ["a", "a", "b", "c"]
    assert voted.probabilities is not None
    shares = dict(zip(voted.classes, voted.probabilities[0], strict=True))
    assert shares["a"] == shares["b"] == 0.5


def test_a_mean_of_values_is_weighted_and_of_probabilities_aligns_classes() -> None:
    values = [ScoreBatch(values=np.array([1.0, 2.0])), ScoreBatch(values=np.array([3.0, 6.0]))]
    mean = combine(plan(Method.MEAN, ("1", "2"), (1.0, 3.0)), values, [None, None])
    assert mean.values is not None and mean.values.tolist() == [2.5, 5.0]
    probabilities = [
        ScoreBatch(labels=["x"], probabilities=np.array([[0.6, 0.4]]), classes=("x", "y")),
        ScoreBatch(labels=["z"], probabilities=np.array([[0.1, 0.1, 0.8]]), classes=("y", "x", "z")),
    ]
    mean = combine(plan(Method.MEAN, ("1", "2")), probabilities, [None, None])
    assert mean.classes == ("x", "y", "z") and mean.labels == ["z"]
    np.testing.assert_allclose(mean.probabilities, [[0.35, 0.25, 0.4]])  # type: ignore[arg-type]


def test_max_confidence_and_best_quality_pick_a_member() -> None:
    members = [
        ScoreBatch(labels=["x", "x"], probabilities=np.array([[0.9, 0.1], [0.55, 0.45]]), classes=("x", "y")),
        ScoreBatch(labels=["y", "y"], probabilities=np.array([[0.2, 0.8], [0.3, 0.7]]), classes=("x", "y")),
    ]
    confident = combine(plan(Method.MAX_CONFIDENCE, ("1", "2")), members, [None, None])
    assert confident.labels == ["x", "y"]
    assert combine(plan(Method.BEST_QUALITY, ("1", "2")), members, [0.7, 0.9]) is members[1]


@pytest.fixture
def server() -> ModelServer:
    settings = ServingSettings(stats_interval_ms=1000, speculative_deadline_ms=20)
    return ModelServer(settings, ModelOptions(), clock_ms=ManualClock(), metrics=CountingMetrics())


def publish(
    server: ModelServer, ctx: MemoryKeyContext, version: str, data: bytes, kind: int, **extra: object
) -> None:
    raw = D(name=version, dataType="wine", modeltype=kind, version=version, data=data, staged=True, **extra)  # type: ignore[arg-type]
    assert not letters(server.on_model("wine", incoming(raw.SerializeToString()), ctx))


def ensemble_policy(version: int, method: int, members: list[str], member_results: bool = True) -> bytes:
    ensemble = Ensemble(members=[Route(model_version=m) for m in members], member_results=member_results)
    ensemble.method = method  # type: ignore[assignment]
    return RolloutPolicy(data_type="wine", version=version, ensemble=ensemble).SerializeToString()


def test_a_vote_of_three_classifiers_serves_one_combined_result_per_record(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    for version, file in CLASSIFIERS.items():
        publish(server, ctx, version, (WINE_DIR / file).read_bytes(), D.PMML)
    assert not letters(
        server.on_policy("wine", incoming(ensemble_policy(1, Method.VOTE, list(CLASSIFIERS))), ctx)
    )
    outputs = server.on_records("wine", batch(200), ctx)
    served, members = scores(outputs), shadow_scores(outputs)
    assert len(served) == 200 and len(members) == 600
    by_record: dict[str, dict[str, str]] = {}
    for m in members:
        assert m.role == ScoreResult.MEMBER
        by_record.setdefault(m.record_id, {})[m.model_version] = m.label
    for result in served:
        assert (result.model_name, result.model_version) == ("ensemble", "vote(tree,forest,mlp)")
        assert list(result.members) == list(CLASSIFIERS) and result.policy_version == 1
        labels = [by_record[result.record_id][v] for v in CLASSIFIERS]
        counts = Counter(labels)
        top = max(counts.values())
        assert result.label == next(label for label in labels if counts[label] == top)


def test_an_ensemble_mixing_a_classifier_and_a_regression_is_refused(server: ModelServer) -> None:
    ctx = MemoryKeyContext()
    publish(server, ctx, "tree", (WINE_DIR / CLASSIFIERS["tree"]).read_bytes(), D.PMML)
    publish(server, ctx, "linear", (WINE_DIR / REGRESSIONS["linear"]).read_bytes(), D.PMML)
    outputs = server.on_policy("wine", incoming(ensemble_policy(1, Method.MEAN, ["tree", "linear"])), ctx)
    [letter] = letters(outputs)
    assert letter.reason == DeadLetter.POLICY_INVALID and "mix kinds of output" in letter.message
    assert {s.model_version for s in scores(server.on_records("wine", batch(5), ctx))} == {"tree"}
    missing = server.on_policy("wine", incoming(ensemble_policy(2, Method.VOTE, ["tree", "nope"])), ctx)
    assert "'nope' is not loaded" in letters(missing)[0].message


def speculative_policy(version: int, primary: str, fallback: str, deadline_ms: int) -> bytes:
    speculative = Speculative(primary_version=primary, fallback_version=fallback, deadline_ms=deadline_ms)
    return RolloutPolicy(data_type="wine", version=version, speculative=speculative).SerializeToString()


def test_a_slow_primary_is_served_by_its_fallback_and_its_results_come_late() -> None:
    clock = ManualClock()
    settings = ServingSettings(stats_interval_ms=1000, speculative_deadline_ms=20)
    server = ModelServer(settings, ModelOptions(), clock_ms=clock)
    ctx = MemoryKeyContext()
    publish(server, ctx, "slow", wine_regression(40), D.ONNX)  # ~100 ms per batch
    publish(server, ctx, "fast", wine_regression(0, width=2), D.ONNX)
    assert not letters(server.on_policy("wine", incoming(speculative_policy(1, "slow", "fast", 10)), ctx))
    started = time.monotonic()
    first = scores(server.on_records("wine", batch(20), ctx))
    assert time.monotonic() - started < 0.09, "the batch did not wait for the primary"
    assert {(s.model_version, s.speculation) for s in first} == {("fast", ScoreResult.FALLBACK)}
    time.sleep(0.3)  # the primary finishes its batch meanwhile
    outputs = server.on_records("wine", batch(20, start=20), ctx)
    late = shadow_scores(outputs)
    assert len(late) == 20 and {(s.model_version, s.role) for s in late} == {("slow", ScoreResult.LATE)}
    assert sorted(s.record_id for s in late) == sorted(s.record_id for s in first)
    assert len(scores(outputs)) == 20
    clock.now += 2000  # the next batch publishes the stats: every record so far fell back
    server.on_records("wine", batch(1, start=100), ctx)
    assert ctx.stats is not None
    roles = {v.model.version: (v.role, v.share) for v in ctx.stats.versions}
    assert roles == {"slow": ("primary", 0.0), "fast": ("fallback", 100.0)}

    # a generous deadline: the primary answers in time
    server.on_policy("wine", incoming(speculative_policy(2, "slow", "fast", 2000)), ctx)
    time.sleep(0.3)
    in_time = scores(server.on_records("wine", batch(20, start=40), ctx))
    assert {(s.model_version, s.speculation) for s in in_time} == {("slow", ScoreResult.PRIMARY_IN_TIME)}
    clock.now += 2000
    server.on_records("wine", batch(1, start=101), ctx)
    roles = {v.model.version: (v.role, v.share) for v in ctx.stats.versions}
    assert roles == {"slow": ("primary", 100.0), "fast": ("fallback", 0.0)}, "counted from the new policy"


def test_a_primary_bound_to_its_thread_is_scored_on_the_tasks_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """JPMML inside Flink's JVM can only be called from the task's thread (model/jpmml_jvm.py)."""
    from model.onnx_model import OnnxModel

    threads: list[int] = []
    score_batch = OnnxModel.score_batch

    def recording(self: OnnxModel, inputs: InputArrays) -> ScoreBatch:
        threads.append(threading.get_ident())
        return score_batch(self, inputs)

    monkeypatch.setattr(OnnxModel, "score_batch", recording)
    monkeypatch.setattr(OnnxModel, "scores_on_any_thread", False)
    server = ModelServer(ServingSettings(speculative_deadline_ms=20), ModelOptions())
    ctx = MemoryKeyContext()
    publish(server, ctx, "primary", wine_regression(0), D.ONNX)
    publish(server, ctx, "fast", wine_regression(0, width=2), D.ONNX)
    server.on_policy("wine", incoming(speculative_policy(1, "primary", "fast", 1000)), ctx)
    threads.clear()
    served = scores(server.on_records("wine", batch(20), ctx))
    assert {(s.model_version, s.speculation) for s in served} == {("primary", ScoreResult.PRIMARY_IN_TIME)}
    assert threads == [threading.get_ident()] * 2  # the primary and the fallback, both here


def test_ensemble_and_speculative_plans_survive_state() -> None:
    loaded = ["a", "b", "c"]
    current = single_version("a", "wine", 2)
    for message in (
        RolloutPolicy(
            data_type="wine", version=1, ensemble=Ensemble(members=[Route(model_version=v) for v in loaded])
        ),
        RolloutPolicy(
            data_type="wine", version=1, speculative=Speculative(primary_version="b", fallback_version="a")
        ),
    ):
        plan = resolve(message, loaded, current, "wine", 2)
        assert from_message(plan.to_message("wine")) == plan
        assert set(kept(loaded, plan)) >= {"a", "b"}
    twice = RolloutPolicy(
        data_type="wine", version=1, ensemble=Ensemble(members=[Route(model_version="a")] * 2)
    )
    with pytest.raises(PolicyError, match="appears twice"):
        resolve(twice, loaded, current, "wine", 2)
