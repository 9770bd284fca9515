"""Progress of long CLI commands: a bar on a terminal, plain lines elsewhere, nothing when quiet."""

from __future__ import annotations

import io
import re

from client.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_with_count_rate_and_eta_when_not_a_terminal() -> None:
    out = io.StringIO()
    with progress("publish-data", 2000, stream=out, every_s=0) as report:
        report(1000)
        report(2000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"publish-data: 1,000/2,000, [\d,]+/s, ETA \d+s", lines[0]), lines[0]
    assert lines[1].startswith("publish-data: 2,000/2,000")


def test_plain_lines_come_at_most_every_period() -> None:
    out = io.StringIO()
    with progress("x", None, stream=out, every_s=3600) as report:
        for done in range(0, 10_000, 1000):
            report(done)
    assert out.getvalue() == ""


def test_a_bar_on_a_terminal_and_nothing_when_quiet() -> None:
    terminal = Terminal()
    with progress("publish-data", 2000, stream=terminal) as report:
        report(2000)
    shown = terminal.getvalue()
    assert "publish-data" in shown and "2000/2000" in shown and "ETA" in shown
    quiet = Terminal()
    with progress("publish-data", 2000, quiet=True, stream=quiet) as report:
        report(2000)
    assert quiet.getvalue() == ""
