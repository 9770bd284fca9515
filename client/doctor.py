"""`modelstream doctor`: what set-up and a run need, one line per check with the fix for each failure.

Standard library only, so it runs on a fresh clone before `make setup`: ``python3 -m client.doctor``.
Exit code 1 when a FAIL line blocks a run, else 0 (warn lines do not).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
JAVA_MIN = 17  # jvm/pom.xml compiles for release 17; Flink 2.2 runs on 17 and 21
DISK_FAIL, DISK_WARN = 200 * 2**20, 2**30
SETUP = "run `make setup`"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    check: str
    status: str  # ok | warn | FAIL
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.check}: {self.detail}" + (f" — {self.fix}" if self.fix else "")


def _split(address: str) -> tuple[str, int]:
    """``host:port`` of the first of a comma-separated list (a scheme is dropped)."""
    host, _, port = address.split(",")[0].strip().removeprefix("http://").rstrip("/").rpartition(":")
    return host or "127.0.0.1", int(port)


def _newer(target: Path, sources: list[Path]) -> bool:
    """Whether ``target`` is at least as new as every source, as make decides."""
    mtime = target.stat().st_mtime
    return all(s.stat().st_mtime <= mtime for s in sources if s.exists())


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _kafka_answers(host: str, port: int) -> bool | None:
    """True: a Kafka broker answers ApiVersions; False: something else listens; None: nothing does."""
    try:
        conn = socket.create_connection((host, port), timeout=1.0)
    except OSError:
        return None
    with conn:
        client_id = b"modelstream-doctor"
        body = struct.pack(">hhih", 18, 0, 7331, len(client_id)) + client_id
        try:
            conn.sendall(struct.pack(">i", len(body)) + body)
            reply = b""
            while len(reply) < 8 and (chunk := conn.recv(8 - len(reply))):
                reply += chunk
        except OSError:
            return False
        return len(reply) == 8 and struct.unpack(">ii", reply)[1] == 7331


def _http_json(url: str) -> Any:
    """The JSON ``url`` answers with (no proxy), or None when nothing answers or it is not JSON."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2.0) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _java_major(java: str) -> int | None:
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found[1])
    return int(found[2] or 0) if major == 1 else major  # "1.8.0_292" is Java 8


def _python(venv_ok: bool) -> Check:
    on_path = shutil.which("python3.11")
    if on_path:
        return Check("python", "ok", f"python3.11 at {on_path}")
    if sys.version_info[:2] == (3, 11):
        return Check(
            "python",
            "warn",
            "no python3.11 on PATH, but this is 3.11",
            f"`make setup PYTHON={sys.executable}`",
        )
    fix = "install Python 3.11 with venv (Debian: `apt-get install python3.11-venv`; or pyenv)"
    return Check("python", "warn" if venv_ok else "FAIL", "no python3.11 on PATH (set-up needs it)", fix)


def _java(build: bool) -> Check:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    fix = f"install a JDK {JAVA_MIN}+ (Debian: `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME"
    if not java or not Path(java).exists():
        return Check("java", "FAIL", "no java " + ("in $JAVA_HOME/bin" if home else "on PATH"), fix)
    major = _java_major(java)
    if major is None:
        return Check("java", "FAIL", f"{java} -version did not say its version", fix)
    if major < JAVA_MIN:
        return Check("java", "FAIL", f"Java {major} at {java}; Flink and the jars need {JAVA_MIN}+", fix)
    if not (Path(java).resolve().parent / "javac").exists():
        status = "FAIL" if build else "warn"
        return Check("java", status, f"Java {major} at {java} is a JRE (no javac): Maven needs a JDK", fix)
    return Check("java", "ok", f"Java {major} at {java}")


