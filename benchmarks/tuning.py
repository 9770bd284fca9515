"""Tuning matrix: the real job under one setting changed at a time, against the defaults, in one run.

    .venv/bin/python -m benchmarks.tuning [--format onnx] [--records 100000] [--out docs/tuning.md]

Each variant is a full run of benchmarks.throughput's job measurement (throughput from pre-loaded records,
latency at 1,000 rec/s, model swap) on a broker of its own. The defaults run three times: once to warm
the machine (not reported; a first run is slower), then first and last; ratios are to the mean of those
two. A variant that produces no scores within the time limit is reported as such. `--variant` (repeatable,
space-separated NAME=VALUE items) replaces the built-in list.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.pmml_engines import cpu_name
from benchmarks.throughput import TUNING, Result, bench_settings, run_job, stop_broker
from client import local_kafka
from modelstream.settings import PROJECT_ROOT, Settings

VARIANTS: tuple[tuple[str, ...], ...] = (
    ("batch_max_records=1",),
    ("batch_max_records=64",),
    ("batch_max_records=1024",),
    ("batch_max_delay_ms=0",),
    ("batch_max_delay_ms=5",),
    ("batch_max_delay_ms=20",),
    ("python_bundle_time_ms=1",),
    ("python_bundle_time_ms=5",),
    ("python_bundle_time_ms=10",),
    ("python_bundle_time_ms=100",),
    ("python_bundle_size=100000",),
    ("buffer_timeout_ms=5",),
    ("buffer_timeout_ms=100",),
    ("sink_linger_ms=5",),
    ("parallelism=2",),
    ("onnx_threads=2",),
    ("flink_options=pipeline.operator-chaining.enabled=false",),
    ("flink_options=python.execution-mode=thread",),
)


def to_markdown(fmt: str, records: int, rows: list[tuple[str, Result]], default_rps: float) -> str:
    defaults = Settings()
    lines = [
        "# Tuning matrix",
        "",
        f"Measured with `python -m benchmarks.tuning --format {fmt} --records {records}` on {cpu_name()},",
        "2 cores shared by broker, Flink and the Python worker. One setting changed at a time; ratios are",
        "to the mean of the two runs of the defaults (first and last, after a warm-up run) in the same run.",
        "Latency at 1,000 rec/s offered. Defaults: "
        + ", ".join(f"{name}={getattr(defaults, name)}" for name in TUNING)
        + ".",
        "",
        "| variant | job rec/s | / defaults | p50 / p99 ms | swap s | start → first s |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        if r.notes:
            lines.append(f"| {name} | - | - | - | - | - | {'; '.join(r.notes)} |")
            continue
        ratio = r.job_rps / default_rps if default_rps else float("nan")
        lines.append(
            f"| {name} | {r.job_rps:,.0f} | {ratio:.2f}x | {r.p50_ms:.1f} / {r.p99_ms:.1f} "
            f"| {r.swap_s:.2f} | {r.start_to_first_s:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--format", default="onnx")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "tuning.md")
    parser.add_argument("--timeout", type=float, default=180, help="seconds a variant may take to drain")
    parser.add_argument("--variant", action="append", default=[], metavar="'NAME=VALUE ...'")
    args = parser.parse_args()
    variants = [tuple(v.split()) for v in args.variant] or list(VARIANTS)
    home = Path(tempfile.mkdtemp(prefix="modelstream-tuning-"))
    rows: list[tuple[str, Result]] = []
    broker = bench_settings(home, [])
    local_kafka.start(broker)
    try:
        run_job(broker, args.format, args.records, home / "warm-up.log", args.timeout)
        for i, variant in enumerate([(), *variants, ()]):
            settings = bench_settings(home, list(variant))
            result = run_job(settings, args.format, args.records, home / f"job-{i}.log", args.timeout)
            name = ", ".join(f"`{item}`" for item in variant) or "defaults"
            print(name, result, flush=True)
            rows.append((name, result))
    finally:
        stop_broker(broker)
    default_rps = (rows[0][1].job_rps + rows[-1][1].job_rps) / 2
    text = to_markdown(args.format, args.records, rows, default_rps)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
