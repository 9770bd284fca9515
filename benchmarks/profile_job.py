"""Where the whole job's time goes at full load: CPU per record of each process (the job's JVM, its
Python worker, the broker) and of each of their threads, and a Java Flight Recorder profile of the JVM
by thread and by code.

    .venv/bin/python -m benchmarks.profile_job [--records 6000000] [--seconds 15] [--set NAME=VALUE]
                                               [--format onnx] [--out docs/profile.md]

Records are put on the data topic first; the job (embedded, the wine model of --format, ONNX by
default) starts and drains them; once its JVM's JIT compiler has gone quiet (it compiles for a minute or
more at full load: --records must outlast that), /proc CPU counters cover --seconds of the drain, then
JFR (`jcmd PID JFR.start settings=profile`) as long again: a recording makes the JIT compile JFR's own
code, which would count as the job's CPU.
Figures go between markers in the output file.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from benchmarks.throughput import backlog_job, command_flags, write_results
from benchmarks.wine_models import FILES
from client.flink_rest import FlinkRest
from client.topics import client_config
from modelstream.settings import PROJECT_ROOT, Settings

TICKS = os.sysconf("SC_CLK_TCK")
# code areas by the class a sampled frame belongs to, most specific first
AREAS = (
    ("org.apache.kafka.clients.producer", "Kafka producer (sink)"),
    ("org.apache.kafka.clients.consumer", "Kafka consumer (source)"),
    ("org.apache.kafka", "Kafka client, other"),
    ("org.apache.flink.connector.kafka.sink", "Flink KafkaSink"),
    ("org.apache.flink.connector.kafka.source", "Flink KafkaSource"),
    ("org.apache.flink.connector.base.source", "Flink source framework"),
    ("modelstream.flink", "modelstream operators (deserializer, micro-batcher, splitter)"),
    ("org.apache.flink.api.java.typeutils.runtime", "Flink Row serializers (copies)"),
    ("org.apache.flink.streaming.api.operators.python", "PyFlink operator"),
    ("org.apache.flink.python", "PyFlink bridge"),
    ("org.apache.beam", "Beam (JVM <-> Python transport)"),
    ("org.apache.flink.shaded.netty", "Netty"),
    ("io.grpc", "gRPC"),
    ("org.apache.flink.runtime.checkpoint", "checkpointing"),
    ("org.apache.flink", "Flink runtime, other"),
    ("java.", "JDK"),
    ("jdk.", "JDK"),
    ("sun.", "JDK"),
)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def processes(job_pid: int, broker_pid: int) -> dict[str, list[int]]:
    """The job's JVM, its Python worker processes (everything else below the job process) and the broker."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    commands: dict[int, bytes] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            commands[int(proc.name)] = (proc / "cmdline").read_bytes()
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children[parent].append(int(proc.name))
    below, todo = [], [job_pid]
    while todo:
        found = children.get(todo.pop(), [])
        below += found
        todo += found
    jvm = [pid for pid in below if b"PythonGatewayServer" in commands.get(pid, b"")]
    # the embedded job runs its Python worker in the job's own process (PyFlink's loopback mode); on a
    # cluster it is a process of its own, found by its command line
    workers = {job_pid} | {p for p in below if p not in jvm}
    workers |= {p for p, command in commands.items() if b"pyflink.fn_execution" in command}
    return {"broker": [broker_pid], "job JVM": jvm, "Python worker": sorted(workers)}


def cpu_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_ticks(pid)
    return total


