"""Profile the job's Python worker with py-spy while it drains pre-loaded records.

    .venv/bin/python -m benchmarks.profile_worker [--format onnx] [--records 60000] [--seconds 15]
                                                  [--set NAME=VALUE ...] [--out docs/profile.md]
                                                  [--watch "FUNCTION (file.py)" ...]

Writes the functions with the most samples (self and inclusive) to the output file; the raw collapsed
stacks go beside it (.txt) for flame-graph tools. Each --watch function's inclusive share is printed.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.throughput import backlog_job, write_results
from modelstream.settings import PROJECT_ROOT


def worker_pids() -> list[int]:
    """Processes that run PyFlink's Beam worker (they appear once the job has deployed its operators)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"pyflink.fn_execution" in cmdline or b"beam_boot" in cmdline:
            found.append(int(proc.name))
    return found


def _frame_label(frame: str) -> str:
    """`function (path/file.py:line)` -> `function (file.py)`."""
    if " (" not in frame:
        return frame
    function, where = frame.split(" (", 1)
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def summarize(collapsed: str) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """(self samples, inclusive samples) per function, and all samples, from py-spy's raw collapsed
    stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_label(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return own, inclusive, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--format", default="onnx")
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "profile.md")
    parser.add_argument(
        "--watch", action="append", default=[], metavar="FUNCTION",
        help='print this function\'s inclusive share, e.g. "_observe_drift (serving.py)"',
    )  # fmt: skip
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="modelstream-profile-"))
    with backlog_job(home, args.set, args.format, args.records, "p") as (_, job, _):
        deadline = time.time() + 120
        while not worker_pids() and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # past start-up, into the drain
        raw = home / "profile.txt"
        subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(job.pid),
             "--subprocesses", "--duration", str(args.seconds), "--format", "raw", "--output", str(raw),
             "--nonblocking"],
            check=True, capture_output=True,
        )  # fmt: skip
    collapsed = raw.read_text()
    own, inclusive, total = summarize(collapsed)
    command = f"python -m benchmarks.profile_worker --format {args.format} --records {args.records} "
    command += f"--seconds {args.seconds}" + "".join(f" --set {s}" for s in args.set)
    lines = [
        f"`{command}`: py-spy sampled the Python worker for {args.seconds} s while it drained pre-loaded",
        f"records ({total} samples). Share of samples:",
        "",
        "| self | function (file) | | inclusive | function (file) |",
        "|---|---|---|---|---|",
    ]
    top = zip(own.most_common(20), inclusive.most_common(20), strict=False)
    for (name_self, n_self), (name_inc, n_inc) in top:
        lines.append(f"| {n_self / total:.1%} | `{name_self}` | | {n_inc / total:.1%} | `{name_inc}` |")
    # between markers: the page holds the whole job's profile and its notes too
    text = "\n".join(lines) + "\n"
    write_results(args.out, text, "<!-- worker: start -->", "<!-- worker: end -->", "## The Python worker")
    args.out.with_suffix(".txt").write_text(collapsed)
    print("\n".join(lines))
    for function in args.watch:
        print(f"{function}: {inclusive[function] / (total or 1):.1%} of samples (inclusive)")


if __name__ == "__main__":
    main()
