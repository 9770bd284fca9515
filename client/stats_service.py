"""The stats query service: materializes the compacted stats topic and answers HTTP JSON.

    GET /healthz              {"status": "ok", "data_types": N, "snapshots_read": M} (alive)
    GET /readyz               200 once the stats topic has been read up to its end, else 503
    GET /models               every data type: serving model, version, type, since, usage
    GET /stats/{data_type}    the full snapshot: current model's stats (p50/p99 included) and history
    GET /lag                  the job's consumer lag per data topic partition, as of its last checkpoint
                              (the service's reading of it, at most LAG_FRESH_MS old, else read now)
    GET /api/console          what the console page shows: per data type its serving versions, usage,
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
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from google.protobuf.message import DecodeError

from client.console import assets
from client.console.history import History, serving_stats
from client.lag import LagReader, consumer_lag, lag_by_topic
from client.messages import to_dict
from client.topics import MAX_MESSAGE_BYTES, KafkaUnavailable, client_config
from modelstream.settings import Settings
from protobufs.modelstream_pb2 import DeadLetter, ModelDescriptor, StatsSnapshot

PAGE_DIR = Path(__file__).resolve().parent / "console"
SAMPLE_EVERY_S = 1.0  # the console's history: one point a second; the lag is read as often
LAG_TIMEOUT_S = 1.0  # each call of a lag read gives up after this
LAG_FRESH_MS = 2000  # /lag answers with the lag reader's latest read when it is at most this old
LAG_STALE_MS = 5000  # the history's lag is unknown (a gap) when the latest read is older than this
DEAD_LETTERS_RECHECK_S = 5.0  # how often to look for the dead-letter topic until it exists
MAX_DEAD_LETTER_TYPES = 1000  # dead letters of further data types are counted under OTHER_DATA_TYPES
OTHER_DATA_TYPES = "(other)"
UNDECODABLE = "UNDECODABLE"  # the reason a dead letter that is no DeadLetter message is counted under
ROUTES = ["/", "/console/{data_type}", "/healthz", "/readyz", "/models", "/stats/{data_type}", "/lag",
          "/api/console"]  # fmt: skip
# what /assets/{name} may serve, with its content type: the page's own files (in PAGE_DIR), then the chart
# library's (in assets.ASSETS_DIR)
_PAGE_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
_CHART_ASSETS = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}


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


def drift_summary(snapshot: StatsSnapshot) -> dict[str, Any] | None:
    """The serving version's drift for the console: status, flagged features, complete windows (None
    before its first window)."""
    if not snapshot.HasField("drift") or not snapshot.drift.status:
        return None
    drift = snapshot.drift
    return {"status": drift.status, "flagged": list(drift.flagged), "windows": drift.windows}


def stats_detail(snapshot: StatsSnapshot) -> dict[str, Any]:
    """GET /stats/{data_type}: the snapshot with the average scoring time added to each model's stats
    (``versions``: every loaded version with its role and share under a rollout policy)."""
    detail = to_dict(snapshot)
    for stats in [detail.get("current", {}), *detail.get("history", []), *detail.get("versions", [])]:
        usage = int(stats.get("usage", 0))
        stats["avg_ns"] = int(stats.get("total_ns", 0)) // usage if usage else 0
        stats.pop("time_buckets", None)
        stats["drift"] = drift_detail(stats.get("drift", {}))
        stats.update(quality_detail(stats))
    detail["drift"] = drift_detail(detail.get("drift", {}))
    return detail


def drift_detail(drift: dict[str, Any]) -> dict[str, Any]:
    """A DriftReport as /stats/<data type> shows it: ``status`` (OK, WARN, DRIFT) and ``psi`` per input
    feature of the last complete window, without the job's window state."""
    shown = {key: value for key, value in drift.items() if key not in ("window", "warm_up_profile")}
    shown["status"] = shown.get("status") or "OK"
    shown.setdefault("psi", {})
    return shown


def quality_detail(stats: dict[str, Any]) -> dict[str, Any]:
    """A version's live quality from its feedback: ``accuracy`` (classifiers) or ``mae`` and ``rmse``
    (regressions) over its ``labelled`` results; None until feedback matched one of its results."""
    quality = stats.get("quality", {})
    labelled = int(quality.get("labelled", 0))
    regression = bool(quality.get("regression"))
    if not labelled:
        return {"labelled": 0, "accuracy": None, "mae": None, "rmse": None}
    return {
        "labelled": labelled,
        "accuracy": None if regression else int(quality.get("correct", 0)) / labelled,
        "mae": float(quality.get("abs_error_sum", 0.0)) / labelled if regression else None,
        "rmse": (float(quality.get("squared_error_sum", 0.0)) / labelled) ** 0.5 if regression else None,
    }


