"""A like-for-like race: the job against what a user would write instead, on the same records, in one run.

    .venv/bin/python -m benchmarks.race [--records 300000] [--warm 100000] [--rounds 1]
                                        [--contenders job,job-thread,batched,one,quix,passthrough,
                                                      flink-passthrough]
                                        [--format onnx|tf-graph|pmml]

Every contender (the embedded job, in the default process mode and in PyFlink's thread mode, where the
Python worker runs inside the JVM; a batched confluent-kafka loop: consume up to 500, decode with the
generated protobuf class, one model call, produce; the same loop with one model call per record; a Quix
Streams 3.28 application scoring each record with its default checkpointing; a passthrough loop that
copies bytes, the Kafka ceiling; a Flink job copying bytes from its Kafka source to its Kafka sink with
the job's connector settings and no Python, benchmarks/flink_passthrough.py: the Flink ceiling) runs
alone, on topics of its own, on a broker of the benchmark's own: it is started and fed untimed warm-up
bursts (--warm records each; a loop gets one of 5,000), for a Flink job until two bursts in a row kept its
JVM's JIT compiler under MAX_JIT_SHARE of a core (a job is timed in its steady state, not while it
compiles), then, already running and subscribed, the timed burst of --records WineRecords, sent as fast as
the producer goes while it consumes. Its throughput is the timed burst over the time from its first to its
last output, by broker time (output topics with LogAppendTime). Every scorer writes the same ScoreResult
with the wine model of --format (ONNX by default; PMML with JPMML everywhere, in thread mode inside
Flink's JVM). Also reported: the CPU per record of each contender's processes, the broker and the sender
over the timed burst (from /proc), and the in-memory rate of decode + score + encode (no Kafka) for the
loop's code and for the job's serving core. The Quix app runs in .venv-quix (`make quix`: quixstreams
needs an older confluent-kafka than the project pins).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from benchmarks.loops import FORMATS, Scorer
from benchmarks.profile_job import MAX_JIT_SHARE, MAX_WARM_BURSTS, TICKS, CompilerMeter, cpu_of, processes
from benchmarks.throughput import (
    bench_settings,
    rounds_rows,
    stop_broker,
    stop_job,
    wait_for_port,
    write_results,
)
from benchmarks.wine_models import CSV, descriptor
from client import job_control, local_kafka, publish, topics
from client.encode import read_wine_rows
from client.topics import client_config
from modelstream.contract import ModelOptions
from modelstream.records import wine_record_from_row
from modelstream.serving import ModelServer, ServingSettings
from modelstream.settings import PROJECT_ROOT, Settings
from modelstream.testing import MemoryKeyContext, source_record

T = TypeVar("T")
QUIX_PYTHON = PROJECT_ROOT / ".venv-quix" / "bin" / "python"
NAMES = {
    "job": "modelstream job",
    "job-thread": "modelstream job, thread mode",
    "batched": "batched loop (consume 500, one model call)",
    "one": "one-record loop",
    "quix": "Quix Streams 3.28 app",
    "passthrough": "passthrough loop (no decode, no model)",
    "flink-passthrough": "Flink passthrough job (Kafka source -> Kafka sink, no Python)",
}


def create_topics(settings: Settings, *names: str) -> None:
    admin = AdminClient(client_config(settings))
    config = {"message.timestamp.type": "LogAppendTime", "max.message.bytes": str(64 << 20)}
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=1, replication_factor=1, config=config) for n in names]
    )
    for future in futures.values():
        future.result()


def count_and_span(settings: Settings, topic: str, skip: int) -> tuple[int, int, int]:
    """(messages after the first ``skip``, first and last broker timestamp of those, ms)."""
    consumer = Consumer({**client_config(settings), "group.id": f"race-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    seen, first, last, idle = 0, 0, 0, 0
    try:
        while idle < 3:
            batch = consumer.consume(10_000, 0.5)
            if not batch:
                idle += 1
                continue
            idle = 0
            for msg in batch:
                if msg.error() is not None:
                    continue
                seen += 1
                if seen > skip:
                    stamp = msg.timestamp()[1]
                    first = first or stamp
                    last = stamp
    finally:
        consumer.close()
    return max(seen - skip, 0), first, last


def wait_outputs(
    settings: Settings, topic: str, expected: int, timeout_s: float, alive: Callable[[], bool]
) -> None:
    consumer = Consumer({**client_config(settings), "group.id": f"race-{uuid.uuid4().hex}"})
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline and alive():
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
            if high - low >= expected:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{topic}: fewer than {expected} outputs within {timeout_s:.0f} s")
    finally:
        consumer.close()


@dataclass
class Race:
    settings: Settings
    records: int
    warm: int
    home: Path
    fmt: str
    broker_pid: int
    cpu: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def send(self, topic: str, count: int, prefix: str) -> None:
        publish.publish_records(self.settings.replace(data_topic=topic), CSV, count=count, id_prefix=prefix)

    def timed(
        self,
        topic_in: str,
        topic_out: str,
        warm: int,
        alive: Callable[[], bool],
        pids: Callable[[], dict[str, list[int]]],
        compiling: Callable[[], float] | None = None,
    ) -> tuple[float, dict[str, float]]:
        """Records/s of the timed burst, after one warm-up burst of ``warm`` records or, for a JVM, as
        many as it takes for two in a row to keep its JIT compiler (``compiling()``: its CPU seconds
        since the previous call) under MAX_JIT_SHARE of a core; and the CPU µs per record each process
        group of ``pids()`` (and the sender, this process) used from the timed burst's first send to its
        last output."""
        sent, quiet, jit_share = 0, 0, 0.0
        for burst in range(MAX_WARM_BURSTS):
            if compiling is not None:
                compiling()
            started = time.monotonic()
            self.send(topic_in, warm, f"warm-{burst}")
            sent += warm
            wait_outputs(self.settings, topic_out, sent, 600, alive)
            if compiling is None:
                break
            jit_share = compiling() / (time.monotonic() - started)
            quiet = quiet + 1 if jit_share < MAX_JIT_SHARE else 0
            if quiet == 2:
                print(f"warm-up: {sent:,} records, the JIT at {jit_share:.0%} at the end", flush=True)
                break
        else:
            raise RuntimeError(f"the JIT compiler was still busy after {sent:,} warm-up records")
        groups = {**pids(), "broker": [self.broker_pid], "sender (the race)": [os.getpid()]}
        before = {name: cpu_of(group) for name, group in groups.items()}
        self.send(topic_in, self.records, "t")
        wait_outputs(self.settings, topic_out, sent + self.records, 600, alive)
        cpu = {
            name: 1e6 * (cpu_of(group) - before[name]) / TICKS / self.records
            for name, group in groups.items()
        }
        count, first, last = count_and_span(self.settings, topic_out, sent)
        return count / max((last - first) / 1000, 1e-3), cpu

    def run(self, name: str) -> float:
        rps, cpu = self._run(name)
        for group, us in cpu.items():
            self.cpu.setdefault(name, {}).setdefault(group, []).append(us)
        return rps

    def _run(self, name: str) -> tuple[float, dict[str, float]]:
        run = uuid.uuid4().hex[:6]
        if name in ("job", "job-thread", "flink-passthrough"):
            return self.run_job(run, thread=name == "job-thread", passthrough=name == "flink-passthrough")
        topic_in, topic_out = f"race-in-{run}", f"race-out-{run}"
        create_topics(self.settings, topic_in, topic_out)
        python = str(QUIX_PYTHON) if name == "quix" else sys.executable
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        command = [python, "-m", "benchmarks.loops", name, "--input", topic_in, "--output", topic_out,
                   "--bootstrap", self.settings.bootstrap, "--format", self.fmt]  # fmt: skip
        with (self.home / f"{name}-{run}.log").open("ab") as log:
            loop = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            return self.timed(
                topic_in, topic_out, 5000, lambda: loop.poll() is None, lambda: {name: [loop.pid]}
            )
        finally:
            loop.terminate()
            try:
                loop.wait(30)
            except subprocess.TimeoutExpired:
                loop.kill()
                loop.wait()

    def run_job(self, run: str, thread: bool, passthrough: bool) -> tuple[float, dict[str, float]]:
        mode = {"python_execution_mode": "thread"} if thread else {}
        settings = self.settings.replace(
            **mode,
            models_topic=f"models-{run}", data_topic=f"race-in-{run}", scores_topic=f"race-out-{run}",
            stats_topic=f"stats-{run}", dead_letters_topic=f"dead-{run}", shadow_scores_topic=f"shadow-{run}",
            group_id=f"race-{run}",
        )  # fmt: skip
        create_topics(settings, settings.data_topic, settings.scores_topic)
        topics.ensure_topics(settings)
        publish.publish_model(settings, descriptor(self.fmt, "v1"))
        wait_for_port(settings.rest_port)
        module = "benchmarks.flink_passthrough" if passthrough else "jobs.scoring_job"
        job = job_control.start_embedded(settings, log_path=self.home / f"job-{run}.log", module=module)
        try:
            return self.timed(
                settings.data_topic,
                settings.scores_topic,
                self.warm,
                lambda: job.poll() is None,
                lambda: {group: pids for group, pids in processes(job.pid, 0).items() if group != "broker"},
                CompilerMeter(job.pid),
            )
        finally:
            stop_job(job)


def in_memory(records: int, fmt: str) -> tuple[float, float]:
    """Records/s of decode + score + encode without Kafka, in batches of 500: the loop's code and the
    job's serving core, each timed on its second pass over the records (the first warms it up)."""
    rows = read_wine_rows(CSV)
    values = [
        wine_record_from_row(rows[i % len(rows)], "wine", 1, f"m-{i}").SerializeToString()
        for i in range(records)
    ]
    starts = range(0, records, 500)
    scorer = Scorer(fmt)
    chunks = [(values[s : s + 500], list(range(s, min(s + 500, records)))) for s in starts]
    loop_rps = _second_pass_rate(records, lambda: _each(chunks, lambda c: scorer.score(c[0], "wine", c[1])))
    server = ModelServer(ServingSettings(), ModelOptions())
    ctx = MemoryKeyContext()
    server.on_model("wine", (descriptor(fmt, "v1").SerializeToString(), 0, 0), ctx)
    batches = [[source_record(v, offset=s + i) for i, v in enumerate(values[s : s + 500])] for s in starts]
    logging.disable(logging.WARNING)  # the core's drift events, not results
    try:
        serve = functools.partial(server.on_records, "wine", ctx=ctx)
        core_rps = _second_pass_rate(records, lambda: _each(batches, serve))
    finally:
        logging.disable(logging.NOTSET)
        server.close()
    return loop_rps, core_rps


