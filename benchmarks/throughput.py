"""End-to-end benchmark: the real job against a plain Python Kafka loop, per model format, in one run.

    .venv/bin/python -m benchmarks.throughput [--records 100000] [--formats onnx,tf-graph,tf-saved,pmml]
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
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from benchmarks.pmml_engines import cpu_name
from client import job_control, local_kafka, publish, topics
from client.messages import decode_score
from model.archive import pack_directory
from model.registry import load_model
from modelstream.records import WINE, decode_record, record_features
from modelstream.results import ResultEncoder
from modelstream.settings import PROJECT_ROOT, Settings
from protobufs.modelstream_pb2 import ModelDescriptor, ScoreResult, ServingModel

WINE_DIR = PROJECT_ROOT / "data" / "wine"
CSV = WINE_DIR / "winequality_red.csv"
D = ModelDescriptor


def descriptor(fmt: str, version: str) -> ModelDescriptor:
    files = {
        "onnx": ("wine_quality_logreg.onnx", D.ONNX),
        "tf-graph": ("optimized_WineQuality.pb", D.TENSORFLOW),
        "pmml": ("winequalityDecisionTreeClassification.pmml", D.PMML),
    }
    if fmt == "tf-saved":
        data = pack_directory(WINE_DIR / "saved" / "1")
        return D(name=fmt, dataType="wine", modeltype=D.TENSORFLOWSAVED, data=data, version=version)
    file, model_type = files[fmt]
    return D(
        name=fmt, dataType="wine", modeltype=model_type, data=(WINE_DIR / file).read_bytes(), version=version
    )


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
    )  # fmt: skip
    topics.ensure_topics(settings)
    return settings


def score_reader(
    settings: Settings, on_score: Callable[[float, ScoreResult], None], stop: threading.Event
) -> threading.Thread:
    def run() -> None:
        consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                             "isolation.level": "read_committed", **topics.CONSUMER_LOW_LATENCY})  # fmt: skip
        consumer.assign([TopicPartition(settings.scores_topic, 0, OFFSET_BEGINNING)])
        while not stop.is_set():
            for msg in consumer.consume(1000, 0.005):
                if msg.error() is None and msg.value() is not None:
                    on_score(time.time(), decode_score(msg.value()))
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
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
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
                latencies.append(time.time() * 1000 - decode_record(msg.value()).ts)
    sender.join()
    consumer.close()
    return percentile(latencies, 50), percentile(latencies, 99)


def baseline(settings: Settings, fmt: str, records: int, rate: float | None) -> tuple[float, list[float]]:
    """A plain loop: consume -> decode -> score one record -> produce the same ScoreResult the job writes.
    Returns (records/s, latencies ms)."""
    published = descriptor(fmt, "b")
    model = load_model(published, WINE, settings.model_options())
    info = ServingModel(name=published.name, version="b", model_type=published.modeltype)
    encoder = ResultEncoder()
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": f"b-{uuid.uuid4().hex}",
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
                record = decode_record(msg.value())
                scoring_started = time.perf_counter_ns()
                batch = model.score_batch(np.asarray([record_features(record)], dtype=np.float64))
                each_ns = time.perf_counter_ns() - scoring_started
                now_ms = time.time_ns() // 1_000_000
                value = encoder.encode(info, record.dataType, now_ms, each_ns, (record,), batch)[0]
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
    return records / elapsed, latencies


def run_job(settings: Settings, fmt: str, records: int, log: Path, timeout_s: float = 600) -> Result:
    result = Result(fmt)
    settings = fresh_settings(settings)
    publish.publish_model(settings, descriptor(fmt, "v1"))
    publish.publish_records(settings, CSV, count=records, id_prefix="pre")
    scores: list[tuple[float, ScoreResult]] = []
    stop = threading.Event()
    reader = score_reader(settings, lambda now, s: scores.append((now, s)), stop)
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
        job.terminate()
        job.wait(30)
        reader.join(5)
    return result


def bench_settings(home: Path, overrides: list[str]) -> Settings:
    """Settings for a benchmark: its own broker and ports, and job settings given as NAME=VALUE."""
    settings = Settings.from_env().replace(
        bootstrap="127.0.0.1:29092", kafka_port=29092, kafka_controller_port=29093, home=str(home),
        jobmanager="127.0.0.1:28081", prometheus_ports="",
    )  # fmt: skip
    pairs = (item.split("=", 1) for item in overrides)
    return Settings.from_env({**settings.to_env(), **{"MODELSTREAM_" + k.upper(): v for k, v in pairs}})


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


TUNING = (
    "batch_max_records",
    "batch_max_delay_ms",
    "python_bundle_size",
    "python_bundle_time_ms",
    "buffer_timeout_ms",
    "sink_linger_ms",
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
    parser.add_argument("--formats", default="onnx,tf-graph,tf-saved,pmml")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a job setting for this run (e.g. batch_max_records=1); repeatable",
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-bench-"))
    settings = bench_settings(home, args.set)
    local_kafka.start(settings)
    results = []
    try:
        floor = transport_floor(fresh_settings(settings))
        for fmt in args.formats.split(","):
            result = run_job(settings, fmt, args.records, home / f"job-{fmt}.log")
            rps, _ = baseline(fresh_settings(settings), fmt, args.records, None)
            _, lat = baseline(fresh_settings(settings), fmt, 10_000, 1000)
            result.baseline_rps = rps
            result.baseline_p50_ms = percentile(lat, 50)
            result.baseline_p99_ms = percentile(lat, 99)
            print(result, flush=True)
            results.append(result)
    finally:
        local_kafka.stop(settings)
    command = "python -m benchmarks.throughput" + "".join(f" --set {item}" for item in args.set)
    text = to_markdown(results, args.records, command, settings, floor)
    write_results(args.out, text)
    print(text)


RESULTS_START, RESULTS_END = "<!-- results: start -->", "<!-- results: end -->"


def write_results(path: Path, text: str) -> None:
    """Write ``text`` between the results markers of ``path`` (the prose around them stays), or as the
    whole file when it has no markers."""
    current = path.read_text() if path.exists() else ""
    if RESULTS_START in current and RESULTS_END in current:
        before = current.split(RESULTS_START, 1)[0]
        after = current.split(RESULTS_END, 1)[1]
        text = f"{before}{RESULTS_START}\n{text}{RESULTS_END}{after}"
    path.write_text(text)


if __name__ == "__main__":
    main()
