"""The CLI as a new user meets it: expected failures give one line naming the cause and one with the fix,
no traceback, and the documented exit code; the help lists commands first; `settings` says where each
value came from. Nothing here needs a broker: the failures are about there being none."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from client.cli import build_parser
from client.errors import ExitCode
from modelstream.settings import ENV_PREFIX, PROJECT_ROOT
from tests.conftest import MODELSTREAM_CLI, WINE_DIR, free_port

MODELSTREAM = list(MODELSTREAM_CLI)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run(
        [*MODELSTREAM, *args],
        env={**clean, **(env or {})},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_explained(done: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> None:
    """Exit ``code``; stderr is the cause and the fix in at most two lines naming ``words``."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


@pytest.fixture
def nowhere() -> list[str]:
    """Setting flags pointing at ports nothing listens on."""
    return ["--bootstrap", f"127.0.0.1:{free_port()}", "--jobmanager", f"127.0.0.1:{free_port()}"]


@pytest.mark.parametrize(
    "command",
    [
        ["scores", "--limit", "1"],
        ["dead-letters"],
        ["stats"],
        ["models"],
        ["policy", "show", "wine"],
        ["rollout", "wine", "--canary", "v2", "--percent", "5"],
        ["publish-model", str(WINE_DIR / "winequalityDecisionTreeClassification.pmml")],
        ["publish-data", str(WINE_DIR / "winequality_red.csv"), "--count", "10"],
    ],
)
def test_no_broker_says_where_it_looked_and_how_to_start_one(nowhere: list[str], command: list[str]) -> None:
    done = run(*nowhere, *command)
    assert_explained(done, ExitCode.UNREACHABLE, nowhere[1], "modelstream kafka start", "--bootstrap")
    assert "rdkafka" not in done.stderr  # librdkafka's own lines stay out of the user's way


def test_setting_flags_also_work_after_the_command(nowhere: list[str]) -> None:
    done = run("models", "--bootstrap", nowhere[1])
    assert_explained(done, ExitCode.UNREACHABLE, nowhere[1])


def test_debug_shows_the_traceback_too(nowhere: list[str]) -> None:
    done = run("--debug", *nowhere, "models")
    assert done.returncode == ExitCode.UNREACHABLE
    assert "Traceback" in done.stderr and "KafkaUnavailable" in done.stderr
    assert "modelstream kafka start" in done.stderr
    assert "Traceback" in run(*nowhere, "models", env={ENV_PREFIX + "DEBUG": "1"}).stderr


def test_a_missing_file_is_named_before_anything_connects(nowhere: list[str], tmp_path: Path) -> None:
    for command in ("publish-model", "publish-data", "publish-schema"):
        extra = ["--message", "m.M", "--data-type", "d"] if command == "publish-schema" else []
        done = run(*nowhere, command, str(tmp_path / "absent.onnx"), *extra)
        assert_explained(done, ExitCode.USAGE, str(tmp_path / "absent.onnx"), "no such file")


def test_a_wrong_type_or_flag_is_a_usage_error_in_two_lines(nowhere: list[str]) -> None:
    done = run(*nowhere, "publish-model", "--type", "keras", "m.h5")
    assert_explained(done, ExitCode.USAGE, "invalid choice: 'keras'", "modelstream publish-model --help")
    assert_explained(run("scorez"), ExitCode.USAGE, "invalid choice", "modelstream --help")


def test_no_flink_rest_api(nowhere: list[str]) -> None:
    for action in ("status", "savepoint", "stop"):
        done = run(*nowhere, "job", action)
        assert_explained(done, ExitCode.UNREACHABLE, nowhere[3], "modelstream job run", "--jobmanager")


@pytest.fixture
def idle_flink() -> Iterator[str]:
    """A REST API that answers like a Flink cluster running no job."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"jobs": []} if self.path.startswith("/jobs") else {"taskmanagers": 1})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_job_not_running(idle_flink: str) -> None:
    for action in ("savepoint", "stop"):
        done = run("--jobmanager", idle_flink, "job", action)
        assert_explained(done, ExitCode.FAILED, f"no modelstream job runs at {idle_flink}", "job run")
    status = run("--jobmanager", idle_flink, "job", "status")
    assert status.returncode == ExitCode.FAILED and "Traceback" not in status.stderr


def test_a_port_in_use_names_it_and_the_flag_that_moves_it(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        for command in (["stats", "serve"], ["console"]):
            done = run(*command, "--port", str(port))
            assert_explained(done, ExitCode.IN_USE, f"port {port}", "--port")
        done = run("--home", str(tmp_path), "--kafka-port", str(port), "kafka", "start")
        assert_explained(done, ExitCode.IN_USE, f"port {port}", "--kafka-port")
        done = run("--home", str(tmp_path), "--jobmanager", f"127.0.0.1:{port}", "job", "run")
        assert_explained(done, ExitCode.IN_USE, f"port {port}", "--jobmanager")


def test_help_shows_commands_first_one_line_each() -> None:
    text = build_parser().format_help()
    commands = text.index("commands:")
    lines = text[commands:].splitlines()
    listed = [line.split()[0] for line in lines[2:] if line.startswith("    ") and line.split()]
    assert {"publish-model", "publish-data", "scores", "settings", "doctor", "rollout"} <= set(listed)
    for name in listed:  # the name and its summary share a line
        (line,) = [ln for ln in lines if ln.split()[:1] == [name]]
        assert len(line.split()) > 2, line
    assert "--models-topic" not in text  # the settings flags are listed by `modelstream settings`
    assert "modelstream settings" in text


def test_settings_lists_each_value_and_where_it_came_from() -> None:
    done = run(
        "--bootstrap",
        "10.0.0.1:9092",
        "settings",
        "--json",
        "--flink-options",
        "state.backend.type=rocksdb;s3.secret-key=hunter2",
        env={ENV_PREFIX + "GROUP_ID": "from-env"},
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["bootstrap"]["value"] == "10.0.0.1:9092" and rows["bootstrap"]["source"] == "flag"
    assert rows["group_id"]["value"] == "from-env" and rows["group_id"]["source"] == "env"
    assert rows["group_id"]["env"] == "MODELSTREAM_GROUP_ID" and rows["group_id"]["default"] == "modelstream"
    assert rows["models_topic"]["source"] == "default" and rows["models_topic"]["help"]
    assert "hunter2" not in done.stdout and "state.backend.type=rocksdb" in rows["flink_options"]["value"]
    table = run("settings").stdout
    assert "--bootstrap  (MODELSTREAM_BOOTSTRAP)  = 127.0.0.1:9092  [default" in table
