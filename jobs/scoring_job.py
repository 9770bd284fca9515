"""The modelstream Flink job: models and records from Kafka, keyed by data type, scored, written back.

    models topic --RouteModels (Python)----------------------+
                                                              +--connect--> ServeModels (Python)
    data topics + feedback topic --MicroBatchOperator (Java)-+     keyed by data type
        --> OutputBatchSplitter --> KafkaSink: scores / shadow-scores / model-stats / dead-letters / drift
    rejected models (RouteModels' side output) --> OutputBatchSplitter --> KafkaSink: dead-letters

One Kafka source reads every data topic and the feedback topic (settings.job_topic_specs()); its JVM
deserializer finds each record's encoding and data type (from headers or the record itself) and frames it
for the micro-batches: feedback is batched with its data type's records and joined with their results.

Records cross into the Python worker once per micro-batch (grouped by data type in the JVM) and their
results come back as one output batch: the bridge costs per batch, not per record (modelstream.frames).

Run embedded (local mini-cluster):   python -m jobs.scoring_job     (or `modelstream job run`)
Submit to a cluster:                  flink run --python jobs/scoring_job.py ...  (`modelstream job submit`)
Settings come from MODELSTREAM_* environment variables (modelstream.settings.Settings).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError
from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.datastream import CheckpointingMode, DataStream, KeyedStream, StreamExecutionEnvironment
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSinkBuilder,
    KafkaSource,
)
from pyflink.java_gateway import get_gateway

from jobs.functions import (
    BYTES,
    MODEL_TYPE,
    OUTPUT_BATCH_TYPE,
    RECORD_BATCH_TYPE,
    REJECTED,
    RouteModels,
    ServeModels,
)
from jobs.gateway import drain_gateway_stderr
from jobs.kafka_check import BrokerProblem, check_broker
from model import jpmml_jvm
from modelstream import logs
from modelstream.kafka_properties import KafkaPropertiesError, load_kafka_properties
from modelstream.settings import Settings
from modelstream.topics import MAX_MESSAGE_BYTES, jvm_config

JOB_NAME = "modelstream"
PROMETHEUS_REPORTER = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"


def connector_jars(settings: Settings) -> list[Path]:
    """The Flink Kafka connector and modelstream's own sink schema, fetched by `make jars`."""
    flink_dir = Path(settings.jars_dir) / "flink"
    jars = sorted(flink_dir.glob("*.jar"))
    if not any(j.name.startswith("flink-sql-connector-kafka") for j in jars) or not any(
        j.name == "modelstream-flink.jar" for j in jars
    ):
        raise FileNotFoundError(f"connector jars missing in {flink_dir}: run `make setup`")
    return jars


def _offsets(start: str) -> KafkaOffsetsInitializer:
    if start == "earliest":
        return KafkaOffsetsInitializer.earliest()
    if start == "latest":
        return KafkaOffsetsInitializer.latest()
    if start == "committed":
        return KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST)
    raise ValueError(f"data_start must be committed, earliest or latest, not {start!r}")


def source(
    settings: Settings, topics: list[str], start: KafkaOffsetsInitializer, deserializer: Any
) -> KafkaSource:
    builder = (
        KafkaSource.builder()
        .set_bootstrap_servers(settings.bootstrap)
        .set_topics(*topics)
        .set_group_id(settings.group_id)
        .set_starting_offsets(start)
        .set_property("commit.offsets.on.checkpoint", "true")
    )
    for key, value in _security(settings).items():
        builder.set_property(key, value)
    builder._j_builder.setDeserializer(deserializer)  # PyFlink's builder only offers value-only ones
    return builder.build()


# flink-sql-connector-kafka relocates the Kafka client's classes: a JAAS login module is named there
SHADED_KAFKA = "org.apache.flink.kafka.shaded.org.apache.kafka."


def _security(settings: Settings) -> dict[str, str]:
    """The Java client's names for the kafka_properties file's settings (TLS, SASL), with the Kafka
    classes a JAAS configuration names as the connector jar holds them."""
    java = load_kafka_properties(settings.kafka_properties).java
    if "sasl.jaas.config" in java:
        jaas = java["sasl.jaas.config"]
        java["sasl.jaas.config"] = (
            jaas if SHADED_KAFKA in jaas else jaas.replace("org.apache.kafka.", SHADED_KAFKA)
        )
    return java