def cpu_rows(cpu: dict[str, dict[str, list[float]]]) -> list[str]:
    """CPU µs per record of the timed burst, medians over rounds: each contender's own processes, then
    the broker and the sender, which every contender shares but drives differently."""
    lines = [
        "CPU per record during the timed burst (µs, from /proc, first send to last output; each column's "
        "median over the rounds, the total their sum): the contender's own processes, the broker, the "
        "sender, and all of them.",
        "",
        "| contender | own processes | broker | sender | total |",
        "|---|---|---:|---:|---:|",
    ]
    for name, groups in cpu.items():
        medians = {group: float(np.median(us)) for group, us in groups.items()}
        broker, sender = medians.pop("broker"), medians.pop("sender (the race)")
        # a loop's process is named after it; an idle group (thread mode's PyFlink client) is left out
        own = ", ".join(
            f"{'its process' if group == name else group} {us:.1f}"
            for group, us in medians.items()
            if us >= 0.05
        )
        total = broker + sender + sum(medians.values())
        lines.append(f"| {NAMES[name]} | {own} | {broker:.1f} | {sender:.1f} | {total:.1f} |")
    return lines


def _each(batches: list[T], call: Callable[[T], object]) -> None:
    """``call`` each batch, its result dropped as a job's or a loop's output is once written."""
    for batch in batches:
        call(batch)


