"""The serving core per record encoding, in process: the same wine rows as WineRecords, JSON objects, user
protobufs and Open Inference Protocol requests, scored by the ONNX wine model.

    .venv/bin/python -m benchmarks.codecs [--batch 256] [--seconds 2]

Per path (benchmarks.encodings), on batches of --batch rows framed as the JVM frames them: rows/s of
reading the frame into SourceRecords (modelstream.frames), of the codec alone (decode), decode + bind to
the model's inputs, and ModelServer.on_records (decode, bind, one model call, ScoreResults encoded,
stats) — the Python worker's share of a record — and that last one as a ratio to the WineRecord path.
No Kafka, no Flink: where a path's cost comes from.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from benchmarks.encodings import (
    MESSAGE,
    PATHS,
    RecordPath,
    descriptor_set,
    encode,
    feature_rows,
    model,
    schema,
)
from benchmarks.encodings import source_records as framed
from modelstream.binding import Binder
from modelstream.codecs import decode_groups
from modelstream.codecs.base import SourceRecord
from modelstream.codecs.protobuf import UserSchemas
from modelstream.contract import ModelOptions
from modelstream.frames import read_records, write_records
from modelstream.interface import Sink
from modelstream.registry import load_model
from modelstream.serving import ModelServer, ServingSettings
from modelstream.testing import MemoryKeyContext


def rate(call: Callable[[], object], rows: int, seconds: float) -> float:
    """Rows per second of ``call`` (which handles ``rows`` rows), the best of repeated timed runs."""
    call()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        for _ in range(10):
            call()
        best = min(best, (time.perf_counter() - started) / 10)
    return rows / best


def measure(
    path: RecordPath, batch: list[SourceRecord], rows: int, seconds: float
) -> tuple[float, float, float, float]:
    """(frames, decode, decode + bind, on_records) rows/s for one batch of a path's records."""
    published = model(path, "1")
    schemas = UserSchemas({MESSAGE: descriptor_set()} if path.kind == "protobuf" else {})
    runtime = load_model(published, ModelOptions())
    binder = Binder(runtime.inputs, tuple(published.input_fields))
    server = ModelServer(ServingSettings(), ModelOptions())
    ctx = MemoryKeyContext()
    try:
        record_schema = schema(path)
        if record_schema is not None:
            server.on_schema(path.data_type, (record_schema.SerializeToString(), 0, 0), ctx)
        server.on_model(path.data_type, (published.SerializeToString(), 0, 0), ctx)
        outputs = server.on_records(path.data_type, batch, ctx)
        scored = sum(1 for out in outputs if out[0] is Sink.SCORES)
        if scored != rows:
            dead = [out[2] for out in outputs if out[0] is Sink.DEAD_LETTERS][:1]
            raise SystemExit(f"{path.key}: {scored} of {rows} rows scored {dead}")

        def decode() -> object:
            return decode_groups(batch, schemas)

        def bind() -> object:
            return [binder.bind(group) for group in decode_groups(batch, schemas)]

        topics = sorted({record.topic for record in batch})
        frame = write_records(batch, topics)
        return (
            rate(lambda: read_records(frame, topics), rows, seconds),
            rate(decode, rows, seconds),
            rate(bind, rows, seconds),
            rate(lambda: server.on_records(path.data_type, batch, ctx), rows, seconds),
        )
    finally:
        server.close()
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=256, help="rows per batch (a micro-batch of the job)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--paths", default=",".join(PATHS))
    args = parser.parse_args()
    rows = feature_rows()
    results: dict[str, tuple[float, float, float, float]] = {}
    print(
        "| path | frames rows/s | decode rows/s | decode + bind rows/s | on_records rows/s | µs/row "
        "| / WineRecord |"
    )
    print("|---|---|---|---|---|---|---|")
    for key in ["wine", *(k for k in args.paths.split(",") if k != "wine")]:
        path = PATHS[key]
        batch = framed(path, encode(path, rows, args.batch, f"{key}.0"))
        results[key] = measure(path, batch, args.batch, args.seconds)
        frames, decode, bind, core = results[key]
        ratio = core / results["wine"][3]
        print(
            f"| {path.label} | {frames:,.0f} | {decode:,.0f} | {bind:,.0f} | {core:,.0f} | {1e6 / core:.2f} "
            f"| {ratio:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
