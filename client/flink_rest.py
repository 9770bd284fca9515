"""The Flink REST API of a running job (embedded mini-cluster or cluster): jobs, metrics, checkpoints,
savepoints. The same calls work against both, so job control does not care where the job runs."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from jobs.scoring_job import JOB_NAME


class FlinkRestError(RuntimeError):
    """The REST API answered with an error, or not at all."""


class FlinkRest:
    def __init__(self, address: str) -> None:
        self._base = "http://" + address.removeprefix("http://").rstrip("/")

    def call(self, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._base + path, data=data, method=method or ("POST" if data else "GET")
        )
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read()
        except (urllib.error.URLError, OSError) as e:
            raise FlinkRestError(f"{self._base}{path}: {e}") from e
        return json.loads(text) if text else None

    def running_job(self, name: str = JOB_NAME) -> str | None:
        """The id of the running (or restarting) job with this name."""
        try:
            jobs = self.call("/jobs/overview")["jobs"]
        except FlinkRestError:
            return None
        for job in sorted(jobs, key=lambda j: -j["start-time"]):
            if job["name"] == name and job["state"] in ("RUNNING", "RESTARTING", "CREATED", "INITIALIZING"):
                return str(job["jid"])
        return None

    def wait_for_job(self, timeout_s: float = 120.0, name: str = JOB_NAME) -> str:
        deadline = time.monotonic() + timeout_s
        while (job := self.running_job(name)) is None:
            if time.monotonic() > deadline:
                raise FlinkRestError(f"no running job {name!r} at {self._base} within {timeout_s:.0f}s")
            time.sleep(0.5)
        return job

    def operator_metric(self, job: str, operator: str, metric: str) -> float | None:
        """The sum over subtasks of ``<operator>.<metric>`` on the vertex that runs ``operator``."""
        for vertex in self.call(f"/jobs/{job}")["vertices"]:
            if operator in vertex["name"]:
                values = self.call(
                    f"/jobs/{job}/vertices/{vertex['id']}/subtasks/metrics?get={operator}.{metric}"
                )
                return float(values[0]["sum"]) if values else None
        return None

    def latest_checkpoint(self, job: str) -> tuple[int, str] | None:
        """(id, external path) of the job's latest completed checkpoint."""
        latest = self.call(f"/jobs/{job}/checkpoints").get("latest", {}).get("completed")
        return (int(latest["id"]), str(latest["external_path"])) if latest else None

    def savepoint(self, job: str, directory: str, stop: bool = False, timeout_s: float = 120.0) -> str:
        """Take a savepoint into ``directory`` (and stop the job gracefully); returns its path."""
        if stop:
            trigger = self.call(f"/jobs/{job}/stop", {"targetDirectory": directory, "drain": False})
        else:
            trigger = self.call(
                f"/jobs/{job}/savepoints", {"target-directory": directory, "cancel-job": False}
            )
        request_id = trigger["request-id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.call(f"/jobs/{job}/savepoints/{request_id}")
            if status["status"]["id"] == "COMPLETED":
                operation = status["operation"]
                if "failure-cause" in operation:
                    raise FlinkRestError(
                        f"savepoint failed: {operation['failure-cause'].get('stack-trace', '')[:500]}"
                    )
                return str(operation["location"])
            time.sleep(0.5)
        raise FlinkRestError(f"savepoint not completed within {timeout_s:.0f}s")

    def cancel(self, job: str) -> None:
        self.call(f"/jobs/{job}", method="PATCH")
