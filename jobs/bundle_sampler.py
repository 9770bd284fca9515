"""No sampling thread per bundle in the Python worker (process mode).

For every bundle, Beam's worker starts a thread that samples which step the bundle is in, and at the end
of the bundle joins it: the join waits for the thread's current sleep (2 ms at first, growing by 1.2x per
sample), and starting the thread costs the worker CPU. With a bundle every few milliseconds
(`python_bundle_time_ms`) that is a thread and a wait per bundle, for figures Flink never reads (Beam's
per-step milliseconds and its lull log; Flink's metrics come from the functions' own counters).

``skip_sampling_thread()`` keeps the sampler's bookkeeping (the current tracker, started, finished) and
drops the thread. It patches Beam's Python subclass of the sampler, pinned with apache-beam in
constraints.txt; docs/profile.md has what it changed.
"""

from __future__ import annotations

import threading
from typing import Any

from apache_beam.runners.worker import statesampler

_patched = False


def _start(self: Any) -> None:
    self.tracked_thread = threading.current_thread()
    statesampler.set_current_tracker(self)  # type: ignore[no-untyped-call]
    self.started = True


def _stop(self: Any) -> None:
    statesampler.set_current_tracker(None)  # type: ignore[no-untyped-call]
    self.finished = True


def skip_sampling_thread() -> None:
    """Bundles from now on start no sampling thread (idempotent)."""
    global _patched
    if not _patched:
        statesampler.StateSampler.start = _start  # type: ignore[method-assign]
        statesampler.StateSampler.stop = _stop  # type: ignore[method-assign]
        _patched = True