def thread_ticks(pid: int) -> collections.Counter[tuple[str, int]]:
    """CPU ticks of each thread of ``pid`` by (OS name, thread id): Java's name cut to 15 characters; the
    collector's and the JIT compiler's threads included, which JFR's execution samples leave out."""
    ticks: collections.Counter[tuple[str, int]] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            ticks[re.sub(r"[-#]?\d+$", "", name) or name, int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def python_threads(pid: int) -> dict[int, str]:
    """Each thread of a Python process by its outermost function other than ``threading``'s (else by its
    own name), from ``py-spy dump`` by OS thread id: /proc names every one of them "python". Empty, with
    a warning, where py-spy cannot read the process (the table then shows thread ids)."""
    try:
        dump = subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "dump", "--nonblocking", "--pid", str(pid)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        print(f"py-spy could not name the worker's threads: {e}", file=sys.stderr)
        return {}
    names: dict[int, str] = {}
    tid = 0
    for line in dump.splitlines():
        if line.startswith("Thread "):
            header = re.match(r'Thread (\d+) \([^)]*\): "(.*)"', line)
            tid = int(header.group(1)) if header else 0  # a pthread id in hex: not one /proc knows
            if tid:
                names[tid] = header.group(2) if header else ""
        elif (
            tid and (frame := re.match(r"\s+(\S+) \(([^:)]+)", line)) and "threading.py" not in frame.group(2)
        ):
            names[tid] = f"{frame.group(1)} ({Path(frame.group(2)).name})"  # the outermost such frame wins
    return names


def ticks_between(
    before: collections.Counter[tuple[str, int]], after: collections.Counter[tuple[str, int]]
) -> collections.Counter[str]:
    """CPU ticks by thread name between two ``thread_ticks``: of the threads alive at the second (a thread
    that ended in between, as the JIT's do when idle, is left out rather than counted negative)."""
    between: collections.Counter[str] = collections.Counter()
    for (name, tid), ticks in after.items():
        between[name] += ticks - before.get((name, tid), 0)
    return between


# a JVM is measured once it has compiled its hot code: its JIT compiler under this share of a core (at full
# load the job's compiler threads use 35-40 % of a core for the first ~30 s, and less for a minute more)
MAX_JIT_SHARE = 0.10
MAX_WARM_BURSTS = 60  # warm-up bursts before a benchmark gives up on a JIT that stays busy


class CompilerMeter:
    """CPU seconds the JIT compiler threads of a job's JVM used since the previous call."""

    def __init__(self, job_pid: int) -> None:
        self._job_pid = job_pid
        self._last: collections.Counter[tuple[str, int]] = collections.Counter()

    def __call__(self) -> float:
        jvms = processes(self._job_pid, broker_pid=0)["job JVM"]
        now = thread_ticks(jvms[0]) if jvms else collections.Counter()
        between, self._last = ticks_between(self._last, now), now
        return sum(n for name, n in between.items() if "CompilerThre" in name) / TICKS


def wait_until_compiled(job_pid: int, window_s: float = 5.0, timeout_s: float = 240.0) -> float:
    """Wait until the job's JIT compiler used under MAX_JIT_SHARE of a core over two ``window_s`` in a
    row; the seconds waited."""
    started, meter, quiet = time.monotonic(), CompilerMeter(job_pid), 0
    meter()
    while quiet < 2:
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"the JIT compiler was still busy after {timeout_s:.0f} s")
        time.sleep(window_s)
        quiet = quiet + 1 if meter() / window_s < MAX_JIT_SHARE else 0
    return time.monotonic() - started


