"""What speculative serving costs in latency: a data type served by a fast model alone against one served
speculatively by a slow primary (about 5x the deadline per micro-batch) and the same fast model as its
fallback, in one job, one after the other, at 1,000 rec/s.

    .venv/bin/python -m benchmarks.speculative [--seconds 5] [--deadline-ms 30] [--rounds 2]

Latency is score-read time minus record time. The issue's bound: the speculative p99 within the
deadline plus the job's usual p99 (the fast model alone) measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.throughput import (
    bench_settings,
    fresh_settings,
    percentile,
    score_reader,
    stop_broker,
    stop_job,
    wait_for_port,
    write_results,
)
from benchmarks.wine_models import CSV
from client import catalog, job_control, local_kafka, publish, rollout
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import ModelDescriptor, ScoreResult, StatsSnapshot
from tests.onnx_builders import wine_regression

D = ModelDescriptor


def _model(data_type: str, version: str, data: bytes, staged: bool) -> D:
    descriptor = D(name=version, dataType=data_type, version=version, data=data, staged=staged)
    descriptor.modeltype = D.ONNX
    return descriptor


def run_round(base: Settings, seconds: float, deadline_ms: int, log: Path) -> dict[str, float]:
    settings = fresh_settings(base)
    wait_for_port(settings.rest_port)
    job = job_control.start_embedded(settings, log_path=log)
    got: list[tuple[float, ScoreResult]] = []
    stop = threading.Event()
    reader = score_reader(settings, lambda now, s: got.append((now, s)), stop)
    try:
        fast, slow = wine_regression(0, width=2), wine_regression(60)
        publish.publish_model(settings, _model("alone", "fast", fast, staged=False))
        publish.publish_model(settings, _model("spec", "fast", fast, staged=False))
        publish.publish_model(settings, _model("spec", "slow", slow, staged=True))
        deadline = time.time() + 120
        while not {"fast", "slow"} <= set(
            rollout.loaded_versions(catalog.latest_stats(settings).get("spec") or StatsSnapshot())
        ):
            if time.time() > deadline:
                raise RuntimeError(f"the models did not load; see {log}")
            time.sleep(0.5)
        publish.publish_policy(
            settings,
            rollout.rollout_policy("spec", speculative="slow", fallback="fast", deadline_ms=deadline_ms),
        )
        count = int(seconds * 1000)
        figures: dict[str, float] = {}
        for data_type in ("alone", "spec"):
            publish.publish_records(settings, CSV, data_type, count=500, rate=1000, id_prefix=f"w{data_type}")
            publish.publish_records(settings, CSV, data_type, count=count, rate=1000, id_prefix=data_type)
            wait_until = time.time() + 120
            while sum(s.record_id.startswith(f"{data_type}-") for _, s in list(got)) < count:
                if time.time() > wait_until or job.poll() is not None:
                    raise RuntimeError(f"{data_type}: not every record was scored; see {log}")
                time.sleep(0.2)
            mine = [(now, s) for now, s in list(got) if s.record_id.startswith(f"{data_type}-")]
            latencies = [now * 1000 - s.record_ts for now, s in mine]
            figures[f"{data_type} p50"] = percentile(latencies, 50)
            figures[f"{data_type} p99"] = percentile(latencies, 99)
            if data_type == "spec":
                fell_back = sum(s.speculation == ScoreResult.FALLBACK for _, s in mine)
                figures["fallback share"] = 100 * fell_back / len(mine)
        return figures
    finally:
        stop.set()
        stop_job(job)
        reader.join(5)


def to_markdown(rounds: list[dict[str, float]], deadline_ms: int, command: str) -> str:
    def median(key: str) -> float:
        return float(np.median([r[key] for r in rounds]))

    def each(key: str) -> str:
        return ", ".join(f"{r[key]:.0f}" for r in rounds)

    bound = median("alone p99") + deadline_ms
    lines = [
        f"`{command}` — ONNX wine regressions at 1,000 rec/s, a primary of ~150 ms per micro-batch, "
        f"deadline {deadline_ms} ms; median of {len(rounds)} rounds (each round's figure after the comma).",
        "",
        "| data type | p50 ms | p99 ms | rounds (p99) |",
        "|---|---:|---:|---|",
        f"| the fast model alone | {median('alone p50'):.0f} | {median('alone p99'):.0f} | "
        f"{each('alone p99')} |",
        f"| speculative: slow primary, the fast model as fallback | {median('spec p50'):.0f} | "
        f"{median('spec p99'):.0f} | {each('spec p99')} |",
        "",
        f"Bound (usual p99 + deadline): {bound:.0f} ms; served by the fallback: "
        f"{median('fallback share'):.1f} % of records.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--deadline-ms", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-bench-speculative-"))
    settings = bench_settings(home, [])
    local_kafka.start(settings)
    rounds = []
    try:
        for number in range(args.rounds):
            figures = run_round(settings, args.seconds, args.deadline_ms, home / f"job-{number}.log")
            print(f"round {number + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
            rounds.append(figures)
    finally:
        stop_broker(settings)
    command = (
        f"python -m benchmarks.speculative --seconds {args.seconds:g} --deadline-ms {args.deadline_ms} "
        f"--rounds {args.rounds}"
    )
    text = to_markdown(rounds, args.deadline_ms, command)
    write_results(
        args.out, text, "<!-- speculative: start -->", "<!-- speculative: end -->", "## Speculative serving"
    )
    print(text)


if __name__ == "__main__":
    main()