def _data_source(settings: Settings) -> KafkaSource:
    """Every data topic and the feedback topic; records become Row(dataType, framed record)
    (modelstream.frames)."""
    specs = settings.job_topic_specs()
    deserializer = get_gateway().jvm.modelstream.flink.DataRecordDeserializationSchema(jvm_config(specs))
    return source(settings, [spec.topic for spec in specs], _offsets(settings.data_start), deserializer)


def _models_source(settings: Settings) -> KafkaSource:
    """The models topic; records become Row(partition, offset, value, content type)."""
    deserializer = get_gateway().jvm.modelstream.flink.ModelRecordDeserializationSchema()
    return source(settings, [settings.models_topic], KafkaOffsetsInitializer.earliest(), deserializer)


def _sink(settings: Settings, transactions_suffix: str = "") -> KafkaSink:
    """A sink that writes Row(topic, key, value) records (OutputBatchSplitter's) to their topics."""
    builder = sink_builder(settings, transactions_suffix)
    schema = get_gateway().jvm.modelstream.flink.RoutedRecordSerializationSchema()
    # KafkaSinkBuilder.set_record_serializer inspects PyFlink's own schemas for a topic selector;
    # ours routes by the row's first field itself, so it goes straight to the Java builder.
    builder._j_builder.setRecordSerializer(KafkaRecordSerializationSchema(schema)._j_serialization_schema)
    return builder.build()


def sink_builder(settings: Settings, transactions_suffix: str = "") -> KafkaSinkBuilder:
    """A KafkaSink builder with the job's producer settings and delivery guarantee, and no serializer."""
    builder = (
        KafkaSink.builder()
        .set_bootstrap_servers(settings.bootstrap)
        .set_property("linger.ms", str(settings.sink_linger_ms))
        .set_property("batch.size", str(settings.sink_batch_bytes))
        .set_property("compression.type", settings.sink_compression)
        # a dead letter carries the rejected model whole: as large as the models topic takes
        .set_property("max.request.size", str(MAX_MESSAGE_BYTES))
    )
    for key, value in _security(settings).items():
        builder.set_property(key, value)
    if settings.delivery == "exactly-once":
        # results become visible to read_committed consumers when the checkpoint that covers them completes
        builder.set_delivery_guarantee(DeliveryGuarantee.EXACTLY_ONCE)
        prefix = settings.transactional_id_prefix or f"modelstream-{settings.group_id}"
        builder.set_transactional_id_prefix(prefix + transactions_suffix)
        builder.set_property("transaction.timeout.ms", "900000")
    elif settings.delivery == "at-least-once":
        builder.set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
    else:
        raise ValueError(f"delivery must be at-least-once or exactly-once, not {settings.delivery!r}")
    return builder


def _record_batches(env: StreamExecutionEnvironment, settings: Settings) -> KeyedStream:
    """Data records grouped into per-data-type micro-batches in the JVM, keyed by data type."""
    records = env.from_source(_data_source(settings), WatermarkStrategy.no_watermarks(), "records")
    jvm = get_gateway().jvm
    batcher = jvm.modelstream.flink.MicroBatchOperator(
        settings.batch_max_records,
        settings.batch_max_delay_ms,
        settings.batch_busy_delay_ms,
        float(settings.batch_busy_rate),
    )
    batches = DataStream(
        records._j_data_stream.transform("micro-batch", RECORD_BATCH_TYPE.get_java_type_info(), batcher).uid(
            "micro-batch"
        )
    )
    # The same shape as PyFlink's own key_by: rows of (key, value), keyed by their first field in the
    # JVM, so the Python function sees the value and the key without a Python key-selector hop.
    keyed = batches._j_data_stream.keyBy(
        jvm.KeyByKeySelector(), Types.ROW([Types.STRING()]).get_java_type_info()
    )
    return KeyedStream(keyed, BYTES, batches)