@dataclass(frozen=True)
class LagSample:
    """One read of the job's consumer lag: its rows (None when it could not be read), why not, and when
    (ms since the epoch)."""

    rows: list[dict[str, Any]] | None
    error: str | None
    at_ms: int


class StatsStore:
    """The latest snapshot per data type and the dead letters counted by data type and reason, kept
    current by a consumer of the stats topic and one of the dead-letter topic; once started, also the job's
    consumer lag (read once a second in a thread of its own) and the console's history (sampled every
    SAMPLE_EVERY_S with the lag last read)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._snapshots: dict[str, StatsSnapshot] = {}
        self._dead_letters: dict[str, dict[str, int]] = {}
        self._lag_read: LagSample | None = None  # the lag reader's latest
        self._lag_rows: list[dict[str, Any]] | None = None  # the lag as last sampled
        self.lag_error: str | None = None
        self._history = History(stale_after_ms=2 * settings.stats_interval_ms + 2000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        self.snapshots_read = 0
        self.snapshots_undecodable = 0
        self.error: str | None = None  # the stats topic's: fails /healthz and /readyz
        self.dead_letters_error: str | None = None  # the dead-letter topic's: reported only
        # partitions of the stats topic not yet read up to their end, once assigned (None: not yet)
        self._behind: set[int] | None = None
        self._threads = [
            threading.Thread(target=self._consume_stats, name="stats-consumer", daemon=True),
            threading.Thread(target=self._consume_dead_letters, name="dead-letter-consumer", daemon=True),
            threading.Thread(target=self._read_lag, name="lag-reader", daemon=True),
            threading.Thread(target=self._sample, name="console-sampler", daemon=True),
        ]

    @property
    def settings(self) -> Settings:
        return self._settings

    def start(self) -> StatsStore:
        self._started = True
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._started:
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
        """One record of the stats topic: a snapshot, or a tombstone that forgets its data type (raises
        DecodeError for a value that is no snapshot)."""
        if key is None:
            return
        data_type = key.decode("utf-8", "replace")
        snapshot = None if value is None else StatsSnapshot.FromString(value)
        with self._lock:
            if snapshot is None:
                self._snapshots.pop(data_type, None)
                self._history.forget(data_type)
            else:
                self._snapshots[data_type] = snapshot
                self._history.observe(snapshot)
            self.snapshots_read += 1

    def count_dead_letter(self, value: bytes) -> None:
        """One record of the dead-letter topic, counted under its data type ("" when it has none; "(other)"
        past MAX_DEAD_LETTER_TYPES data types) and reason (UNDECODABLE when it is no DeadLetter)."""
        try:
            letter = DeadLetter.FromString(value)
            data_type = letter.data_type
            reason = (
                DeadLetter.Reason.Name(letter.reason) if letter.reason in DeadLetter.Reason.values() else "?"
            )
        except DecodeError:
            data_type, reason = "", UNDECODABLE
        with self._lock:
            if data_type not in self._dead_letters and len(self._dead_letters) >= MAX_DEAD_LETTER_TYPES:
                data_type = OTHER_DATA_TYPES
            counts = self._dead_letters.setdefault(data_type, {})
            counts[reason] = counts.get(reason, 0) + 1

    def dead_letters(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {data_type: dict(counts) for data_type, counts in self._dead_letters.items()}

    def record_lag(self, read: LagSample) -> None:
        """The lag reader's latest read."""
        with self._lock:
            self._lag_read = read

    def fresh_lag(self, max_age_ms: int = LAG_FRESH_MS) -> LagSample | None:
        """The lag reader's latest read if it is at most ``max_age_ms`` old, else None (never read: the
        store was not started, or its reader has not finished a read yet)."""
        with self._lock:
            read = self._lag_read
        if read is None or time.time() * 1000 - read.at_ms > max_age_ms:
            return None
        return read

    def sample(self, now_ms: int, rows: list[dict[str, Any]] | None, lag_error: str | None = None) -> None:
        """One point of the console's history: every data type's rate and percentiles, and the lag
        (``rows``, None when it could not be read, saying why in ``lag_error``)."""
        with self._lock:
            self._lag_rows, self.lag_error = rows, lag_error
            self._history.sample(now_ms, lag_by_topic(rows) if rows is not None else None)

    def console_data(self) -> dict[str, Any]:
        """GET /api/console: one consistent view (taken under one lock)."""
        with self._lock:
            snapshots = [self._snapshots[k] for k in sorted(self._snapshots)]
            dead_letters = self._dead_letters
            rows = self._lag_rows
            data_types = [
                {
                    "data_type": s.data_type,
                    "serving": serving_summary(s),
                    "usage": s.current.usage,
                    "published_at": s.published_at,
                    "dead_letters": dict(dead_letters.get(s.data_type, {})),
                    "drift": drift_summary(s),
                    "history": self._history.scoring(s.data_type),
                }
                for s in snapshots
            ]
            known = {s.data_type for s in snapshots}
            # dead letters of data types without stats (a model never admitted, undecodable records, ...)
            others = {t: dict(c) for t, c in sorted(dead_letters.items()) if t not in known}
            return {
                "now": int(time.time() * 1000),
                "data_types": data_types,
                "other_dead_letters": others,
                "dead_letters_error": self.dead_letters_error,
                "lag": None if rows is None else {"total": sum(r["lag"] for r in rows), "partitions": rows},
                "lag_error": self.lag_error,
                "lag_history": self._history.lag(),
            }

    def _sample(self) -> None:
        """Every SAMPLE_EVERY_S on a fixed schedule, whatever the lag reader is doing: the history's next
        point, with the lag last read (unknown when that read is older than LAG_STALE_MS)."""
        due = time.monotonic() + SAMPLE_EVERY_S
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due = max(due + SAMPLE_EVERY_S, time.monotonic())
            now_ms = int(time.time() * 1000)
            with self._lock:
                read = self._lag_read
            if read is None:
                self.sample(now_ms, None)
            elif now_ms - read.at_ms > LAG_STALE_MS:
                age = (now_ms - read.at_ms) / 1000
                self.sample(now_ms, None, read.error or f"the lag was last read {age:.0f} s ago")
            else:
                self.sample(now_ms, read.rows, read.error)

    def _read_lag(self) -> None:
        """The job's consumer lag, read once a second (each call giving up after LAG_TIMEOUT_S); after a
        failure, with a new reader."""
        reader: LagReader | None = None
        due = time.monotonic()
        while True:
            try:
                reader = reader or LagReader(self._settings, LAG_TIMEOUT_S)
                read = LagSample(reader.read(), None, int(time.time() * 1000))
            except Exception as e:  # whatever it is, it shows on the page and the next read starts afresh
                read = LagSample(None, str(e) or type(e).__name__, int(time.time() * 1000))
                if reader is not None:
                    reader.close()
                    reader = None
            self.record_lag(read)
            due = max(due + SAMPLE_EVERY_S, time.monotonic())
            if self._stop.wait(due - time.monotonic()):
                break
        if reader is not None:
            reader.close()

    def _consumer(self, **extra: Any) -> Consumer:
        """A consumer of the service's own (it commits nothing), with the kafka_properties file's security
        settings."""
        return Consumer(
            client_config(
                self._settings,
                **{
                    "group.id": f"modelstream-stats-service-{time.time_ns()}",
                    "enable.auto.commit": False,
                    "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
                    **extra,
                },
            )
        )

    def _wait_for_topic(
        self, consumer: Consumer, topic: str, every_s: float, report: Callable[[str | None], None]
    ) -> list[int] | None:
        """The partitions of ``topic`` once it exists (None if stopped first), asking every ``every_s``;
        meanwhile ``report(why)`` says what it waits for, or why the broker could not be asked."""
        while not self._stop.is_set():
            try:
                found = consumer.list_topics(timeout=2).topics.get(topic)
                if found is not None and found.error is None and found.partitions:
                    return sorted(found.partitions)
                report(f"waiting for the topic {topic} (the job creates it)")
            except KafkaException as e:
                report(f"cannot list the topics at {self._settings.bootstrap}: {e}")
            self._stop.wait(every_s)
        return None

    def _stats_problem(self, why: str | None) -> None:
        self.error = why

    def _dead_letters_problem(self, why: str | None) -> None:
        self.dead_letters_error = why

    def _follow(
        self,
        consumer: Consumer,
        topic: str,
        every_s: float,
        report: Callable[[str | None], None],
        handle: Callable[[Message], None],
        at_end: Callable[[int | None], None] | None = None,
    ) -> None:
        """Read ``topic`` from its beginning until stopped, once it exists (asked every ``every_s``):
        ``handle`` each message, ``at_end`` each partition read to its end; ``report`` a problem (None:
        none). Closes ``consumer``."""
        try:
            partitions = self._wait_for_topic(consumer, topic, every_s, report)
            if partitions is None:
                return
            report(None)
            if at_end is not None:
                self._behind = set(partitions)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
            while not self._stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and at_end is not None:
                        at_end(msg.partition())
                    else:
                        report(str(error))
                    continue
                report(None)
                handle(msg)
        except Exception as e:  # reported (by /healthz for stats) rather than ending silently
            report(f"the {topic} consumer stopped: {e}")
        finally:
            consumer.close()

    def _consume_stats(self) -> None:
        consumer = self._consumer(**{"enable.partition.eof": True})  # tells when it is read to its end
        self._follow(consumer, self._settings.stats_topic, 1.0, self._stats_problem, self._apply_stats,
                     at_end=self._read_to_end)  # fmt: skip

    def _read_to_end(self, partition: int | None) -> None:
        if self._behind is not None:
            self._behind.discard(partition)

    def _apply_stats(self, msg: Message) -> None:
        try:
            self.apply(msg.key(), msg.value())
        except DecodeError:
            self.snapshots_undecodable += 1

    def _consume_dead_letters(self) -> None:
        """The dead letters, counted from the topic's beginning once it exists (asked for every
        DEAD_LETTERS_RECHECK_S until then): its problems are reported, and never fail /healthz or /readyz."""
        self._follow(self._consumer(), self._settings.dead_letters_topic, DEAD_LETTERS_RECHECK_S,
                     self._dead_letters_problem, self._count_message)  # fmt: skip

    def _count_message(self, msg: Message) -> None:
        value = msg.value()
        if value is not None:
            self.count_dead_letter(value)


