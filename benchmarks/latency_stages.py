"""Where a record's latency goes at a steady rate: send -> scored (Kafka in, source, micro-batcher, the
way into the Python worker, decode and score) and scored -> read (the way back from the worker, splitter,
sink, Kafka out), from each ScoreResult's record_ts and scored_at and the time the reader got it.

    .venv/bin/python -m benchmarks.latency_stages [--rate 1000] [--seconds 10] [--set NAME=VALUE]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.throughput import (
    bench_settings,
    fresh_settings,
    percentile,
    score_reader,
    stop_broker,
    stop_job,
)
from benchmarks.wine_models import CSV, descriptor
from client import job_control, local_kafka, publish
from protobufs.modelstream_pb2 import ScoreResult


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--slow-ms", type=float, default=50, help="report records slower than this")
    parser.add_argument("--dump", type=Path, help="write record_ts,scored_at,read_ms per record (CSV)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-latency-"))
    settings = bench_settings(home, args.set)
    local_kafka.start(settings)
    try:
        settings = fresh_settings(settings)
        publish.publish_model(settings, descriptor("onnx", "v1"))
        job = job_control.start_embedded(settings, log_path=home / "job.log")
        got: list[tuple[float, ScoreResult]] = []
        stop = threading.Event()
        reader = score_reader(settings, lambda now, score: got.append((now, score)), stop)
        try:
            warm = int(args.rate * 2)
            publish.publish_records(settings, CSV, count=warm, rate=args.rate, id_prefix="w")
            while len(got) < warm:
                time.sleep(0.2)
            count = int(args.rate * args.seconds)
            publish.publish_records(settings, CSV, count=count, rate=args.rate, id_prefix="l")
            while len(got) < warm + count:
                time.sleep(0.2)
            rows = [(now * 1000, score) for now, score in got[warm:]]
        finally:
            stop.set()
            stop_job(job)
            reader.join(5)
    finally:
        stop_broker(settings)
    stages: dict[str, list[float]] = {
        "send -> scored (Kafka in, source, micro-batcher, into Python, score)": [
            s.scored_at - s.record_ts for _, s in rows
        ],
        "scored -> read (back from Python, splitter, sink, Kafka out)": [
            now - s.scored_at for now, s in rows
        ],
        "send -> read": [now - s.record_ts for now, s in rows],
    }
    if args.dump:
        args.dump.write_text(
            "".join(f"{s.record_ts},{s.scored_at},{now:.1f}\n" for now, s in rows), encoding="utf-8"
        )
    print(f"{len(rows):,} records at {args.rate:g} rec/s (ms)")
    for name, values in stages.items():
        p50, p90, p99 = (percentile(values, q) for q in (50, 90, 99))
        print(f"  {name}: p50 {p50:.1f}  p90 {p90:.1f}  p99 {p99:.1f}")
    first = rows[0][1].record_ts
    slow = [(s.record_ts - first) / 1000 for now, s in rows if now - s.record_ts > args.slow_ms]
    if slow:
        # Seconds into the run of each slow record, one line per burst, to tell periodic stalls
        # (checkpoints, GC) from scattered ones.
        bursts: list[list[float]] = [[slow[0]]]
        for at in slow[1:]:
            if at - bursts[-1][-1] < 0.5:
                bursts[-1].append(at)
            else:
                bursts.append([at])
        print(f"records slower than {args.slow_ms:g} ms: {len(slow):,}, in bursts at (s):")
        print("  " + ", ".join(f"{b[0]:.1f} ({len(b)})" for b in bursts))


if __name__ == "__main__":
    main()
