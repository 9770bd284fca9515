"""docker-compose.yml is valid and wires Kafka, the Flink cluster, the job submitter and the stats service
(checked with `docker compose config`; no Docker engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from modelstream.settings import PROJECT_ROOT


def compose_config() -> dict[str, Any]:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        done = subprocess.run(
            [*command, "config"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
        )
        if done.returncode == 0:
            config: dict[str, Any] = yaml.safe_load(done.stdout)
            return config
        if "unknown command" not in done.stderr and "is not a docker command" not in done.stderr:
            raise AssertionError(f"{' '.join(command)} config failed:\n{done.stderr}")
    pytest.skip("neither `docker compose` nor `docker-compose` is installed (make tools installs it as root)")


def test_compose_file_wires_the_whole_deployment() -> None:
    services = compose_config()["services"]
    assert set(services) == {"kafka", "kafka-init", "jobmanager", "taskmanager", "submitter", "stats"}
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("jobmanager", "taskmanager", "submitter", "stats"):
        service = services[name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert service["environment"]["MODELSTREAM_BOOTSTRAP"] == "kafka:9092"
        assert service["environment"]["MODELSTREAM_JOBMANAGER"] == "jobmanager:8081"
    assert services["jobmanager"]["command"] == ["jobmanager"]
    assert services["taskmanager"]["command"] == ["taskmanager"]
    assert services["submitter"]["command"] == ["job", "submit"]
    assert {"jobmanager", "kafka-init"} <= set(services["submitter"]["depends_on"])
    assert services["stats"]["command"][:2] == ["stats", "serve"]
    assert "model-stats --config cleanup.policy=compact" in " ".join(services["kafka-init"]["command"])
    assert (PROJECT_ROOT / "docker" / "Dockerfile").is_file() and (
        PROJECT_ROOT / "docker" / "entrypoint.sh"
    ).is_file()
