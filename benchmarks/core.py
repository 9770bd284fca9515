"""The serving core alone, in-process (no Flink, no Kafka): what one micro-batch costs per record.

    .venv/bin/python -m benchmarks.core [--batch 256] [--seconds 3]

Per format: records/s through ModelServer.on_records (decode, features, one model call, results
encoded, stats) for batches of --batch records, and the model call alone on the same batch; the
difference is the core's own per-record cost.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from benchmarks.throughput import CSV, descriptor
from model.base import ModelOptions
from model.registry import load_model
from modelstream.records import (
    WINE,
    FeatureMatrix,
    decode_record,
    feature_matrix,
    read_wine_csv,
    wine_record_from_row,
)
from modelstream.serving import Incoming, ModelServer, ServingSettings
from protobufs.modelstream_pb2 import ModelDescriptor
from tests.fakes import MemoryKeyContext


def rate(call: Callable[[], object], records: int, seconds: float) -> float:
    """Records per second of repeated ``call``s, each covering ``records`` records."""
    call()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        done += records
    return done / (time.perf_counter() - started)


def measure(
    published: ModelDescriptor, batch: list[Incoming], matrix: FeatureMatrix, seconds: float
) -> tuple[float, float]:
    """(records/s through the core, records/s of the model call alone)."""
    server = ModelServer(ServingSettings(), ModelOptions())
    ctx = MemoryKeyContext()
    server.on_model("wine", (published.SerializeToString(), 0, 0), ctx)
    model = load_model(published, WINE, ModelOptions())
    try:
        core = rate(lambda: server.on_records("wine", batch, ctx), len(batch), seconds)
        alone = rate(lambda: model.score_batch(matrix), len(batch), seconds)
    finally:
        server.close()
        model.close()
    return core, alone


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rows = read_wine_csv(str(CSV))[: args.batch]
    raw = [wine_record_from_row(r, "wine", 0, f"r-{i}").SerializeToString() for i, r in enumerate(rows)]
    batch: list[Incoming] = [(value, 0, i) for i, value in enumerate(raw)]
    matrix, _ = feature_matrix([decode_record(value) for value in raw])
    print("| format | core rec/s | model call alone rec/s | core µs/record | of which model µs |")
    print("|---|---|---|---|---|")
    for fmt in ("onnx", "tf-graph", "tf-saved", "pmml"):
        core, alone = measure(descriptor(fmt, "1"), batch, matrix, args.seconds)
        print(f"| {fmt} | {core:,.0f} | {alone:,.0f} | {1e6 / core:.1f} | {1e6 / alone:.1f} |", flush=True)


if __name__ == "__main__":
    main()
