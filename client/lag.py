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


class LagReader:
    """Reads the lag as often as asked with one admin client and one consumer (close() when done)."""

    def __init__(self, settings: Settings, timeout_s: float = 5.0) -> None:
        # no "logger" here: with it, these calls crashed the process (confluent-kafka 2.16.1, measured)
        config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap}
        self._settings = settings
        self._timeout_s = timeout_s
        self._admin = AdminClient(config)
        self._reader = Consumer({**config, "group.id": f"modelstream-lag-{time.time_ns()}"})

    def read(self) -> list[dict[str, Any]]:
        """One row per data topic partition: topic, partition, end (the log's end offset), committed (None
        before the job's first checkpoint) and lag (end - committed, or the whole log before that)."""
        group, timeout = self._settings.group_id, self._timeout_s
        wanted = [spec.topic for spec in self._settings.topic_specs()]
        try:
            metadata = self._admin.list_topics(timeout=timeout)
            partitions = [
                TopicPartition(topic, p)
                for topic in wanted
                if topic in metadata.topics
                for p in sorted(metadata.topics[topic].partitions)
            ]
            request = [ConsumerGroupTopicPartitions(group, partitions)]
            listed = self._admin.list_consumer_group_offsets(request, request_timeout=timeout)
            offsets = listed[group].result().topic_partitions
            committed = {(tp.topic, tp.partition): tp.offset for tp in offsets}
            rows = []
            for tp in partitions:
                low, end = self._reader.get_watermark_offsets(tp, timeout=timeout)
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
        except KafkaException as e:
            raise KafkaUnavailable(f"no Kafka broker answers at {self._settings.bootstrap}: {e}") from e

    def close(self) -> None:
        self._reader.close()


def consumer_lag(settings: Settings, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The lag read once (see LagReader.read)."""
    reader = LagReader(settings, timeout_s)
    try:
        return reader.read()
    finally:
        reader.close()


def lag_by_topic(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The lag rows summed per topic."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["topic"]] = totals.get(row["topic"], 0) + int(row["lag"])
    return totals
