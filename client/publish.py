"""Publishing models and data records to Kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from client.messages import model_descriptor
from client.topics import producer
from modelstream.records import read_wine_csv, wine_record_from_row
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import ModelDescriptor


def publish_model(settings: Settings, descriptor: ModelDescriptor) -> None:
    """Send one model descriptor to the model-update topic, keyed by its data type, and wait for the ack."""
    p = producer(settings)
    p.produce(settings.models_topic, key=descriptor.dataType.encode(), value=descriptor.SerializeToString())
    if p.flush(30) != 0:
        raise RuntimeError(f"model {descriptor.name} was not acknowledged by {settings.bootstrap}")


def publish_model_file(
    settings: Settings,
    path: Path,
    name: str,
    data_type: str,
    model_type: str,
    description: str = "",
    version: str = "",
) -> ModelDescriptor:
    descriptor = model_descriptor(path, name, data_type, model_type, description, version)
    publish_model(settings, descriptor)
    return descriptor


def publish_records(
    settings: Settings,
    csv: Path,
    data_type: str = "wine",
    count: int | None = None,
    rate: float | None = None,
    id_prefix: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Replay the wine CSV as WineRecords (ts = now, record_id = PREFIX-N), cycling if count exceeds it.

    ``rate`` is records per second (None: as fast as possible). Returns how many were sent."""
    rows = read_wine_csv(str(csv))
    if not rows:
        raise ValueError(f"{csv} has no rows")
    total = len(rows) if count is None else count
    prefix = id_prefix or uuid.uuid4().hex[:8]
    p = producer(settings)
    started = time.monotonic()
    sent = 0
    while sent < total and not should_stop():
        record = wine_record_from_row(
            rows[sent % len(rows)], data_type, time.time_ns() // 1_000_000, f"{prefix}-{sent}"
        )
        while True:
            try:
                p.produce(settings.data_topic, value=record.SerializeToString())
                break
            except BufferError:
                p.poll(0.1)
        sent += 1
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                p.poll(0)
                time.sleep(ahead)
    if p.flush(60) != 0:
        raise RuntimeError(f"not every record was acknowledged by {settings.bootstrap}")
    return sent