def answer(store: StatsStore, path: str) -> tuple[HTTPStatus, Any]:
    """The status and JSON body for GET ``path``."""
    if path == "/healthz":
        ok = store.error is None
        body = {
            "status": "ok" if ok else "error",
            "error": store.error,
            "dead_letters_error": store.dead_letters_error,  # reported; the stats topic is what counts
            "data_types": len(store.all()),
            "snapshots_read": store.snapshots_read,
            "snapshots_undecodable": store.snapshots_undecodable,
        }
        return (HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE), body
    if path == "/readyz":
        ready = store.ready
        body = {"ready": ready, "snapshots_read": store.snapshots_read, "error": store.error}
        return (HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE), body
    if path == "/models":
        return HTTPStatus.OK, {"models": [model_summary(s) for s in store.all()]}
    if path == "/lag":
        return lag_answer(store)
    if path == "/api/console":
        return HTTPStatus.OK, store.console_data()
    if path.startswith("/stats/") and len(path) > len("/stats/"):
        data_type = unquote(path[len("/stats/") :])
        snapshot = store.get(data_type)
        if snapshot is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no stats for data type {data_type!r}"}
        return HTTPStatus.OK, stats_detail(snapshot)
    return HTTPStatus.NOT_FOUND, {"error": f"no route {path}", "routes": ROUTES}


