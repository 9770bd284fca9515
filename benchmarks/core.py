"""The serving core alone, in-process (no Flink, no Kafka): what one micro-batch costs per record.

    .venv/bin/python -m benchmarks.core [--batch 256] [--seconds 3]

Per format: records/s through ModelServer.on_records (decode, bind, one model call, results
encoded, stats) for batches of --batch records, and the model call alone on the same batch; the
difference is the core's own per-record cost.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from benchmarks.wine_models import CSV, descriptor
from modelstream.codecs.base import SourceRecord
from modelstream.contract import InputArrays, ModelOptions
from modelstream.interface import Sink
from modelstream.records import read_wine_csv
from modelstream.registry import load_model
from modelstream.serving import ModelServer, ServingSettings
from modelstream.testing import MemoryKeyContext, source_record, wine_inputs, wine_records
from protobufs.modelstream_pb2 import ModelDescriptor


def rate(call: Callable[[], object], records: int, seconds: float) -> float:
    """Records per second of repeated ``call``s, each covering ``records`` records."""
    call()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        done += records
    return done / (time.perf_counter() - started)


def measure(
    published: ModelDescriptor, batch: list[SourceRecord], rows: list[list[float]], seconds: float
) -> tuple[float, float]:
    """(records/s through the core, records/s of the model call alone)."""
    server = ModelServer(ServingSettings(), ModelOptions())
    ctx = MemoryKeyContext()
    # the data type has seen records: a model is validated on the most recent one (the TF graph's input
    # has no declared shape, so a probe made up from its declared inputs cannot feed it)
    ctx.probe = tuple(batch[-1])
    server.on_model("wine", (published.SerializeToString(), 0, 0), ctx)
    model = load_model(published, ModelOptions())
    inputs: InputArrays = wine_inputs(model, rows)
    try:
        scored = [out for out in server.on_records("wine", batch, ctx) if out[0] is Sink.SCORES]
        if len(scored) != len(batch):
            raise SystemExit(f"{published.name}: {len(scored)} of {len(batch)} records scored")
        core = rate(lambda: server.on_records("wine", batch, ctx), len(batch), seconds)
        alone = rate(lambda: model.score_batch(inputs), len(batch), seconds)
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
    batch = [source_record(r.SerializeToString(), offset=i) for i, r in enumerate(wine_records(rows))]
    print("| format | core rec/s | model call alone rec/s | core µs/record | of which model µs |")
    print("|---|---|---|---|---|")
    for fmt in ("onnx", "tf-graph", "tf-saved", "pmml"):
        core, alone = measure(descriptor(fmt, "1"), batch, rows, args.seconds)
        print(f"| {fmt} | {core:,.0f} | {alone:,.0f} | {1e6 / core:.1f} | {1e6 / alone:.1f} |", flush=True)


if __name__ == "__main__":
    main()
