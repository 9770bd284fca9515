"""`modelstream demo`: the whole product on this machine, with no manual step.

Starts the local broker and the embedded job, replays the wine CSV at a steady rate (and, beside it,
loan applications as JSON records), publishes the tutorial's models one after another, and prints a line
every N scores saying which model version serves each data type. Ctrl-C or SIGTERM (or --duration) stops
everything it started; a second signal forces it. A restart resumes from the newest checkpoint.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

from client import encode, job_control, local_kafka, publish, stats_service, topics
from client.messages import decode_score
from client.signals import StopSignals
from modelstream.settings import PROJECT_ROOT, Settings

WINE_DIR = PROJECT_ROOT / "data" / "wine"
LOANS_DIR = PROJECT_ROOT / "data" / "loans"


@dataclass(frozen=True)
class DemoModel:
    file: str
    model_type: str
    name: str
    version: str


MODELS = (
    DemoModel("wine_quality_logreg.onnx", "onnx", "wine-logreg-onnx", "1"),
    DemoModel("winequalityDecisionTreeClassification.pmml", "pmml", "wine-decision-tree-pmml", "1"),
    DemoModel("winequalityLinearRegression.pmml", "pmml", "wine-linear-regression-pmml", "1"),
    DemoModel("optimized_WineQuality.pb", "tensorflow", "wine-keras-tf-graph", "1"),
    DemoModel("winequalityRandonForrestClassification.pmml", "pmml", "wine-random-forest-pmml", "1"),
    DemoModel("saved/1", "tensorflow-saved", "wine-keras-savedmodel", "1"),
)


def run(
    settings: Settings, rate: float, swap_every_s: float, print_every: int, duration_s: float | None = None
) -> int:
    stop = threading.Event()  # tells the publishing threads to end
    with StopSignals() as signals:
        started_kafka = local_kafka.running_pid(settings) is None
        print(
            f"starting Kafka on {settings.bootstrap} ..."
            if started_kafka
            else f"using Kafka on {settings.bootstrap}"
        )
        local_kafka.start(settings)
        log = Path(settings.home) / "demo-job.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        settings = job_control.resumed(settings)
        job = job_control.start_embedded(settings, log_path=log)
        print(f"started the Flink job (embedded mini-cluster, pid {job.pid}, log {log})")
        console = _start_console(settings)
        workers = [
            threading.Thread(target=_replay, args=(settings, rate, stop), daemon=True),
            threading.Thread(target=_swap_models, args=(settings, swap_every_s, stop), daemon=True),
            threading.Thread(target=_replay_loans, args=(settings, rate / 4, stop), daemon=True),
        ]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + duration_s if duration_s else None
        try:
            _print_scores(settings, print_every, lambda: signals.requested, deadline, job)
        finally:
            job_failed = job.poll() is not None  # it ended before we asked it to
            stop.set()
            print("stopping ...", flush=True)
            job_control.stop_embedded(settings, job, forced=lambda: signals.forced)
            for worker in workers:
                worker.join(10)
            console.shutdown()
            console.server_close()
            console.store.stop()  # type: ignore[attr-defined]
            if started_kafka:
                local_kafka.stop(settings, forced=lambda: signals.forced)
    return 1 if job_failed else 0


def _start_console(settings: Settings) -> ThreadingHTTPServer:
    """The stats service and its console page, on the stats_port setting (or any free port if that one
    is taken), in a thread of the demo. serve() binds its port before it starts any thread, so a taken
    port leaves nothing running behind."""
    try:
        server = stats_service.serve(settings, port=settings.stats_port)
    except OSError:
        server = stats_service.serve(settings, port=0)
    threading.Thread(target=server.serve_forever, name="console", daemon=True).start()
    print(f"console: http://127.0.0.1:{server.server_address[1]}/ (live stats, lag, models)", flush=True)
    return server


def _replay(settings: Settings, rate: float, stop: threading.Event) -> None:
    publish.publish_records(
        settings,
        WINE_DIR / "winequality_red.csv",
        count=10**9,
        rate=rate,
        id_prefix="demo",
        should_stop=stop.is_set,
    )


def _replay_loans(settings: Settings, rate: float, stop: threading.Event) -> None:
    """A second data set beside wine: loan applications as JSON records, scored by an ONNX pipeline
    with one input per column (categorical strings included)."""
    publish.publish_model_file(
        settings, LOANS_DIR / "loans_pipeline.onnx", "loans-onnx", "loans", "onnx", "demo: loans", "1"
    )
    print(">>> published ONNX model loans-onnx v1 for JSON loan records", flush=True)
    rows = encode.read_rows(LOANS_DIR / "loans.csv")
    records = encode.encode_rows(
        rows, encode.Encoding("json", "loans", "demo-loan"), 10**9, lambda: time.time_ns() // 1_000_000
    )
    publish.publish_encoded(settings, settings.data_topic, records, rate=rate, should_stop=stop.is_set)


def _swap_models(settings: Settings, every_s: float, stop: threading.Event) -> None:
    for model in itertools.cycle(MODELS):
        publish.publish_model_file(
            settings,
            WINE_DIR / model.file,
            model.name,
            "wine",
            model.model_type,
            f"demo: {model.file}",
            model.version,
        )
        print(f">>> published {model.model_type} model {model.name} v{model.version}", flush=True)
        if stop.wait(every_s):
            return


def _print_scores(
    settings: Settings,
    every: int,
    stop_requested: Callable[[], bool],
    deadline: float | None,
    job: subprocess.Popen[bytes],
) -> None:
    count = 0
    serving: dict[str, str] = {}  # data type -> model name and version
    started = time.monotonic()
    announcer = job_control.JobAnnouncer(settings)

    def done() -> bool:
        if not announcer.done:
            announcer.poll()
        if job.poll() is not None:
            print(f"the job exited with code {job.returncode}; see its log")
            return True
        return stop_requested() or (deadline is not None and time.monotonic() > deadline)

    for msg in topics.consume(settings, settings.scores_topic, follow=True, from_end=True, should_stop=done):
        value = msg.value()
        if value is None:
            continue
        score = decode_score(value)
        count += 1
        now_serving = f"{score.model_name} v{score.model_version}"
        if now_serving != serving.get(score.data_type):
            print(f"=== swap: {now_serving} serves {score.data_type} from score {count} on", flush=True)
            serving[score.data_type] = now_serving
        if count % every == 0:
            shown = score.label or f"{score.value:.3f}"
            print(
                f"{time.monotonic() - started:7.1f}s  scores={count:<7} serving={now_serving:<34} "
                f"last: {score.record_id} -> {shown} in {score.scoring_time_ns / 1000:.0f}us",
                flush=True,
            )
