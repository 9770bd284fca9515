"""A Flink job that copies each record of the data topic to the scores topic unchanged: no Python
function, no decode, no model. What Flink's Kafka source and sink cost alone, with the job's own
connector settings, checkpointing and JVM options: the ceiling of any Flink job on this machine.

Run by `python -m benchmarks.race --contenders flink-passthrough` (settings from MODELSTREAM_* as the
job reads them); stopped like the job, by a signal.
"""

from __future__ import annotations

import os

from py4j.protocol import Py4JJavaError
from pyflink.common import Types, WatermarkStrategy
from pyflink.common.serialization import ByteArraySchema
from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaRecordSerializationSchema
from pyflink.java_gateway import get_gateway

from jobs.gateway import drain_gateway_stderr
from jobs.scoring_job import environment, gateway_jvm_args, sink_builder, source
from modelstream.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    os.environ["JVM_ARGS"] = gateway_jvm_args(settings, dict(os.environ))
    drain_gateway_stderr()
    env = environment(settings)
    deserializers = get_gateway().jvm.org.apache.flink.connector.kafka.source.reader.deserializer
    values = deserializers.KafkaRecordDeserializationSchema.valueOnly(
        ByteArraySchema()._j_deserialization_schema
    )
    records = source(settings, [settings.data_topic], KafkaOffsetsInitializer.earliest(), values)
    copies = KafkaRecordSerializationSchema.builder().set_topic(settings.scores_topic)
    sink = sink_builder(settings).set_record_serializer(
        copies.set_value_serialization_schema(ByteArraySchema()).build()
    )
    stream = env.from_source(
        records, WatermarkStrategy.no_watermarks(), "records", Types.PRIMITIVE_ARRAY(Types.BYTE())
    )
    stream.sink_to(sink.build()).name("kafka-sink")
    try:
        env.execute("flink-passthrough")
    except Py4JJavaError as e:
        if "JobCancellationException" not in str(e):
            raise


if __name__ == "__main__":
    main()
