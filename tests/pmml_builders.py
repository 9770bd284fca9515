"""PMML documents built for tests: a model file with a ModelStats describing a sample of its inputs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import numpy.typing as npt

DECILES = np.linspace(0.0, 1.0, 11)[1:-1]

# the end of the first model's MiningSchema, and its Output if one follows: where ModelStats goes (a
# model element holds MiningSchema, Output?, ModelStats?, ModelExplanation?, Targets?, ... in that order)
_MINING_SCHEMA_END = re.compile(r"</(?:[\w.-]+:)?MiningSchema\s*>")
_OUTPUT = re.compile(r"\s*<(?:[\w.-]+:)?Output\b(?:[^>]*/>|.*?</(?:[\w.-]+:)?Output\s*>)", re.DOTALL)


def with_model_stats(pmml: bytes, rows: npt.NDArray[np.floating[Any]], names: Sequence[str]) -> bytes:
    """``pmml`` with a ModelStats in its first model: per named column of ``rows`` (name i for column
    i; "" leaves a column out), a UnivariateStats with Counts, NumericInfo (quantiles at 10..90 %) and
    ContStats (up to 10 equal-frequency intervals, then the arrays of their frequencies, sums and sums
    of squares). The rest of the document is kept byte for byte."""
    text = pmml.decode("utf-8")
    if re.search(r"<(?:[\w.-]+:)?ModelStats\b", text):
        raise ValueError("the document has a ModelStats already")
    schema_end = _MINING_SCHEMA_END.search(text)
    if schema_end is None:
        raise ValueError("the document has no MiningSchema")
    at = schema_end.end()
    output = _OUTPUT.match(text, at)
    if output is not None:
        at = output.end()
    line_start = text.rfind("\n", 0, schema_end.start()) + 1
    indent = re.match(r"[ \t]*", text[line_start:]).group()  # type: ignore[union-attr]
    columns = np.asarray(rows, dtype=np.float64)
    lines = ["<ModelStats>"]
    for j, name in enumerate(names):
        if name:
            lines += ["    " + line for line in _univariate_stats(name, columns[:, j])]
    lines.append("</ModelStats>")
    block = "".join(f"\n{indent}{line}" for line in lines)
    return (text[:at] + block + text[at:]).encode("utf-8")


def _univariate_stats(name: str, column: npt.NDArray[np.float64]) -> list[str]:
    values = column[np.isfinite(column)]
    quantiles = np.quantile(values, DECILES)
    edges = np.unique(quantiles)
    bins = np.searchsorted(edges, values, side="left")
    size = len(edges) + 1
    counts = np.bincount(bins, minlength=size)
    sums = np.bincount(bins, values, minlength=size)
    squares = np.bincount(bins, values * values, minlength=size)
    low, high = float(values.min()), float(values.max())
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    lines = [
        f"<UnivariateStats field={quoteattr(name)}>",
        f'    <Counts totalFreq="{len(column)}" missingFreq="{len(column) - len(values)}" invalidFreq="0"/>',
        f'    <NumericInfo minimum="{_n(low)}" maximum="{_n(high)}" mean="{_n(values.mean())}" '
        f'standardDeviation="{_n(values.std())}" median="{_n(median)}" interQuartileRange="{_n(q3 - q1)}">',
        *(
            f'        <Quantile quantileLimit="{round(100 * p)}" quantileValue="{_n(q)}"/>'
            for p, q in zip(DECILES, quantiles, strict=True)
        ),
        "    </NumericInfo>",
        f'    <ContStats totalValuesSum="{_n(values.sum())}" totalSquaresSum="{_n(squares.sum())}">',
    ]
    margins = [low, *edges.tolist(), high]
    for i in range(size):
        closure = "closedClosed" if i == 0 else "openClosed"
        left, right = _n(margins[i]), _n(max(margins[i], margins[i + 1]))
        lines.append(f'        <Interval closure="{closure}" leftMargin="{left}" rightMargin="{right}"/>')
    lines += [
        f'        <Array n="{size}" type="int">{" ".join(str(c) for c in counts.tolist())}</Array>',
        f'        <Array n="{size}" type="real">{" ".join(_n(s) for s in sums.tolist())}</Array>',
        f'        <Array n="{size}" type="real">{" ".join(_n(s) for s in squares.tolist())}</Array>',
        "    </ContStats>",
        "</UnivariateStats>",
    ]
    return lines


def _n(value: float | np.floating[Any]) -> str:
    """A number as PMML writes it, exactly (the shortest text that reads back as the same double)."""
    return repr(float(value))
