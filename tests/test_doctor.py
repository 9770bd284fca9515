"""`modelstream doctor` (client/doctor.py): a fresh clone names what set-up builds; a set-up checkout passes;
ports in use are told apart by what answers there."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from client import doctor
from modelstream.settings import PROJECT_ROOT, Settings
from tests.conftest import free_port

CHECKS = ["python", "java", "venv", "protobufs", "jars", "mvn", "port kafka_port"]


def _env(**settings: int | str) -> dict[str, str]:
    """This environment without MODELSTREAM_* variables, plus the given settings as such variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSTREAM_")}
    return env | {f"MODELSTREAM_{name.upper()}": str(value) for name, value in settings.items()}


def _free_ports() -> dict[str, int]:
    return {n: free_port() for n in ("kafka_port", "kafka_controller_port", "stats_port")}


def _lines(output: str) -> dict[str, str]:
    """Each check's line, by the check's name."""
    return {
        line[6:].split(":")[0]: line for line in output.splitlines() if line[:4] in ("ok  ", "warn", "FAIL")
    }


def _run(
    capsys: pytest.CaptureFixture[str],
    root: Path = PROJECT_ROOT,
    bootstrap: str = "",
    jobmanager: str = "",
    kafka_port: int = 0,
    kafka_controller_port: int = 0,
    stats_port: int = 0,
    jars_dir: str = Settings().jars_dir,
) -> tuple[int, dict[str, str]]:
    """doctor.run on this checkout (or ``root``): free ports and nothing answering, unless given."""
    jobmanager = jobmanager or f"127.0.0.1:{free_port()}"
    where = doctor.Surroundings(
        bootstrap or f"127.0.0.1:{free_port()}",
        jobmanager,
        str(root / ".state"),
        kafka_port or free_port(),
        kafka_controller_port or free_port(),
        int(jobmanager.rsplit(":", 1)[1]),
        stats_port or free_port(),
        jars_dir,
    )
    code = doctor.run(where, root=root)
    return code, _lines(capsys.readouterr().out)


