"""Job variants raced in one run: each round starts the embedded job on fresh topics with a variant's
settings, publishes its models (and policies), waits until the job reports them, puts untimed warm-up
bursts of --warm records on the data topic until two in a row keep the JVM's JIT compiler under 10 % of
a core (a job timed while it compiles measures its JIT too: docs/profile.md, "Warm-up"), then the same
timed records as fast as the producer goes, and reads every served score; then p99 at
1,000 rec/s. A variant's throughput is its timed records over the time from the first to the last of
their served scores (`scored_at`); the variants alternate round by round and each figure is the median
of its rounds. Beside it, the job's CPU per timed record (its JVM and Python worker, from /proc, over
the timed burst): less moved than throughput by what else the shared machine runs.
Used by benchmarks/rollout.py and benchmarks/drift_cost.py."""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.profile_job import MAX_JIT_SHARE, MAX_WARM_BURSTS, TICKS, CompilerMeter, cpu_of, processes
from benchmarks.throughput import (
    bench_settings,
    fresh_settings,
    percentile,
    rounds_rows,
    score_reader,
    stop_broker,
    stop_job,
    wait_for_port,
    write_results,
)
from benchmarks.wine_models import CSV
from client import catalog, job_control, local_kafka, publish
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import ScoreResult, StatsSnapshot

PACED = 5000  # records at 1,000 rec/s for the p99


@dataclass(frozen=True)
class Variant:
    """A job set up one way: its settings, what it publishes first and when it is ready."""

    name: str
    prepare: Callable[[Settings], None]  # publish the model(s), policies
    ready: Callable[[StatsSnapshot], bool] = lambda snapshot: True  # the wine data type's stats say so
    settings: dict[str, object] = field(default_factory=dict)
    # after each burst (its record id prefix, its records), e.g. feedback
    after_records: Callable[[Settings, str, int], None] = lambda settings, prefix, records: None
    # the wine data type's stats show the warm-up burst's follow-up done (e.g. its feedback matched)
    settled: Callable[[StatsSnapshot, int], bool] = lambda snapshot, warm: True
    report: Callable[[list[ScoreResult]], str] = lambda scores: ""  # a line about the burst's scores


@dataclass
class Figures:
    """A variant's served records/s, the job's CPU µs per timed record and p99 ms at 1,000 rec/s, one per
    round."""

    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    worker_us: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Round:
    """One variant's figures in one round."""

    rps: float
    cpu_us: float
    worker_us: float  # the Python worker's share of cpu_us
    p99_ms: float


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_variant(
    base: Settings, variant: Variant, records: int, warm: int, broker_pid: int, log: Path
) -> Round:
    """One job on fresh topics: its figures."""
    settings = fresh_settings(base.replace(**variant.settings))
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
        variant.prepare(settings)

        def stats_say(condition: Callable[[StatsSnapshot], bool]) -> Callable[[], bool]:
            def check() -> bool:
                snapshot = catalog.latest_stats(settings).get("wine")
                return snapshot is not None and condition(snapshot)

            return check

        _wait(stats_say(variant.ready), 120, f"{variant.name}: the model(s) and policy to load")

        def burst(prefix: str, count: int, done: int) -> None:
            publish.publish_records(settings, CSV, count=count, id_prefix=prefix)
            variant.after_records(settings, prefix, count)
            _wait(lambda: len(scores) >= done or job.poll() is not None, 600, f"the {prefix} scores")
            if len(scores) < done:
                raise RuntimeError(f"{variant.name}: the job ended after {len(scores)}/{done} scores: {log}")

        warmed = 0
        if warm:
            meter, quiet = CompilerMeter(job.pid), 0
            for number in range(MAX_WARM_BURSTS):  # until two bursts in a row leave the JIT quiet
                meter()
                started = time.monotonic()
                burst(f"w{number}", warm, warmed + warm)
                warmed += warm
                quiet = quiet + 1 if meter() / (time.monotonic() - started) < MAX_JIT_SHARE else 0
                if quiet == 2:
                    break
            else:
                raise RuntimeError(
                    f"{variant.name}: the JIT compiler was still busy after {warmed:,} records"
                )
            _wait(stats_say(lambda s: variant.settled(s, warmed)), 120, "the warm-up bursts to settle")
            print(f"  {variant.name}: warm after {warmed:,} records", flush=True)
        pids = processes(job.pid, broker_pid)
        job_pids, worker_pids = pids["job JVM"] + pids["Python worker"], pids["Python worker"]
        before, worker_before = cpu_of(job_pids), cpu_of(worker_pids)
        burst("b", records, warmed + records)
        cpu_us = (cpu_of(job_pids) - before) / TICKS * 1e6 / records
        worker_us = (cpu_of(worker_pids) - worker_before) / TICKS * 1e6 / records
        timed = scores[warmed : warmed + records]
        line = variant.report(timed)
        if line:
            print(f"  {variant.name}: {line}", flush=True)
        scored_at = sorted(s.scored_at for s in timed)
        rps = records / max((scored_at[-1] - scored_at[0]) / 1000, 1e-3)
        publish.publish_records(settings, CSV, count=PACED, rate=1000, id_prefix="lat")
        done = warmed + records + PACED
        _wait(lambda: len(scores) >= done or job.poll() is not None, 120, "the paced scores")
        paced = slice(warmed + records, done)
        paced_scores = zip(read_at[paced], scores[paced], strict=False)  # appended by the reader
        latencies = [now * 1000 - s.record_ts for now, s in paced_scores]
        return Round(rps, cpu_us, worker_us, percentile(latencies, 99))
    finally:
        stop.set()
        stop_job(job)
        reader.join(5)


