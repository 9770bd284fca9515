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
from typing import Any, TypeVar

from modelstream.contract import ModelOptions
from modelstream.logs import masked_mapping
from modelstream.signing import Trust, key_paths
from modelstream.topics import Encoding, TopicSpec, parse_topic_specs

ENV_PREFIX = "MODELSTREAM_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def _setting(default: T, help_text: str) -> T:
    """A settings field whose CLI flag's --help says ``help_text``."""
    value: T = field(default=default, metadata={"help": help_text})
    return value


_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False, "": False}


def _default_home() -> str:
    return str(PROJECT_ROOT / ".state")


@dataclass(frozen=True)
class Settings:
    """Everything a modelstream process needs to know about its surroundings."""

    bootstrap: str = _setting("127.0.0.1:9092", "Kafka bootstrap servers")
    models_topic: str = _setting("models", "topic of ModelDescriptor messages")
    data_topic: str = _setting("wine", "the default data topic (where publish-data sends records)")
    data_topics: str = _setting(
        "",
        'every data topic the job reads, with its encoding: "TOPIC[;encoding=auto|wine|json|oip|protobuf]'
        '[;message=NAME][;data-type-field=N][;data-type=T], ..." (empty: the data topic, auto-detected; '
        "see docs/records.md)",
    )
    scores_topic: str = _setting("scores", "topic the job writes a ScoreResult to per record")
    shadow_scores_topic: str = _setting(
        "shadow-scores", "topic of the results of versions that shadow (score without serving)"
    )
    stats_topic: str = _setting("model-stats", "compacted topic of StatsSnapshots, keyed by data type")
    dead_letters_topic: str = _setting("dead-letters", "topic of DeadLetters: rejected inputs and why")
    drift_topic: str = _setting(
        "drift", "compacted topic of DriftReports, keyed by data type, written when a drift status changes"
    )
    feedback_topic: str = _setting(
        "feedback",
        'topic of feedback: JSON {"dataType", "record_id", "label" or "value"} (docs/drift.md); "": none',
    )
    drift_window: int = _setting(
        1000, "records per drift window (PSI per feature per window); 0: drift is not measured"
    )
    feedback_max_records: int = _setting(
        10_000,
        "results kept per data type for feedback to match (record id -> version, prediction); "
        "0: none are kept, every feedback message counts as unmatched",
    )
    feedback_max_age_ms: int = _setting(
        600_000, "how long a result waits for its feedback (ms of processing time); older: unmatched"
    )
    topic_partitions: int = _setting(1, "partitions of the topics the project creates")
    group_id: str = _setting("modelstream", "the job's Kafka consumer group")
    kafka_properties: str = _setting(
        "",
        "a Kafka client.properties file (security.protocol, sasl.*, ssl.*) for every client: the job, the "
        "CLI, the stats service, the benchmarks (docs/security.md)",
    )

    # Local broker (``modelstream kafka start``).
    kafka_port: int = _setting(9092, "`kafka start`: the broker's port on 127.0.0.1")
    kafka_controller_port: int = _setting(9093, "`kafka start`: the KRaft controller's port")
    kafka_dir: str = _setting("", "`kafka start`: broker data directory (empty: <home>/kafka)")

    # Working directory for local state: broker data, checkpoints, logs.
    home: str = field(
        default_factory=_default_home,
        metadata={"help": "directory for local state: broker data, checkpoints, cluster config and logs"},
    )
    jars_dir: str = _setting(str(PROJECT_ROOT / ".cache" / "jvm"), "where `make setup` put the JVM jars")

    # Flink job.
    parallelism: int = _setting(1, "parallel instances of each operator of the job")
    checkpoint_interval_ms: int = _setting(5000, "how often the job checkpoints its state and offsets")
    checkpoint_dir: str = _setting("", "where checkpoints go (empty: <home>/checkpoints)")
    data_start: str = _setting(
        "committed", "where a fresh job starts on the data topic: committed | earliest | latest"
    )
    jobmanager: str = _setting(
        "127.0.0.1:8081",
        "the Flink REST endpoint: where `job submit` sends the job, where the embedded job serves its "
        "REST API and web UI, and where `job savepoint|stop` and `cluster` find it",
    )
    prometheus_ports: str = _setting(
        "9250-9260", 'Prometheus reporter port range (JobManager, TaskManagers); "" turns it off'
    )
    restore_from: str = _setting("", "a checkpoint or savepoint directory the job starts from")
    resume: str = _setting(
        "latest",
        "`job run` and `demo` without a restore_from: latest (resume from the newest checkpoint kept in "
        "the checkpoint directory, so a restart under a supervisor continues where it stopped) | never",
    )
    cluster_rpc_port: int = _setting(6123, "`cluster start`: the JobManager's RPC port")
    delivery: str = _setting(
        "at-least-once", "at-least-once | exactly-once (Kafka transactions, visible at checkpoints)"
    )
    transactional_id_prefix: str = _setting(
        "",
        "exactly-once: transactional id prefix (empty: modelstream-<group_id>); the rejected models' sink "
        "adds -rejected-models",
    )
    state_backend: str = _setting("hashmap", "Flink state backend: hashmap | rocksdb")

    # Serving.
    pending_max: int = _setting(10_000, "records held per data type while it has no model")
    retain_versions: int = _setting(
        2, "earlier versions of a data type's model kept loaded for an instant rollback (a policy may say)"
    )
    speculative_deadline_ms: int = _setting(
        50,
        "speculative serving: how long a micro-batch waits for the primary before the fallback's results "
        "serve (a policy may say)",
    )
    pending_timeout_ms: int = _setting(30_000, "after this, held records go to dead letters (NO_MODEL)")
    stats_interval_ms: int = _setting(2000, "how often a data type's stats are published while records flow")
    stats_port: int = _setting(8090, "`stats serve`: the HTTP port")
    onnx_threads: int = _setting(1, "onnxruntime threads per model")
    # defaults measured in docs/tuning.md (python -m benchmarks.tuning)
    batch_max_records: int = _setting(
        1024, "micro-batch: the most records of one data type sent to Python and scored together"
    )
    batch_max_delay_ms: int = _setting(
        2,
        "micro-batch: the most a record waits in the JVM for its batch to fill while its data type's "
        "records arrive at up to batch_busy_rate per second",
    )
    batch_busy_rate: int = _setting(
        10_000,
        "micro-batch: above this many records per second of one data type, batches wait longer, in "
        "proportion to the rate (twice the rate, twice batch_max_delay_ms), so that each carries more "
        "records; 0: never",
    )
    batch_busy_delay_ms: int = _setting(
        20,
        "micro-batch: the most a record waits in the JVM for its batch to fill, however fast they come "
        "(at least batch_max_delay_ms)",
    )
    python_bundle_size: int = _setting(
        1000, "PyFlink: elements (micro-batches) per bundle sent to the Python worker"
    )
    python_bundle_time_ms: int = _setting(
        5, "PyFlink: the most a bundle waits before its results go downstream"
    )
    python_execution_mode: str = _setting(
        "process",
        "PyFlink: process (a Python worker process per slot) | thread (Python inside the TaskManager's "
        "JVM: faster, less isolated; JPMML's jars go on the JVMs' class path, model/jpmml_jvm.py)",
    )
    buffer_timeout_ms: int = _setting(
        1, "Flink network buffers are flushed at least this often (Flink's default: 100)"
    )
    sink_linger_ms: int = _setting(0, "the job's Kafka producer: the most a result waits to share a request")
    # measured in docs/profile.md (python -m benchmarks.profile_job): 16 KiB, Kafka's default, cost 40 %
    # more JVM and 3x the broker's CPU per record at full load
    sink_batch_bytes: int = _setting(
        262_144, "the job's Kafka producer: batch.size, the most bytes of one partition's batch"
    )
    sink_compression: str = _setting("none", "the job's Kafka producer: none | lz4 | zstd | gzip | snappy")
    flink_options: str = _setting(
        "", 'more Flink configuration for the job, "key=value;key=value" (e.g. state.backend.type=rocksdb)'
    )
    # measured in docs/profile.md (python -m benchmarks.profile_job): the parallel collector's cheaper
    # allocation and barriers cost the job's JVM ~10 % less CPU per record than G1, Java 17's default
    jvm_options: str = _setting(
        "-XX:+UseParallelGC",
        "flags for the job's JVMs: the embedded job's (before PyFlink's JVM_ARGS) and the local cluster's "
        "TaskManagers (env.java.opts.taskmanager)",
    )
    tf_threads: int = _setting(1, "TensorFlow intra- and inter-op threads per model")
    pmml_engine: str = _setting("jpmml", "PMML runtime: jpmml (the reference, faster) | pypmml")
    model_roots: str = _setting(
        str(PROJECT_ROOT / "data"), 'directories a model\'s `location` may point into, separated by ":"'
    )

    # Trust and limits on what the models topic may carry (docs/security.md).
    trusted_keys: str = _setting(
        "", 'Ed25519 public key files (PEM) of trusted model publishers, separated by "," (a rotation: both)'
    )
    require_signed_models: bool = _setting(
        False, "dead-letter (MODEL_UNTRUSTED) every model or policy not signed by a trusted key"
    )
    max_model_bytes: int = _setting(
        256 * 1024 * 1024, "the largest model (its bytes, or the files at its location) the job accepts"
    )
    max_unpacked_bytes: int = _setting(
        1024 * 1024 * 1024, "the most a SavedModel archive may expand to (zip and tar bombs are refused)"
    )
    max_archive_entries: int = _setting(
        10_000, "the most files and directories a SavedModel archive may hold"
    )

    # Live models (docs/many-models.md).
    max_live_models: int = _setting(
        1000,
        "live models a Python worker keeps built (0: no bound); beyond it the least recently used idle "
        "data types' models are evicted and built again from keyed state on their next record",
    )
    max_live_model_mb: int = _setting(
        0,
        "memory budget (MB) of a worker's live models, as measured when each is built (0: none); a model "
        "that alone takes more is refused (MODEL_TOO_LARGE)",
    )
    live_model_idle_ms: int = _setting(
        5000,
        "a live model that served or shadowed records this recently is busy: never evicted in favour of "
        "an idle one (with every one busy, the bound is exceeded rather than thrash)",
    )
    per_data_type_metrics: bool = _setting(
        True,
        "Flink metrics per data type and version (records, dead letters, model age); off: operator totals "
        "only (each data type's metric group costs memory in the JVM and the reporters)",
    )

    # Logs.
    log_format: str = _setting("plain", "event logs on stderr: plain | json (one JSON object a line)")
    log_level: str = _setting("info", "event logs: debug | info | warning | error")

    @property
    def kafka_data_dir(self) -> Path:
        return Path(self.kafka_dir or os.path.join(self.home, "kafka"))

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir or os.path.join(self.home, "checkpoints"))

    def model_options(self) -> ModelOptions:
        """The model runtimes' options these settings ask for."""
        roots = tuple(r for r in self.model_roots.split(os.pathsep) if r)
        return ModelOptions(
            self.onnx_threads,
            self.tf_threads,
            self.pmml_engine,
            roots,
            max_model_bytes=self.max_model_bytes,
            max_unpacked_bytes=self.max_unpacked_bytes,
            max_archive_entries=self.max_archive_entries,
        )

    def trust(self) -> Trust:
        """What the job asks of published models and policies: with require_signed_models, a signature by
        one of the trusted keys (loaded here; KeyFileError names a file that does not load, ValueError
        says none is given); without, nothing (the keys are not read)."""
        if not self.require_signed_models:
            return Trust()
        return Trust.from_files(key_paths(self.trusted_keys), required=True)

    def topic_specs(self) -> tuple[TopicSpec, ...]:
        """The data topics the job reads, in the order the JVM indexes them."""
        return parse_topic_specs(self.data_topics or self.data_topic)

    def job_topic_specs(self) -> tuple[TopicSpec, ...]:
        """What the job's record source reads, in the order the JVM indexes them: the data topics and
        then the feedback topic (feedback is micro-batched with the records of its data type)."""
        specs = self.topic_specs()
        if not self.feedback_topic:
            return specs
        if any(spec.topic == self.feedback_topic for spec in specs):
            raise ValueError(f"feedback_topic {self.feedback_topic!r} is also a data topic: give it its own")
        return (*specs, TopicSpec(self.feedback_topic, Encoding.FEEDBACK))

    def check_job(self) -> None:
        """Raise ValueError, saying what to change, for job settings that cannot run together."""
        mode = self.python_execution_mode
        if mode not in ("process", "thread"):
            raise ValueError(f"python_execution_mode must be process or thread, not {mode!r}")
        if self.resume not in ("latest", "never"):
            raise ValueError(f"resume must be latest or never, not {self.resume!r}")
        self.flink_option_pairs()
        self.job_topic_specs()
        self.trust()  # trusted keys that do not load, or none where signed models are required

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
            *(spec.topic for spec in self.topic_specs() if spec.topic != self.data_topic),
            self.scores_topic,
            self.shadow_scores_topic,
            self.stats_topic,
            self.dead_letters_topic,
            self.drift_topic,
            self.feedback_topic,
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given fields changed; None values are ignored (unset CLI flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def shown(self) -> dict[str, object]:
        """Every setting as it may be logged or printed: secrets masked."""
        return masked_mapping({f.name: getattr(self, f.name) for f in fields(self)})

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
            if f.type == "bool":
                if raw.lower() not in _BOOLEANS:
                    raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not true or false")
                values[f.name] = _BOOLEANS[raw.lower()]
                continue
            try:
                values[f.name] = int(raw) if f.type == "int" else raw
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not an integer") from None
        return cls(**values)
