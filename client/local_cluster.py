"""A standalone Flink cluster on 127.0.0.1 from the pip-installed Flink distribution (pyflink/bin):
one JobManager and N TaskManagers, config and logs under ``<home>/cluster`` (git-ignored)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyflink
import yaml

from client.flink_rest import FlinkRest, FlinkRestError
from client.job_control import with_project_pythonpath
from jobs.scoring_job import PROMETHEUS_REPORTER
from model import jpmml_jvm
from modelstream.settings import Settings

FLINK_HOME = Path(pyflink.__file__).parent


class ClusterError(RuntimeError):
    """The cluster could not be started or reached."""


def cluster_dir(settings: Settings) -> Path:
    return Path(settings.home) / "cluster"


def _config(settings: Settings, slots: int) -> dict[str, Any]:
    """The cluster's config.yaml: Flink's defaults with everything bound to 127.0.0.1."""
    config: dict[str, Any] = yaml.safe_load((FLINK_HOME / "conf" / "config.yaml").read_text())
    home = Path(settings.home).resolve()
    config["jobmanager"].update(
        {"bind-host": "127.0.0.1", "rpc": {"address": "127.0.0.1", "port": settings.cluster_rpc_port}}
    )
    config["jobmanager"]["memory"] = {"process": {"size": "1024m"}}
    config["taskmanager"].update(
        {
            "bind-host": "127.0.0.1",
            "host": "127.0.0.1",
            "numberOfTaskSlots": slots,
            "memory": {"process": {"size": "1536m"}},
        }
    )
    if settings.jvm_options:
        config.setdefault("env", {}).setdefault("java", {}).setdefault("opts", {})
        config["env"]["java"]["opts"]["taskmanager"] = settings.jvm_options
    config["rest"] = {"address": "127.0.0.1", "bind-address": "127.0.0.1", "port": settings.rest_port}
    config["python"] = {"executable": sys.executable}
    config["state"] = {
        "checkpoints": {"dir": (home / "checkpoints").as_uri()},
        "savepoints": {"dir": (home / "savepoints").as_uri()},
    }
    # a killed TaskManager is noticed within seconds, not the default 50 s
    config["heartbeat"] = {"interval": 2000, "timeout": 10000}
    config["restart-strategy"] = {"type": "fixed-delay", "fixed-delay": {"attempts": 1000, "delay": "2 s"}}
    if settings.prometheus_ports:
        reporter = {"factory": {"class": PROMETHEUS_REPORTER}, "port": settings.prometheus_ports}
        config["metrics"] = {"reporter": {"prom": {**reporter, "host": "127.0.0.1"}}}
    return config


def _env(settings: Settings) -> dict[str, str]:
    base = cluster_dir(settings)
    env = with_project_pythonpath(dict(os.environ))  # TaskManagers may run the job in thread mode
    env.update(
        FLINK_HOME=str(FLINK_HOME),
        FLINK_CONF_DIR=str(base / "conf"),
        FLINK_LOG_DIR=str(base / "log"),
        FLINK_PID_DIR=str(base / "pid"),
    )
    # a job submitted in thread mode runs its Python, and so JPMML, in the TaskManagers' JVMs
    return jpmml_jvm.with_jpmml_classpath(env)


def _script(name: str, *args: str, settings: Settings) -> None:
    done = subprocess.run(
        ["bash", str(FLINK_HOME / "bin" / name), *args], env=_env(settings), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ClusterError(f"{name} {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")


def rest(settings: Settings) -> FlinkRest:
    return FlinkRest(settings.jobmanager)


def status(settings: Settings) -> dict[str, Any] | None:
    """The cluster overview (taskmanagers, slots, jobs), or None if no JobManager answers."""
    try:
        overview: dict[str, Any] = rest(settings).call("/overview")
    except FlinkRestError:
        return None
    return overview


def start(
    settings: Settings, taskmanagers: int = 2, slots: int = 2, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Start a JobManager and ``taskmanagers`` TaskManagers (named tm-0, tm-1, ...); wait until registered."""
    if status(settings) is not None:
        raise ClusterError(f"a Flink cluster already answers on {settings.jobmanager}")
    base = cluster_dir(settings)
    conf = base / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for name in ("log4j.properties", "log4j-cli.properties", "log4j-console.properties", "logback.xml"):
        (conf / name).write_bytes((FLINK_HOME / "conf" / name).read_bytes())
    (conf / "config.yaml").write_text(yaml.safe_dump(_config(settings, slots), sort_keys=False))
    (base / "pid").mkdir(exist_ok=True)
    (base / "log").mkdir(exist_ok=True)
    _script("jobmanager.sh", "start", settings=settings)
    for i in range(taskmanagers):
        _script("taskmanager.sh", "start", f"-Dtaskmanager.resource-id=tm-{i}", settings=settings)
    deadline = time.monotonic() + timeout_s
    while (overview := status(settings)) is None or overview.get("taskmanagers", 0) < taskmanagers:
        if time.monotonic() > deadline:
            raise ClusterError(f"the cluster did not come up within {timeout_s:.0f}s; logs in {base / 'log'}")
        time.sleep(1)
    return overview


def start_taskmanager(settings: Settings, name: str) -> None:
    """Start one more TaskManager (e.g. to replace a killed one)."""
    _script("taskmanager.sh", "start", f"-Dtaskmanager.resource-id={name}", settings=settings)


def stop(settings: Settings) -> bool:
    """Stop every TaskManager and the JobManager started from this home, and any Python worker a killed
    TaskManager left behind; True if one was running."""
    was_running = status(settings) is not None
    _script("taskmanager.sh", "stop-all", settings=settings)
    _script("jobmanager.sh", "stop-all", settings=settings)
    _stop_leftovers(cluster_dir(settings) / "pid")
    return was_running


def leftover_pids(settings: Settings) -> list[int]:
    """Processes of this cluster that still run (none, once ``stop`` returned)."""
    return _leftovers(cluster_dir(settings) / "pid")


def _leftovers(pid_dir: Path) -> list[int]:
    """Processes this cluster started that still run: they carry its pid folder in their environment
    (a TaskManager's Python workers outlive a TaskManager killed with -9)."""
    marker = f"FLINK_PID_DIR={pid_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            found.append(int(proc.name))
    return found


def _stop_leftovers(pid_dir: Path, grace_s: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _leftovers(pid_dir)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while pids and time.monotonic() < deadline and _leftovers(pid_dir):
            time.sleep(0.2)


def taskmanager_pids(settings: Settings) -> dict[str, int]:
    """Process id per TaskManager resource id, for the ones alive (read from their command lines)."""
    pids = {}
    for pid_file in (cluster_dir(settings) / "pid").glob("*taskexecutor.pid"):
        for line in pid_file.read_text().split():
            try:
                cmdline = Path(f"/proc/{int(line)}/cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError):
                continue
            for arg in cmdline:
                if arg.startswith(b"-Dtaskmanager.resource-id="):
                    pids[arg.split(b"=", 1)[1].decode()] = int(line)
    return pids
