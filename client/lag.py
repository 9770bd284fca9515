"""The job's consumer lag: per data topic partition, how many records lie past the offset the job last
committed. The Flink Kafka source commits its offsets to the job's group (the group_id setting) when a
checkpoint completes, so the lag is as of the last checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from client.topics import KafkaUnavailable
from jobs.kafka_check import librdkafka_config
from modelstream.settings import Settings

_END: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
_START: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


class LagReader:
    """Reads the lag as often as asked with one admin client and one consumer: per read, one call for the
    topics' partitions, one for the group's committed offsets and one for the partitions' end offsets (and,
    before the job's first checkpoint, one for their start). Every call gives up after ``timeout_s``."""

    def __init__(self, settings: Settings, timeout_s: float = 5.0) -> None:
        group = settings.group_id
        self._settings = settings
        self._timeout_s = timeout_s
        self._admin: AdminClient | None = AdminClient(librdkafka_config(settings))
        # the group's committed offsets through a consumer of the group that never joins it (so never
        # disturbs the job) and never commits: the AdminClient's ListConsumerGroupOffsets crashed the
        # process inside librdkafka (rd_kafka_cgrp_op from its OffsetFetch handler, 2.16.1, seen in gdb)
        self._group = Consumer(
            librdkafka_config(settings, **{"group.id": group, "enable.auto.commit": False})
        )

    def read(self) -> list[dict[str, Any]]:
        """One row per data topic partition: topic, partition, end (the log's end offset), committed (None
        before the job's first checkpoint) and lag (end - committed, or the whole log before that)."""
        if self._admin is None:
            raise RuntimeError("LagReader is closed")
        admin, timeout = self._admin, self._timeout_s
        wanted = [spec.topic for spec in self._settings.topic_specs()]
        try:
            metadata = admin.list_topics(timeout=timeout)
            partitions = [
                TopicPartition(topic, p)
                for topic in wanted
                if topic in metadata.topics
                for p in sorted(metadata.topics[topic].partitions)
            ]
            if not partitions:
                return []
            offsets = self._group.committed(partitions, timeout=timeout)
            committed = {(tp.topic, tp.partition): tp.offset for tp in offsets}
            ends = self._offsets(partitions, _END)
            uncommitted = [tp for tp in partitions if committed.get((tp.topic, tp.partition), -1) < 0]
            starts = self._offsets(uncommitted, _START) if uncommitted else {}
        except KafkaException as e:
            raise KafkaUnavailable(f"no Kafka broker answers at {self._settings.bootstrap}: {e}") from e
        except TimeoutError as e:
            raise KafkaUnavailable(f"the Kafka broker at {self._settings.bootstrap} did not answer") from e
        rows = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            end, done = ends[key], committed.get(key, -1)
            rows.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "end": end,
                    "committed": done if done >= 0 else None,
                    "lag": end - done if done >= 0 else end - starts[key],
                }
            )
        return rows

    def _offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        """The offsets ``spec`` asks for, of every partition, in one list_offsets request (read
        uncommitted: the log's high watermark, as a consumer's get_watermark_offsets gives it)."""
        assert self._admin is not None
        futures: Mapping[TopicPartition, Future[Any]] = self._admin.list_offsets(
            dict.fromkeys(partitions, spec),
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=self._timeout_s,
        )
        return {
            (tp.topic, tp.partition): int(f.result(timeout=self._timeout_s + 1).offset)
            for tp, f in futures.items()
        }

    def close(self) -> None:
        if self._admin is not None:
            self._group.close()
        self._admin = None  # an AdminClient has no close(): its handle goes with its last reference


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
