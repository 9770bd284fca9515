"""Starting the scoring job: embedded (a local Flink mini-cluster in a child process) or on a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import site
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyflink

from client.flink_rest import FlinkRest, FlinkRestError
from client.signals import StopSignals
from jobs.scoring_job import JOB_NAME, connector_jars
from modelstream.logs import event, logger
from modelstream.settings import PROJECT_ROOT, Settings

LOG = logger("job")
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
    settings: Settings,
    log_path: Path | None = None,
    own_session: bool = False,
    module: str = "jobs.scoring_job",
) -> subprocess.Popen[bytes]:
    """Run the job (``module``'s main) on a local mini-cluster in a child process (logs to ``log_path``,
    else inherited), in a session of its own with a log path or ``own_session`` (then its process group
    is everything it started)."""
    connector_jars(settings)  # fail here, clearly, rather than inside Flink
    settings.check_job()
    env = _env(settings)
    env["FLINK_LIB_DIR"] = str(embedded_lib_dir(settings))
    env.setdefault("FLINK_HOME", str(Path(pyflink.__file__).parent))  # else PyFlink resets FLINK_LIB_DIR
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module],
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
    with StopSignals() as signals:
        settings = resumed(settings)
        event(LOG, "job starting", mode="embedded", rest=settings.jobmanager, settings=settings.shown())
        job = start_embedded(settings, own_session=True)
        announcer = JobAnnouncer(settings)
        while job.poll() is None and not signals.requested:
            if not announcer.done:
                announcer.poll()
            time.sleep(0.2)
        if not signals.requested:
            _kill_group(job.pid, signal.SIGKILL)  # it failed on its own: nothing of it stays
            event(LOG, "job failed", logging.ERROR, exit_code=job.returncode)
            return job.returncode or 1
        event(LOG, "stop requested", signal=signals.last, bound_s=STOP_BOUND_S)
        asked = time.monotonic()
        stop_embedded(settings, job, forced=lambda: signals.forced)
        event(LOG, "job stopped", took_s=round(time.monotonic() - asked, 1), forced=signals.forced)
        return 0


class JobAnnouncer:
    """Logs the job running, once its REST API shows it, and the checkpoint it restored, once known."""

    def __init__(self, settings: Settings) -> None:
        self._rest = FlinkRest(settings.jobmanager)
        self._settings = settings
        self._job: str | None = None
        self.done = False

    def poll(self) -> None:
        if self._job is None:
            self._job = self._rest.running_job()
            if self._job is None:
                return
            event(LOG, "job running", job=self._job, web_ui=f"http://{self._settings.jobmanager}")
            self.done = not self._settings.restore_from
            return
        with contextlib.suppress(FlinkRestError, KeyError, TypeError):
            restored = self._rest.call(f"/jobs/{self._job}/checkpoints")["latest"]["restored"]
            if restored:
                event(LOG, "checkpoint restored", job=self._job, checkpoint=restored["id"],
                      path=restored["external_path"])  # fmt: skip
                self.done = True


def resumed(settings: Settings) -> Settings:
    """``settings`` to start from the newest retained checkpoint when ``resume`` is latest and no
    restore_from is set: a restart carries on where the last run stopped."""
    if settings.restore_from or settings.resume != "latest":
        return settings
    checkpoint = newest_checkpoint(settings)
    if checkpoint is None:
        return settings
    event(LOG, "resuming from the newest checkpoint", path=str(checkpoint))
    return settings.replace(restore_from=checkpoint.as_uri())


def newest_checkpoint(settings: Settings, job_id: str = "*") -> Path | None:
    """The most recently completed checkpoint still on disk of ``job_id`` (default: of any run) in the
    checkpoint directory (Flink keeps only the latest of a run: the REST API may name one replaced
    since)."""
    completed: list[tuple[float, Path]] = []
    for metadata in settings.checkpoint_path.glob(f"{job_id}/chk-*/_metadata"):
        try:
            completed.append((metadata.stat().st_mtime, metadata.parent))
        except FileNotFoundError:  # subsumed by a newer one and deleted while we looked
            continue
    return max(completed)[1] if completed else None


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


RUNNING_STATES = ("RUNNING",)


def status(settings: Settings) -> dict[str, Any] | None:
    """The scoring job as a supervisor sees it: state, uptime, restarts, checkpoints (None when no job
    of this name is known to the REST API at ``settings.jobmanager``; FlinkRestError when none answers)."""
    rest = FlinkRest(settings.jobmanager)
    jobs = [j for j in rest.call("/jobs/overview")["jobs"] if j["name"] == JOB_NAME]
    if not jobs:
        return None
    # the running one, else the newest
    job = max(jobs, key=lambda j: (j["state"] in RUNNING_STATES, j["start-time"]))
    job_id = str(job["jid"])
    now_ms = int(time.time() * 1000)
    restarts = rest.call(f"/jobs/{job_id}/metrics?get=numRestarts")
    checkpoints = rest.call(f"/jobs/{job_id}/checkpoints")
    counts = checkpoints.get("counts", {})
    latest = checkpoints.get("latest", {}) or {}
    completed, restored = latest.get("completed"), latest.get("restored")
    return {
        "job_id": job_id,
        "name": job["name"],
        "state": job["state"],
        "running": job["state"] in RUNNING_STATES,
        "rest": f"http://{settings.jobmanager}",
        "start_time_ms": job["start-time"],
        "uptime_s": round(job["duration"] / 1000, 1),
        "restarts": int(restarts[0]["value"]) if restarts else 0,
        "checkpoints": {
            "completed": counts.get("completed", 0),
            "failed": counts.get("failed", 0),
            "in_progress": counts.get("in_progress", 0),
            "last": None
            if not completed
            else {
                "id": completed["id"],
                "path": completed["external_path"],
                "completed_at_ms": completed["latest_ack_timestamp"],
                "age_s": round((now_ms - completed["latest_ack_timestamp"]) / 1000, 1),
            },
            "restored": None if not restored else {"id": restored["id"], "path": restored["external_path"]},
        },
    }
