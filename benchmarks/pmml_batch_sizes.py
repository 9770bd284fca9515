"""Where a PMML engine's frame call starts to beat one call per row, by batch size.

    .venv/bin/python -m benchmarks.pmml_batch_sizes [--seconds 1]

Prints, per engine and batch size, microseconds per batch scored with one frame call and with one
call per row (the decision-tree classifier of the throughput benchmark); the engines'
``frame_from_rows`` in model/pmml_model.py come from this table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pandas as pd

from benchmarks.wine_models import CSV, WINE_DIR
from model.pmml_model import PmmlModel, _engine
from modelstream.records import read_wine_csv
from modelstream.testing import wine_inputs

MODEL = WINE_DIR / "winequalityDecisionTreeClassification.pmml"


def per_call_us(call: Callable[[], object], seconds: float) -> float:
    call()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call()
        calls += 1
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    features = read_wine_csv(str(CSV))[:256]
    print("| engine | rows | frame call µs | a call per row µs |")
    print("|---|---|---|---|")
    for name in ("jpmml", "pypmml"):
        payload = MODEL.read_bytes()
        engine = _engine(name, payload)
        # the model's inputs bound from WineRecords of the rows, as the job binds them
        columns = wine_inputs(PmmlModel(payload, engine), features)
        for n in (1, 2, 4, 8, 16, 32, 64, 256):
            batch = {field: column[:n] for field, column in columns.items()}
            dicts = pd.DataFrame(batch).to_dict("records")
            framed = per_call_us(lambda: engine.predict_columns(batch), args.seconds)  # noqa: B023
            each = per_call_us(lambda: [engine.predict_one(d) for d in dicts], args.seconds)  # noqa: B023
            print(f"| {name} | {n} | {framed:,.0f} | {each:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
