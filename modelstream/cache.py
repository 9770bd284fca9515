"""The live models of a worker: a bounded cache of what was built from keyed state, least recently used
first out.

A data type's descriptors stay in Flink keyed state (the source of truth); this cache holds what was
built from them (runtime sessions, graphs, evaluators). An evicted entry is built again from state on
the next record of its data type. The bound is a count of live models and a memory budget (each entry
weighs its models and their measured memory); either may be 0, no bound.

An entry that served or shadowed records within ``idle_ms`` is busy: it is never evicted in favour of an
idle one. When every other entry is busy the cache goes above its bound rather than thrash (evict a model
that the next batch needs again), and counts it (``CacheStats.over_bound``). A lookup refreshes an entry
(unlike MLServer's local cache, which is FIFO).

``LoadMeter`` measures what a build costs: its time, and the memory it kept: the growth of the C heap's
bytes in use (glibc's mallinfo2, every arena) or of the resident set, whichever is larger.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

V = TypeVar("V")
T = TypeVar("T")
RELEASE_EVERY_MS = 1000  # the most often freed memory is handed back to the OS after evictions


@dataclass(frozen=True)
class CacheLimits:
    """How many live models a worker keeps, in how much memory, and when a model counts as busy."""

    max_models: int = 0  # live models, summed over entries; 0: no bound
    max_bytes: int = 0  # their measured memory; 0: no budget
    idle_ms: int = 5_000  # an entry that served records more recently than this is busy


@dataclass
class CacheStats:
    """The worker's live models now, and what the cache did since it started."""

    entries: int = 0  # data types live
    models: int = 0  # models live (a data type may hold several versions)
    bytes: int = 0  # their measured memory
    hits: int = 0  # lookups that found the entry live
    misses: int = 0  # lookups that built it again from state (cold loads)
    evictions: int = 0  # entries evicted
    evicted_models: int = 0
    over_bound: int = 0  # times the bound was left exceeded because every other entry was busy
    cold_load_ns: int = 0  # the time of every cold load, summed
    last_cold_load_ns: int = 0

    @property
    def mean_cold_load_ms(self) -> float:
        return self.cold_load_ns / self.misses / 1e6 if self.misses else 0.0


@dataclass
class _Entry(Generic[V]):
    value: V
    models: int
    bytes: int
    seq: int  # when it was last used or served, in the cache's own count of those
    traffic_ms: int = 0  # when it last served or shadowed records (0: not since it was built)


class LiveModels(Generic[V]):
    """Entries keyed by data type; ``evicted(key, value)`` releases one the bound pushes out (closes its
    models). ``pinned(value)`` keeps an entry that may not go now (work still in flight on it) as if it
    were busy. After evictions, ``release()`` hands what they freed back to the OS, at most every
    RELEASE_EVERY_MS (it walks the whole heap: a few ms).

    Two orders make finding the next victim cheap however many entries are busy: the entries that have
    not served since they were built, least recently used first (all idle), and those that have, least
    recently served first (idle up to the first busy one). The victim is the less recently used of the
    two fronts."""

    def __init__(
        self,
        limits: CacheLimits,
        clock_ms: Callable[[], int],
        evicted: Callable[[str, V], None],
        pinned: Callable[[V], bool] = lambda value: False,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.limits = limits
        self.stats = CacheStats()
        self._clock_ms = clock_ms
        self._evicted = evicted
        self._pinned = pinned
        self._release = release
        self._released_ms: int | None = None
        self._entries: dict[str, _Entry[V]] = {}
        self._unserved: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._served: OrderedDict[str, None] = OrderedDict()  # least recently served first
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def in_order(self) -> list[str]:
        """Least recently used (or served) first."""
        return sorted(self._entries, key=lambda key: self._entries[key].seq)

    def values(self) -> Iterator[V]:
        return (entry.value for entry in self._entries.values())

    def peek(self, key: str) -> V | None:
        """The live entry, neither counted nor refreshed."""
        entry = self._entries.get(key)
        return None if entry is None else entry.value

    def _touch(self, key: str, entry: _Entry[V]) -> None:
        self._seq += 1
        entry.seq = self._seq
        if key in self._unserved:
            self._unserved.move_to_end(key)

    def get(self, key: str) -> V | None:
        """The live entry, now the most recently used (a hit), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._touch(key, entry)
        self.stats.hits += 1
        return entry.value

    def cold_loaded(self, load_ns: int) -> None:
        """Count a miss: an entry built again from state, in ``load_ns``."""
        self.stats.misses += 1
        self.stats.cold_load_ns += load_ns
        self.stats.last_cold_load_ns = load_ns

    def served(self, key: str) -> None:
        """The entry served or shadowed records now: busy for the next ``idle_ms``."""
        entry = self._entries.get(key)
        if entry is None:
            return
        self._touch(key, entry)
        entry.traffic_ms = self._clock_ms()
        self._unserved.pop(key, None)
        self._served[key] = None
        self._served.move_to_end(key)

    def put(self, key: str, value: V, models: int, size: int) -> int:
        """Add or reweigh an entry (now the most recently used), then evict idle entries, least recently
        used first, until the cache is within its bound again; never ``key`` itself. How many were
        evicted."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(value, models, size, 0)
            self._unserved[key] = None
            self.stats.entries += 1
        else:
            self.stats.models -= entry.models
            self.stats.bytes -= entry.bytes
            entry.value, entry.models, entry.bytes = value, models, size
        self._touch(key, entry)
        self.stats.models += models
        self.stats.bytes += size
        return self._shrink(keep=key)

    def pop(self, key: str) -> V | None:
        """Take an entry out without counting an eviction (nor releasing it)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._unserved.pop(key, None)
        self._served.pop(key, None)
        self.stats.entries -= 1
        self.stats.models -= entry.models
        self.stats.bytes -= entry.bytes
        return entry.value

    def too_large(self, size: int) -> bool:
        """Whether a model of ``size`` bytes exceeds the memory budget on its own."""
        return bool(self.limits.max_bytes) and size > self.limits.max_bytes

    def _over(self) -> bool:
        limits, stats = self.limits, self.stats
        return (limits.max_models > 0 and stats.models > limits.max_models) or (
            limits.max_bytes > 0 and stats.bytes > limits.max_bytes
        )

    def _victim(self, keep: str, idle_since: int) -> str | None:
        """The least recently used idle entry (not ``keep``, not pinned), or None."""
        unserved = next(
            (key for key in self._unserved if key != keep and not self._pinned(self._entries[key].value)),
            None,
        )
        served = None
        for key in self._served:
            entry = self._entries[key]
            if key == keep or self._pinned(entry.value):
                continue
            if entry.traffic_ms <= idle_since:
                served = key
            break  # busy, and so is every one served after it
        if unserved is None or served is None:
            return unserved or served
        return unserved if self._entries[unserved].seq < self._entries[served].seq else served

    def _shrink(self, keep: str) -> int:
        if not self._over():
            return 0
        idle_since = self._clock_ms() - self.limits.idle_ms
        evicted = 0
        while self._over():
            key = self._victim(keep, idle_since)
            if key is None:  # every other entry is busy: above the bound rather than thrash
                self.stats.over_bound += 1
                break
            entry = self._entries[key]
            self.pop(key)
            self.stats.evictions += 1
            self.stats.evicted_models += entry.models
            self._evicted(key, entry.value)
            evicted += 1
        now = self._clock_ms()
        if evicted and (self._released_ms is None or now - self._released_ms >= RELEASE_EVERY_MS):
            self._released_ms = now
            self._release()
        return evicted


# -- what a build costs --------------------------------------------------------------------------------


def _page_size() -> int:
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.sysconf("SC_PAGE_SIZE")
    return 4096


_PAGE = _page_size()


def resident_bytes() -> int:
    """This process's resident set size now (Linux: /proc/self/statm); 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")
    ]  # fmt: skip


