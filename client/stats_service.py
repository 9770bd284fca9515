"""The stats query service: materializes the compacted stats topic and answers HTTP JSON.

    GET /healthz              {"status": "ok", "data_types": N, "snapshots_read": M} (alive)
    GET /readyz               200 once the stats topic has been read up to its end, else 503
    GET /models               every data type: serving model, version, type, since, usage
    GET /stats/{data_type}    the full snapshot: current model's stats (p50/p99 included) and history
    GET /lag                  the job's consumer lag per data topic partition, as of its last checkpoint
    GET /console/data         what the console page shows: per data type its serving versions, usage,
                              dead letters by reason and charted history; the lag and its history
    GET /  and  /console/{data_type}   the console page (the overview, a data type's model history)

Staleness: the job publishes a data type's snapshot on every model change and, while its records flow,
at most every ``stats_interval_ms``; this service sees it within its poll interval (0.2 s) after that.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from client.console import assets
from client.console.history import History, serving_stats
from client.lag import LagReader, consumer_lag, lag_by_topic
from client.messages import to_dict
from client.topics import MAX_MESSAGE_BYTES, KafkaUnavailable
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, StatsSnapshot

PAGE_DIR = Path(__file__).resolve().parent / "console"
SAMPLE_EVERY_S = 1.0
# the page's own files, then the chart library's (what /assets/{name} may serve, and its content type)
_ASSETS = {
    "console.js": (PAGE_DIR, "text/javascript"),
    "console.css": (PAGE_DIR, "text/css"),
    "uPlot.iife.min.js": (assets.ASSETS_DIR, "text/javascript"),
    "uPlot.min.css": (assets.ASSETS_DIR, "text/css"),
}


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


def serving_summary(snapshot: StatsSnapshot) -> list[dict[str, Any]]:
    """The versions that score a data type's records now: version, role and share (percent)."""
    versions = serving_stats(snapshot)
    return [
        {
            "model": stats.model.name,
            "version": stats.model.version,
            "role": stats.role or "served",
            "share": stats.share if snapshot.versions else 100.0,
            "usage": stats.usage,
        }
        for stats in versions
    ]


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
    """The latest snapshot per data type and the dead letters counted by data type and reason, kept
    current by a consumer of the stats and dead-letter topics; once started, also the console's history
    (sampled every SAMPLE_EVERY_S with the job's consumer lag)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._snapshots: dict[str, StatsSnapshot] = {}
        self._dead_letters: dict[str, dict[str, int]] = {}
        self._lag_rows: list[dict[str, Any]] | None = None
        self.lag_error: str | None = None
        self._history = History(stale_after_ms=2 * settings.stats_interval_ms + 2000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.snapshots_read = 0
        self.error: str | None = None
        # partitions of the stats topic not yet read up to their end, once assigned (None: not yet)
        self._behind: set[int] | None = None
        self._threads = [
            threading.Thread(target=self._consume, name="stats-consumer", daemon=True),
            threading.Thread(target=self._sample, name="console-sampler", daemon=True),
        ]

    @property
    def settings(self) -> Settings:
        return self._settings

    def start(self) -> StatsStore:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

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
                self._history.forget(data_type)
            else:
                snapshot = StatsSnapshot.FromString(value)
                self._snapshots[data_type] = snapshot
                self._history.observe(snapshot)
            self.snapshots_read += 1

    def count_dead_letter(self, value: bytes) -> None:
        """One record of the dead-letter topic, counted under its data type ("" when it has none)."""
        letter = DeadLetter.FromString(value)
        reason = DeadLetter.Reason.Name(letter.reason) if letter.reason in DeadLetter.Reason.values() else "?"
        with self._lock:
            counts = self._dead_letters.setdefault(letter.data_type, {})
            counts[reason] = counts.get(reason, 0) + 1

    def dead_letters(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {data_type: dict(counts) for data_type, counts in self._dead_letters.items()}

    def lag_rows(self) -> list[dict[str, Any]] | None:
        """The lag as last sampled (None before the first sample or when it could not be read)."""
        return self._lag_rows

    def sample(self, now_ms: int, rows: list[dict[str, Any]] | None) -> None:
        with self._lock:
            self._lag_rows = rows
            self._history.sample(now_ms, lag_by_topic(rows) if rows is not None else None)

    def console(self) -> dict[str, Any]:
        """GET /console/data."""
        snapshots = self.all()
        dead_letters = self.dead_letters()
        rows = self.lag_rows()
        with self._lock:
            data_types = [
                {
                    "data_type": s.data_type,
                    "serving": serving_summary(s),
                    "usage": s.current.usage,
                    "published_at": s.published_at,
                    "dead_letters": dead_letters.get(s.data_type, {}),
                    "history": self._history.scoring(s.data_type),
                }
                for s in snapshots
            ]
            lag_history = self._history.lag()
        known = {s.data_type for s in snapshots}
        return {
            "now": int(time.time() * 1000),
            "data_types": data_types,
            # dead letters of data types without stats (a model never admitted, undecodable records, ...)
            "other_dead_letters": {t: c for t, c in sorted(dead_letters.items()) if t not in known},
            "lag": None if rows is None else {"total": sum(r["lag"] for r in rows), "partitions": rows},
            "lag_error": self.lag_error,
            "lag_history": lag_history,
        }

    def _sample(self) -> None:
        reader: LagReader | None = None
        while not self._stop.wait(SAMPLE_EVERY_S):
            rows = None
            try:
                reader = reader or LagReader(self._settings)
                rows = reader.read()
                self.lag_error = None
            except KafkaUnavailable as e:
                self.lag_error = str(e)
            self.sample(int(time.time() * 1000), rows)
        if reader is not None:
            reader.close()

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
            stats, dead = self._settings.stats_topic, self._settings.dead_letters_topic
            topics = consumer.list_topics(timeout=10).topics
            while not {stats, dead} <= set(topics) and not self._stop.wait(1.0):
                self.error = f"waiting for the topics {stats} and {dead} (the job creates them)"
                topics = consumer.list_topics(timeout=10).topics
            self.error = None
            assigned = [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for topic in (stats, dead)
                if topic in topics
                for p in topics[topic].partitions
            ]
            consumer.assign(assigned)
            self._behind = {tp.partition for tp in assigned if tp.topic == stats}
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if msg.topic() == stats:
                            self._behind.discard(msg.partition())
                    else:
                        self.error = str(error)
                    continue
                self.error = None
                value = msg.value()
                if msg.topic() == stats:
                    self.apply(msg.key(), value)
                elif value is not None:
                    self.count_dead_letter(value)
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
    if path == "/console/data":
        return HTTPStatus.OK, store.console()
    if path.startswith("/stats/") and len(path) > len("/stats/"):
        data_type = unquote(path[len("/stats/") :])
        snapshot = store.get(data_type)
        if snapshot is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no stats for data type {data_type!r}"}
        return HTTPStatus.OK, stats_detail(snapshot)
    return HTTPStatus.NOT_FOUND, {
        "error": f"no route {path}",
        "routes": ["/", "/healthz", "/readyz", "/models", "/stats/{data_type}", "/lag", "/console/data"],
    }


def page_file(path: str) -> tuple[Path, str] | None:
    """The file (and its content type) that answers GET ``path`` if it is one of the console's, else None."""
    if path == "/" or (path.startswith("/console/") and path != "/console/data"):
        return PAGE_DIR / "index.html", "text/html; charset=utf-8"
    if path.startswith("/assets/"):
        name = path[len("/assets/") :]
        if name in _ASSETS:
            directory, content_type = _ASSETS[name]
            return directory / name, content_type
    return None


def make_handler(store: StatsStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            found = page_file(path)
            if found is not None and found[0].is_file():
                status, data, content_type = HTTPStatus.OK, found[0].read_bytes(), found[1]
            elif found is not None:  # the chart library before `make setup` fetched it
                status, content_type = HTTPStatus.NOT_FOUND, "text/plain"
                data = f"{found[0].name} is missing: `make setup` fetches it".encode()
            else:
                status, body = answer(store, path)
                data, content_type = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request is noise for a metrics endpoint

    return Handler


def serve(settings: Settings, host: str = "127.0.0.1", port: int | None = None) -> ThreadingHTTPServer:
    """Start the consumer and the HTTP server (call serve_forever on the result)."""
    store = StatsStore(settings).start()
    if not assets.installed():
        print(f"console: no chart library in {assets.ASSETS_DIR} (`make setup` fetches it)", file=sys.stderr)
    server = ThreadingHTTPServer((host, settings.stats_port if port is None else port), make_handler(store))
    server.store = store  # type: ignore[attr-defined]
    return server
