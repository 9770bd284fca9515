"""What a rollout policy costs: the job's throughput and p99 serving one model against the same job
serving a 2-version canary (80/20) with a third version shadowing every record, and a vote of three
versions (an ensemble), in one run on the same records.

    .venv/bin/python -m benchmarks.rollout [--records 100000] [--warm 100000] [--rounds 2]
        [--out docs/benchmarks.md]

All three versions are the same ONNX wine model (published as v1, v2, v3), so the difference is routing
(hashing each record id, splitting each micro-batch), the extra model calls and the shadow's results
or the vote. p99 is of score-read time minus record time at 1,000 rec/s for 5 s, after the burst.
Each round starts a job on fresh topics, publishes the model(s) and the policy, waits until the job
reports them, sends an untimed warm-up burst (--warm records), then puts --records records on the data
topic as fast as the producer goes; a variant's throughput is those records over the time from the first
to the last of their served scores (`scored_at`). The variants alternate; each figure is the median of
its rounds.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks import variants
from benchmarks.variants import Variant
from benchmarks.wine_models import descriptor
from client import publish, rollout
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import RolloutPolicy, ScoreResult, StatsSnapshot


def _one_model(settings: Settings) -> None:
    publish.publish_model(settings, descriptor("onnx", "v1"))


def _with_policy(policy: RolloutPolicy) -> Callable[[Settings], None]:
    def prepare(settings: Settings) -> None:
        _one_model(settings)
        for version in ("v2", "v3"):
            staged = descriptor("onnx", version)
            staged.staged = True
            publish.publish_model(settings, staged)
        publish.publish_policy(settings, policy)

    return prepare


def _policy_loaded(snapshot: StatsSnapshot) -> bool:
    return snapshot.policy.version > 0


def _canary_share(scores: list[ScoreResult]) -> str:
    return f"canary share {sum(s.model_version == 'v2' for s in scores) / len(scores):.3f}"


VARIANTS = [
    Variant("one model", _one_model),
    Variant(
        "canary 80/20 + shadow",
        _with_policy(rollout.rollout_policy("wine", canary="v2", percent=20, shadows=("v3",))),
        _policy_loaded,
        report=_canary_share,
    ),
    Variant(
        "vote of 3 (ensemble)",
        _with_policy(rollout.rollout_policy("wine", ensemble="vote", members="v1,v2,v3")),
        _policy_loaded,
    ),
]


if __name__ == "__main__":
    variants.main("benchmarks.rollout", __doc__ or "", VARIANTS, 2, "rollout", "## Rollout policies")