def test_a_fresh_clone_names_the_venv_and_the_jars_as_missing(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(clone)], check=True, timeout=120)
    shutil.copy(PROJECT_ROOT / "client" / "doctor.py", clone / "client" / "doctor.py")  # maybe uncommitted
    # -S: no site-packages, as on a fresh machine (modelstream.settings cannot be imported: the defaults)
    done = subprocess.run(
        [sys.executable, "-S", "-m", "client.doctor", "--home", str(tmp_path / "h")],
        cwd=clone,
        env=_env(
            **_free_ports(), bootstrap=f"127.0.0.1:{free_port()}", jobmanager=f"127.0.0.1:{free_port()}"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = _lines(done.stdout)
    assert lines["venv"].startswith("FAIL  venv: .venv missing") and "`make setup`" in lines["venv"]
    jars = lines["jars"]
    assert jars.startswith("FAIL") and str(clone / ".cache" / "jvm") in jars and "`make setup`" in jars
    assert "modelstream-flink.jar" in jars and "the Kafka broker" in jars
    assert lines["protobufs"].startswith("ok")  # the generated code is committed
    assert lines["disk"].startswith("ok") and str(tmp_path) in lines["disk"]  # home's nearest existing parent
    assert done.stdout.splitlines()[-1].startswith(f"{done.stdout.count('FAIL ')} blocking")


def test_this_checkout_after_setup_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(capsys)
    assert code == 0, lines
    assert not [line for line in lines.values() if line.startswith("FAIL")]
    assert lines["java"].startswith("ok    java: Java ")
    for check in ("venv", "jars"):  # warn when make would rebuild it (a stamp older than its sources)
        assert lines[check][:4] in ("ok  ", "warn"), lines[check]
    assert lines["broker"].startswith("warn") and "`modelstream kafka start`" in lines["broker"]
    assert lines["flink rest"].startswith("warn")
    assert all(lines[f"port {p}"].startswith("ok") for p in ("kafka_port", "rest_port", "stats_port"))


def _set_up_root(root: Path) -> Path:
    """A checkout as `make setup` leaves it: every stamp and jar newer than its sources."""
    sources = [
        "pyproject.toml",
        "constraints.txt",
        "jvm/pom.xml",
        "jvm/src/main/java/modelstream/flink/A.java",
    ]
    built = [".venv/bin/python", ".venv/.installed", ".cache/jvm/flink/modelstream-flink.jar"]
    built += [
        ".cache/jvm/flink/flink-sql-connector-kafka-5.0.0-2.2.jar",
        ".cache/jvm/kafka/kafka_2.13-4.1.1.jar",
    ]
    built += ["protobufs/m.proto", "protobufs/m_pb2.py"]
    for i, name in enumerate(sources + built):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
        os.utime(root / name, (1000 + 100 * (name in built), 1000 + 100 * (name in built) + i))
    return root


def test_a_set_up_checkout_is_ok_and_a_changed_source_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _set_up_root(tmp_path)
    code, lines = _run(capsys, root, jars_dir=str(root / ".cache" / "jvm"))
    assert code == 0
    assert (
        lines["venv"].startswith("ok")
        and lines["jars"].startswith("ok")
        and lines["protobufs"].startswith("ok")
    )
    os.utime(root / "constraints.txt", (5000, 5000))
    os.utime(root / "jvm/src/main/java/modelstream/flink/A.java", (5000, 5000))
    (root / "protobufs/m_pb2.py").unlink()
    code, lines = _run(capsys, root, jars_dir=str(root / ".cache" / "jvm"))
    assert code == 1
    assert lines["venv"] == "warn  venv: .venv older than pyproject.toml/constraints.txt — run `make setup`"
    assert lines["jars"].startswith("warn  jars: modelstream-flink.jar older than jvm/ sources")
    assert lines["protobufs"] == "FAIL  protobufs: no generated code for m.proto — run `make protos`"


@pytest.mark.parametrize(
    ("says", "major", "status"),
    [('openjdk version "17.0.15" 2025-04-15', 17, "ok"), ('java version "1.8.0_292"', 8, "FAIL")],
)
def test_java_versions_of_both_styles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, says: str, major: int, status: str
) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(f"#!/bin/sh\necho '{says}' >&2\n")
    java.chmod(0o755)
    (tmp_path / "bin" / "javac").touch()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert doctor._java_major(str(java)) == major
    check = doctor._java(build=False)
    assert check.status == status and f"Java {major}" in check.detail
    assert status == "ok" or "openjdk-17-jdk-headless" in check.fix


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something that is not ours listens on (and never answers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def fake_broker() -> Iterator[int]:
    """A port where something answers Kafka's ApiVersions request, as a broker does."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(1024)
                correlation = struct.unpack(">i", request[8:12])[0]
                conn.sendall(struct.pack(">iihi", 10, correlation, 0, 0))

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def fake_flink() -> Iterator[int]:
    """A port where a Flink REST API answers GET /overview."""

    class Overview(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"flink-version": "2.2.1", "taskmanagers": 1}).encode()
            self.send_response(200 if self.path == "/overview" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Overview)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_held_port_is_named_with_the_flag_to_change(
    held_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, stats_port=held_port)
    assert code == 0  # a warning: the commands that need the port would fail, not every run
    stats = lines["port stats_port"]
    assert stats.startswith(f"warn  port stats_port: {held_port} in use by something else")
    assert "`modelstream --stats-port " in stats
    _, lines = _run(capsys, kafka_controller_port=held_port)
    controller = lines["port kafka_controller_port"]
    assert controller.startswith("warn") and "`modelstream --kafka-controller-port " in controller


def test_a_port_in_use_by_what_we_expect_is_ok(
    fake_broker: int, fake_flink: int, held_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    broker, flink = f"127.0.0.1:{fake_broker}", f"127.0.0.1:{fake_flink}"
    code, lines = _run(
        capsys, bootstrap=broker, kafka_port=fake_broker, kafka_controller_port=held_port, jobmanager=flink
    )
    assert code == 0
    assert (
        lines["port kafka_port"]
        == f"ok    port kafka_port: {fake_broker} in use (a Kafka broker answers there)"
    )
    assert lines["port kafka_controller_port"].endswith("in use (the local broker's controller)")
    assert lines["port rest_port"] == f"ok    port rest_port: {fake_flink} in use (Flink REST answers there)"
    assert lines["broker"] == f"ok    broker: a Kafka broker answers at {broker}"
    assert lines["flink rest"] == f"ok    flink rest: Flink 2.2.1 answers at {flink}"
    _, lines = _run(capsys, bootstrap=f"127.0.0.1:{held_port}", kafka_port=held_port)
    assert lines["broker"].startswith(f"warn  broker: not a Kafka broker at 127.0.0.1:{held_port}")
    assert "--kafka-port" in lines["port kafka_port"] and "--bootstrap" in lines["port kafka_port"]


def test_json_lists_every_check(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "client.doctor", "--json", "--home", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=_env(
            **_free_ports(), bootstrap=f"127.0.0.1:{free_port()}", jobmanager=f"127.0.0.1:{free_port()}"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    checks = json.loads(done.stdout)
    assert [c["check"] for c in checks][: len(CHECKS)] == CHECKS
    assert {c["check"] for c in checks} >= {"broker", "flink rest", "disk", "port stats_port"}
    assert all(
        set(c) == {"check", "status", "detail", "fix"} and c["status"] in ("ok", "warn", "FAIL")
        for c in checks
    )
    assert all(c["fix"] for c in checks if c["status"] != "ok")
    assert done.returncode == (1 if any(c["status"] == "FAIL" for c in checks) else 0)
