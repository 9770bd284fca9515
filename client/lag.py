"""The job's consumer lag: per data topic partition, how many records lie past the offset the job last
committed. The Flink Kafka source commits its offsets to the job's group (the group_id setting) when a
checkpoint completes, so the lag is as of the last checkpoint."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from client.topics import KafkaUnavailable
from modelstream.settings import Settings


def consumer_lag(settings: Settings, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """One row per data topic partition: topic, partition, end (the log's end offset), committed (None
    before the job's first checkpoint) and lag (end - committed, or the whole log before that)."""
    # no "logger" here: with it, these calls crashed the process (confluent-kafka 2.16.1, measured)
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap}
    admin = AdminClient(config)
    wanted = [spec.topic for spec in settings.topic_specs()]
    try:
        metadata = admin.list_topics(timeout=timeout_s)
        partitions = [
            TopicPartition(topic, p)
            for topic in wanted
            if topic in metadata.topics
            for p in sorted(metadata.topics[topic].partitions)
        ]
        request = [ConsumerGroupTopicPartitions(settings.group_id, partitions)]
        listed = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in listed[settings.group_id].result().topic_partitions
        }
    except KafkaException as e:
        raise KafkaUnavailable(f"no Kafka broker answers at {settings.bootstrap}: {e}") from e
    reader = Consumer({**config, "group.id": f"modelstream-lag-{time.time_ns()}"})
    try:
        rows = []
        for tp in partitions:
            low, end = reader.get_watermark_offsets(tp, timeout=timeout_s)
            done = committed.get((tp.topic, tp.partition), -1)
            rows.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "end": end,
                    "committed": done if done >= 0 else None,
                    "lag": end - done if done >= 0 else end - low,
                }
            )
        return rows
    finally:
        reader.close()
