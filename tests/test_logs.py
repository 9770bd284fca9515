"""Event logs: plain and JSON lines with their fields, secrets masked wherever settings are shown."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from modelstream import logs
from modelstream.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger("modelstream")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved


def _logged(capsys: pytest.CaptureFixture[str], log_format: str) -> str:
    logs.configure(log_format)
    logs.event(logs.logger("test"), "model loaded", data_type="wine", version="v 2", count=3)
    logs.event(logs.logger("test"), "hidden", logging.DEBUG)
    return capsys.readouterr().err


def test_plain_lines_carry_the_event_and_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = _logged(capsys, "plain").splitlines()
    assert "INFO" in line and "modelstream.test: model loaded" in line
    assert line.endswith("data_type=wine version='v 2' count=3")


def test_json_lines_are_one_object_each_with_the_fields_as_keys(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = _logged(capsys, "json").splitlines()
    entry = json.loads(line)
    assert entry["event"] == "model loaded" and entry["level"] == "info"
    assert (entry["data_type"], entry["version"], entry["count"]) == ("wine", "v 2", 3)
    assert isinstance(entry["ts"], float)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="plain, json"):
        logs.configure("xml")


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("sasl_password", "hunter2", "***"),
        ("sasl_password", "", ""),
        ("api_key", "abc", "***"),
        ("bootstrap", "SASL_SSL://alice:hunter2@broker:9093", "SASL_SSL://alice:***@broker:9093"),
        (
            "flink_options",
            "ssl.keystore.password=hunter2;state.backend.type=rocksdb",
            "ssl.keystore.password=***;state.backend.type=rocksdb",
        ),
        ("group_id", "modelstream", "modelstream"),
        ("parallelism", 4, 4),
    ],
)
def test_secrets_are_masked(name: str, value: object, shown: object) -> None:
    assert logs.masked(name, value) == shown


def test_settings_are_shown_with_their_secrets_masked() -> None:
    shown = Settings(flink_options="s3.secret-key=hunter2;parallelism.default=2").shown()
    assert shown["flink_options"] == "s3.secret-key=***;parallelism.default=2"
    assert "hunter2" not in json.dumps(shown)
    assert shown["bootstrap"] == Settings().bootstrap