def lag_answer(store: StatsStore) -> tuple[HTTPStatus, Any]:
    """GET /lag: the lag reader's latest read when the store runs and it is fresh, else the lag read now;
    ``sampled_at`` says when it was read (ms since the epoch)."""
    read = store.fresh_lag()
    if read is None:
        try:
            read = LagSample(consumer_lag(store.settings), None, int(time.time() * 1000))
        except KafkaUnavailable as e:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(e)}
    if read.rows is None:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"error": read.error, "sampled_at": read.at_ms}
    body = {"lag": sum(p["lag"] for p in read.rows), "partitions": read.rows, "sampled_at": read.at_ms}
    return HTTPStatus.OK, body


def page_file(path: str) -> tuple[Path, str] | None:
    """The file (and its content type) that answers GET ``path`` if it is one of the console's, else None."""
    if path == "/" or path.startswith("/console/"):
        return PAGE_DIR / "index.html", "text/html; charset=utf-8"
    if path.startswith("/assets/"):
        name = path[len("/assets/") :]
        if name in _PAGE_ASSETS:
            return PAGE_DIR / name, _PAGE_ASSETS[name]
        if name in _CHART_ASSETS:
            return assets.ASSETS_DIR / name, _CHART_ASSETS[name]
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
    """Bind the HTTP server, then start the store's threads (call serve_forever on the result; after
    shutdown, server_close() and server.store.stop()). A port that is taken raises OSError before any
    thread starts."""
    store = StatsStore(settings)
    server = ThreadingHTTPServer((host, settings.stats_port if port is None else port), make_handler(store))
    server.store = store  # type: ignore[attr-defined]
    store.start()
    if not assets.installed():
        print(f"console: no chart library in {assets.ASSETS_DIR} (`make setup` fetches it)", file=sys.stderr)
    return server