def _setup(root: Path, jars_dir: Path) -> tuple[list[Check], bool, bool]:
    """The venv, the generated protobuf code, the jars and mvn; whether the venv is there; whether the jars
    need (re)building."""
    stamp, python = root / ".venv" / ".installed", root / ".venv" / "bin" / "python"
    if not python.exists() or not stamp.exists():
        missing = ".venv missing" if not python.exists() else ".venv incomplete (no .installed stamp)"
        venv = Check("venv", "FAIL", missing, SETUP)
    elif not _newer(stamp, [root / "pyproject.toml", root / "constraints.txt"]):
        venv = Check("venv", "warn", ".venv older than pyproject.toml/constraints.txt", SETUP)
    else:
        venv = Check("venv", "ok", f"{root / '.venv'} installed")
    ungenerated = [
        p.name for p in (root / "protobufs").glob("*.proto") if not p.with_name(f"{p.stem}_pb2.py").exists()
    ]
    protos = (
        Check("protobufs", "FAIL", "no generated code for " + ", ".join(ungenerated), "run `make protos`")
        if ungenerated
        else Check("protobufs", "ok", "generated code present")
    )
    wanted = {
        "modelstream-flink.jar": jars_dir / "flink" / "modelstream-flink.jar",
        "the Flink Kafka connector": next((jars_dir / "flink").glob("flink-sql-connector-kafka-*.jar"), None),
        "the Kafka broker": next((jars_dir / "kafka").glob("kafka_2.13-*.jar"), None),
    }
    absent = [what for what, jar in wanted.items() if jar is None or not jar.exists()]
    own_jar = jars_dir / "flink" / "modelstream-flink.jar"
    sources = [root / "jvm" / "pom.xml", *root.glob("jvm/src/*/java/modelstream/flink/*.java")]
    stale = not absent and not _newer(own_jar, sources)
    if absent:
        jars = Check("jars", "FAIL", f"missing in {jars_dir}: " + ", ".join(absent), SETUP)
    elif stale:
        jars = Check("jars", "warn", "modelstream-flink.jar older than jvm/ sources", SETUP)
    else:
        jars = Check("jars", "ok", f"pinned jars in {jars_dir}")
    build = bool(absent) or stale
    mvn = shutil.which("mvn")
    if mvn:
        maven = Check("mvn", "ok", f"at {mvn}")
    else:
        why = "; the jars need building" if build else " (only needed to rebuild the jars)"
        maven = Check(
            "mvn", "FAIL" if absent else "warn", "not on PATH" + why, "install Maven (Debian: `maven`)"
        )
    return [venv, protos, jars, maven], venv.status != "FAIL", build


def _ports(
    kafka_port: int, controller_port: int, rest_port: int, stats_port: int, flink_up: bool
) -> list[Check]:
    checks = []
    for name, port, flag in (
        ("kafka_port", kafka_port, "--kafka-port {p} --bootstrap 127.0.0.1:{p}"),
        ("kafka_controller_port", controller_port, "--kafka-controller-port {p}"),
        ("rest_port", rest_port, "--jobmanager 127.0.0.1:{p}"),
        ("stats_port", stats_port, "--stats-port {p}"),
    ):
        what = f"port {name}"
        if _port_free(port):
            checks.append(Check(what, "ok", f"{port} free"))
            continue
        broker = name.startswith("kafka") and _kafka_answers("127.0.0.1", kafka_port)
        health = _http_json(f"http://127.0.0.1:{port}/healthz") if name == "stats_port" else None
        expected = {
            "kafka_port": "a Kafka broker answers there" if broker else "",
            "kafka_controller_port": "the local broker's controller" if broker else "",
            "rest_port": "Flink REST answers there" if flink_up else "",
            "stats_port": "`stats serve` answers there"
            if isinstance(health, dict) and "data_types" in health
            else "",
        }[name]
        if expected:
            checks.append(Check(what, "ok", f"{port} in use ({expected})"))
        else:
            fix = f"stop what holds it, or choose another port: `modelstream {flag.format(p=_free_port())} …`"
            checks.append(Check(what, "warn", f"{port} in use by something else", fix))
    return checks


def _disk(home: Path) -> Check:
    where = home
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{free / 2**30:.1f} GiB free at {where} (checkpoints, broker data)"
    fix = f"free space there or point --home elsewhere (needs {DISK_WARN // 2**30} GiB)"
    if free < DISK_FAIL:
        return Check("disk", "FAIL", detail, fix)
    return Check("disk", "warn", detail, fix) if free < DISK_WARN else Check("disk", "ok", detail)


@dataclass(frozen=True)
class Surroundings:
    """Where a run would look: modelstream's settings that doctor checks."""

    bootstrap: str
    jobmanager: str
    home: str
    kafka_port: int
    kafka_controller_port: int
    rest_port: int
    stats_port: int
    jars_dir: str


