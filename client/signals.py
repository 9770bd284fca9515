"""SIGTERM and SIGINT as a stop request: the first asks for a clean stop, a second forces it."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Counts SIGTERM and SIGINT while installed (``with StopSignals() as signals``), restoring the
    previous handlers on exit."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""  # the name of the last signal received
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._received)
        return self

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.last = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        """A stop was asked for."""
        return self.count > 0

    @property
    def forced(self) -> bool:
        """A second signal came: stop now."""
        return self.count > 1

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
