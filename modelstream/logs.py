"""Event logs: one line per event a person needs, to stderr, plain by default or JSON lines.

Code logs with ``event(logger, "what happened", key=value, ...)``; ``configure`` picks the format once
per process (the CLI, the job's driver and each Python worker call it with the settings they run with).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

FORMATS = ("plain", "json")
MASK = "***"
# a setting or option whose name says it holds a secret
_SECRET_NAME = re.compile(r"pass(word)?|secret|token|credential|jaas|private|api[_.-]?key", re.I)
# user:password@ in a URL or address
_URL_CREDENTIALS = re.compile(r"(?<=://)([^/@\s:]+):([^/@\s]+)@")
_FIELDS = "fields"


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def masked(name: str, value: object) -> object:
    """``value`` as it may be shown: a secret's value masked, credentials in URLs and secret entries in
    ``key=value;key=value`` lists masked."""
    if is_secret_name(name) and value not in ("", None):
        return MASK
    if not isinstance(value, str):
        return value
    text = _URL_CREDENTIALS.sub(rf"\1:{MASK}@", value)
    if "=" in text:
        entries = []
        for entry in text.split(";"):
            key, sep, val = entry.partition("=")
            entries.append(f"{key}{sep}{MASK}" if sep and is_secret_name(key) and val else entry)
        text = ";".join(entries)
    return text


def masked_mapping(values: Mapping[str, object]) -> dict[str, object]:
    return {name: masked(name, value) for name, value in values.items()}


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one event with structured fields (shown as key=value in plain lines, as keys in JSON)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={_FIELDS: fields})


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        fields: dict[str, object] = getattr(record, _FIELDS, {})
        pairs = " ".join(f"{k}={_plain(v)}" for k, v in fields.items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = f"{line}  {pairs}" if pairs else line
        return line + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


def _plain(value: object) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return _JsonFormatter() if log_format == "json" else _PlainFormatter()


def configure(log_format: str = "plain", level: str = "info") -> None:
    """Send the ``modelstream`` loggers' events to stderr in ``log_format`` (idempotent)."""
    root = logging.getLogger("modelstream")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def logger(name: str) -> logging.Logger:
    """The logger of one part of modelstream (``modelstream.<name>``)."""
    return logging.getLogger(f"modelstream.{name}")
