"""Starting the scoring job: embedded (a local Flink mini-cluster in a child process) or on a cluster."""

from __future__ import annotations

import contextlib
import os
import signal
import site
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pyflink

from client.flink_rest import FlinkRest, FlinkRestError
from jobs.scoring_job import connector_jars
from modelstream.settings import PROJECT_ROOT, Settings

JOB_SCRIPT = PROJECT_ROOT / "jobs" / "scoring_job.py"
PACKAGES = ("modelstream", "model", "jobs", "protobufs")


def _env(settings: Settings) -> dict[str, str]:
    env = with_project_pythonpath(dict(os.environ))
    env.update(settings.to_env())
    return env


def with_project_pythonpath(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the project and this venv's packages first on PYTHONPATH: in thread mode
    (python.execution-mode=thread) Python runs inside the JVM on the base interpreter, which sees them
    only through PYTHONPATH."""
    paths = [str(PROJECT_ROOT), *site.getsitepackages(), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def embedded_lib_dir(settings: Settings) -> Path:
    """Flink's lib/ plus the Prometheus reporter, for the embedded mini-cluster: it loads reporters from
    its classpath only (a cluster loads them from plugins/)."""
    flink_home = Path(pyflink.__file__).parent
    wanted = [
        *sorted((flink_home / "lib").glob("*.jar")),
        *sorted((flink_home / "plugins" / "metrics-prometheus").glob("*.jar")),
    ]
    lib = Path(settings.jars_dir) / "embedded-lib"
    lib.mkdir(parents=True, exist_ok=True)
    for jar in wanted:
        link = lib / jar.name
        if not link.exists():
            link.symlink_to(jar)
    return lib


def start_embedded(
    settings: Settings, log_path: Path | None = None, own_session: bool = False
) -> subprocess.Popen[bytes]:
    """Run the job on a local mini-cluster in a child process (logs to ``log_path``, else inherited), in a
    session of its own with a log path or ``own_session`` (then its process group is everything it
    started)."""
    connector_jars(settings)  # fail here, clearly, rather than inside Flink
    settings.check_job()
    env = _env(settings)
    env["FLINK_LIB_DIR"] = str(embedded_lib_dir(settings))
    env.setdefault("FLINK_HOME", str(Path(pyflink.__file__).parent))  # else PyFlink resets FLINK_LIB_DIR
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.scoring_job"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            start_new_session=own_session or log_path is not None,
        )
    finally:
        if out:
            out.close()


STOP_BOUND_S = 30.0  # a requested stop ends everything the job started within this


class _Signals:
    """SIGTERM and SIGINT, counted while installed (a second one forces the stop)."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._received)
        return self

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_embedded(
    settings: Settings, job: subprocess.Popen[bytes], forced: Callable[[], bool] = lambda: False
) -> None:
    """Stop an embedded job and everything it started (its JVM, its Python workers) within STOP_BOUND_S:
    cancel the job through its REST API (its last checkpoint is kept, so a restart resumes from it),
    then end its process group; at once if ``forced()`` turns true. The job must run in a session of its
    own (``start_embedded`` gives it one)."""
    deadline = time.monotonic() + STOP_BOUND_S
    if job.poll() is None:
        rest = FlinkRest(settings.jobmanager)
        with contextlib.suppress(FlinkRestError, OSError):
            running = rest.running_job()
            if running is not None:
                rest.cancel(running)
        while job.poll() is None and time.monotonic() < deadline - 10 and not forced():
            time.sleep(0.2)
        _kill_group(job.pid, signal.SIGTERM)
        while job.poll() is None and time.monotonic() < deadline - 2 and not forced():
            time.sleep(0.2)
    _kill_group(job.pid, signal.SIGKILL)  # whatever of its group is left: the JVM, a worker
    job.wait()


def run_embedded(settings: Settings) -> int:
    """`modelstream job run`: the job in the foreground until it ends or is asked to stop (SIGTERM or
    SIGINT; a second one forces it). 0 when it stopped on request, else the job's own exit code."""
    with _Signals() as signals:
        job = start_embedded(settings, own_session=True)
        while job.poll() is None and not signals.count:
            time.sleep(0.2)
        if not signals.count:
            _kill_group(job.pid, signal.SIGKILL)  # it failed on its own: nothing of it stays
            return job.returncode or 1
        print("stopping the job ...", file=sys.stderr, flush=True)
        stop_embedded(settings, job, forced=lambda: signals.count > 1)
        return 0


def latest_retained_checkpoint(settings: Settings, job_id: str) -> Path | None:
    """The newest complete checkpoint of ``job_id`` still on disk (a newer one may have replaced the one
    the REST API last reported: Flink keeps only the latest)."""
    complete = [
        (int(path.name.removeprefix("chk-")), path)
        for path in (settings.checkpoint_path / job_id).glob("chk-*")
        if (path / "_metadata").is_file()
    ]
    return max(complete)[1] if complete else None


def flink_command() -> Path:
    """The `flink` CLI of the pip-installed Flink distribution."""
    return Path(pyflink.__file__).parent / "bin" / "flink"


def submit_command(settings: Settings, jobmanager: str, detached: bool = True) -> list[str]:
    """`flink run --python` for this job, shipping the project's packages and this venv's Python."""
    python = sys.executable
    command = [
        str(flink_command()),
        "run",
        "--jobmanager",
        jobmanager,
        "--parallelism",
        str(settings.parallelism),
    ]
    if detached:
        command.append("--detached")
    if settings.restore_from:
        command += ["--fromSavepoint", settings.restore_from]
    command += [
        "--python",
        str(JOB_SCRIPT),
        "--pyExecutable",
        python,
        "--pyClientExecutable",
        python,
        "--pyFiles",
        ",".join(str(PROJECT_ROOT / p) for p in PACKAGES),
    ]
    connector_jars(settings)  # the driver adds them to pipeline.jars, which ships them with the job
    return command


def submit(settings: Settings, jobmanager: str, detached: bool = True) -> int:
    """Submit the job to a running Flink cluster; returns flink's exit code."""
    settings.check_job()
    return subprocess.call(
        submit_command(settings, jobmanager, detached), cwd=PROJECT_ROOT, env=_env(settings)
    )
