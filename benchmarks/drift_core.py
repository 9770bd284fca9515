"""What drift and the feedback ring cost in the serving core alone (no Kafka, no Flink): microseconds per
record of `ModelServer.on_records` for the ONNX wine model with both off, with drift on against a
reference profile, and with the ring keeping every result too, at the job's usual micro-batch sizes; and
µs per message of `ModelServer.on_feedback` joining the true quality of every record in micro-batches of
the same size.

    .venv/bin/python -m benchmarks.drift_core [--records 60000] [--batches 60,256] [--repeats 5]

Keyed state is a stand-in that serializes the stats as the job's does after every batch. Each figure is
the best of --repeats passes over the same records (the machine is shared: the best is the least
disturbed), the variants interleaved pass by pass.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import orjson

from benchmarks.drift_cost import QUALITY
from benchmarks.wine_models import CSV, descriptor
from client.reference import reference_profile
from modelstream.codecs.base import SourceRecord
from modelstream.contract import ModelOptions
from modelstream.interface import KeyContext
from modelstream.records import read_wine_csv, wine_record_from_row
from modelstream.serving import ModelServer, ServingSettings
from modelstream.settings import Settings
from modelstream.testing import MemoryKeyContext, source_record
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import StatsSnapshot

VARIANTS = {  # name: (drift_window, feedback_max_records)
    "drift and feedback off": (0, 0),
    "drift on": (1000, 0),
    "drift on, ring keeps every result": (1000, 100_000),
}


class SerializingKeyContext(MemoryKeyContext):
    """Keyed state that serializes the stats it is given, as the job's does."""

    def store_stats(self, snapshot: StatsSnapshot) -> None:
        self.stored = snapshot.SerializeToString()
        super().store_stats(snapshot)


def pass_us(
    drift_window: int, ring: int, batches: list[list[SourceRecord]], model: bytes
) -> tuple[float, ModelServer, SerializingKeyContext]:
    """Microseconds per record of one pass of a fresh server over ``batches`` (after a warm-up batch),
    and the server with its state."""
    server = ModelServer(
        ServingSettings(drift_window=drift_window, feedback_max_records=ring), ModelOptions()
    )
    ctx = SerializingKeyContext()
    server.on_model("wine", (model, 0, 0), ctx)
    server.on_records("wine", batches[0], ctx)
    return timed_us(server.on_records, batches[1:], ctx), server, ctx


def timed_us(
    handler: Callable[[str, Sequence[SourceRecord], KeyContext], object],
    batches: list[list[SourceRecord]],
    ctx: KeyContext,
) -> float:
    """Microseconds per record of ``handler`` over ``batches``."""
    started = time.perf_counter_ns()
    for batch in batches:
        handler("wine", batch, ctx)
    return (time.perf_counter_ns() - started) / 1000 / sum(len(b) for b in batches)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--batches", default="60,256", help="micro-batch sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = read_wine_csv(str(CSV))
    values = [
        wine_record_from_row(rows[i % len(rows)], "wine", 1, f"r-{i}").SerializeToString()
        for i in range(args.records)
    ]
    labels = [
        orjson.dumps(
            {"dataType": "wine", "record_id": f"r-{i}", "label": str(int(rows[i % len(rows)][QUALITY]))}
        )
        for i in range(args.records)
    ]
    profiled = descriptor("onnx", "v1")
    profiled.reference_profile.CopyFrom(reference_profile(Settings(), profiled, CSV))
    model = profiled.SerializeToString()
    sizes = [int(size) for size in args.batches.split(",")]
    lines = [
        f"`python -m benchmarks.drift_core --records {args.records} --batches {args.batches} "
        f"--repeats {args.repeats}` — the serving core alone, ONNX wine model, µs per record (best of "
        f"{args.repeats}).",
        "",
        "| micro-batch | " + " | ".join(VARIANTS) + " | drift adds | the ring adds | a feedback message |",
        "|---:|" + "---:|" * (len(VARIANTS) + 3),
    ]
    for size in sizes:
        batches = [
            [source_record(v, offset=start + i) for i, v in enumerate(values[start : start + size])]
            for start in range(0, len(values), size)
        ]
        feedback = [
            [
                source_record(v, Encoding.FEEDBACK, offset=start + i)
                for i, v in enumerate(labels[start : start + size])
            ]
            for start in range(0, len(labels), size)
        ]
        best = dict.fromkeys(VARIANTS, float("inf"))
        joined = float("inf")
        for _ in range(args.repeats):
            for name, (window, ring) in VARIANTS.items():
                us, server, ctx = pass_us(window, ring, batches, model)
                best[name] = min(best[name], us)
                if ring >= args.records:  # every result kept: each message matches a record
                    joined = min(joined, timed_us(server.on_feedback, feedback, ctx))
                server.close()
        off, drift, both = best.values()
        figures = " | ".join(f"{us:.2f}" for us in best.values())
        lines.append(f"| {size} | {figures} | {drift - off:+.2f} | {both - drift:+.2f} | {joined:.2f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
