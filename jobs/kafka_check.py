"""Whether the Kafka cluster answers and accepts the configured credentials, asked before anything starts:
a Flink Kafka source that cannot authenticate would otherwise fail and restart without end."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from modelstream.kafka_properties import load_kafka_properties
from modelstream.settings import Settings

_REFUSALS = {
    KafkaError._AUTHENTICATION: "refused the credentials",
    KafkaError.SASL_AUTHENTICATION_FAILED: "refused the credentials",
    KafkaError._SSL: "failed the TLS handshake",
}


class BrokerProblem(Exception):
    """The broker is unreachable (``refused`` False) or refused this client (True), and why."""

    def __init__(self, message: str, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def librdkafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """A librdkafka client's configuration: the bootstrap servers and the kafka_properties file's
    security settings, then ``extra``."""
    security = load_kafka_properties(settings.kafka_properties).librdkafka
    return {"bootstrap.servers": settings.bootstrap, **security, **extra}


def check_broker(settings: Settings, timeout_s: float = 3.0, **extra: Any) -> None:
    """Return once the cluster has answered a metadata request; BrokerProblem when it does not within
    ``timeout_s`` or refuses this client (known as soon as the broker says so, not at the timeout)."""
    seen: list[KafkaError] = []
    config = librdkafka_config(settings, **{"socket.timeout.ms": int(timeout_s * 1000), **extra})
    config["error_cb"] = seen.append
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=min(0.5, timeout_s))
            return
        except KafkaException as e:
            last = e
        admin.poll(0)  # serves error_cb
        for error in seen:
            if error.code() in _REFUSALS:
                raise BrokerProblem(
                    f"the Kafka broker at {settings.bootstrap} {_REFUSALS[error.code()]}: {error.str()}", True
                )
        if time.monotonic() >= deadline:
            raise BrokerProblem(f"no Kafka broker answers at {settings.bootstrap}: {last}", False)