def _libc_function(name: str) -> Any:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc, or older than the function
        return None


_TRIM = _libc_function("malloc_trim")
_MALLINFO2 = _libc_function("mallinfo2")
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _MallInfo2


def allocated_bytes() -> int:
    """The C heap's bytes in use now, over every arena and the chunks it mapped on their own (glibc
    2.33+: mallinfo2); 0 where it cannot be read. Unlike the resident set it grows by what a build
    allocates even when the build reuses memory freed earlier (an evicted model's)."""
    if _MALLINFO2 is None:
        return 0
    info = _MALLINFO2()
    return int(info.uordblks + info.hblkhd)


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the OS (glibc's malloc_trim), so that what evicted models
    freed leaves the resident set and the next build's growth is measured, not hidden by reuse."""
    if _TRIM is not None:
        _TRIM(0)


class Measured(NamedTuple, Generic[T]):
    value: T
    memory_bytes: int  # the memory the build kept (0 where it cannot be read)
    load_ns: int


class LoadMeter:
    """Builds a model and measures it: the time the build took and the memory it kept, the larger of
    the C heap's growth in bytes in use (what the runtime allocated, even into memory freed earlier)
    and the resident set's (what it mapped by other means: Python's own arenas, a JVM's heap). The
    first model of each kind (format) is built a second time, and that build's growth is the figure:
    the first also set its runtime up (imported it, started a JVM, thread pools), which every later
    model of the kind shares."""

    def __init__(
        self,
        resident: Callable[[], int] = resident_bytes,
        allocated: Callable[[], int] = allocated_bytes,
    ) -> None:
        self._resident = resident
        self._allocated = allocated
        self._seen: set[object] = set()

    def _grown(self, build: Callable[[], T]) -> tuple[T, int, int]:
        resident, allocated = self._resident(), self._allocated()
        started = time.perf_counter_ns()
        value = build()
        load_ns = time.perf_counter_ns() - started
        grown = max(self._resident() - resident, self._allocated() - allocated, 0)
        return value, grown, load_ns

    def build(
        self, kind: object, build: Callable[[], T], close: Callable[[T], None], memory: bool = True
    ) -> Measured[T]:
        """``build()`` measured (its memory only with ``memory``: reading the C heap's figure walks every
        arena, milliseconds in a large process); its exceptions pass through."""
        if not memory:
            started = time.perf_counter_ns()
            value = build()
            return Measured(value, 0, time.perf_counter_ns() - started)
        first = kind not in self._seen
        value, grown, load_ns = self._grown(build)
        self._seen.add(kind)
        if first:
            try:
                again, grown_again, _ = self._grown(build)
            except Exception:  # keep the first build's figure
                pass
            else:
                grown = grown_again
                close(again)
        return Measured(value, grown, load_ns)