def run_rounds(
    base: Settings, variants: list[Variant], records: int, warm: int, rounds: int, broker_pid: int, home: Path
) -> dict[str, Figures]:
    """Every variant once per round, in turn."""
    figures = {variant.name: Figures() for variant in variants}
    for round_number in range(rounds):
        for index, variant in enumerate(variants):
            log = home / f"job-{round_number}-{index}.log"
            got = run_variant(base, variant, records, warm, broker_pid, log)
            print(
                f"round {round_number + 1}: {variant.name}: {got.rps:,.0f} rec/s, "
                f"job CPU {got.cpu_us:.1f} µs/record (Python worker {got.worker_us:.1f}), "
                f"p99 {got.p99_ms:.0f} ms",
                flush=True,
            )
            f = figures[variant.name]
            f.rps.append(got.rps)
            f.cpu_us.append(got.cpu_us)
            f.worker_us.append(got.worker_us)
            f.p99_ms.append(got.p99_ms)
    return figures


def _job_cpu(figures: Figures) -> list[float]:
    return figures.cpu_us


def _worker_cpu(figures: Figures) -> list[float]:
    return figures.worker_us


def to_markdown(figures: dict[str, Figures], heading: str, against: str) -> str:
    """The variants' throughput against the ``against`` variant, and their p99s."""
    rounds = len(figures[against].rps)
    base = float(np.median(figures[against].rps))
    lines = [
        f"{heading}, {rounds} rounds per variant (median).",
        "",
        f"| variant | served records/s (median) | rounds | vs {against} |",
        "|---|---:|---|---:|",
    ]
    lines += rounds_rows({k: f.rps for k, f in figures.items()}, str, lambda median: median / base)
    for title, of in (("job CPU", _job_cpu), ("Python worker CPU", _worker_cpu)):
        base_us = float(np.median(of(figures[against])))
        lines += [
            "",
            f"| variant | {title} µs per record (median) | rounds | vs {against} |",
            "|---|---:|---|---:|",
        ]
        for name, f in figures.items():
            median = float(np.median(of(f)))
            shown = ", ".join(f"{v:.1f}" for v in of(f))
            lines.append(f"| {name} | {median:.1f} | {shown} | {median / base_us:.2f}x |")
    lines += ["", "| variant | p99 ms at 1,000 rec/s (median) | rounds |", "|---|---:|---|"]
    for name, f in figures.items():
        shown = ", ".join(f"{v:.0f}" for v in f.p99_ms)
        lines.append(f"| {name} | {float(np.median(f.p99_ms)):.0f} | {shown} |")
    return "\n".join(lines) + "\n"


def main(module: str, description: str, variants: list[Variant], rounds: int, key: str, section: str) -> None:
    """A variants benchmark's command line: race ``variants`` on a broker of its own and write the table
    between the ``key`` markers of docs/benchmarks.md (a new ``section`` without them)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--warm", type=int, default=100_000, help="records per untimed warm-up burst")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix=f"modelstream-bench-{key}-"))
    settings = bench_settings(home, [])
    broker_pid = local_kafka.start(settings)
    try:
        figures = run_rounds(settings, variants, args.records, args.warm, args.rounds, broker_pid, home)
    finally:
        stop_broker(settings)
    command = f"python -m {module} --records {args.records} --warm {args.warm} --rounds {args.rounds}"
    heading = (
        f"`{command}` — {args.records:,} WineRecords per round after warm-up bursts of {args.warm:,} until "
        "the JIT is quiet, ONNX wine model, embedded job"
    )
    text = to_markdown(figures, heading, variants[0].name)
    write_results(args.out, text, f"<!-- {key}: start -->", f"<!-- {key}: end -->", section)
    print(text)
