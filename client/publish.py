"""Publishing models and data records to Kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer
from google.protobuf.message import Message

from client.encode import EncodedRecord, protobuf_content_type, read_wine_rows
from client.messages import model_descriptor
from client.topics import producer
from modelstream.records import wine_record_from_row
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import ModelDescriptor, PerformancePolicy, RecordSchema, RolloutPolicy

PROGRESS_EVERY = 1000  # records between calls to a publisher's progress report


class PublishError(RuntimeError):
    """The broker did not acknowledge what was sent."""


def publish_model(settings: Settings, descriptor: ModelDescriptor) -> None:
    """Send one model descriptor to the model-update topic, keyed by its data type, and wait for the ack."""
    p = producer(settings)
    p.produce(settings.models_topic, key=descriptor.dataType.encode(), value=descriptor.SerializeToString())
    if p.flush(30) != 0:
        raise PublishError(f"model {descriptor.name} was not acknowledged by {settings.bootstrap}")


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
    progress: Callable[[int], None] = lambda sent: None,
) -> int:
    """Replay the wine CSV as WineRecords (ts = now, record_id = PREFIX-N), cycling if count exceeds it.

    ``rate`` is records per second (None: as fast as possible). Returns how many were sent."""
    if not csv.is_file():
        raise FileNotFoundError(f"no such file: {csv}")
    rows = read_wine_rows(csv)
    if not rows:
        raise ValueError(f"{csv} has no rows")
    total = len(rows) if count is None else count
    prefix = id_prefix or uuid.uuid4().hex[:8]
    p = producer(settings)
    # connected and the topic's leader known before the first record's ts is taken
    p.list_topics(settings.data_topic, timeout=10)
    started = time.monotonic()
    sent = 0
    while sent < total and not should_stop():
        record = wine_record_from_row(
            rows[sent % len(rows)], data_type, time.time_ns() // 1_000_000, f"{prefix}-{sent}"
        )
        produce(p, settings.data_topic, record.SerializeToString())
        sent += 1
        if sent % PROGRESS_EVERY == 0:
            progress(sent)
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                p.poll(0)
                time.sleep(ahead)
    if p.flush(60) != 0:
        raise PublishError(f"not every record was acknowledged by {settings.bootstrap}")
    progress(sent)
    return sent


def produce(p: Producer, topic: str, value: bytes, key: bytes | None = None) -> None:
    """Produce, letting the producer send when its queue is full."""
    while True:
        try:
            p.produce(topic, key=key, value=value)
            return
        except BufferError:
            p.poll(0.1)


def publish_record_schema(settings: Settings, schema: RecordSchema) -> None:
    """Send a data type's RecordSchema to the models topic, keyed by its data type, and wait for the ack."""
    _publish_typed(settings, schema.data_type, schema, f"schema {schema.message_name}")


def publish_policy(settings: Settings, policy: RolloutPolicy) -> None:
    """Send a data type's RolloutPolicy to the models topic, keyed by its data type, and wait for the ack."""
    _publish_typed(settings, policy.data_type, policy, f"policy {policy.version} for {policy.data_type}")


def publish_performance_policy(settings: Settings, policy: PerformancePolicy) -> None:
    """Send a data type's PerformancePolicy to the models topic, keyed by its data type."""
    _publish_typed(
        settings, policy.data_type, policy, f"performance policy {policy.version} for {policy.data_type}"
    )


def publish_feedback(settings: Settings, messages: Iterable[dict[str, Any]]) -> int:
    """Send feedback (JSON objects with dataType, record_id and label or value) to the feedback topic,
    keyed by data type; returns how many were acknowledged."""
    p = producer(settings)
    sent = 0
    for message in messages:
        produce(p, settings.feedback_topic, orjson.dumps(message), str(message["dataType"]).encode())
        sent += 1
    if p.flush(30) != 0:
        raise PublishError(f"feedback was not acknowledged by {settings.bootstrap}")
    return sent


def _publish_typed(settings: Settings, data_type: str, message: Message, what: str) -> None:
    """A message of its own type on the models topic: its type in the content-type header."""
    errors: list[Any] = []

    def delivered(error: Any, _msg: Any) -> None:
        if error is not None:
            errors.append(error)

    p = producer(settings)
    content_type = protobuf_content_type(message.DESCRIPTOR.full_name)
    p.produce(
        settings.models_topic,
        key=data_type.encode(),
        value=message.SerializeToString(),
        headers=[("content-type", content_type.encode())],
        on_delivery=delivered,
    )
    if p.flush(30) != 0 or errors:
        detail = f": {errors[0]}" if errors else ""
        raise PublishError(f"{what} was not acknowledged by {settings.bootstrap}{detail}")


def publish_encoded(
    settings: Settings,
    topic: str,
    records: Iterable[EncodedRecord],
    rate: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] = lambda sent: None,
) -> int:
    """Send encoded records to ``topic`` at ``rate`` rows per second (None: as fast as possible), and
    wait for every ack. Returns how many rows were sent (a record may carry several)."""
    errors: list[Any] = []

    def delivered(error: Any, _msg: Any) -> None:
        if error is not None:
            errors.append(error)

    p = producer(settings)
    # connected and the topic's leader known before the first record's ts is taken
    p.list_topics(topic, timeout=10)
    started = time.monotonic()
    sent = 0
    try:
        for record in records:
            if should_stop():
                break
            headers: list[tuple[str, str | bytes | None]] = list(record.headers)
            while True:
                try:
                    p.produce(topic, value=record.value, headers=headers, on_delivery=delivered)
                    break
                except BufferError:
                    p.poll(0.1)
            sent += record.rows
            if sent % PROGRESS_EVERY < record.rows:
                progress(sent)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    p.poll(0)
                    time.sleep(ahead)
    finally:
        unsent = p.flush(60)  # what was produced before an error still goes out
    if unsent != 0 or errors:
        detail = f" ({len(errors)} failed: {errors[0]})" if errors else ""
        raise PublishError(f"not every record was acknowledged by {settings.bootstrap}{detail}")
    progress(sent)
    return sent
