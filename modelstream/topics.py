"""Data topics and their record encodings: the ``data_topics`` setting, parsed once.

A data topic spec is ``TOPIC`` optionally followed by ``;key=value`` options, specs separated by ",":

    wine, loans-pb;encoding=protobuf;message=loans.LoanApplication;data-type-field=12;data-type=loans

- ``encoding``: ``auto`` (the default: JSON objects recognized by their first byte ``{``, Confluent-framed
  protobuf by its magic byte 0, anything else a WineRecord), ``wine``, ``json``, ``oip``
  (``inference.ModelInferRequest``) or ``protobuf`` (a user schema published with ``publish-schema``).
- ``message``: for ``protobuf``, the record message's full name.
- ``data-type-field``: for ``protobuf``, the number of a string field holding the data type.
- ``data-type``: the data type of records that name none (default: the topic's name).

A Kafka header ``content-type`` overrides the topic's encoding per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

# the largest message a topic of the project takes (a model, or a dead letter that carries one)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Encoding(IntEnum):
    """How a record's bytes are encoded; the JVM writes this code into each framed record."""

    WINE = 0
    JSON = 1
    OIP = 2
    PROTOBUF = 3
    UNSUPPORTED = 4  # a content-type header the job does not read
    FEEDBACK = 5  # a feedback message (JSON), from the feedback topic: joined with results, not scored
    AUTO = 255  # only in topic specs: detected per record


TOPIC_ENCODINGS = {"auto": Encoding.AUTO, "wine": Encoding.WINE, "json": Encoding.JSON}
TOPIC_ENCODINGS |= {"oip": Encoding.OIP, "protobuf": Encoding.PROTOBUF}
_OPTIONS = ("encoding", "message", "data-type-field", "data-type")


@dataclass(frozen=True)
class TopicSpec:
    """One data topic and how its records are read."""

    topic: str
    encoding: Encoding = Encoding.AUTO
    message: str = ""
    data_type_field: int = 0
    data_type: str = ""

    @property
    def default_data_type(self) -> str:
        """The data type of a record that names none (feedback: none, it is dead-lettered)."""
        return self.data_type or ("" if self.encoding == Encoding.FEEDBACK else self.topic)


def parse_topic_specs(text: str) -> tuple[TopicSpec, ...]:
    """The specs of a ``data_topics`` setting; raises ValueError naming what is wrong."""
    specs = []
    for item in text.split(","):
        if not item.strip():
            continue
        topic, *options = (part.strip() for part in item.split(";"))
        if not topic:
            raise ValueError(f"data topic spec {item.strip()!r} has no topic name")
        values: dict[str, str] = {}
        for option in options:
            key, equals, value = option.partition("=")
            if not equals or key.strip() not in _OPTIONS:
                raise ValueError(
                    f"topic {topic}: {option!r} is not one of {', '.join(_OPTIONS)} as key=value"
                )
            values[key.strip()] = value.strip()
        encoding_name = values.get("encoding", "auto")
        if encoding_name not in TOPIC_ENCODINGS:
            raise ValueError(
                f"topic {topic}: encoding {encoding_name!r} is not one of {', '.join(TOPIC_ENCODINGS)}"
            )
        field = values.get("data-type-field", "0")
        if not field.isdigit():
            raise ValueError(f"topic {topic}: data-type-field {field!r} is not a field number")
        specs.append(
            TopicSpec(
                topic,
                TOPIC_ENCODINGS[encoding_name],
                values.get("message", ""),
                int(field),
                values.get("data-type", ""),
            )
        )
    names = [s.topic for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"data topics listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    return tuple(specs)


def jvm_config(specs: tuple[TopicSpec, ...]) -> str:
    """The specs as the JVM's record deserializer reads them: a line per topic in index order,
    ``topic TAB encoding code TAB message TAB data-type field TAB default data type``."""
    return "\n".join(
        f"{s.topic}\t{int(s.encoding)}\t{s.message}\t{s.data_type_field}\t{s.default_data_type}"
        for s in specs
    )


RECORD_SCHEMA_MESSAGE = "modelstream.RecordSchema"
# the content-type header of a RecordSchema on the models topic
RECORD_SCHEMA_CONTENT_TYPE = f"application/x-protobuf; messageType={RECORD_SCHEMA_MESSAGE}"


ROLLOUT_POLICY_MESSAGE = "modelstream.RolloutPolicy"
ROLLOUT_POLICY_CONTENT_TYPE = f"application/x-protobuf; messageType={ROLLOUT_POLICY_MESSAGE}"


PERFORMANCE_POLICY_MESSAGE = "modelstream.PerformancePolicy"
PERFORMANCE_POLICY_CONTENT_TYPE = f"application/x-protobuf; messageType={PERFORMANCE_POLICY_MESSAGE}"


class ModelsTopicKind(IntEnum):
    """What a message on the models topic is, by its content-type header (none: a ModelDescriptor)."""

    MODEL = 0
    SCHEMA = 1
    POLICY = 2
    PERFORMANCE = 4


def models_topic_kind(content_type: str) -> ModelsTopicKind:
    kind = message_type(content_type)
    if kind == RECORD_SCHEMA_MESSAGE:
        return ModelsTopicKind.SCHEMA
    if kind == ROLLOUT_POLICY_MESSAGE:
        return ModelsTopicKind.POLICY
    if kind == PERFORMANCE_POLICY_MESSAGE:
        return ModelsTopicKind.PERFORMANCE
    return ModelsTopicKind.MODEL


def message_type(content_type: str) -> str:
    """The ``messageType`` parameter of a content-type header, or ""."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "messagetype":
            return value.strip().strip('"')
    return ""
