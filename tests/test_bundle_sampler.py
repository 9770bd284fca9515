# mypy: disable-error-code="no-untyped-call"
"""Beam's per-bundle sampling thread is dropped in the Python worker (jobs/bundle_sampler.py)."""

from __future__ import annotations

import threading
import time

from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

from jobs.bundle_sampler import skip_sampling_thread


def test_a_bundle_starts_no_thread_and_ends_without_waiting_for_one() -> None:
    sampler = statesampler.StateSampler("stage", CounterFactory())
    before = threading.active_count()
    skip_sampling_thread()
    for _ in range(3):  # as Beam's bundle processor does for every bundle
        sampler.reset()
        sampler.start()
        assert threading.active_count() == before
        assert statesampler.get_current_tracker() is sampler and sampler.started
        started = time.perf_counter()
        sampler.stop_if_still_running()
        assert time.perf_counter() - started < 0.001  # Beam's own stop waits for its thread's sleep
        assert sampler.finished and statesampler.get_current_tracker() is None
