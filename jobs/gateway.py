"""The embedded job's JVM must never block on its own stderr.

PyFlink starts the gateway JVM (which also runs the embedded mini-cluster) with ``stderr=PIPE`` and reads
that pipe only when the JVM fails to start. Whatever the JVM writes to stderr afterwards fills the pipe's
64 KiB and then blocks the writer for good: Java's ``System.err``, native libraries' warnings and, in
thread mode, every line the Python functions log (pemja sends ``sys.stderr`` to ``System.err``). A
thread-mode job stopped scoring that way after a few hundred log events. ``drain_gateway_stderr`` wraps
PyFlink's launcher so that a daemon thread copies the pipe to this process's stderr (the job's log).
A submitted job is not affected: the Flink client starts its gateway.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import IO, Any

import pyflink.java_gateway as java_gateway

CHUNK = 65536


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    fd = source.fileno()
    while chunk := os.read(fd, CHUNK):
        target.write(chunk)
        target.flush()


def drain_gateway_stderr(target: IO[bytes] | None = None) -> None:
    """From now on, the stderr of a gateway JVM PyFlink starts is copied to ``target`` (default: this
    process's stderr) while the JVM runs. Call it before anything starts the gateway."""
    launch = java_gateway.launch_gateway_server_process
    if getattr(launch, "drained", False):
        return
    sink = target if target is not None else sys.stderr.buffer

    def launch_and_drain(env: dict[str, str], args: list[str]) -> subprocess.Popen[bytes]:
        process: subprocess.Popen[bytes] = launch(env, args)
        if process.stderr is not None:
            name = "gateway-stderr"
            threading.Thread(target=_copy, args=(process.stderr, sink), name=name, daemon=True).start()
        return process

    wrapped: Any = launch_and_drain
    wrapped.drained = True
    java_gateway.launch_gateway_server_process = wrapped
