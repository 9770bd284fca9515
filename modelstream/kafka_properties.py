"""One Kafka ``client.properties`` file for every client the project runs, mapped once to the names the
Java client (the job's source and sink) and librdkafka (the CLI, the stats service, the benchmarks) use.

Read: ``security.protocol``, ``sasl.mechanism``, ``sasl.jaas.config`` (PLAIN or SCRAM login modules) or
``sasl.username``/``sasl.password`` (also ``username``/``password``), ``ssl.truststore.location`` (PEM;
``ssl.truststore.type``), ``ssl.ca.location``, ``ssl.endpoint.identification.algorithm``. Any other key goes
to the Java client unchanged. Secrets stay in the returned mappings: never log them (``masked``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SECRET_KEYS = frozenset({"sasl.jaas.config", "sasl.password", "password", "ssl.key.password",
                         "ssl.keystore.password", "ssl.truststore.password"})  # fmt: skip
_READ = {
    "security.protocol", "sasl.mechanism", "sasl.jaas.config", "sasl.username", "sasl.password",
    "username", "password", "ssl.truststore.location", "ssl.truststore.type", "ssl.ca.location",
    "ssl.endpoint.identification.algorithm",
}  # fmt: skip


class KafkaPropertiesError(ValueError):
    """A client.properties file that cannot be used, and why (never with a secret in the message)."""


@dataclass(frozen=True)
class KafkaProperties:
    """The client settings in both clients' names (empty: a plaintext broker without authentication)."""

    java: dict[str, str] = field(default_factory=dict)
    librdkafka: dict[str, str] = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return self.java.get("security.protocol", "PLAINTEXT")


def parse_properties(text: str) -> dict[str, str]:
    """A Java .properties text: ``key=value`` or ``key: value`` lines, ``#``/``!`` comments, a trailing
    backslash continues a line."""
    result: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending = line[:-1]
            continue
        key, value = _split(line)
        result[key] = value
    if pending:
        key, value = _split(pending)
        result[key] = value
    return result


def _split(line: str) -> tuple[str, str]:
    match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
    if match is None:
        return line, ""
    return match.group(1), match.group(2)


def kafka_properties(values: dict[str, str], source: str = "client.properties") -> KafkaProperties:
    """Both clients' settings from parsed client.properties ``values``; KafkaPropertiesError says what
    is missing or unsupported."""
    protocol = values.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in _PROTOCOLS:
        raise KafkaPropertiesError(
            f"{source}: security.protocol {protocol!r} is not one of {', '.join(_PROTOCOLS)}"
        )
    java = {k: v for k, v in values.items() if k not in _READ}
    native: dict[str, str] = {"security.protocol": protocol}
    java["security.protocol"] = protocol
    if protocol.startswith("SASL"):
        mechanism = values.get("sasl.mechanism", "PLAIN").upper()
        if mechanism not in _JAAS_MODULES:
            raise KafkaPropertiesError(
                f"{source}: sasl.mechanism {mechanism!r} is not one of {', '.join(_JAAS_MODULES)}"
            )
        username, password = _credentials(values, source)
        java["sasl.mechanism"] = native["sasl.mechanism"] = mechanism
        login = f'username="{_escaped(username)}" password="{_escaped(password)}"'
        java["sasl.jaas.config"] = (
            values.get("sasl.jaas.config") or f"{_JAAS_MODULES[mechanism]} required {login};"
        )
        native["sasl.username"], native["sasl.password"] = username, password
    if protocol.endswith("SSL"):
        ca = values.get("ssl.ca.location", "")
        truststore = values.get("ssl.truststore.location", "")
        if truststore and values.get("ssl.truststore.type", "PEM").upper() != "PEM":
            raise KafkaPropertiesError(
                f"{source}: librdkafka (the CLI) cannot read a {values['ssl.truststore.type']} truststore: "
                "give the CA certificate as PEM (ssl.ca.location, or a PEM ssl.truststore.location)"
            )
        ca = ca or truststore
        if ca:
            if not Path(ca).is_file():
                raise KafkaPropertiesError(f"{source}: the CA certificate {ca} does not exist")
            native["ssl.ca.location"] = ca
            java["ssl.truststore.type"], java["ssl.truststore.location"] = "PEM", ca
        algorithm = values.get("ssl.endpoint.identification.algorithm")
        if algorithm is not None:
            java["ssl.endpoint.identification.algorithm"] = algorithm
            native["ssl.endpoint.identification.algorithm"] = algorithm or "none"
    return KafkaProperties(java, native)


def _credentials(values: dict[str, str], source: str) -> tuple[str, str]:
    jaas = values.get("sasl.jaas.config", "")
    options = {k: v.replace('\\"', '"') for k, v in _JAAS_OPTION.findall(jaas)}
    username = values.get("sasl.username") or values.get("username") or options.get("username", "")
    password = values.get("sasl.password") or values.get("password") or options.get("password", "")
    if not username or not password:
        raise KafkaPropertiesError(
            f"{source}: SASL needs a username and a password "
            "(sasl.jaas.config, or sasl.username and sasl.password)"
        )
    return username, password


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def load_kafka_properties(path: str) -> KafkaProperties:
    """The settings of the client.properties file at ``path`` (empty path: none)."""
    if not path:
        return KafkaProperties()
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise KafkaPropertiesError(f"cannot read the Kafka client properties {path}: {e.strerror}") from None
    return kafka_properties(parse_properties(text), path)


def masked(config: dict[str, object]) -> dict[str, object]:
    """``config`` as it may be shown: secrets replaced."""
    return {k: ("****" if k in SECRET_KEYS else v) for k, v in config.items()}