def diagnose(where: Surroundings, root: Path = PROJECT_ROOT) -> list[Check]:
    """Every check, in the order they are printed."""
    bootstrap, jobmanager = where.bootstrap, where.jobmanager
    setup, venv_ok, build = _setup(root, Path(where.jars_dir))
    checks = [_python(venv_ok), _java(build), *setup]
    broker = _kafka_answers(*_split(bootstrap))
    overview = _http_json("http://" + jobmanager.removeprefix("http://").rstrip("/") + "/overview")
    flink_up = isinstance(overview, dict) and "flink-version" in overview
    checks += _ports(
        where.kafka_port, where.kafka_controller_port, where.rest_port, where.stats_port, flink_up
    )
    start = "start one: `modelstream kafka start` (`make demo` starts its own)"
    if broker:
        checks.append(Check("broker", "ok", f"a Kafka broker answers at {bootstrap}"))
    else:
        detail = "not a Kafka broker" if broker is False else "nothing answers"
        checks.append(Check("broker", "warn", f"{detail} at {bootstrap}", start))
    if flink_up:
        checks.append(Check("flink rest", "ok", f"Flink {overview['flink-version']} answers at {jobmanager}"))
    else:
        fix = (
            "only `job submit|savepoint|stop` need it: `modelstream cluster start` (`job run` serves its own)"
        )
        checks.append(Check("flink rest", "warn", f"no Flink REST API at {jobmanager}", fix))
    return [*checks, _disk(Path(where.home))]


def run(where: Surroundings, as_json: bool = False, root: Path = PROJECT_ROOT) -> int:
    """Print the report (lines, or a JSON list); 1 when something blocks a run, else 0."""
    checks = diagnose(where, root)
    failed = sum(c.status == "FAIL" for c in checks)
    if as_json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        print("\n".join(c.line() for c in checks))
        warned = sum(c.status == "warn" for c in checks)
        print(
            f"{failed} blocking, {warned} warnings" if failed else f"nothing blocks a run ({warned} warnings)"
        )
    return 1 if failed else 0


def _defaults() -> dict[str, Any]:
    """The settings doctor needs: modelstream's Settings when importable (the venv), else its defaults and
    the same MODELSTREAM_* variables."""
    try:
        from modelstream import settings as ms

        if ms.PROJECT_ROOT == PROJECT_ROOT:
            s = ms.Settings.from_env()
            names = ("bootstrap", "jobmanager", "home", "kafka_port", "kafka_controller_port", "stats_port")
            return {n: getattr(s, n) for n in (*names, "jars_dir")}
    except ImportError:
        pass
    env = os.environ.get
    return {
        "bootstrap": env("MODELSTREAM_BOOTSTRAP", "127.0.0.1:9092"),
        "jobmanager": env("MODELSTREAM_JOBMANAGER", "127.0.0.1:8081"),
        "home": env("MODELSTREAM_HOME", str(PROJECT_ROOT / ".state")),
        "kafka_port": int(env("MODELSTREAM_KAFKA_PORT", "9092")),
        "kafka_controller_port": int(env("MODELSTREAM_KAFKA_CONTROLLER_PORT", "9093")),
        "stats_port": int(env("MODELSTREAM_STATS_PORT", "8090")),
        "jars_dir": env("MODELSTREAM_JARS_DIR", str(PROJECT_ROOT / ".cache" / "jvm")),
    }


def main(argv: list[str] | None = None) -> int:
    defaults = _defaults()
    parser = argparse.ArgumentParser(prog="python3 -m client.doctor", description=__doc__)
    parser.add_argument("--bootstrap", metavar="H:P", default=defaults["bootstrap"])
    parser.add_argument("--jobmanager", metavar="H:P", default=defaults["jobmanager"])
    parser.add_argument("--home", metavar="DIR", default=defaults["home"])
    parser.add_argument("--json", action="store_true", help="a JSON list of {check, status, detail, fix}")
    args = parser.parse_args(argv)
    where = Surroundings(
        args.bootstrap,
        args.jobmanager,
        args.home,
        defaults["kafka_port"],
        defaults["kafka_controller_port"],
        _split(args.jobmanager)[1],
        defaults["stats_port"],
        defaults["jars_dir"],
    )
    return run(where, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
