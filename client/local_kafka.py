"""A single-node KRaft Kafka broker on 127.0.0.1, run from the jars `make jars` fetched."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from client import topics
from client.local_security import LocalSecurity, generate
from client.signals import StopSignals
from client.topics import MAX_MESSAGE_BYTES
from modelstream.logs import event, logger
from modelstream.settings import Settings

LOG = logger("kafka")
_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = warn
logger.apache.name = org.apache.kafka
logger.apache.level = warn
"""


class BrokerError(RuntimeError):
    """The local broker could not be started or reached."""


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java:
        raise BrokerError("no java found: install a JDK 17+ or set JAVA_HOME")
    return java


def _classpath(settings: Settings) -> str:
    kafka_jars = Path(settings.jars_dir) / "kafka"
    if not any(kafka_jars.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Kafka jars missing in {kafka_jars}: run `make setup`")
    return str(kafka_jars / "*")


def _pid_file(settings: Settings) -> Path:
    return settings.kafka_data_dir / "broker.pid"


def _server_properties(settings: Settings, security: LocalSecurity | None) -> str:
    host = "127.0.0.1"
    listener = "SASL_SSL" if security else "PLAINTEXT"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{settings.kafka_controller_port}",
            f"listeners={listener}://{host}:{settings.kafka_port},CONTROLLER://{host}:{settings.kafka_controller_port}",
            f"advertised.listeners={listener}://{host}:{settings.kafka_port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map=CONTROLLER:PLAINTEXT,{listener}:{listener}",
            *(security.server_properties() if security else []),
            f"log.dirs={settings.kafka_data_dir / 'logs'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            f"message.max.bytes={MAX_MESSAGE_BYTES}",
            f"replica.fetch.max.bytes={MAX_MESSAGE_BYTES}",
            "transaction.max.timeout.ms=3600000",
            "auto.create.topics.enable=false",
            "",
        ]
    )


def local_security(settings: Settings) -> LocalSecurity:
    """Where `kafka start --secure` keeps the broker's certificates, users and client properties."""
    return LocalSecurity(settings.kafka_data_dir / "security")


def running_pid(settings: Settings) -> int | None:
    """The pid of the broker started from this data dir, if it is alive."""
    try:
        pid = int(_pid_file(settings).read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def start(settings: Settings, timeout_s: float = 90.0, secure: bool = False) -> int:
    """Start the broker (formatting its storage the first time), wait until it answers, create topics.

    ``secure`` (or a data directory first started so): a SASL_SSL listener only (SCRAM-SHA-512, a
    certificate from a CA of its own); its client properties are ``local_security(settings)``'s."""
    security = local_security(settings)
    formatted = (settings.kafka_data_dir / "logs" / "meta.properties").exists()
    if secure and formatted and not security.exists:
        raise BrokerError(
            f"the broker in {settings.kafka_data_dir} was first started without --secure: "
            "give the secured one another --kafka-dir (and ports)"
        )
    if secure or security.exists:
        security = generate(security.directory, settings.bootstrap)
        settings = settings.replace(kafka_properties=str(security.client_properties))
    pid = running_pid(settings)
    if pid is None:
        pid = _launch(settings, security if security.exists else None)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            topics.ensure_topics(settings, timeout_s=5.0)
            return pid
        except topics.KafkaUnavailable as e:
            if running_pid(settings) is None:
                log = settings.kafka_data_dir / "server.log"
                raise BrokerError(f"the broker exited during start-up; see {log}") from e
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the broker did not answer on {settings.bootstrap} within {timeout_s:.0f}s"
                ) from e
            time.sleep(0.5)


def _cluster_id() -> str:
    """A random KRaft cluster id: 16 bytes, URL-safe base64, never starting with "-" (StorageTool would
    take it for an option, as Kafka's own Uuid.randomUuid avoids)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _launch(settings: Settings, security: LocalSecurity | None) -> int:
    data_dir = settings.kafka_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    config.touch(mode=0o600)  # it holds the broker's own SCRAM password when secured
    config.write_text(_server_properties(settings, security))
    log4j = data_dir / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log=data_dir / "server.log"))
    java, classpath = _java(), _classpath(settings)
    jvm_args = [f"-Dlog4j2.configurationFile={log4j}", "-Xms256m", "-Xmx1g"]
    if not (data_dir / "logs" / "meta.properties").exists():
        cluster_id = _cluster_id()
        subprocess.run(
            [
                java,
                *jvm_args,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
                *(security.scram_arguments() if security else []),
            ],
            check=True,
            capture_output=True,
        )
    with open(data_dir / "stdout.log", "ab") as out:
        process = subprocess.Popen(
            [java, *jvm_args, "-cp", classpath, "kafka.Kafka", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file(settings).write_text(str(process.pid))
    return process.pid


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a child of this process that has ended (so it stops
    looking alive)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(settings: Settings, timeout_s: float = 30.0, forced: Callable[[], bool] = lambda: False) -> bool:
    """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s`` or once ``forced()``); True if one
    was running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while True:
        _reap(pid)
        if running_pid(settings) is None:
            break
        if time.monotonic() > deadline or forced():
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            _reap(pid)
            break
        time.sleep(0.2)
    _pid_file(settings).unlink(missing_ok=True)
    return True


def run_foreground(settings: Settings, secure: bool = False) -> int:
    """`modelstream kafka start --foreground`: the broker until it ends or is asked to stop (SIGTERM or
    SIGINT; a second one kills it). 0 when it stopped on request, 1 when it ended on its own."""
    with StopSignals() as signals:
        if (pid := running_pid(settings)) is not None:
            raise BrokerError(
                f"a broker already runs from {settings.kafka_data_dir} (pid {pid}): "
                "`modelstream kafka stop` it, or give this one another --kafka-dir and ports"
            )
        pid = start(settings, secure=secure)
        event(LOG, "kafka running", bootstrap=settings.bootstrap, pid=pid, data=str(settings.kafka_data_dir))
        while not signals.requested:
            _reap(pid)
            if running_pid(settings) != pid:
                event(LOG, "the broker exited on its own", logging.ERROR,
                      log=str(settings.kafka_data_dir / "server.log"))  # fmt: skip
                _pid_file(settings).unlink(missing_ok=True)
                return 1
            time.sleep(0.2)
        event(LOG, "stop requested", signal=signals.last)
        stop(settings, forced=lambda: signals.forced)
        event(LOG, "kafka stopped")
        return 0
