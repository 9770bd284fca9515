"""What a rollout policy costs: the job's throughput and p99 serving one model against the same job
serving a 2-version canary (80/20) with a third version shadowing every record, and a vote of three
versions (an ensemble), in one run on the same records.

    .venv/bin/python -m benchmarks.rollout [--records 100000] [--rounds 2] [--out docs/benchmarks.md]

All three versions are the same ONNX wine model (published as v1, v2, v3), so the difference is routing
(hashing each record id, splitting each micro-batch), the extra model calls and the shadow's results
or the vote. p99 is of score-read time minus record time at 1,000 rec/s for 5 s, after the burst.
Each round starts a job on fresh topics, publishes the model(s) and the policy, waits until the job
reports them, then puts --records records on the data topic as fast as the producer goes; a variant's
throughput is records over the time from the first to the last served score (`scored_at`). The
variants alternate; each figure is the median of its rounds.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.throughput import (
    CSV,
    bench_settings,
    descriptor,
    fresh_settings,
    percentile,
    rounds_rows,
    score_reader,
    stop_job,
    wait_for_port,
    write_results,
)
from client import catalog, job_control, local_kafka, publish, rollout
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import ScoreResult

VARIANTS = ("one model", "canary 80/20 + shadow", "vote of 3 (ensemble)")
POLICIES = {
    VARIANTS[1]: lambda: rollout.rollout_policy("wine", canary="v2", percent=20, shadows=("v3",)),
    VARIANTS[2]: lambda: rollout.rollout_policy("wine", ensemble="vote", members="v1,v2,v3"),
}


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_variant(base: Settings, variant: str, records: int, log: Path) -> tuple[float, float]:
    """Served records per second and p99 ms at 1,000 rec/s of one job on fresh topics."""
    settings = fresh_settings(base)
    wait_for_port(settings.rest_port)
    job = job_control.start_embedded(settings, log_path=log)
    scores: list[ScoreResult] = []
    read_at: list[float] = []
    stop = threading.Event()

    def on_score(now: float, score: ScoreResult) -> None:
        read_at.append(now)
        scores.append(score)

    reader = score_reader(settings, on_score, stop)
    try:
        publish.publish_model(settings, descriptor("onnx", "v1"))
        if variant != VARIANTS[0]:
            for version in ("v2", "v3"):
                staged = descriptor("onnx", version)
                staged.staged = True
                publish.publish_model(settings, staged)
            publish.publish_policy(settings, POLICIES[variant]())

        def ready() -> bool:
            snapshot = catalog.latest_stats(settings).get("wine")
            return snapshot is not None and (variant == VARIANTS[0] or snapshot.policy.version > 0)

        _wait(ready, 120, "the model(s) and policy to load")
        publish.publish_records(settings, CSV, count=records, id_prefix="b")
        _wait(lambda: len(scores) >= records or job.poll() is not None, 600, "every score")
        if len(scores) < records:
            raise RuntimeError(f"{variant}: the job ended after {len(scores)} of {records} scores; see {log}")
        scored_at = sorted(s.scored_at for s in scores[:records])
        if variant == VARIANTS[1]:
            share = sum(s.model_version == "v2" for s in scores[:records]) / records
            print(f"  canary share {share:.3f}", flush=True)
        rps = records / max((scored_at[-1] - scored_at[0]) / 1000, 1e-3)
        paced = 5000
        publish.publish_records(settings, CSV, count=paced, rate=1000, id_prefix="lat")
        _wait(lambda: len(scores) >= records + paced or job.poll() is not None, 120, "the paced scores")
        paced_scores = zip(read_at[records:], scores[records:], strict=False)  # appended by the reader
        latencies = [now * 1000 - s.record_ts for now, s in paced_scores]
        return rps, percentile(latencies, 99)
    finally:
        stop.set()
        stop_job(job)
        reader.join(5)


def to_markdown(
    results: dict[str, list[float]], p99s: dict[str, list[float]], records: int, command: str
) -> str:
    single = float(np.median(results[VARIANTS[0]]))
    lines = [
        f"`{command}` — {records:,} WineRecords per round, ONNX wine model, embedded job, "
        f"{len(results[VARIANTS[0]])} rounds per variant (median).",
        "",
        "| variant | served records/s (median) | rounds | vs one model |",
        "|---|---:|---|---:|",
    ]
    lines += rounds_rows(results, str, lambda median: median / single)
    lines += ["", "| variant | p99 ms at 1,000 rec/s (median) | rounds |", "|---|---:|---|"]
    for variant, values in p99s.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {variant} | {float(np.median(values)):.0f} | {shown} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-bench-rollout-"))
    settings = bench_settings(home, [])
    local_kafka.start(settings)
    results: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    p99s: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    try:
        for round_number in range(args.rounds):
            for variant in VARIANTS:
                log = home / f"job-{round_number}-{variant.split()[0]}.log"
                rps, p99 = run_variant(settings, variant, args.records, log)
                print(f"round {round_number + 1}: {variant}: {rps:,.0f} rec/s, p99 {p99:.0f} ms", flush=True)
                results[variant].append(rps)
                p99s[variant].append(p99)
    finally:
        local_kafka.stop(settings)
    command = f"python -m benchmarks.rollout --records {args.records} --rounds {args.rounds}"
    text = to_markdown(results, p99s, args.records, command)
    write_results(args.out, text, "<!-- rollout: start -->", "<!-- rollout: end -->", "## Rollout policies")
    print(text)


if __name__ == "__main__":
    main()
