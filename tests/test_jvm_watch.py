"""A Python worker whose JVM dies exits by itself (jobs.jvm_watch), shown with a stand-in JVM: a shell
renamed ``java`` that starts a Python child which watches it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs.jvm_watch import alive, jvm_ancestor
from modelstream.settings import PROJECT_ROOT

CHILD = """
import os, sys, time
from jobs.jvm_watch import jvm_ancestor, watch_jvm
print(jvm_ancestor()[0], flush=True)
watch_jvm(interval_s=0.2)
time.sleep(60)
"""


def test_the_worker_exits_when_its_jvm_is_killed(tmp_path: Path) -> None:
    java = tmp_path / "java"
    shutil.copy("/bin/bash", java)  # its command name is now "java"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = f"{sys.executable} -c '{CHILD}'; sleep 60"
    jvm = subprocess.Popen([str(java), "-c", command], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert jvm.stdout is not None
        assert int(jvm.stdout.readline()) == jvm.pid, "the child finds the JVM among its ancestors"
        worker = next(
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and _parent(int(p.name)) == jvm.pid
        )
        os.kill(jvm.pid, signal.SIGKILL)
        jvm.wait()
        deadline = time.monotonic() + 5
        while _parent(worker) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _parent(worker) is None, "the worker outlived its JVM"
    finally:
        if jvm.poll() is None:
            jvm.kill()


def test_no_jvm_to_watch_outside_flink() -> None:
    assert jvm_ancestor() is None  # pytest is not below a JVM
    assert alive((os.getpid(), _start_time(os.getpid())))
    assert not alive((os.getpid(), _start_time(os.getpid()) + 1)), "a reused pid is not the same process"


def _parent(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[1])


def _start_time(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2 :].split()[19])
