"""Many models: what a live model costs per format, and serving a working set ten times the live-model bound.

    .venv/bin/python -m benchmarks.many_models [--part in-process|job|all]
                                               [--formats onnx,tf-graph,tf-saved,pmml] [--data-types 10000]
                                               [--budget 1000] [--zipf 1.0]
                                               [--batches 20000] [--batch 8] [--records 200000]
                                               [--out docs/many-models.md]
                                               [--cases 0,1,...] [--set NAME=VALUE ...]

In process (no Kafka, no Flink; each measurement in a Python process of its own, so its memory is its own):
  * per format, memory per loaded model: one ModelServer with no bound admits the format's wine model
    (benchmarks/throughput.py's) for K data types; the process's resident growth over the models after
    the first, per model, beside the figure the server reports (ModelStats.memory_bytes, median), and the
    first model's growth (it also sets the runtime up) apart;
  * per format, cold-load time: a second ModelServer over the same keyed state with max_live_models=1
    scores a record of each data type in turn, so every call builds its model again from state: the
    cold load (median, p99) and the whole call, against the same calls with every model live;
  * a working set of --data-types data types, each with a tiny ONNX model of its own
    (tests/onnx_builders.wine_logistic), micro-batches of --batch records of one data type each, the data
    type drawn Zipf(--zipf): records/s and p50/p99 per micro-batch with every model live, with
    max_live_models = --budget and no busy window (least recently used out), and with --budget and the
    default busy window (5 s: the bound gives way to models that serve).
In the job (a broker of its own on 127.0.0.1:29092, the embedded job; long: not run by the test suite):
the same working set published to a job with every model live (max_live_models=0), to one with
max_live_models = --budget (busy window 0) on the heap state backend and to one on RocksDB, the first
two again in PyFlink's thread mode, and one data type alone, then --records records Zipf-distributed over
the data types: records/s (first to last `scored_at`), p99 of score-read time minus record time at
1,000 rec/s for 5 s (over all records and over the most frequent data type's alone), the peak resident
memory of the Python worker (in thread mode it is the JVM) and of the JVM and the JVM heap in use;
then the job is stopped and restarted from its last checkpoint with a record of the most frequent data
type waiting: the time from starting it to that record's result (against one data
type's), and how many models are live then.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks import throughput, wine_models
from client import catalog, job_control, local_kafka, publish, topics
from client.flink_rest import FlinkRest
from modelstream.cache import resident_bytes
from modelstream.codecs.base import SourceRecord
from modelstream.contract import ModelOptions
from modelstream.records import read_wine_csv, wine_record_from_row
from modelstream.serving import ModelServer, ServingSettings
from modelstream.settings import PROJECT_ROOT, Settings
from modelstream.testing import MemoryKeyContext, source_record
from protobufs.modelstream_pb2 import ModelDescriptor, ScoreResult
from tests.onnx_builders import wine_logistic
from tests.processes import MemorySampler, jvms, python_workers

D = ModelDescriptor
MiB = 1024 * 1024
ROWS = read_wine_csv(str(wine_models.CSV))
FORMATS = ("onnx", "tf-graph", "tf-saved", "pmml")
MODELS_PER_FORMAT = {"onnx": 200, "tf-graph": 40, "tf-saved": 10, "pmml": 40}


def wine_batch(size: int, data_type: str = "wine", start: int = 0) -> list[SourceRecord]:
    return [
        source_record(wine_record_from_row(ROWS[(start + i) % len(ROWS)], data_type, 0, f"r-{start + i}")
                      .SerializeToString(), offset=start + i)
        for i in range(size)
    ]  # fmt: skip


def ms(values_ns: list[int], q: float) -> float:
    return float(np.percentile(values_ns, q)) / 1e6 if values_ns else float("nan")


# -- in process: one format's costs ----------------------------------------------------------------------


def format_costs(fmt: str, models: int) -> dict[str, Any]:
    """Memory per loaded model and cold-load time of one format (run in a process of its own)."""
    probe = wine_batch(1)[0]
    contexts: list[MemoryKeyContext] = []
    server = ModelServer(ServingSettings(max_live_models=0), ModelOptions())
    started = resident_bytes()
    after_first = started
    for i in range(models):
        published = wine_models.descriptor(fmt, "1")
        published.dataType = f"dt-{i}"
        ctx = MemoryKeyContext()
        ctx.probe = tuple(probe)  # a TF graph's input has no declared shape: it is validated on a record
        outputs = server.on_model(published.dataType, (published.SerializeToString(), 0, i), ctx)
        if not ctx.versions:
            raise SystemExit(f"{fmt}: the model was refused: {outputs}")
        contexts.append(ctx)
        if i == 0:
            after_first = resident_bytes()
    per_model = (resident_bytes() - after_first) / max(models - 1, 1)
    measured = [ctx.stats.current.memory_bytes for ctx in contexts if ctx.stats is not None]
    hot: list[int] = []
    for i, ctx in enumerate(contexts):
        batch = wine_batch(1, f"dt-{i}", i)
        begun = time.perf_counter_ns()
        server.on_records(f"dt-{i}", batch, ctx)
        hot.append(time.perf_counter_ns() - begun)
    server.close()
    # every call a cold load: the next data type's model is never live
    cold_server = ModelServer(ServingSettings(max_live_models=1, live_model_idle_ms=0), ModelOptions())
    cold_calls: list[int] = []
    cold_loads: list[int] = []
    for i, ctx in enumerate(contexts):
        batch = wine_batch(1, f"dt-{i}", i)
        begun = time.perf_counter_ns()
        cold_server.on_records(f"dt-{i}", batch, ctx)
        if i:  # the first also builds the format's first model twice (LoadMeter): not a typical load
            cold_calls.append(time.perf_counter_ns() - begun)
            cold_loads.append(cold_server.cache_stats.last_cold_load_ns)
    cold_server.close()
    return {
        "format": fmt,
        "models": models,
        "bytes": len(wine_models.descriptor(fmt, "1").data),
        "runtime_mb": (after_first - started) / MiB,
        "resident_kib": per_model / 1024,
        "measured_kib": statistics.median(measured) / 1024,
        "hot_call_ms": ms(hot, 50),
        "cold_load_ms": ms(cold_loads, 50),
        "cold_load_p99_ms": ms(cold_loads, 99),
        "cold_call_ms": ms(cold_calls, 50),
    }


# -- in process: a working set larger than the bound ------------------------------------------------------


def zipf_draws(data_types: int, count: int, exponent: float, seed: int) -> npt.NDArray[np.int64]:
    """``count`` data type indices, rank r drawn with probability proportional to 1 / r^exponent; ranks
    map to indices through a fixed permutation (the most frequent is not dt-0)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, data_types + 1) ** exponent
    ranks = rng.choice(data_types, size=count, p=weights / weights.sum())
    order = np.random.default_rng(0).permutation(data_types)
    return order[ranks].astype(np.int64)


