"""PMML engines compared on the tutorial's seven PMML models: agreement with JPMML-Evaluator (the
reference) and speed, single-record and batched, both measured in this one run.

    .venv/bin/python -m benchmarks.pmml_engines [--repeat 300] [--out docs/pmml-engines.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.wine_models import CSV, WINE_DIR
from modelstream.contract import InputArrays, Model, ModelOptions, ScoreBatch
from modelstream.records import read_wine_csv
from modelstream.registry import load_model
from modelstream.settings import PROJECT_ROOT
from modelstream.testing import wine_inputs
from protobufs.modelstream_pb2 import ModelDescriptor


def _row(inputs: InputArrays, i: int) -> InputArrays:
    return {name: array[i : i + 1] for name, array in inputs.items()}


def _time_single(model: Model, inputs: InputArrays, repeat: int) -> float:
    n = len(next(iter(inputs.values())))
    singles = [_row(inputs, i) for i in range(n)]
    score = model.score_batch
    for i in range(20):
        score(singles[i])
    started = time.perf_counter()
    for i in range(repeat):
        score(singles[i % n])
    return (time.perf_counter() - started) / repeat * 1e6


def _time_batch(model: Model, inputs: InputArrays) -> float:
    n = len(next(iter(inputs.values())))
    score = model.score_batch
    score(inputs)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        score(inputs)
        best = min(best, time.perf_counter() - started)
    return best / n * 1e6


def _agreement(candidate: ScoreBatch, reference: ScoreBatch) -> tuple[float, float]:
    """Share of rows with the same class (1.0 for regressions) and the largest relative difference."""
    same = 1.0
    if reference.labels is not None:
        same = float(np.mean([a == b for a, b in zip(candidate.labels or [], reference.labels, strict=True)]))
    pairs = []
    if reference.values is not None and candidate.values is not None:
        pairs.append((candidate.values, reference.values))
    if reference.probabilities is not None and candidate.probabilities is not None:
        order = [candidate.classes.index(c) for c in reference.classes]
        pairs.append((candidate.probabilities[:, order], reference.probabilities))
    worst = 0.0
    for a, b in pairs:
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))))
    return same, worst


def run(repeat: int) -> list[dict[str, object]]:
    rows = np.asarray(read_wine_csv(str(CSV)), dtype=np.float64)[:, :11]
    results = []
    for path in sorted(WINE_DIR.glob("*.pmml")):
        descriptor = ModelDescriptor(modeltype=ModelDescriptor.PMML, data=path.read_bytes())
        jpmml = load_model(descriptor, ModelOptions(pmml_engine="jpmml"))
        pypmml = load_model(descriptor, ModelOptions(pmml_engine="pypmml"))
        inputs, py_inputs = wine_inputs(jpmml, rows), wine_inputs(pypmml, rows)
        same, worst = _agreement(pypmml.score_batch(py_inputs), jpmml.score_batch(inputs))
        results.append(
            {
                "model": path.stem,
                "same_class": same,
                "max_rel_diff": worst,
                "jpmml_single_us": _time_single(jpmml, inputs, repeat),
                "pypmml_single_us": _time_single(pypmml, py_inputs, repeat),
                "jpmml_batch_us": _time_batch(jpmml, inputs),
                "pypmml_batch_us": _time_batch(pypmml, py_inputs),
            }
        )
    return results


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


COLUMNS = (
    "model",
    "pypmml same class",
    "pypmml max rel. diff",
    "JPMML single µs",
    "pypmml single µs",
    "pypmml / JPMML single",
    "JPMML batch µs",
    "pypmml batch µs",
    "pypmml / JPMML batch",
)


def _ratio(a: object, b: object) -> str:
    return f"{float(a) / float(b):.1f}x"  # type: ignore[arg-type]


START, END = "<!-- engines: start -->", "<!-- engines: end -->"


def to_markdown(results: list[dict[str, object]], command: str) -> str:
    lines = [
        f"Measured on {cpu_name()} ({os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}) with `{command}`, both engines in the same run, on all",
        "1,599 rows of the tutorial's red-wine data. Times are per record; *single* is one record per",
        "call (as the job scores its smallest batches), *batch* all rows in one call (best of 3).",
        "pypmml's agreement is against JPMML-Evaluator, the PMML reference implementation.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in results:
        cells = [
            str(r["model"]),
            f"{r['same_class']:.2%}",
            f"{r['max_rel_diff']:.1e}",
            f"{r['jpmml_single_us']:.0f}",
            f"{r['pypmml_single_us']:.0f}",
            _ratio(r["pypmml_single_us"], r["jpmml_single_us"]),
            f"{r['jpmml_batch_us']:.1f}",
            f"{r['pypmml_batch_us']:.1f}",
            _ratio(r["pypmml_batch_us"], r["jpmml_batch_us"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    disagree = [f"{r['model']} ({r['same_class']:.1%} same class)" for r in results if r["same_class"] != 1.0]
    lines += [
        "",
        "pypmml disagrees with the reference on: " + (", ".join(disagree) if disagree else "none") + ".",
        "Do not serve those models with pypmml.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "pmml-engines.md")
    args = parser.parse_args()
    from benchmarks.throughput import write_results  # which imports this module's cpu_name

    results = run(args.repeat)
    text = to_markdown(results, "python -m benchmarks.pmml_engines")
    write_results(args.out, text, START, END, "# PMML engines: JPMML-Evaluator (default) vs pypmml")
    print(text)


if __name__ == "__main__":
    main()
