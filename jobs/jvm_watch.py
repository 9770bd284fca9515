"""The Python worker outlives no TaskManager: a worker whose JVM is gone exits by itself.

In process mode, Flink starts each Python worker through ``pyflink-udf-runner.sh``; when the TaskManager
(or the embedded mini-cluster's JVM) is killed with -9, nothing tells the worker, which then runs on for
good. The watchdog finds the JVM among the worker's ancestors once and checks every ``interval_s`` that
it is still the same process; when it is not, the worker exits. In thread mode Python runs inside the
JVM, and there is nothing to watch.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_started = False
_lock = threading.Lock()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, start time in clock ticks) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[19])


def jvm_ancestor(pid: int | None = None) -> tuple[int, int] | None:
    """(pid, start time) of the nearest ``java`` process above ``pid`` (default: this process), or None
    when there is none or this process is itself the JVM (thread mode)."""
    current = os.getpid() if pid is None else pid
    own = _stat(current)
    if own is None or own[0] == "java":
        return None
    parent = own[1]
    while parent > 1:
        found = _stat(parent)
        if found is None:
            return None
        if found[0] == "java":
            return parent, found[2]
        parent = found[1]
    return None


def alive(process: tuple[int, int]) -> bool:
    """Whether the process still runs (the same one: a reused pid has another start time)."""
    found = _stat(process[0])
    return found is not None and found[2] == process[1]


def watch_jvm(interval_s: float = 1.0) -> None:
    """Start, once per process, a daemon thread that exits the process when its JVM is gone."""
    global _started
    with _lock:
        if _started:
            return
        _started = True
    jvm = jvm_ancestor()
    if jvm is None:
        return

    def watch() -> None:
        while alive(jvm):
            time.sleep(interval_s)
        os._exit(70)  # nobody reads our results any more; 70: EX_SOFTWARE

    threading.Thread(target=watch, name="modelstream-jvm-watchdog", daemon=True).start()
