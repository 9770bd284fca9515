"""How long the job takes to reach its steady rate: its JVM compiles its hot code for a minute or more.

    .venv/bin/python -m benchmarks.warmup [--records 5000000] [--window 5] [--windows 15]
                                          [--format onnx] [--set NAME=VALUE] [--out docs/profile.md]

Records are put on the data topic first; the job (embedded, default process mode) starts and drains them.
From its first 20,000 scores on, every --window seconds: the records scored, the CPU of the job's JVM and
of its JIT compiler threads (C1, C2: /proc per thread) as a share of a core, the JVM's other CPU per
record, and the Python worker's share of a core. The defaults' figures go between markers in the output
file; with --set or another --format they are only printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.profile_job import TICKS, cpu_of, end_offset, processes, thread_ticks, ticks_between
from benchmarks.throughput import backlog_job, command_flags, write_results
from benchmarks.wine_models import FILES
from modelstream.settings import PROJECT_ROOT, Settings


def timeline(settings: Settings, job_pid: int, window_s: float, windows: int) -> list[str]:
    """One table row per window of the drain."""
    pids = processes(job_pid, broker_pid=0)
    jvm = pids["job JVM"][0]
    threads, scored = thread_ticks(jvm), end_offset(settings, settings.scores_topic)
    python = cpu_of(pids["Python worker"])
    started, rows = time.monotonic(), []
    last = started
    for _ in range(windows):
        time.sleep(window_s)
        now_s = time.monotonic()
        elapsed, last = now_s - last, now_s
        now = thread_ticks(jvm)
        now_scored = end_offset(settings, settings.scores_topic)
        now_python = cpu_of(pids["Python worker"])
        delta = ticks_between(threads, now)
        count = now_scored - scored
        if count < 1000:
            break  # the backlog is drained
        jvm_s = sum(delta.values()) / TICKS
        jit_s = sum(n for name, n in delta.items() if "CompilerThre" in name) / TICKS
        rows.append(
            f"| {now_s - started:.0f} | {count / elapsed:,.0f} | {jvm_s / elapsed:.0%} "
            f"| {jit_s / elapsed:.0%} | {1e6 * (jvm_s - jit_s) / count:.1f} "
            f"| {(now_python - python) / TICKS / elapsed:.0%} |"
        )
        threads, scored, python = now, now_scored, now_python
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=5_000_000, help="the backlog the job drains")
    parser.add_argument("--window", type=float, default=5.0, help="seconds per row")
    parser.add_argument("--windows", type=int, default=15, help="rows at most")
    parser.add_argument("--format", default="onnx", choices=sorted(FILES), help="the wine model served")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a job setting")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "profile.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-warmup-"))
    with backlog_job(home, args.set, args.format, args.records, "w") as (settings, job, _):
        while end_offset(settings, settings.scores_topic) < 20_000:
            time.sleep(0.5)
        rows = timeline(settings, job.pid, args.window, args.windows)
    flags = command_flags(args.format, args.set)
    lines = [
        f"`python -m benchmarks.warmup --records {args.records} --window {args.window:g}{flags}`: a backlog "
        "drained by a fresh job, from its first 20,000 scores on.",
        "",
        "| s | records/s | job JVM, share of a core | its JIT compiler | JVM µs per record without the JIT "
        "| Python worker, share of a core |",
        "|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(lines) + "\n"
    if not args.set and args.format == "onnx":  # a variant is printed, the defaults' table kept
        heading = "## Warm-up: the JIT compiler"
        write_results(args.out, text, "<!-- warmup: start -->", "<!-- warmup: end -->", heading)
    print(text)


if __name__ == "__main__":
    main()