def hottest(data_types: int) -> int:
    return int(np.random.default_rng(0).permutation(data_types)[0])


def keyed_state(data_types: int) -> list[MemoryKeyContext]:
    """Each data type's keyed state as the job keeps it after its model was published: its version."""
    contexts = []
    for i in range(data_types):
        ctx = MemoryKeyContext()
        stored = D(name=f"m-{i}", dataType=f"dt-{i}", modeltype=D.ONNX, version="1", data=wine_logistic(i))
        ctx.versions = {"1": stored.SerializeToString()}
        contexts.append(ctx)
    return contexts


def working_set(
    data_types: int, live: int, idle_ms: int, batches: int, batch: int, zipf: float
) -> dict[str, Any]:
    """Micro-batches of Zipf-drawn data types through one ModelServer (run in a process of its own)."""
    contexts = keyed_state(data_types)
    settings = ServingSettings(max_live_models=live, live_model_idle_ms=idle_ms, stats_interval_ms=2000)
    server = ModelServer(settings, ModelOptions())
    records = {i: wine_batch(batch, f"dt-{i}") for i in range(min(data_types, 64))}

    def run(draws: npt.NDArray[np.int64]) -> list[int]:
        times = []
        for index in draws.tolist():
            begun = time.perf_counter_ns()
            server.on_records(
                f"dt-{index}", records.get(index) or wine_batch(batch, f"dt-{index}"), contexts[index]
            )
            times.append(time.perf_counter_ns() - begun)
        return times

    warm = np.arange(data_types) if not live else zipf_draws(data_types, batches // 4, zipf, 1)
    run(warm)
    before = (server.cache_stats.hits, server.cache_stats.misses, server.cache_stats.evictions)
    draws = zipf_draws(data_types, batches, zipf, 2)
    begun = time.perf_counter()
    times = run(draws)
    elapsed = time.perf_counter() - begun
    stats = server.cache_stats
    hits, misses = stats.hits - before[0], stats.misses - before[1]
    top = hottest(data_types)
    top_times = [t for t, index in zip(times, draws.tolist(), strict=True) if index == top]
    return {
        "live": live,
        "idle_ms": idle_ms,
        "records_per_s": batches * batch / elapsed,
        "p50_ms": ms(times, 50),
        "p99_ms": ms(times, 99),
        "hot_p99_ms": ms(top_times, 99),
        "hit_rate": hits / max(hits + misses, 1),
        "evictions": stats.evictions - before[2],
        "live_at_end": stats.models,
        "resident_mb": resident_bytes() / MiB,
    }


def in_worker(*args: str) -> dict[str, Any]:
    """One in-process measurement in a Python process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.many_models", "--worker", *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def in_process_markdown(
    costs: list[dict[str, Any]], sets: list[dict[str, Any]], args: argparse.Namespace
) -> str:
    lines = [
        f"`python -m benchmarks.many_models --part in-process --data-types {args.data_types} --budget "
        f"{args.budget} --batches {args.batches} --batch {args.batch} --zipf {args.zipf}` — no Kafka, "
        "no Flink, each row in a process of its own, one thread.",
        "",
        "| format | model file | models | runtime set-up (first model) MiB | resident per model KiB "
        "| memory_bytes (median) KiB | call, model live ms | cold load ms (p50 / p99) "
        "| call with a cold load ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in costs:
        lines.append(
            f"| {c['format']} | {c['bytes']:,} B | {c['models']} | {c['runtime_mb']:.0f} "
            f"| {c['resident_kib']:,.0f} | {c['measured_kib']:,.0f} | {c['hot_call_ms']:.2f} "
            f"| {c['cold_load_ms']:.2f} / {c['cold_load_p99_ms']:.2f} | {c['cold_call_ms']:.2f} |"
        )
    lines += [
        "",
        f"{args.data_types:,} data types (a tiny ONNX model each), micro-batches of {args.batch} records, "
        f"data types drawn Zipf({args.zipf}):",
        "",
        "| live models | busy window | records/s | batch p50 ms | batch p99 ms "
        "| most frequent data type's p99 ms | hit rate | evictions | live at the end "
        "| process resident MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sets:
        bound = "all" if not s["live"] else f"{s['live']:,}"
        lines.append(
            f"| {bound} | {s['idle_ms'] / 1000:g} s | {s['records_per_s']:,.0f} | {s['p50_ms']:.2f} "
            f"| {s['p99_ms']:.2f} | {s['hot_p99_ms']:.2f} | {s['hit_rate']:.0%} | {s['evictions']:,} "
            f"| {s['live_at_end']:,} | {s['resident_mb']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


# -- in the job ----------------------------------------------------------------------------------------------


def publish_working_set(settings: Settings, data_types: int) -> None:
    producer = topics.producer(settings)
    for i in range(data_types):
        model = D(name=f"m-{i}", dataType=f"dt-{i}", modeltype=D.ONNX, version="1", data=wine_logistic(i))
        publish.produce(producer, settings.models_topic, model.SerializeToString(), f"dt-{i}".encode())
    producer.flush(120)


def publish_zipf(
    settings: Settings, draws: npt.NDArray[np.int64], prefix: str, rate: float | None = None
) -> None:
    producer = topics.producer(settings)
    started = time.monotonic()
    for n, index in enumerate(draws.tolist()):
        record = wine_record_from_row(
            ROWS[n % len(ROWS)], f"dt-{index}", int(time.time() * 1000), f"{prefix}-{n}"
        )
        publish.produce(producer, settings.data_topic, record.SerializeToString())
        if rate:
            ahead = (n + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                producer.poll(0)
                time.sleep(ahead)
    producer.flush(120)


@dataclass(frozen=True)
class JobCase:
    """One job of the job part: how many data types, how many live models (0: all), which state backend,
    PyFlink's execution mode (thread: the Python functions run inside the JVM)."""

    name: str
    data_types: int
    live: int
    state_backend: str = "hashmap"
    mode: str = "process"


def job_cases(args: argparse.Namespace) -> list[JobCase]:
    n, budget = args.data_types, args.budget
    return [
        JobCase("one data type", 1, 0),
        JobCase(f"{n:,} data types, all live, heap state", n, 0),
        JobCase(f"{n:,} data types, {budget:,} live, heap state", n, budget),
        JobCase(f"{n:,} data types, {budget:,} live, RocksDB state", n, budget, "rocksdb"),
        JobCase(f"{n:,} data types, all live, heap state, thread mode", n, 0, mode="thread"),
        JobCase(f"{n:,} data types, {budget:,} live, heap state, thread mode", n, budget, mode="thread"),
    ]


def jvm_heap_mib(pid: int) -> float:
    """The heap a JVM keeps after a full collection (``jcmd GC.run``, then ``jstat -gc``: survivor, eden
    and old generations in use), MiB."""
    subprocess.run(["jcmd", str(pid), "GC.run"], check=True, capture_output=True, timeout=60)
    lines = subprocess.run(
        ["jstat", "-gc", str(pid)], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split("\n")
    columns = dict(zip(lines[0].split(), map(float, lines[1].split()), strict=False))
    return sum(columns[name] for name in ("S0U", "S1U", "EU", "OU")) / 1024


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, job: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline or job.poll() is not None:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f} s (or the job ended)")
        time.sleep(0.5)


def run_job(base: Settings, args: argparse.Namespace, case: JobCase, log: Path) -> dict[str, Any]:
    """One job serving ``case``'s working set: records/s of a Zipf burst, p99s at 1,000 rec/s, the
    Python worker's and the JVM's memory; then stopped, restarted from its last checkpoint, and the time
    from starting it to the first result of a record waiting for it, and the models live then."""
    settings = throughput.fresh_settings(base).replace(
        max_live_models=case.live, live_model_idle_ms=0, per_data_type_metrics=False,
        state_backend=case.state_backend, checkpoint_interval_ms=2000, python_execution_mode=case.mode,
    )  # fmt: skip
    throughput.wait_for_port(settings.rest_port)
    job = job_control.start_embedded(settings, log_path=log)
    scores: list[tuple[float, ScoreResult]] = []
    stop = threading.Event()
    reader = throughput.score_reader(settings, lambda now, score: scores.append((now, score)), stop)
    flink = FlinkRest(settings.jobmanager)
    result: dict[str, Any] = {"case": case}
    try:
        wait_until(lambda: flink.running_job() is not None, 120, "the job", job)
        sampler = MemorySampler([*python_workers(job), *jvms(job)])
        publish_working_set(settings, case.data_types)
        wait_until(
            lambda: len(catalog.latest_stats(settings)) >= case.data_types, 900, "every model loaded", job
        )
        publish_zipf(settings, zipf_draws(case.data_types, args.records, args.zipf, 2), "b")
        wait_until(lambda: len(scores) >= args.records, 900, "every score", job)
        scored_at = sorted(score.scored_at for _, score in scores[: args.records])
        result["records_per_s"] = args.records / max((scored_at[-1] - scored_at[0]) / 1000, 1e-3)
        paced = 5000
        publish_zipf(settings, zipf_draws(case.data_types, paced, args.zipf, 3), "lat", rate=1000)
        wait_until(lambda: len(scores) >= args.records + paced, 120, "the paced scores", job)
        late = scores[args.records :]
        top = f"dt-{hottest(case.data_types)}"
        result["p99_ms"] = throughput.percentile([now * 1000 - s.record_ts for now, s in late], 99)
        result["hot_p99_ms"] = throughput.percentile(
            [now * 1000 - s.record_ts for now, s in late if s.data_type == top], 99
        )
        result["jvm_heap_mib"] = jvm_heap_mib(jvms(job)[0])
        peaks = sampler.stop()
        # in thread mode the Python functions run in the JVM: its figures hold them
        result["worker_peak_mib"] = peaks[job.pid] / 1024 if case.mode == "process" else None
        result["jvm_peak_mib"] = max((kib for pid, kib in peaks.items() if pid != job.pid), default=0) / 1024

        # restart from the last checkpoint: a record of the most frequent data type waits for it
        checkpoint = job_control.newest_checkpoint(settings)
        wait_until(lambda: job_control.newest_checkpoint(settings) != checkpoint, 60, "a checkpoint", job)
        job_control.stop_embedded(settings, job)
        resumed = job_control.newest_checkpoint(settings)
        publish_zipf(settings, np.array([hottest(case.data_types)]), "restart")
        throughput.wait_for_port(settings.rest_port)
        started = time.time()
        job = job_control.start_embedded(settings.replace(restore_from=str(resumed)), log_path=log)

        def first() -> float | None:
            return next((t for t, s in scores if s.record_id == "restart-0"), None)

        wait_until(lambda: first() is not None, 300, "the first result after the restart", job)
        result["restart_s"] = (first() or started) - started
        job_id = flink.wait_for_job()

        def live() -> float | None:
            return flink.operator_metric(job_id, "serve-models", "live_models")

        wait_until(lambda: live() is not None, 60, "the live_models gauge", job)
        result["live_after_restart"] = int(live() or 0)
        return result
    finally:
        stop.set()
        throughput.stop_job(job)
        reader.join(5)


def job_markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    single = next(r["restart_s"] for r in results if r["case"].data_types == 1)
    lines = [
        f"`python -m benchmarks.many_models --part job --data-types {args.data_types} --budget {args.budget} "
        f"--records {args.records} --zipf {args.zipf}` — embedded job, process mode (thread mode where the "
        "row says so), a tiny ONNX model per data type, per_data_type_metrics off, busy window 0, "
        "checkpoints every 2 s; records Zipf-"
        "distributed over the data types.",
        "",
        "| job | records/s | p99 ms at 1,000 rec/s | most frequent data type's p99 ms | Python worker peak "
        "MiB | JVM peak MiB | JVM heap after a full GC MiB | restart → first result s | vs one data type "
        "| models live after it |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        worker = "in the JVM" if r["worker_peak_mib"] is None else f"{r['worker_peak_mib']:,.0f}"
        lines.append(
            f"| {r['case'].name} | {r['records_per_s']:,.0f} | {r['p99_ms']:.0f} | {r['hot_p99_ms']:.0f} | "
            f"{worker} | {r['jvm_peak_mib']:,.0f} | {r['jvm_heap_mib']:,.0f} | "
            f"{r['restart_s']:.1f} | {r['restart_s'] / single:.2f}x | {r['live_after_restart']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("in-process", "job", "all"), default="all")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--data-types", type=int, default=10_000)
    parser.add_argument("--budget", type=int, default=1000, help="max_live_models (default: a tenth)")
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--batches", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "many-models.md")
    parser.add_argument(
        "--cases",
        help="the job cases to run, by position (0 one data type, 1 all live, 2 the budget, "
        "3 the budget on RocksDB, 4 all live in thread mode, 5 the budget in thread mode), comma-separated; "
        "default all (the table is written only then)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="a job setting for every job case"
    )
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "format":
            result = format_costs(rest[0], int(rest[1]))
        else:
            data_types, live, idle_ms, batches, batch = map(int, rest[:5])
            result = working_set(data_types, live, idle_ms, batches, batch, float(rest[5]))
        print(json.dumps(result))
        return
    if args.part in ("in-process", "all"):
        costs = []
        for fmt in [f for f in args.formats.split(",") if f]:
            costs.append(in_worker("format", fmt, str(MODELS_PER_FORMAT[fmt])))
            print(costs[-1], flush=True)
        sets = []
        for live, idle_ms in ((0, 0), (args.budget, 0), (args.budget, 5000)):
            shape = (args.data_types, live, idle_ms, args.batches, args.batch)
            sets.append(in_worker("zipf", *map(str, shape), str(args.zipf)))
            print(sets[-1], flush=True)
        text = in_process_markdown(costs, sets, args)
        markers = ("<!-- in-process: start -->", "<!-- in-process: end -->")
        throughput.write_results(args.out, text, *markers, "## Figures")
        print(text)
    if args.part in ("job", "all"):
        home = Path(tempfile.mkdtemp(prefix="modelstream-bench-many-"))
        settings = throughput.bench_settings(home, args.set)
        local_kafka.start(settings)
        try:
            results = []
            chosen = {int(i) for i in args.cases.split(",")} if args.cases else None
            for index, case in enumerate(job_cases(args)):
                if chosen is not None and index not in chosen:
                    continue
                results.append(run_job(settings, args, case, home / f"job-{index}.log"))
                print(results[-1], flush=True)
        finally:
            throughput.stop_broker(settings)
        if chosen is not None:
            return
        text = job_markdown(results, args)
        throughput.write_results(args.out, text, "<!-- job: start -->", "<!-- job: end -->", "## Figures")
        print(text)


if __name__ == "__main__":
    main()
