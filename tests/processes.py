"""Processes as /proc shows them: what a test started, and whether it still runs."""

from __future__ import annotations

import contextlib
import subprocess
import threading
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


def command_line(pid: int) -> list[str]:
    """A process's arguments (none when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS:", "VmHWM:")))
    return {name: int(value.split()[0]) for name, value in fields.items()}


def _children_running(job: subprocess.Popen[bytes], marker: bytes) -> list[int]:
    """The processes below ``job`` whose command line holds ``marker``."""
    found = []
    for pid in descendants(job.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in command and b"beam_boot" not in command:
            found.append(pid)
    return found


def jvms(job: subprocess.Popen[bytes]) -> list[int]:
    """The JVMs an embedded job started (its mini-cluster)."""
    return _children_running(job, b"java")


def python_workers(job: subprocess.Popen[bytes]) -> list[int]:
    """A job's Python worker processes: the embedded job runs its worker in its own process (PyFlink's
    loopback mode), any other is a child found by its command line."""
    return [job.pid, *_children_running(job, b"pyflink.fn_execution")]


class MemorySampler:
    """The largest resident set of each process, sampled every half second in a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.peak_kib = {pid: memory_kib(pid)["VmRSS"] for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for pid in self.peak_kib:
                with contextlib.suppress(OSError):  # gone: the job's checks fail on it
                    self.peak_kib[pid] = max(self.peak_kib[pid], memory_kib(pid)["VmRSS"])

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join(5)
        return self.peak_kib
