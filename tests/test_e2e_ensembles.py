"""Ensembles and speculative serving through the real broker and job, set up with `modelstream rollout`:
a vote of three wine classifiers and a mean of two regressions on all 1,599 rows equal the combination of
each member's own runtime output; a slow primary under a deadline is served by its fallback."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from client import catalog, cli, publish, rollout
from client.messages import decode_dead_letter, decode_score
from modelstream.records import read_wine_csv
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, ScoreResult, StatsSnapshot
from tests import references
from tests.conftest import WINE_DIR, JobStarter, read_topic, wait_for
from tests.onnx_builders import wine_regression

pytestmark = pytest.mark.e2e
CSV = WINE_DIR / "winequality_red.csv"
ROWS = np.asarray(read_wine_csv(str(CSV)), dtype=np.float64)[:, :11]
D = ModelDescriptor
VOTE = {
    "tree": "winequalityDecisionTreeClassification.pmml",
    "forest": "winequalityRandonForrestClassification.pmml",
    "mlp": "winequalityMultilayerPerceptron.pmml",
}
MEAN = {
    "linear": "winequalityLinearRegression.pmml",
    "gaussian": "winequalityGeneralizedLinearRegressionGaussian.pmml",
}


def _publish(settings: Settings, data_type: str, version: str, data: bytes, kind: int, staged: bool) -> D:
    descriptor = D(name=version, dataType=data_type, version=version, data=data, staged=staged)
    descriptor.modeltype = kind  # type: ignore[assignment]
    publish.publish_model(settings, descriptor)
    return descriptor


def _loaded(settings: Settings, data_type: str, versions: list[str]) -> bool:
    snapshot = catalog.latest_stats(settings).get(data_type, StatsSnapshot())
    return set(versions) <= set(rollout.loaded_versions(snapshot))


def _by_row(values: list[bytes], data_type: str) -> dict[int, ScoreResult]:
    scores = [decode_score(v) for v in values]
    mine = [s for s in scores if s.data_type == data_type]
    by_row = {int(s.record_id.rsplit("-", 1)[1]): s for s in mine}
    assert len(by_row) == len(mine) == len(ROWS), f"{data_type}: one served result per row"
    return by_row


@pytest.fixture
def cli_env(stack_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in stack_settings.to_env().items():
        monkeypatch.setenv(name, value)
    return stack_settings


def test_a_vote_and_a_mean_equal_the_combination_of_the_members_own_outputs(
    cli_env: Settings, start_job: JobStarter
) -> None:
    settings = cli_env
    job = start_job(settings)
    descriptors: dict[str, D] = {}
    for data_type, members in (("wine-vote", VOTE), ("wine-mean", MEAN)):
        for i, (version, file) in enumerate(members.items()):
            descriptors[version] = _publish(
                settings, data_type, version, (WINE_DIR / file).read_bytes(), D.PMML, staged=i > 0
            )
        wanted = (data_type, list(members))
        wait_for(lambda: _loaded(settings, *wanted), 120, f"{data_type}'s members loaded")  # noqa: B023
    assert cli.main(["rollout", "wine-vote", "--ensemble", "vote", "--members", ",".join(VOTE)]) == 0
    assert cli.main(["rollout", "wine-mean", "--ensemble", "mean", "--members", "linear=1,gaussian=3"]) == 0
    for data_type in ("wine-vote", "wine-mean"):
        publish.publish_records(settings, CSV, data_type=data_type, id_prefix=data_type)
    values = read_topic(settings, settings.scores_topic, 2 * len(ROWS), timeout_s=300, job=job)

    own = {version: references.score(descriptors[version], ROWS) for version in (*VOTE, *MEAN)}
    for i, result in _by_row(values, "wine-vote").items():
        labels = [own[version].labels[i] for version in VOTE]  # type: ignore[index]
        counts = Counter(labels)
        expected = next(label for label in labels if counts[label] == max(counts.values()))
        assert (result.label, result.model_name, result.model_version) == (
            expected, "ensemble", "vote(tree,forest,mlp)"
        ), i  # fmt: skip
        assert list(result.members) == list(VOTE)
    for i, result in _by_row(values, "wine-mean").items():
        expected_value = (own["linear"].values[i] + 3 * own["gaussian"].values[i]) / 4  # type: ignore[index]
        assert result.value == pytest.approx(expected_value, rel=1e-9), i
        assert result.model_version == "mean(linear,gaussian)"

    # an ensemble mixing a classifier and a regression is refused; the vote keeps serving
    _publish(settings, "wine-vote", "linear", (WINE_DIR / MEAN["linear"]).read_bytes(), D.PMML, staged=True)
    wait_for(lambda: _loaded(settings, "wine-vote", ["linear"]), 120, "the regression loaded")
    assert cli.main(["rollout", "wine-vote", "--ensemble", "vote", "--members", "tree,linear"]) == 0
    [letter] = [decode_dead_letter(v) for v in read_topic(settings, settings.dead_letters_topic, 1, job=job)]
    assert letter.reason == DeadLetter.POLICY_INVALID and "mix kinds of output" in letter.message
    publish.publish_records(settings, CSV, data_type="wine-vote", count=20, id_prefix="after")
    later = [
        decode_score(v) for v in read_topic(settings, settings.scores_topic, 2 * len(ROWS) + 20, job=job)
    ]
    assert {s.model_version for s in later if s.record_id.startswith("after-")} == {"vote(tree,forest,mlp)"}


def test_a_slow_primary_under_a_deadline_is_served_by_its_fallback(
    cli_env: Settings, start_job: JobStarter
) -> None:
    settings = cli_env
    job = start_job(settings)
    deadline_ms = 30
    fast, slow = wine_regression(0, width=2), wine_regression(60)  # slow: ~150 ms a micro-batch
    _publish(settings, "wine-spec", "fast", fast, D.ONNX, staged=False)
    _publish(settings, "wine-spec", "slow", slow, D.ONNX, staged=True)
    wait_for(lambda: _loaded(settings, "wine-spec", ["fast", "slow"]), 120, "both versions loaded")
    command = ["rollout", "wine-spec", "--speculative", "slow", "--fallback", "fast"]
    assert cli.main([*command, "--deadline-ms", str(deadline_ms)]) == 0

    # latency against the bound (the deadline plus the usual p99) is measured by benchmarks/speculative.py
    count = 3000
    publish.publish_records(settings, CSV, data_type="wine-spec", count=count, rate=1000, id_prefix="s")
    served = [decode_score(v) for v in read_topic(settings, settings.scores_topic, count, job=job)]
    speculative = [s for s in served if s.data_type == "wine-spec"]
    assert len({s.record_id for s in speculative}) == len(speculative) == count, "one served result each"
    fell_back = [s for s in speculative if s.speculation == ScoreResult.FALLBACK]
    assert fell_back and all(s.model_version == "fast" for s in fell_back)
    assert all(s.model_version == "slow" for s in speculative if s.speculation == ScoreResult.PRIMARY_IN_TIME)
    late = [decode_score(v) for v in read_topic(settings, settings.shadow_scores_topic, 1, job=job)]
    assert late and {(s.model_version, s.role) for s in late} == {("slow", ScoreResult.LATE)}
    # no record waited for the slow primary: a record's fallback result was out before its primary's
    # (how long it takes, against the latency bound, is benchmarks/speculative.py's: timing on this shared
    # machine is no test)
    served_at = {s.record_id: s.scored_at for s in fell_back}
    both = [(served_at[s.record_id], s.scored_at) for s in late if s.record_id in served_at]
    assert both and all(fallback <= primary for fallback, primary in both)
    assert any(fallback < primary for fallback, primary in both)

    def fallback_share() -> float:
        snapshot = catalog.latest_stats(settings).get("wine-spec", StatsSnapshot())
        return next((v.share for v in snapshot.versions if v.role == "fallback"), 0.0)

    wait_for(lambda: fallback_share() > 0, 30, "the stats to show the fallback's share")
    share = fallback_share()
    assert abs(share - 100 * len(fell_back) / count) < 5, share
