"""The stats query service: materializes the compacted stats topic and answers HTTP JSON.

    GET /healthz              {"status": "ok", "data_types": N, "snapshots_read": M} (alive)
    GET /readyz               200 once the stats topic has been read up to its end, else 503
    GET /models               every data type: serving model, version, type, since, usage
    GET /stats/{data_type}    the full snapshot: current model's stats (p50/p99 included) and history
    GET /lag                  the job's consumer lag per data topic partition, as of its last checkpoint

Staleness: the job publishes a data type's snapshot on every model change and, while its records flow,
at most every ``stats_interval_ms``; this service sees it within its poll interval (0.2 s) after that.
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from client.lag import consumer_lag
from client.messages import to_dict
from client.topics import MAX_MESSAGE_BYTES, KafkaUnavailable
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import ModelDescriptor, StatsSnapshot


def model_summary(snapshot: StatsSnapshot) -> dict[str, Any]:
    """One line of GET /models."""
    model = snapshot.current.model
    return {
        "data_type": snapshot.data_type,
        "model": model.name,
        "version": model.version,
        "type": ModelDescriptor.ModelType.Name(model.model_type),
        "since": model.since,
        "usage": snapshot.current.usage,
        "published_at": snapshot.published_at,
    }


def stats_detail(snapshot: StatsSnapshot) -> dict[str, Any]:
    """GET /stats/{data_type}: the snapshot with the average scoring time added to each model's stats
    (``versions``: every loaded version with its role and share under a rollout policy)."""
    detail = to_dict(snapshot)
    for stats in [detail.get("current", {}), *detail.get("history", []), *detail.get("versions", [])]:
        usage = int(stats.get("usage", 0))
        stats["avg_ns"] = int(stats.get("total_ns", 0)) // usage if usage else 0
        stats.pop("time_buckets", None)
    return detail


class StatsStore:
    """The latest snapshot per data type, kept current by a consumer of the stats topic."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._snapshots: dict[str, StatsSnapshot] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.snapshots_read = 0
        self.error: str | None = None
        # partitions of the stats topic not yet read up to their end, once assigned (None: not yet)
        self._behind: set[int] | None = None
        self._thread = threading.Thread(target=self._consume, name="stats-consumer", daemon=True)

    @property
    def settings(self) -> Settings:
        return self._settings

    def start(self) -> StatsStore:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def ready(self) -> bool:
        """Whether the stats topic has been read up to its end (as it was when the service started)."""
        return self._behind is not None and not self._behind and self.error is None

    def get(self, data_type: str) -> StatsSnapshot | None:
        with self._lock:
            return self._snapshots.get(data_type)

    def all(self) -> list[StatsSnapshot]:
        with self._lock:
            return [self._snapshots[k] for k in sorted(self._snapshots)]

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the stats topic: a snapshot, or a tombstone that forgets its data type."""
        if key is None:
            return
        data_type = key.decode("utf-8", "replace")
        with self._lock:
            if value is None:
                self._snapshots.pop(data_type, None)
            else:
                self._snapshots[data_type] = StatsSnapshot.FromString(value)
            self.snapshots_read += 1

    def _consume(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._settings.bootstrap,
                "group.id": f"modelstream-stats-service-{time.time_ns()}",
                "enable.auto.commit": False,
                "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
                "enable.partition.eof": True,  # tells when the topic has been read to its end: /readyz
            }
        )
        try:
            topic = self._settings.stats_topic
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            self._behind = set(partitions)
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        self._behind.discard(msg.partition())
                    else:
                        self.error = str(error)
                    continue
                self.error = None
                self.apply(msg.key(), msg.value())
        except Exception as e:  # reported by /healthz rather than killing the service silently
            self.error = f"stats consumer stopped: {e}"
        finally:
            consumer.close()


def answer(store: StatsStore, path: str) -> tuple[HTTPStatus, Any]:
    """The status and JSON body for GET ``path``."""
    if path == "/healthz":
        ok = store.error is None
        body = {"status": "ok" if ok else "error", "error": store.error,
                "data_types": len(store.all()), "snapshots_read": store.snapshots_read}  # fmt: skip
        return (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE), body
    if path == "/readyz":
        ready = store.ready
        body = {"ready": ready, "snapshots_read": store.snapshots_read, "error": store.error}
        return (HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE), body
    if path == "/models":
        return HTTPStatus.OK, {"models": [model_summary(s) for s in store.all()]}
    if path == "/lag":
        try:
            partitions = consumer_lag(store.settings)
        except KafkaUnavailable as e:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(e)}
        return HTTPStatus.OK, {"lag": sum(p["lag"] for p in partitions), "partitions": partitions}
    if path.startswith("/stats/") and len(path) > len("/stats/"):
        data_type = unquote(path[len("/stats/") :])
        snapshot = store.get(data_type)
        if snapshot is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no stats for data type {data_type!r}"}
        return HTTPStatus.OK, stats_detail(snapshot)
    return HTTPStatus.NOT_FOUND, {
        "error": f"no route {path}",
        "routes": ["/healthz", "/readyz", "/models", "/stats/{data_type}", "/lag"],
    }


def make_handler(store: StatsStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer(store, self.path.split("?", 1)[0])
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request is noise for a metrics endpoint

    return Handler


def serve(settings: Settings, host: str = "127.0.0.1", port: int | None = None) -> ThreadingHTTPServer:
    """Start the consumer and the HTTP server (call serve_forever on the result)."""
    store = StatsStore(settings).start()
    server = ThreadingHTTPServer((host, settings.stats_port if port is None else port), make_handler(store))
    server.store = store  # type: ignore[attr-defined]
    return server
