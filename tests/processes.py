"""Processes as /proc shows them: what a test started, and whether it still runs."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, parent pid, ..."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def running(pid: int) -> bool:
    """Whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def parent(pid: int) -> int | None:
    """A process's parent, or None when it is gone."""
    try:
        return int(_stat_fields(pid)[1])
    except OSError:
        return None


def start_ticks(pid: int | str) -> int:
    """When a process started, in clock ticks since boot."""
    return int(_stat_fields(pid)[19])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parent = int(_stat_fields(proc.name)[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS:", "VmHWM:")))
    return {name: int(value.split()[0]) for name, value in fields.items()}


def python_workers(job: subprocess.Popen[bytes]) -> list[int]:
    """A job's Python worker processes: the embedded job runs its worker in its own process (PyFlink's
    loopback mode), any other is a child found by its command line."""
    workers = [job.pid]
    for pid in descendants(job.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"pyflink.fn_execution" in command and b"beam_boot" not in command:
            workers.append(pid)
    return workers