def build(env: StreamExecutionEnvironment, settings: Settings) -> None:
    """Add the scoring pipeline to ``env``."""
    # Models: a fresh job replays the whole model topic (the latest model per data type wins);
    # a restored job continues from the offsets in its checkpoint or savepoint.
    models = (
        env.from_source(_models_source(settings), WatermarkStrategy.no_watermarks(), "models")
        .process(RouteModels(settings), output_type=MODEL_TYPE)
        .name("route-models")
    )
    served = (
        _record_batches(env, settings)
        .connect(models.key_by(lambda row: row[0], key_type=Types.STRING()))
        .process(ServeModels(settings), output_type=OUTPUT_BATCH_TYPE)
        .name("serve-models")
        .uid("serve-models")
    )
    # Each output stream has a sink of its own: an operator with one input is chained to the operator
    # before it, so scores go from the Python operator to the producer in one thread without crossing
    # Flink's network stack (a union of the two would take two inputs and break the chain).
    _write(served, _sink(settings), "")
    _write(models.get_side_output(REJECTED), _sink(settings, "-rejected-models"), "rejected-models-")


def _write(output_batches: DataStream, sink: KafkaSink, prefix: str) -> None:
    """Split ``output_batches`` into their records (OutputBatchSplitter) and write them with ``sink``."""
    outputs = DataStream(
        output_batches._j_data_stream.flatMap(get_gateway().jvm.modelstream.flink.OutputBatchSplitter())
    ).name(f"{prefix}split-outputs")
    outputs.sink_to(sink).name(f"{prefix}kafka-sink").uid(f"{prefix}kafka-sink")


LOG = logs.logger("job")


def environment(settings: Settings) -> StreamExecutionEnvironment:
    """A stream environment with the connector jars, checkpointing and this venv's Python."""
    settings.check_job()
    config = Configuration()
    config.set_string("python.executable", sys.executable)
    config.set_string("state.checkpoints.dir", settings.checkpoint_path.resolve().as_uri())
    config.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    config.set_string("state.backend.type", settings.state_backend)
    config.set_string("python.fn-execution.bundle.size", str(settings.python_bundle_size))
    config.set_string("python.fn-execution.bundle.time", str(settings.python_bundle_time_ms))
    config.set_string("python.execution-mode", settings.python_execution_mode)
    # embedded: where the mini-cluster serves REST; submitted: where the client finds the cluster
    config.set_string("rest.port", str(settings.rest_port))
    config.set_string("rest.address", settings.jobmanager.rsplit(":", 1)[0])
    config.set_string("rest.bind-address", settings.jobmanager.rsplit(":", 1)[0])
    if settings.prometheus_ports:
        # the reporter ships in pyflink/plugins/metrics-prometheus; each process takes a free port in range
        config.set_string("metrics.reporter.prom.factory.class", PROMETHEUS_REPORTER)
        config.set_string("metrics.reporter.prom.port", settings.prometheus_ports)
        config.set_string("metrics.reporter.prom.host", "127.0.0.1")
    for key, value in settings.flink_option_pairs():
        config.set_string(key, value)
    if settings.restore_from:
        config.set_string("execution.state-recovery.path", settings.restore_from)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.add_jars(*(jar.resolve().as_uri() for jar in connector_jars(settings)))
    env.set_parallelism(settings.parallelism)
    env.set_buffer_timeout(settings.buffer_timeout_ms)
    env.enable_checkpointing(settings.checkpoint_interval_ms, CheckpointingMode.EXACTLY_ONCE)
    return env


def gateway_jvm_args(settings: Settings, environ: dict[str, str]) -> str:
    """PyFlink's JVM_ARGS (split at whitespace) for the gateway JVM the embedded job runs in:
    ``jvm_options``, then the caller's own JVM_ARGS."""
    return " ".join(filter(None, (settings.jvm_options, environ.get("JVM_ARGS", ""))))


def main() -> None:
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    os.environ["JVM_ARGS"] = gateway_jvm_args(settings, dict(os.environ))  # read when the gateway starts
    if settings.python_execution_mode == "thread":  # the job's Python runs in the gateway JVM
        os.environ.update(jpmml_jvm.with_jpmml_classpath(dict(os.environ)))
    drain_gateway_stderr()
    try:  # before Flink starts: a source that cannot authenticate would restart without end
        check_broker(settings, timeout_s=30.0, log_level=0)
    except (BrokerProblem, KafkaPropertiesError) as e:
        logs.event(LOG, "cannot start", logging.ERROR, error=str(e))
        raise SystemExit(2) from None
    env = environment(settings)
    build(env, settings)
    try:
        env.execute(JOB_NAME)
    except Py4JJavaError as e:
        if "JobCancellationException" not in str(e):
            raise
        logs.event(LOG, "job cancelled")  # a requested stop (`job stop`, a signal to `job run`)


if __name__ == "__main__":
    main()
