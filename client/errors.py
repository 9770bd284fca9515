"""What the CLI tells a user when an expected failure happens: one line naming the cause, one with the
fix, and a documented exit code (docs/cli.md). Unexpected failures keep their traceback."""

from __future__ import annotations

import errno
import socket
import urllib.error
from enum import IntEnum

from confluent_kafka import KafkaException

from client.flink_rest import FlinkRestError
from client.local_cluster import ClusterError
from client.local_kafka import BrokerError
from client.publish import PublishError
from client.topics import KafkaRefused, KafkaUnavailable
from modelstream.admission import ModelRejected
from modelstream.codecs.protobuf import SchemaError
from modelstream.deadletters import Reason
from modelstream.kafka_properties import KafkaPropertiesError
from modelstream.settings import Settings


class ExitCode(IntEnum):
    """The CLI's exit codes."""

    OK = 0
    FAILED = 1  # the command ran and found a negative answer (not running, unhealthy) or failed
    USAGE = 2  # bad flags, a missing or unreadable file, a value that does not parse
    UNREACHABLE = 3  # no broker, Flink REST API or stats service answers
    REJECTED = 4  # a check refused what was to be published (the job would dead-letter it)
    IN_USE = 5  # a port is held by another process
    INTERRUPTED = 130


class CliError(Exception):
    """An expected failure: what happened, what to do, and the exit code."""

    def __init__(self, message: str, fix: str = "", code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.code = code


class PortInUse(CliError):
    def __init__(self, port: int, what: str, flag: str) -> None:
        super().__init__(
            f"port {port} ({what}) is in use by another process",
            f"stop what holds it (`ss -ltnp 'sport = :{port}'` shows it), or choose another port with {flag}",
            ExitCode.IN_USE,
        )


def require_free_port(port: int, what: str, flag: str, host: str = "127.0.0.1") -> None:
    """PortInUse unless ``port`` can be bound on ``host``."""
    with socket.socket() as probe:
        # as servers bind: a port with only closed connections in TIME_WAIT is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(port, what, flag) from e
            raise


def broker_unreachable(settings: Settings) -> CliError:
    return CliError(
        f"no Kafka broker answers at {settings.bootstrap} (the bootstrap setting)",
        "start one with `modelstream kafka start` (or `make demo`), or point --bootstrap "
        "(MODELSTREAM_BOOTSTRAP) at yours; a broker that wants TLS or SASL needs --kafka-properties FILE",
        ExitCode.UNREACHABLE,
    )


def explain(error: BaseException, settings: Settings) -> CliError | None:
    """The CliError an expected exception means, or None for one that is a bug."""
    if isinstance(error, CliError):
        return error
    if isinstance(error, KafkaRefused):
        where = settings.kafka_properties or "no --kafka-properties file (a plaintext client)"
        return CliError(
            str(error),
            f"check the credentials and the CA certificate in {where} (MODELSTREAM_KAFKA_PROPERTIES)",
            ExitCode.UNREACHABLE,
        )
    if isinstance(error, KafkaPropertiesError):
        return CliError(str(error), "fix the file given by --kafka-properties (docs/security.md)")
    if isinstance(error, (KafkaUnavailable, KafkaException)):
        return broker_unreachable(settings)
    if isinstance(error, PublishError):
        return CliError(str(error), broker_unreachable(settings).fix, ExitCode.UNREACHABLE)
    if isinstance(error, FlinkRestError):
        return CliError(
            f"no Flink REST API answers at {settings.jobmanager}: {error}",
            "start the job with `modelstream job run` (or a cluster with `modelstream cluster start`), "
            "or point --jobmanager at yours",
            ExitCode.UNREACHABLE,
        )
    if isinstance(error, urllib.error.URLError):
        return CliError(
            f"no stats service answers: {error.reason}",
            "start one with `modelstream stats serve`, or leave out --url to read the stats topic",
            ExitCode.UNREACHABLE,
        )
    if isinstance(error, ModelRejected):
        return CliError(
            f"refused: {Reason.Name(error.reason)}: {error.message}",
            "the job would dead-letter it with this reason; fix the model, or --no-check to publish anyway",
            ExitCode.REJECTED,
        )
    if isinstance(error, SchemaError):
        return CliError(
            f"refused: SCHEMA_INVALID: record schema: {error}",
            "the job would dead-letter it with this reason; check --message and the descriptor set",
            ExitCode.REJECTED,
        )
    if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        what = f"cannot read {error.filename}: {error.strerror}" if error.filename else str(error)
        return CliError(what, "check the path", ExitCode.USAGE)
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return CliError(str(error), "stop what holds the port, or choose another", ExitCode.IN_USE)
    if isinstance(error, (BrokerError, ClusterError)):
        return CliError(str(error), "", ExitCode.FAILED)
    if isinstance(error, ValueError):
        return CliError(str(error), "", ExitCode.USAGE)
    return None
