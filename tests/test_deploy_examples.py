"""The systemd units and Kubernetes manifests in docs/deploy: valid for their tools, and running
commands, flags and probes this project has."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from client import job_control
from client.cli import build_parser
from modelstream.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "docs" / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
INSTALLED = "/opt/modelstream/.venv/bin/modelstream"
ENV_FILE = "/etc/modelstream/modelstream.env"
KUBERNETES_VERSION = "1.37.0"


def _unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(path)
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    """`systemd-analyze verify` with the paths of this checkout: it checks keys, values and that the
    command exists (an unknown key is only a warning there, so any output about a unit fails)."""
    assert UNITS
    for unit in UNITS:
        text = unit.read_text().replace(INSTALLED, str(Path(PROJECT_ROOT / ".venv/bin/modelstream")))
        (tmp_path / unit.name).write_text(text.replace(ENV_FILE, str(DEPLOY / "systemd/modelstream.env")))
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    about_units = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert done.returncode == 0 and not about_units, done.stderr


def test_a_misspelt_unit_key_is_caught(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    broken = tmp_path / "broken.service"
    broken.write_text("[Service]\nExecStart=/bin/true\nTimeoutStopSecs=45\n")
    done = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True)
    assert str(broken) in done.stderr


@pytest.mark.parametrize("unit", UNITS, ids=[u.stem for u in UNITS])
def test_systemd_units_run_a_modelstream_command_and_outwait_its_stop(unit: Path) -> None:
    service = _unit(unit)["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0] == INSTALLED
    build_parser().parse_args(command[1:])  # exits (fails the test) on an unknown command or flag
    assert service["KillMode"] == "mixed", "SIGTERM to the main process, which stops what it started"
    assert float(service["TimeoutStopSec"]) > job_control.STOP_BOUND_S or "stats" in unit.name
    assert service["Restart"] == "on-failure", "exit 0 is a requested stop, not a failure"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc)
        for path in MANIFESTS
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


@pytest.mark.parametrize(("name", "document"), _documents(), ids=[n for n, _ in _documents()])
def test_kubernetes_manifests_match_the_api_schema_strictly(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    document = next(doc for _, doc in _documents() if doc["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(document))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def _containers() -> list[dict[str, Any]]:
    return [
        container
        for _, doc in _documents()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def test_kubernetes_containers_run_modelstream_commands_with_probes_it_answers() -> None:
    parser = build_parser()
    probes = 0
    for container in _containers():
        parser.parse_args(container["args"])  # the image's entrypoint runs `modelstream ARGS`
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(kind)
            if probe is None:
                continue
            probes += 1
            if "exec" in probe:
                command = probe["exec"]["command"]
                assert command[0] == "modelstream"
                parser.parse_args(command[1:])
            else:
                assert probe["httpGet"]["path"] in ("/healthz", "/readyz")
    assert probes >= 4


def test_the_job_pod_outwaits_its_stop() -> None:
    (job,) = [
        doc for _, doc in _documents() if doc["kind"] == "Deployment" and "job" in doc["metadata"]["name"]
    ]
    spec = job["spec"]
    assert spec["strategy"]["type"] == "Recreate" and spec["replicas"] == 1
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > job_control.STOP_BOUND_S
