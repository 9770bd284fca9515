"""End-to-end benchmark: the real job against a plain Python Kafka loop, per model format, in one run; and
the job's throughput on records of each encoding against WineRecords, in one job.

    .venv/bin/python -m benchmarks.throughput [--records 100000] [--formats onnx,tf-graph,tf-saved,pmml]
                                              [--encodings json,protobuf,oip,oip16]
                                              [--encoding-records 100000] [--rounds 5] [--warm-rows 200000]
                                              [--out docs/benchmarks.md]

For each format it measures, on a broker of its own (127.0.0.1:29092):
  * sustained throughput: records pre-loaded on the data topic, the job started, time from the first
    to the last score (`scored_at`) -> records/s; the same records through the baseline loop;
  * job start -> first result: from starting the job process to the first score read;
  * end-to-end latency p50/p99 at a fixed offered rate (1,000 rec/s for 10 s): score read time minus
    the record's send time (`ts`);
  * model swap: a new version published while records flow at that rate -> the first score from it.
The baseline is a plain confluent-kafka loop: consume -> decode -> score one record -> produce the same
ScoreResult the job writes (modelstream.results). Clients read one record end to end before a timed run.

Records of any schema (--encodings; benchmarks/encodings.py): the same wine rows as WineRecords, JSON
objects, user protobufs (benchmarks/wine_row.proto) and Open Inference Protocol requests of 1 and 16 rows,
each path a data type with its own ONNX wine model. All are encoded and put on the data topic first:
--warm-rows rows of every path, then --rounds rounds of --encoding-records rows per path (the paths' order
rotating each round); one job, started after, drains them. A path's throughput in a round is its rows
over the time from its first to its last score (`scored_at`), as for the formats; a path's figure is the
median of its rounds, its ratio to WineRecord's median in the same job. --formats "" runs only this,
--encodings "" only the formats.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from benchmarks import encodings
from benchmarks.encodings import PATHS, RecordPath
from benchmarks.pmml_engines import cpu_name
from benchmarks.wine_models import CSV, descriptor
from client import job_control, local_kafka, publish, topics
from client.messages import decode_score
from client.topics import client_config
from modelstream.codecs.base import SourceRecord
from modelstream.contract import InputArrays, Model
from modelstream.records import WINE, FeatureMatrix, decode_record, record_features
from modelstream.registry import load_model
from modelstream.results import ResultEncoder
from modelstream.settings import PROJECT_ROOT, Settings
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ScoreResult, ServingModel


@dataclass
class Result:
    fmt: str
    baseline_rps: float = 0.0
    job_rps: float = 0.0
    start_to_first_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    baseline_p50_ms: float = 0.0
    baseline_p99_ms: float = 0.0
    swap_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def fresh_settings(base: Settings) -> Settings:
    run = uuid.uuid4().hex[:6]
    settings = base.replace(
        models_topic=f"models-{run}", data_topic=f"wine-{run}", scores_topic=f"scores-{run}",
        stats_topic=f"stats-{run}", dead_letters_topic=f"dead-{run}", group_id=f"bench-{run}",
        shadow_scores_topic=f"shadow-{run}", drift_topic=f"drift-{run}", feedback_topic=f"feedback-{run}",
    )  # fmt: skip
    topics.ensure_topics(settings)
    return settings


def score_reader(
    settings: Settings, on_score: Callable[[float, ScoreResult], None], stop: threading.Event
) -> threading.Thread:
    def run() -> None:
        consumer = Consumer({**client_config(settings), "group.id": f"r-{uuid.uuid4().hex}",
                             "isolation.level": "read_committed", **topics.CONSUMER_LOW_LATENCY})  # fmt: skip
        consumer.assign([TopicPartition(settings.scores_topic, 0, OFFSET_BEGINNING)])
        while not stop.is_set():
            for msg in consumer.consume(1000, 0.005):
                value = msg.value()
                if msg.error() is None and value is not None:
                    on_score(time.time(), decode_score(value))
        consumer.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def replay(settings: Settings, count: int, rate: float, prefix: str) -> threading.Thread:
    """Publish records at ``rate`` per second in the background."""
    kwargs = {"count": count, "rate": rate, "id_prefix": prefix}
    sender = threading.Thread(
        target=publish.publish_records, args=(settings, CSV), kwargs=kwargs, daemon=True
    )
    sender.start()
    return sender


def transport_floor(settings: Settings, count: int = 10_000, rate: float = 1000) -> tuple[float, float]:
    """p50/p99 ms of publishing records at ``rate`` and reading them straight back: what Kafka and the
    harness's own clients cost, before any scoring."""
    consumer = Consumer({**client_config(settings), "group.id": f"t-{uuid.uuid4().hex}",
                         **topics.CONSUMER_LOW_LATENCY})  # fmt: skip
    consumer.assign([TopicPartition(settings.data_topic, 0, OFFSET_BEGINNING)])
    # a first record read back before the clock starts: connecting is not what is measured
    publish.publish_records(settings, CSV, count=1, id_prefix="warm")
    while not consumer.consume(1, 0.1):
        pass
    sender = replay(settings, count, rate, "t")
    latencies: list[float] = []
    deadline = time.time() + count / rate + 30
    while len(latencies) < count and time.time() < deadline:
        for msg in consumer.consume(1000, 0.005):
            if msg.error() is None:
                latencies.append(time.time() * 1000 - decode_record(msg.value() or b"").ts)
    sender.join()
    consumer.close()
    return percentile(latencies, 50), percentile(latencies, 99)


