"""Progress of a long CLI command on stderr: a bar with rate and ETA on a terminal (rich), a plain line
every few seconds otherwise, nothing when quiet."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Report = Callable[[int], None]  # told the running total


@contextmanager
def progress(
    what: str, total: int | None, quiet: bool = False, stream: TextIO | None = None, every_s: float = 5.0
) -> Iterator[Report]:
    """A ``Report`` to call with the number done so far."""
    out = stream or sys.stderr
    if quiet:
        yield lambda done: None
    elif out.isatty():
        with _bar(what, total, out) as report:
            yield report
    else:
        yield _lines(what, total, out, every_s)


@contextmanager
def _bar(what: str, total: int | None, out: TextIO) -> Iterator[Report]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=out), transient=False) as bar:
        task = bar.add_task(what, total=total, rate="")
        started = time.monotonic()

        def report(done: int) -> None:
            rate = done / max(time.monotonic() - started, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:,.0f}/s")

        yield report


def _lines(what: str, total: int | None, out: TextIO, every_s: float) -> Report:
    started = time.monotonic()
    next_line = started + every_s

    def report(done: int) -> None:
        nonlocal next_line
        now = time.monotonic()
        if now < next_line:
            return
        next_line = now + every_s
        rate = done / max(now - started, 1e-9)
        of = f"/{total:,}" if total else ""
        eta = f", ETA {(total - done) / rate:.0f}s" if total and rate > 0 else ""
        print(f"{what}: {done:,}{of}, {rate:,.0f}/s{eta}", file=out, flush=True)

    return report
