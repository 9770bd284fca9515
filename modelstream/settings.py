"""One typed settings object for topics, servers, ports, paths and intervals.

Every field can be overridden by an environment variable ``MODELSTREAM_<FIELD>`` (upper case), and the
CLI maps its flags onto the same fields, so a job, a test and a client always agree.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from model.base import ModelOptions

ENV_PREFIX = "MODELSTREAM_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_home() -> str:
    return str(PROJECT_ROOT / ".state")


@dataclass(frozen=True)
class Settings:
    """Everything a modelstream process needs to know about its surroundings."""

    bootstrap: str = "127.0.0.1:9092"
    models_topic: str = "models"
    data_topic: str = "wine"
    scores_topic: str = "scores"
    stats_topic: str = "model-stats"
    dead_letters_topic: str = "dead-letters"
    topic_partitions: int = 1
    group_id: str = "modelstream"

    # Local broker (``modelstream kafka start``).
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_dir: str = ""  # default: <home>/kafka

    # Working directory for local state: broker data, checkpoints, logs.
    home: str = field(default_factory=_default_home)
    jars_dir: str = str(PROJECT_ROOT / ".cache" / "jvm")

    # Flink job.
    parallelism: int = 1
    checkpoint_interval_ms: int = 5000
    checkpoint_dir: str = ""  # default: <home>/checkpoints
    data_start: str = (
        "committed"  # committed | earliest | latest (where a fresh job starts on the data topic)
    )
    # the Flink REST endpoint: where `job submit` sends the job, where the embedded job serves its REST
    # API and web UI, and where `job savepoint` / `job stop` / `cluster` find the job
    jobmanager: str = "127.0.0.1:8081"
    prometheus_ports: str = "9250-9260"  # Prometheus reporter port range (JobManager, TaskManagers); "" = off
    restore_from: str = ""  # a checkpoint or savepoint directory the job starts from
    cluster_rpc_port: int = 6123  # `modelstream cluster start`: the JobManager's RPC port
    delivery: str = (
        "at-least-once"  # at-least-once | exactly-once (Kafka transactions, visible at checkpoints)
    )
    transactional_id_prefix: str = ""  # exactly-once: default modelstream-<group_id>
    state_backend: str = "hashmap"  # hashmap | rocksdb

    # Serving.
    pending_max: int = 10_000  # records held per data type while it has no model
    pending_timeout_ms: int = 30_000  # after this, held records go to dead letters (NO_MODEL)
    stats_interval_ms: int = 2000  # stats snapshot cadence while records flow
    stats_port: int = 8090  # `modelstream stats serve`
    onnx_threads: int = 1
    # defaults measured in docs/tuning.md (python -m benchmarks.tuning)
    batch_max_records: int = 256  # micro-batch: records of one data type sent to Python and scored together
    batch_max_delay_ms: int = 2  # micro-batch: the most a record waits in the JVM for its batch to fill
    python_bundle_size: int = 1000  # PyFlink: elements (micro-batches) per bundle sent to the Python worker
    python_bundle_time_ms: int = 5  # PyFlink: the most a bundle waits before its results go downstream
    # PyFlink: process (a Python worker process per slot, the default) | thread (Python inside the
    # TaskManager's JVM: faster, less isolated; PMML then needs --pmml-engine pypmml)
    python_execution_mode: str = "process"
    buffer_timeout_ms: int = 1  # Flink network buffers: flushed at least this often (Flink's default is 100)
    sink_linger_ms: int = 0  # the job's Kafka producer: the most a result waits to share a request
    # more Flink configuration for the job, "key=value;key=value" (e.g. python.execution-mode=thread)
    flink_options: str = ""
    tf_threads: int = 1
    pmml_engine: str = "jpmml"  # jpmml (reference, faster) | pypmml
    # directories a model's `location` may point into, separated by os.pathsep (":")
    model_roots: str = str(PROJECT_ROOT / "data")

    @property
    def kafka_data_dir(self) -> Path:
        return Path(self.kafka_dir or os.path.join(self.home, "kafka"))

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or os.path.join(self.home, "checkpoints"))

    def model_options(self) -> ModelOptions:
        """The model runtimes' options these settings ask for."""
        roots = tuple(r for r in self.model_roots.split(os.pathsep) if r)
        return ModelOptions(self.onnx_threads, self.tf_threads, self.pmml_engine, roots)

    def check_job(self) -> None:
        """Raise ValueError, saying what to change, for job settings that cannot run together."""
        mode = self.python_execution_mode
        if mode not in ("process", "thread"):
            raise ValueError(f"python_execution_mode must be process or thread, not {mode!r}")
        if mode == "thread" and self.pmml_engine == "jpmml":
            # JPMML runs in a JVM that JPype starts inside the Python process; in thread mode that
            # process is the TaskManager's JVM, which cannot host a second one
            raise ValueError(
                "python_execution_mode thread needs pmml_engine pypmml: JPMML cannot run in thread mode"
            )
        self.flink_option_pairs()

    def flink_option_pairs(self) -> list[tuple[str, str]]:
        """``flink_options`` as (key, value) pairs; raises ValueError on an item without "="."""
        pairs = []
        for item in self.flink_options.split(";"):
            if not item.strip():
                continue
            key, equals, value = item.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"flink_options item {item!r} is not key=value")
            pairs.append((key.strip(), value.strip()))
        return pairs

    @property
    def rest_port(self) -> int:
        return int(self.jobmanager.rsplit(":", 1)[1])

    @property
    def all_topics(self) -> tuple[str, ...]:
        return (
            self.models_topic,
            self.data_topic,
            self.scores_topic,
            self.stats_topic,
            self.dead_letters_topic,
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given fields changed; None values are ignored (unset CLI flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """The environment that makes another process load these same settings."""
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``MODELSTREAM_*`` variables, each parsed to its field's type."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            try:
                values[f.name] = int(raw) if f.type == "int" else raw
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not an integer") from None
        return cls(**values)
