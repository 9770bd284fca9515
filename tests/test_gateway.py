"""jobs.gateway: the stderr of the JVM PyFlink launches is drained while it runs (no Flink here: the launcher
is replaced by a process that writes far more than a pipe holds)."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pyflink.java_gateway as java_gateway
import pytest

from jobs.gateway import drain_gateway_stderr

LINES = 20_000  # about 1.2 MB: a pipe holds 64 KiB


class _Collected(io.BytesIO):
    """A byte sink other threads write to."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, data: bytes) -> int:  # type: ignore[override]
        with self.lock:
            return super().write(data)


@pytest.fixture
def chatty_launcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PyFlink's launcher, replaced by one whose process writes LINES lines to its stderr pipe."""

    def launch(env: dict[str, str], args: list[str]) -> subprocess.Popen[bytes]:
        script = f"import sys\nfor i in range({LINES}): sys.stderr.write(f'line {{i}} of the JVM\\n')"
        return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    monkeypatch.setattr(java_gateway, "launch_gateway_server_process", launch)
    yield


def test_a_process_writing_more_than_a_pipe_holds_runs_to_its_end(chatty_launcher: None) -> None:
    collected = _Collected()
    drain_gateway_stderr(collected)
    process = java_gateway.launch_gateway_server_process({}, [])
    assert process.wait(timeout=30) == 0  # without the drain it blocks at the 64 KiB pipe buffer
    deadline = time.monotonic() + 10
    while collected.getvalue().count(b"\n") < LINES and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = collected.getvalue().decode().splitlines()
    assert lines[0] == "line 0 of the JVM" and lines[-1] == f"line {LINES - 1} of the JVM"
    assert len(lines) == LINES


def test_draining_twice_wraps_the_launcher_once(chatty_launcher: None) -> None:
    drain_gateway_stderr(io.BytesIO())
    wrapped = java_gateway.launch_gateway_server_process
    drain_gateway_stderr(io.BytesIO())
    assert java_gateway.launch_gateway_server_process is wrapped