def end_offset(settings: Settings, topic: str) -> int:
    consumer = Consumer({**client_config(settings), "group.id": "profile"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def thread_group(name: str) -> str:
    """A thread name without its numbers and subtask ids."""
    return re.sub(r"\s*\(\d+/\d+\)#\d+|[-#]?\d+", "", name).strip() or name


def _class(name: str) -> str:
    """A class name with dots, without the Kafka connector's shading prefix."""
    return name.replace("/", ".").removeprefix("org.apache.flink.kafka.shaded.")


def area(frames: list[dict[str, object]]) -> str:
    """The code area of a sample: the first frame, from the top, of a known area other than the JDK."""
    names = [_class(str(f["method"]["type"]["name"])) for f in frames]  # type: ignore[index]
    for name in names:
        for prefix, label in AREAS:
            if name.startswith(prefix) and label != "JDK":
                return label
    return "JDK"


def profile(pid: int, seconds: float, out: Path) -> dict[str, collections.Counter[str]]:
    recording = out.with_suffix(".jfr")
    start = ["jcmd", str(pid), "JFR.start", "name=modelstream", "settings=profile",
             f"duration={int(seconds)}s", f"filename={recording}"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True)
    time.sleep(seconds + 3)
    printed = subprocess.run(["jfr", "print", "--json", "--events", "jdk.ExecutionSample", str(recording)],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    events = json.loads(printed)["recording"]["events"]
    counts: dict[str, collections.Counter[str]] = {
        "thread": collections.Counter(), "area": collections.Counter(), "leaf": collections.Counter()
    }  # fmt: skip
    for event in events:
        values = event["values"]
        frames = values["stackTrace"]["frames"] if values.get("stackTrace") else []
        counts["thread"][thread_group(values["sampledThread"]["javaName"] or "?")] += 1
        counts["area"][area(frames)] += 1
        if frames:
            top = frames[0]["method"]
            counts["leaf"][f"{_class(top['type']['name'])}.{top['name']}"] += 1
    return counts


def table(counter: collections.Counter[str], heading: str, top: int) -> list[str]:
    total = sum(counter.values()) or 1
    lines = [f"| {heading} | share of samples |", "|---|---:|"]
    lines += [f"| `{name}` | {100 * n / total:.1f} % |" for name, n in counter.most_common(top)]
    return lines


def mean_batch(settings: Settings) -> str:
    """The mean micro-batch size so far, from the micro-batcher's metrics (the Flink REST API)."""
    rest = FlinkRest(settings.jobmanager)
    job_id = rest.wait_for_job()
    for _ in range(30):  # the REST API answers from a cache it fills after the first request
        batches = rest.operator_metric(job_id, "micro-batch", "batches")
        records = rest.operator_metric(job_id, "micro-batch", "batched_records")
        if batches and records:
            return f"{records / batches:,.0f}"
        time.sleep(0.5)
    return "an unknown number of"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=6_000_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--format", default="onnx", choices=sorted(FILES), help="the wine model served")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "profile.md")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-profile-"))
    with backlog_job(home, args.set, args.format, args.records, "p") as (settings, job, broker):
        while end_offset(settings, settings.scores_topic) < 100_000:
            time.sleep(0.5)
        warmed_s = wait_until_compiled(job.pid)
        pids = processes(job.pid, broker)
        jvm = pids["job JVM"][0]
        # CPU first, without JFR: a recording makes the JIT compile its own code for seconds
        before = {name: cpu_of(group) for name, group in pids.items()}
        threads_before = thread_ticks(jvm)
        worker = job.pid  # the embedded job's worker runs in its process (PyFlink's loopback mode)
        worker_before = thread_ticks(worker)
        window_started = time.monotonic()
        scored_before = end_offset(settings, settings.scores_topic)
        time.sleep(args.seconds)
        scored = end_offset(settings, settings.scores_topic) - scored_before
        cpu = {name: (cpu_of(group) - before[name]) / TICKS for name, group in pids.items()}
        threads = ticks_between(threads_before, thread_ticks(jvm))
        worker_after, window_s = thread_ticks(worker), time.monotonic() - window_started
        named = python_threads(worker)
        started = {tid: ticks for (_, tid), ticks in worker_before.items()}
        worker_threads: collections.Counter[str] = collections.Counter()
        for (_, tid), ticks in worker_after.items():
            worker_threads[named.get(tid, f"thread {tid}")] += ticks - started.get(tid, 0)
        counts = profile(jvm, args.seconds, home / "job.jfr")
        batch_size = mean_batch(settings)
        if end_offset(settings, settings.scores_topic) >= args.records:
            raise RuntimeError("the backlog ran out before the profile ended: raise --records")
    flags = command_flags(args.format, args.set)
    lines = [
        f"`python -m benchmarks.profile_job --records {args.records} --seconds {args.seconds:g}{flags}`: "
        f"{scored:,} records scored in the measured window ({scored / args.seconds:,.0f} rec/s), which "
        f"started once the JVM's JIT compiler used under {MAX_JIT_SHARE:.0%} of a core ({warmed_s:.0f} s "
        "after 100,000 records were scored). CPU from /proc over that window; then JFR samples over "
        f"as long again (the sample tables). Micro-batches held {batch_size} records on average "
        "(the micro-batcher's batched_records / batches metrics, warm-up included).",
        "",
        "| process | CPU µs per record |",
        "|---|---:|",
        *(f"| {name} | {1e6 * seconds / max(scored, 1):.1f} |" for name, seconds in cpu.items()),
        "",
        "| Python worker thread (by its outermost function, from py-spy dump; CPU from /proc) "
        "| CPU µs per record | share of a core |",
        "|---|---:|---:|",
        *(
            f"| `{name}` | {1e6 * n / TICKS / max(scored, 1):.1f} | {n / TICKS / window_s:.0%} |"
            for name, n in worker_threads.most_common(8)
        ),
        "",
        "| JVM thread (OS name, from /proc: GC and JIT included) | CPU µs per record |",
        "|---|---:|",
        *(f"| `{name}` | {1e6 * n / TICKS / max(scored, 1):.1f} |" for name, n in threads.most_common(12)),
        "",
        *table(counts["thread"], "JVM thread", 12),
        "",
        *table(counts["area"], "JVM code area (innermost frame of a known area)", 14),
        "",
        *table(counts["leaf"], "hottest JVM method (leaf)", 15),
    ]
    text = "\n".join(lines) + "\n"
    write_results(
        args.out,
        text,
        "<!-- jvm: start -->",
        "<!-- jvm: end -->",
        "## The whole job: CPU per process and the JVM",
    )
    print(text)


if __name__ == "__main__":
    main()