def _second_pass_rate(records: int, one_pass: Callable[[], object]) -> float:
    one_pass()
    started = time.perf_counter()
    one_pass()
    return records / (time.perf_counter() - started)


MODELS = {
    "onnx": "ONNX wine model",
    "tf-graph": "TensorFlow graph wine model",
    "pmml": "PMML wine decision tree",
}


def command(args: argparse.Namespace) -> str:
    """The command line that reproduces a race."""
    line = f"python -m benchmarks.race --records {args.records} --warm {args.warm} --rounds {args.rounds}"
    if args.contenders != ",".join(NAMES):
        line += f" --contenders {args.contenders}"
    return line if args.format == "onnx" else f"{line} --format {args.format}"


def to_markdown(
    results: dict[str, list[float]],
    cpu: dict[str, dict[str, list[float]]],
    ceilings: tuple[float, float],
    args: argparse.Namespace,
) -> str:
    job = float(np.median(results["job"])) if results.get("job") else float("nan")
    lines = [
        f"`{command(args)}` — {args.records:,} WineRecords per timed burst, {MODELS[args.format]}, broker "
        f"and contenders on this machine, each contender alone; median of {args.rounds} round(s). "
        f"Flink jobs timed after warm-up bursts of {args.warm:,} records until two in a row kept their JIT "
        f"compiler under {MAX_JIT_SHARE:.0%} of a core.",
        "",
        "| contender | records/s | rounds | job ÷ contender |",
        "|---|---:|---|---:|",
    ]
    lines += rounds_rows(results, NAMES.__getitem__, lambda median: job / median)
    lines += ["", *cpu_rows(cpu)]
    loop_rps, core_rps = ceilings
    lines += [
        "",
        "In memory, no Kafka (decode + score + encode, batches of 500, the second of two passes): "
        f"the loop's code {loop_rps:,.0f} rec/s, "
        f"the job's serving core (`ModelServer.on_records`) {core_rps:,.0f} rec/s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--warm", type=int, default=100_000, help="the job's untimed warm-up burst")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--contenders", default=",".join(NAMES))
    parser.add_argument(
        "--format", choices=FORMATS, default="onnx", help="the wine model every contender scores"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a job setting")
    args = parser.parse_args()
    names = [n for n in args.contenders.split(",") if n]
    if "quix" in names and not QUIX_PYTHON.exists():
        parser.error(f"{QUIX_PYTHON} is missing: run `make quix` first")
    home = Path(tempfile.mkdtemp(prefix="modelstream-race-"))
    settings = bench_settings(home, args.set)
    broker_pid = local_kafka.start(settings)
    race = Race(settings, args.records, args.warm, home, args.format, broker_pid)
    results: dict[str, list[float]] = {name: [] for name in names}
    try:
        for round_number in range(args.rounds):
            for name in names:
                rps = race.run(name)
                results[name].append(rps)
                print(f"round {round_number + 1}: {NAMES[name]}: {rps:,.0f} rec/s", flush=True)
    finally:
        stop_broker(settings)
    text = to_markdown(results, race.cpu, in_memory(min(args.records, 100_000), args.format), args)
    # the ONNX race keeps the markers it always had; the other formats have their own
    key = "race" if args.format == "onnx" else f"race-{args.format}"
    heading = "## Race: the job against what a user would write"
    write_results(
        args.out, text, f"<!-- {key}: start -->", f"<!-- {key}: end -->", f"{heading} ({args.format})"
    )
    print(text)


if __name__ == "__main__":
    main()
