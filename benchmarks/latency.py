"""End-to-end latency at a steady rate, over several fresh runs: p50 / p99 / p999 of send -> score read back,
once the job is warm, and what the first seconds after the start cost.

    .venv/bin/python -m benchmarks.latency [--runs 5] [--rate 1000] [--warm-seconds 90] [--seconds 30]
                                           [--set NAME=VALUE] [--out docs/benchmarks.md]

Each run starts a broker and the embedded job of its own (ONNX wine model, default settings unless --set),
sends WineRecords at --rate for --warm-seconds + --seconds without a pause, and times every score from the
record's timestamp (taken as it is sent) to the moment the reader gets it. The steady figures are the
records sent in the last --seconds; "first 30 s" are those sent in the first 30 seconds. Also measured over
the steady window: CPU of each process (share of one core) and of the JVMs' JIT compiler threads, which
are still compiling a minute into a run at this rate (docs/profile.md).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.profile_job import TICKS, cpu_of, processes
from benchmarks.throughput import (
    bench_settings,
    fresh_settings,
    replay,
    score_reader,
    stop_broker,
    stop_job,
    write_results,
)
from benchmarks.wine_models import CSV, descriptor
from client import job_control, local_kafka, publish
from modelstream.settings import PROJECT_ROOT

START, END = "<!-- latency: start -->", "<!-- latency: end -->"
FIRST_S = 30
COMPILER_THREADS = ("C1 CompilerThre", "C2 CompilerThre")


@dataclass
class Run:
    """One fresh run: latencies (ms) of the steady window and of the first seconds, CPU shares (%)."""

    steady: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)


def thread_ticks(pids: list[int], names: tuple[str, ...]) -> int:
    """CPU ticks of the threads of ``pids`` whose (kernel, 15-character) name is one of ``names``."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    stat = (task / "stat").read_text()
                    name = stat[stat.index("(") + 1 : stat.rindex(")")]
                    if name.rstrip("0123456789#") in names:
                        fields = stat.rsplit(")", 1)[1].split()
                        total += int(fields[11]) + int(fields[12])
    return total


def one_run(overrides: list[str], rate: float, warm_s: float, seconds: float) -> Run:
    home = Path(tempfile.mkdtemp(prefix="modelstream-latency-"))
    base = bench_settings(home, overrides)
    broker_pid = local_kafka.start(base)
    run = Run()
    try:
        settings = fresh_settings(base)
        publish.publish_model(settings, descriptor("onnx", "v1"))
        job = job_control.start_embedded(settings, log_path=home / "job.log")
        got: list[tuple[float, int]] = []
        stop = threading.Event()
        reader = score_reader(settings, lambda now, s: got.append((now * 1000, s.record_ts)), stop)
        try:
            publish.publish_records(settings, CSV, count=1, id_prefix="ready")
            while not got:  # the job is up and scoring
                time.sleep(0.2)
            started_ms = time.time() * 1000
            sender = replay(settings, int(rate * (warm_s + seconds)), rate, "l")
            time.sleep(warm_s)
            pids = processes(job.pid, broker_pid)
            jvms = pids["job JVM"] + pids["broker"]
            before = {name: cpu_of(p) for name, p in pids.items()}
            compiling = thread_ticks(jvms, COMPILER_THREADS)
            window_start = time.time()
            sender.join()
            elapsed = time.time() - window_start
            run.cpu = {name: 100 * (cpu_of(p) - before[name]) / TICKS / elapsed for name, p in pids.items()}
            run.cpu["JIT compilers (both JVMs)"] = (
                100 * (thread_ticks(jvms, COMPILER_THREADS) - compiling) / TICKS / elapsed
            )
            steady_from = started_ms + warm_s * 1000
            expected = int(rate * (warm_s + seconds)) + 1
            deadline = time.time() + 60
            while len(got) < expected and time.time() < deadline:
                time.sleep(0.2)
        finally:
            stop.set()
            stop_job(job)
            reader.join(5)
    finally:
        stop_broker(base)
    for read_ms, record_ts in got[1:]:
        if record_ts >= steady_from:
            run.steady.append(read_ms - record_ts)
        elif record_ts < started_ms + FIRST_S * 1000:
            run.first.append(read_ms - record_ts)
    return run


def markdown(runs: list[Run], command: str, rate: float, seconds: float) -> str:
    lines = [
        f"`{command}` — {len(runs)} fresh runs (broker and embedded job each), ONNX wine model, "
        f"{rate:,.0f} rec/s; steady: the last {seconds:g} s of each run.",
        "",
        "| run | steady p50 ms | p99 | p999 | records | first 30 s p99 | CPU % of a core: "
        + ", ".join(runs[0].cpu)
        + " |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for i, run in enumerate(runs, 1):
        p50, p99, p999 = (float(np.percentile(run.steady, q)) for q in (50, 99, 99.9))
        first = float(np.percentile(run.first, 99)) if run.first else float("nan")
        cpu = ", ".join(f"{v:.0f}" for v in run.cpu.values())
        lines.append(
            f"| {i} | {p50:.0f} | {p99:.0f} | {p999:.0f} | {len(run.steady):,} | {first:.0f} | {cpu} |"
        )
    p99s = [float(np.percentile(run.steady, 99)) for run in runs]
    lines += ["", f"Steady p99 at most 50 ms in {sum(p <= 50 for p in p99s)} of {len(runs)} runs."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--warm-seconds", type=float, default=90)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a job setting")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        run = one_run(args.set, args.rate, args.warm_seconds, args.seconds)
        p99 = np.percentile(run.steady, 99) if run.steady else float("nan")
        print(f"run {i + 1}: steady p99 {p99:.0f} ms over {len(run.steady):,} records; cpu {run.cpu}")
        runs.append(run)
    flags = "".join(f" --set {item}" for item in args.set)
    command = (
        f"python -m benchmarks.latency --runs {args.runs} --rate {args.rate:g} "
        f"--warm-seconds {args.warm_seconds:g} --seconds {args.seconds:g}{flags}"
    )
    text = markdown(runs, command, args.rate, args.seconds)
    print(text)
    write_results(args.out, text, START, END, "## Latency at a steady rate")


if __name__ == "__main__":
    main()
