"""What is on the topics: the models published (and which serves), the latest stats per data type."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Message
from google.protobuf.message import DecodeError

from client import topics
from modelstream.serving import model_version
from modelstream.settings import Settings
from modelstream.topics import ModelsTopicKind, models_topic_kind
from protobufs.modelstream_pb2 import ModelDescriptor, RecordSchema, StatsSnapshot

# roles of versions whose results are served (an ensemble's members and a speculative pair included)
SERVING_ROLES = ("served", "member", "primary", "fallback")


def latest_stats(settings: Settings) -> dict[str, StatsSnapshot]:
    """The newest snapshot per data type on the stats topic."""
    latest: dict[str, StatsSnapshot] = {}
    for msg in topics.consume(settings, settings.stats_topic, idle_timeout_s=1.0):
        key, value = msg.key(), msg.value()
        if key is None:
            continue
        if value is None:
            latest.pop(key.decode(), None)
        else:
            latest[key.decode()] = StatsSnapshot.FromString(value)
    return latest


def _serving(snapshot: StatsSnapshot) -> set[tuple[str, str]]:
    """(name, version) of the models serving a data type: under a policy every version with a share."""
    if snapshot.versions:
        return {
            (m.model.name, m.model.version)
            for m in snapshot.versions
            if m.role in SERVING_ROLES and m.share > 0
        }
    return {(snapshot.current.model.name, snapshot.current.model.version)}


def _kind(msg: Message) -> ModelsTopicKind:
    """What a models-topic message is, by its content-type header."""
    header = dict(msg.headers() or []).get("content-type") or b""
    return models_topic_kind(header.decode("utf-8", "replace") if isinstance(header, bytes) else header)


def published_models(settings: Settings, data_type: str | None = None) -> list[dict[str, Any]]:
    """Every model descriptor on the models topic, oldest first, with whether it serves now."""
    serving = {dt: _serving(s) for dt, s in latest_stats(settings).items()}
    models = []
    for msg in topics.consume(settings, settings.models_topic, idle_timeout_s=1.0):
        if _kind(msg) != ModelsTopicKind.MODEL:
            continue  # a record schema or a rollout policy
        try:
            descriptor = ModelDescriptor.FromString(msg.value() or b"")
        except DecodeError:
            continue  # the job dead-letters it; it is not a model
        if data_type is not None and descriptor.dataType != data_type:
            continue
        version = model_version(descriptor)
        by_location = descriptor.WhichOneof("MessageContent") == "location"
        models.append(
            {
                "data_type": descriptor.dataType,
                "name": descriptor.name,
                "version": version,
                "type": ModelDescriptor.ModelType.Name(descriptor.modeltype)
                if descriptor.modeltype in ModelDescriptor.ModelType.values()
                else str(descriptor.modeltype),
                "size": 0 if by_location else len(descriptor.data),
                "location": descriptor.location if by_location else "",
                "published_at": msg.timestamp()[1],
                "offset": msg.offset(),
                "staged": descriptor.staged,
                "serving": (descriptor.name, version) in serving.get(descriptor.dataType, set()),
            }
        )
    seen: set[object] = set()
    for model in reversed(models):  # only the newest publication of a serving version serves
        if model["serving"]:
            key = (model["data_type"], model["name"], model["version"])
            model["serving"] = key not in seen
            seen.add(key)
    return models


def record_schemas(settings: Settings, data_type: str) -> dict[str, bytes]:
    """The record schemas published for a data type, as the job keeps them: message name ->
    FileDescriptorSet (a later publication of a message replaces an earlier one)."""
    schemas: dict[str, bytes] = {}
    for msg in topics.consume(settings, settings.models_topic, idle_timeout_s=1.0):
        if _kind(msg) != ModelsTopicKind.SCHEMA:
            continue
        try:
            schema = RecordSchema.FromString(msg.value() or b"")
        except DecodeError:
            continue  # the job dead-letters it
        if schema.data_type == data_type:
            schemas[schema.message_name] = schema.file_descriptor_set
    return schemas
