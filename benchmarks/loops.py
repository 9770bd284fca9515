"""The contenders a user would write instead of the job, each a process of its own, until SIGTERM:

    python -m benchmarks.loops KIND --input TOPIC --output TOPIC --bootstrap HOST:PORT [--batch 500]

    [--format onnx|tf-graph|pmml]

KIND: ``batched`` (consume up to --batch records, decode them with the generated protobuf class, score
them in one model call, produce one ScoreResult each), ``one`` (the same, one model call per record),
``passthrough`` (consume and produce the same bytes: the Kafka ceiling), ``quix`` (a Quix Streams
application scoring each record, with its default checkpointing; run with .venv-quix's Python).
Every scorer writes the same ScoreResult the job writes (modelstream.results), with the wine model of
--format (benchmarks.throughput.descriptor).
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from types import FrameType

import numpy as np

from benchmarks.wine_models import descriptor
from modelstream.codecs.base import SourceRecord
from modelstream.contract import InputArrays, ModelOptions
from modelstream.records import WINE, normalize_field_name
from modelstream.registry import load_model
from modelstream.results import ResultEncoder
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ServingModel, WineRecord

FEATURES = WINE.features
FORMATS = ("onnx", "tf-graph", "pmml")


class Scorer:
    """Decode WineRecords, score them in one call, encode a ScoreResult each."""

    def __init__(self, fmt: str = "onnx") -> None:
        model = descriptor(fmt, "b")
        self.model = load_model(model, ModelOptions())
        self.inputs = self.model.inputs
        self.info = ServingModel(name=model.name, version="b", model_type=model.modeltype)
        self.encoder = ResultEncoder()
        # a model of one array input takes the 11 features as a matrix, one of scalar inputs a column each
        self.matrix = len(self.inputs) == 1 and bool(self.inputs[0].shape)
        loose = [normalize_field_name(f) for f in FEATURES]
        self.columns = [] if self.matrix else [loose.index(normalize_field_name(s.name)) for s in self.inputs]

    def _inputs(self, records: list[WineRecord]) -> InputArrays:
        matrix = np.array([[getattr(r, f) for f in FEATURES] for r in records], dtype=np.float64)
        if self.matrix:
            (spec,) = self.inputs
            return {spec.name: matrix.astype(spec.dtype, copy=False)}
        return {spec.name: matrix[:, column] for spec, column in zip(self.inputs, self.columns, strict=True)}

    def score(self, values: list[bytes], topic: str, offsets: list[int]) -> list[bytes]:
        records = [WineRecord.FromString(v) for v in values]
        inputs = self._inputs(records)
        started = time.perf_counter_ns()
        batch = self.model.score_batch(inputs)
        each_ns = (time.perf_counter_ns() - started) // len(records)
        sources = [
            SourceRecord(v, 0, o, Encoding.WINE, topic, 0, None, "")
            for v, o in zip(values, offsets, strict=True)
        ]
        return self.encoder.encode(
            self.info,
            "wine",
            time.time_ns() // 1_000_000,
            each_ns,
            [r.record_id for r in records],
            [r.ts for r in records],
            sources,
            batch,
        )


def run_confluent(kind: str, args: argparse.Namespace, running: Callable[[], bool]) -> None:
    from confluent_kafka import Consumer, Producer

    consumer = Consumer(
        {"bootstrap.servers": args.bootstrap, "group.id": f"race-{kind}", "auto.offset.reset": "earliest",
         "enable.auto.commit": True}
    )  # fmt: skip
    consumer.subscribe([args.input])
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    scorer = None if kind == "passthrough" else Scorer(args.format)
    size = 1 if kind == "one" else args.batch
    while running():
        messages = [m for m in consumer.consume(args.batch, 0.1) if m.error() is None]
        for start in range(0, len(messages), size):
            chunk = messages[start : start + size]
            values = [m.value() or b"" for m in chunk]
            out = (
                values
                if scorer is None
                else scorer.score(values, args.input, [m.offset() or 0 for m in chunk])
            )
            for value in out:
                while True:
                    try:
                        producer.produce(args.output, value=value)
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.poll(0)
    producer.flush(10)
    consumer.close()


def run_quix(args: argparse.Namespace) -> None:
    from quixstreams import Application  # type: ignore[import-not-found]

    app = Application(broker_address=args.bootstrap, consumer_group="race-quix", auto_offset_reset="earliest")
    source = app.topic(args.input, value_deserializer="bytes")
    sink = app.topic(args.output, value_serializer="bytes")
    scorer = Scorer(args.format)
    frame = app.dataframe(source)
    frame = frame.apply(lambda value: scorer.score([value], args.input, [0])[0])
    frame.to_topic(sink)
    app.run()  # stops on SIGTERM / SIGINT, committing its checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("kind", choices=["batched", "one", "passthrough", "quix"])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="the wine model it scores")
    args = parser.parse_args()
    if args.kind == "quix":
        run_quix(args)
        return
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_confluent(args.kind, args, lambda: not stop)


if __name__ == "__main__":
    main()