def plain_inputs(model: Model) -> Callable[[FeatureMatrix], InputArrays]:
    """How a plain loop feeds a model wine features [n, 11]: an input named after a feature (loosely)
    takes that column, any other input the whole matrix, each cast to the input's type."""
    parts = [(spec, WINE.feature_index(spec.name)) for spec in model.inputs]

    def inputs(matrix: FeatureMatrix) -> InputArrays:
        arrays = {}
        for spec, index in parts:
            column = matrix if index is None else matrix[:, index]
            if index is not None and spec.shape == (1,):
                column = column.reshape(-1, 1)
            arrays[spec.name] = column.astype(spec.dtype, copy=False)
        return arrays

    return inputs


def baseline(settings: Settings, fmt: str, records: int, rate: float | None) -> tuple[float, list[float]]:
    """A plain loop: consume -> decode -> score one record -> produce the same ScoreResult the job writes.
    Returns (records/s, latencies ms)."""
    published = descriptor(fmt, "b")
    model = load_model(published, settings.model_options())
    inputs = plain_inputs(model)
    info = ServingModel(name=published.name, version="b", model_type=published.modeltype)
    encoder = ResultEncoder()
    consumer = Consumer({**client_config(settings), "group.id": f"b-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, **topics.CONSUMER_LOW_LATENCY})  # fmt: skip
    consumer.assign([TopicPartition(settings.data_topic, 0, OFFSET_BEGINNING)])
    producer = topics.producer(settings, **{"linger.ms": 1})
    latencies: list[float] = []
    stop = threading.Event()
    received: dict[str, float] = {}

    def on_score(now: float, score: ScoreResult) -> None:
        received[score.record_id] = now
        if score.record_id.startswith("b-"):
            latencies.append(now * 1000 - score.record_ts)

    def serve(count: int) -> float:
        """Serve ``count`` records; the time from the first one read to the last one sent."""
        done, started = 0, 0.0
        while done < count:
            for msg in consumer.consume(500, 0.005):
                if msg.error() is not None:
                    continue
                if not started:
                    started = time.time()
                raw = msg.value() or b""
                record = decode_record(raw)
                source = SourceRecord(
                    raw, msg.partition(), msg.offset(), Encoding.WINE, msg.topic() or "", 0, None, ""
                )
                scoring_started = time.perf_counter_ns()
                batch = model.score_batch(inputs(np.asarray([record_features(record)], dtype=np.float64)))
                each_ns = time.perf_counter_ns() - scoring_started
                now_ms = time.time_ns() // 1_000_000
                value = encoder.encode(
                    info,
                    record.dataType,
                    now_ms,
                    each_ns,
                    (record.record_id,),
                    (record.ts,),
                    (source,),
                    batch,
                )[0]
                producer.produce(settings.scores_topic, value=value)
                producer.poll(0)
                done += 1
        producer.flush(30)
        return time.time() - started

    reader = score_reader(settings, on_score, stop)
    # one record end to end before the clock starts: connecting is not what is measured
    publish.publish_records(settings, CSV, count=1, id_prefix="warm")
    serve(1)
    while "warm-0" not in received:
        time.sleep(0.01)
    if rate:
        replay(settings, records, rate, "b")
    else:
        publish.publish_records(settings, CSV, count=records, id_prefix="b")
    elapsed = serve(records)
    time.sleep(1)
    stop.set()
    reader.join(5)
    consumer.close()
    model.close()
    return records / elapsed, latencies


def stop_job(job: subprocess.Popen[bytes]) -> None:
    """Stop an embedded job and what it started in its session (the Flink JVM, the Python worker)."""
    job.terminate()
    try:
        job.wait(30)
    except subprocess.TimeoutExpired:
        job.kill()
        job.wait(10)
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(job.pid, sig)  # start_embedded with a log gives the job a session (group) of its own
        except ProcessLookupError:
            return
        deadline = time.time() + wait_s
        while time.time() < deadline:
            try:
                os.killpg(job.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    """Wait until nothing listens on 127.0.0.1:``port`` (a job's REST port, before the next job)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.5)


def run_job(settings: Settings, fmt: str, records: int, log: Path, timeout_s: float = 600) -> Result:
    result = Result(fmt)
    settings = fresh_settings(settings)
    publish.publish_model(settings, descriptor(fmt, "v1"))
    publish.publish_records(settings, CSV, count=records, id_prefix="pre")
    scores: list[tuple[float, ScoreResult]] = []
    stop = threading.Event()
    reader = score_reader(settings, lambda now, s: scores.append((now, s)), stop)
    wait_for_port(settings.rest_port)
    started = time.time()
    job = job_control.start_embedded(settings, log_path=log)
    try:
        deadline = time.time() + timeout_s
        while len(scores) < records and time.time() < deadline and job.poll() is None:
            time.sleep(0.2)
        if len(scores) < records:
            result.notes.append(f"only {len(scores)} of {records} scores")
            return result
        result.start_to_first_s = scores[0][0] - started
        scored_at = sorted(s.scored_at for _, s in scores[:records])
        result.job_rps = records / max((scored_at[-1] - scored_at[0]) / 1000, 1e-3)

        # latency at 1,000 rec/s, then a swap while records flow
        before = len(scores)
        publish.publish_records(settings, CSV, count=10_000, rate=1000, id_prefix="lat")
        deadline = time.time() + 60
        while len(scores) < before + 10_000 and time.time() < deadline:
            time.sleep(0.2)
        lat = [now * 1000 - s.record_ts for now, s in scores[before:] if s.record_id.startswith("lat")]
        result.p50_ms, result.p99_ms = percentile(lat, 50), percentile(lat, 99)

        sender = replay(settings, 5000, 1000, "swap")
        time.sleep(1.0)
        published = time.time()
        publish.publish_model(settings, descriptor(fmt, "v2"))
        deadline = time.time() + 60
        while time.time() < deadline:
            first_new = next((now for now, s in list(scores) if s.model_version == "v2"), None)
            if first_new:
                result.swap_s = first_new - published
                break
            time.sleep(0.05)
        sender.join()
    finally:
        stop.set()
        stop_job(job)
        reader.join(5)
    return result


@dataclass
class PathResult:
    """A record path's throughput in each round of one job."""

    path: RecordPath
    rounds: list[float] = field(default_factory=list)
    bytes_per_row: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """The median over the rounds (a round caught by a hiccup of the shared machine does not move it)."""
        return float(np.median(self.rounds)) if self.rounds else float("nan")


def high_watermark(consumer: Consumer, topic: str) -> int:
    return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1])


def scored_at_by_prefix(settings: Settings, end: int) -> dict[str, list[int]]:
    """The ``scored_at`` of the first ``end`` records of the scores topic, by record id prefix (the id up
    to its first "-")."""
    consumer = Consumer({**client_config(settings), "group.id": f"s-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", **topics.CONSUMER_LOW_LATENCY})  # fmt: skip
    consumer.assign([TopicPartition(settings.scores_topic, 0, OFFSET_BEGINNING)])
    scored_at: dict[str, list[int]] = {}
    last = -1
    deadline = time.time() + 120
    while last < end - 1 and time.time() < deadline:
        for msg in consumer.consume(10_000, 0.5):
            value = msg.value()
            if msg.error() is None and value is not None:
                score = decode_score(value)
                scored_at.setdefault(score.record_id.split("-", 1)[0], []).append(score.scored_at)
                last = msg.offset() or 0
    consumer.close()
    return scored_at


def first_dead_letter(settings: Settings) -> str:
    consumer = Consumer({**client_config(settings), "group.id": f"d-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(settings.dead_letters_topic, 0, OFFSET_BEGINNING)])
    msgs = consumer.consume(1, 10)
    consumer.close()
    value = msgs[0].value() if msgs and msgs[0].error() is None else None
    return (value or b"")[:300].decode("utf-8", "replace")


def run_records(
    settings: Settings, keys: list[str], rows: int, rounds: int, log: Path, warm_rows: int = 200_000,
    timeout_s: float = 600,
) -> list[PathResult]:  # fmt: skip
    """The same wine rows through each record path, drained by one job: see the module docstring."""
    settings = fresh_settings(settings)
    paths = [PATHS["wine"], *(PATHS[k] for k in keys if k != "wine")]
    results = {p.key: PathResult(p) for p in paths}
    for path in paths:
        schema = encodings.schema(path)
        if schema is not None:
            publish.publish_record_schema(settings, schema)
        publish.publish_model(settings, encodings.model(path, "v1"))
    segments = [(p, f"{p.key}.warm", warm_rows) for p in paths]
    for r in range(rounds):
        order = paths[r % len(paths) :] + paths[: r % len(paths)]
        segments += [(p, f"{p.key}.{r}", rows) for p in order]
    features = encodings.feature_rows()
    for path in paths:
        sample = encodings.encode(path, features, 1_600, "size")
        results[path.key].bytes_per_row = sum(len(r.value) for r in sample) / 1_600
    # every record encoded and on the topic before the job starts: encoding is not what is measured
    for path, prefix, n in segments:
        publish.publish_encoded(settings, settings.data_topic, encodings.encode(path, features, n, prefix))
    total = sum(n for _, _, n in segments)
    print(f"records: {total:,} rows on {settings.data_topic}, starting the job", flush=True)

    watcher = Consumer({**client_config(settings), "group.id": f"w-{uuid.uuid4().hex}"})
    wait_for_port(settings.rest_port)
    job = job_control.start_embedded(settings, log_path=log)
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline and job.poll() is None:
            scored = high_watermark(watcher, settings.scores_topic)
            dead = high_watermark(watcher, settings.dead_letters_topic)
            if scored >= total or scored + dead >= total:
                break
            time.sleep(0.5)
    finally:
        stop_job(job)
    scored, dead = (
        high_watermark(watcher, settings.scores_topic),
        high_watermark(watcher, settings.dead_letters_topic),
    )
    watcher.close()
    notes = [f"{scored:,} of {total:,} rows scored, {dead:,} dead letters"] if scored < total or dead else []
    if dead:
        notes.append(f"first dead letter: {first_dead_letter(settings)!r}")

    scored_at = scored_at_by_prefix(settings, scored)
    started = min((min(t) for t in scored_at.values() if t), default=0)
    for path, prefix, n in segments:
        times = scored_at.get(prefix, [])
        if len(times) > 1:  # the timeline, to see the job settle
            rps = len(times) / max((max(times) - min(times)) / 1000, 1e-3)
            print(
                f"  {prefix:>12} from {(min(times) - started) / 1000:6.1f} s: {rps:9,.0f} rec/s", flush=True
            )
        if prefix.endswith(".warm"):
            continue
        if len(times) < n:
            results[path.key].notes.append(f"{prefix}: {len(times):,} of {n:,} rows scored")
        if len(times) > 1:
            results[path.key].rounds.append(len(times) / max((max(times) - min(times)) / 1000, 1e-3))
    if notes:
        results["wine"].notes += notes
    return list(results.values())


def records_markdown(
    results: list[PathResult], rows: int, rounds: int, warm_rows: int, command: str, settings: Settings
) -> str:
    wine = next(r for r in results if r.path.key == "wine").rps
    lines = [
        f"Measured with `{command}` on {cpu_name()} ({os.cpu_count()} cores), broker and job on the same",
        f"machine, Python {platform.python_version()}, PyFlink embedded mini-cluster, "
        f"python_execution_mode={settings.python_execution_mode}.",
        "The ONNX wine model on the same rows in each encoding, a data type and model per path;",
        f"{warm_rows:,} rows per path to warm up, then {rounds} rounds of {rows:,} rows per path (order",
        "rotating per round), all on the data topic before one job drained them; rec/s = a round's rows",
        "over its first-to-last `scored_at`; medians over the rounds, and their ratio to WineRecord's.",
        "",
        "| path | bytes/row | rec/s per round | median rec/s | / WineRecord |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        each = ", ".join(f"{x:,.0f}" for x in r.rounds)
        lines.append(
            f"| {r.path.label} | {r.bytes_per_row:,.0f} | {each} | {r.rps:,.0f} | {r.rps / wine:.2f}x |"
            + (f" {'; '.join(r.notes)}" if r.notes else "")
        )
    return "\n".join(lines) + "\n"


def stop_broker(settings: Settings) -> None:
    """Stop a benchmark's broker and remove its data (GBs after a long run); the run's home keeps the
    job logs."""
    local_kafka.stop(settings)
    shutil.rmtree(settings.kafka_data_dir, ignore_errors=True)


def exit_on_sigterm() -> None:
    """A SIGTERM (a timeout, a supervisor) ends the benchmark through SystemExit, so its finally blocks stop
    the broker and the jobs it started; by default the signal ended the process without them."""

    def leave(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the clean-up short
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, leave)


@contextlib.contextmanager
def backlog_job(
    home: Path, overrides: list[str], fmt: str, records: int, id_prefix: str
) -> Iterator[tuple[Settings, subprocess.Popen[bytes], int]]:
    """A broker of the benchmark's own (its pid), fresh topics holding ``fmt``'s wine model and a backlog
    of ``records`` WineRecords, and the embedded job started on them; all stopped on exit."""
    settings = bench_settings(home, overrides)
    broker = local_kafka.start(settings)
    try:
        settings = fresh_settings(settings)
        publish.publish_model(settings, descriptor(fmt, "v1"))
        publish.publish_records(settings, CSV, count=records, id_prefix=id_prefix)
        job = job_control.start_embedded(settings, log_path=home / "job.log")
        try:
            yield settings, job, broker
        finally:
            stop_job(job)
    finally:
        stop_broker(settings)


def command_flags(fmt: str, overrides: list[str]) -> str:
    """The --format (unless ONNX, the default) and --set flags of a benchmark's command line."""
    flags = "".join(f" --set {item}" for item in overrides)
    return flags if fmt == "onnx" else f" --format {fmt}{flags}"


def bench_settings(home: Path, overrides: list[str]) -> Settings:
    """Settings for a benchmark: its own broker and ports, and job settings given as NAME=VALUE. A
    benchmark that calls this stops what it started on SIGTERM too (exit_on_sigterm)."""
    exit_on_sigterm()
    settings = Settings.from_env().replace(
        bootstrap="127.0.0.1:29092", kafka_port=29092, kafka_controller_port=29093, home=str(home),
        jobmanager="127.0.0.1:28081", prometheus_ports="",
    )  # fmt: skip
    pairs = (item.split("=", 1) for item in overrides)
    return Settings.from_env({**settings.to_env(), **{"MODELSTREAM_" + k.upper(): v for k, v in pairs}})


def rounds_rows(
    results: dict[str, list[float]], label: Callable[[str], str], ratio: Callable[[float], float]
) -> list[str]:
    """Markdown table rows: each entry's label, median, every round and ``ratio(median)``."""
    rows = []
    for name, rounds in results.items():
        median = float(np.median(rounds))
        shown = ", ".join(f"{r:,.0f}" for r in rounds)
        rows.append(f"| {label(name)} | {median:,.0f} | {shown} | {ratio(median):.2f}x |")
    return rows


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


TUNING = (
    "batch_max_records",
    "batch_max_delay_ms",
    "batch_busy_rate",
    "batch_busy_delay_ms",
    "python_bundle_size",
    "python_bundle_time_ms",
    "buffer_timeout_ms",
    "sink_linger_ms",
    "sink_batch_bytes",
    "parallelism",
    "onnx_threads",
    "python_execution_mode",
    "pmml_engine",
    "flink_options",
)


def to_markdown(
    results: list[Result], records: int, command: str, settings: Settings, floor: tuple[float, float]
) -> str:
    lines = [
        f"Measured with `{command}` on {cpu_name()} ({os.cpu_count()} cores), broker and job on the same",
        f"machine, Python {platform.python_version()}, PyFlink embedded mini-cluster.",
        f"{records:,} records per throughput run; latency at 1,000 rec/s offered for 10 s; the baseline",
        "(a plain confluent-kafka loop: consume, decode, score one record, produce the same ScoreResult)",
        "ran in the same run on the same records, its clients warmed by one record first.",
        "Job settings: " + ", ".join(f"{name}={getattr(settings, name)}" for name in TUNING) + ".",
        f"Transport floor (publish at 1,000 rec/s, read straight back, no scoring): p50 {floor[0]:.1f} ms, "
        f"p99 {floor[1]:.1f} ms.",
        "",
        "| format | job rec/s | baseline rec/s | job / baseline | job p50 / p99 ms | baseline p50 / p99 ms "
        "| swap s | start → first result s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r.job_rps / r.baseline_rps if r.baseline_rps else float("nan")
        lines.append(
            f"| {r.fmt} | {r.job_rps:,.0f} | {r.baseline_rps:,.0f} | {ratio:.2f}x "
            f"| {r.p50_ms:.1f} / {r.p99_ms:.1f} | {r.baseline_p50_ms:.1f} / {r.baseline_p99_ms:.1f} "
            f"| {r.swap_s:.2f} | {r.start_to_first_s:.1f} |" + (f" {'; '.join(r.notes)}" if r.notes else "")
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--formats", default="onnx,tf-graph,tf-saved,pmml", help='"" for none')
    parser.add_argument(
        "--encodings",
        default="json,protobuf,oip,oip16",
        help=f"record paths measured against WineRecords ({', '.join(k for k in PATHS if k != 'wine')}; "
        '"" for none)',
    )
    parser.add_argument("--encoding-records", type=int, default=100_000, help="rows per path per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every record path")
    parser.add_argument("--warm-rows", type=int, default=200_000, help="rows per path before the rounds")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a job setting for this run (e.g. batch_max_records=1); repeatable",
    )
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    keys = [k for k in args.encodings.split(",") if k]
    unknown = [k for k in keys if k not in PATHS]
    if unknown:
        parser.error(f"unknown encodings {unknown}: one of {', '.join(PATHS)}")
    home = Path(tempfile.mkdtemp(prefix="modelstream-bench-"))
    settings = bench_settings(home, args.set)
    local_kafka.start(settings)
    results = []
    paths: list[PathResult] = []
    try:
        if formats:
            floor = transport_floor(fresh_settings(settings))
        for fmt in formats:
            result = run_job(settings, fmt, args.records, home / f"job-{fmt}.log")
            rps, _ = baseline(fresh_settings(settings), fmt, args.records, None)
            _, lat = baseline(fresh_settings(settings), fmt, 10_000, 1000)
            result.baseline_rps = rps
            result.baseline_p50_ms = percentile(lat, 50)
            result.baseline_p99_ms = percentile(lat, 99)
            print(result, flush=True)
            results.append(result)
        if keys:
            paths = run_records(
                settings, keys, args.encoding_records, args.rounds, home / "job-records.log", args.warm_rows
            )
            for path in paths:
                print(path, flush=True)
    finally:
        stop_broker(settings)
    settings_flags = "".join(f" --set {item}" for item in args.set)
    if formats:
        command = "python -m benchmarks.throughput" + settings_flags
        text = to_markdown(results, args.records, command, settings, floor)
        write_results(args.out, text)
        print(text)
    if paths:
        command = (
            "python -m benchmarks.throughput"
            + ("" if formats else ' --formats ""')
            + f" --encodings {','.join(keys)} --encoding-records "
            f"{args.encoding_records} --rounds {args.rounds} --warm-rows {args.warm_rows}{settings_flags}"
        )
        text = records_markdown(paths, args.encoding_records, args.rounds, args.warm_rows, command, settings)
        write_results(args.out, text, RECORDS_START, RECORDS_END, RECORDS_HEADING)
        print(text)


RESULTS_START, RESULTS_END = "<!-- results: start -->", "<!-- results: end -->"
RECORDS_START, RECORDS_END = "<!-- records: start -->", "<!-- records: end -->"
RECORDS_HEADING = "## Records of any schema"


def write_results(
    path: Path, text: str, start: str = RESULTS_START, end: str = RESULTS_END, heading: str = ""
) -> None:
    """Write ``text`` between the ``start`` and ``end`` markers of ``path`` (the prose around them stays);
    without them, as a new section under ``heading`` at the end of the file, or (no heading) as the whole
    file."""
    current = path.read_text() if path.exists() else ""
    if start in current and end in current:
        before = current.split(start, 1)[0]
        after = current.split(end, 1)[1]
        text = f"{before}{start}\n{text}{end}{after}"
    elif heading:
        text = f"{current.rstrip()}\n\n{heading}\n\n{start}\n{text}{end}\n"
    path.write_text(text)


if __name__ == "__main__":
    main()
