"""A reference profile from a PMML file's ModelStats (ReferenceProfile.PMML_MODEL_STATS, docs/drift.md).

A PMML model may describe its training data in a ``<ModelStats>`` element: one ``UnivariateStats`` per
field, holding a histogram (``ContStats``: ``Interval`` elements and their frequencies), quantiles
(``NumericInfo``: ``Quantile`` elements) and value counts (``DiscrStats``: the values, then their
frequencies). A feature's bins come from the first of these the field has in a usable form: for a numeric
feature the histogram, else the quantiles, else numeric value counts; for a categorical one the value
counts (its top ``drift.TOP_K`` values and "other", as ``drift.feature_profile`` cuts them).

This is read once per model load, with the standard library's parser (element names are matched on their
local part, so any PMML namespace will do), and only up to the end of the first ModelStats. A document
that cannot be read, or a ModelStats that says nothing usable, gives no profile (None): the model itself
is validated elsewhere, and a broken ModelStats must not stop it from loading.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

import numpy as np
import numpy.typing as npt

from modelstream.contract import ModelLoadError
from modelstream.drift import BINS, Feature, category_profile
from modelstream.screening import check_xml_prolog
from protobufs.modelstream_pb2 import FeatureProfile, ReferenceProfile

# the reference's size when no field says how many records it counted (Counts, or frequencies): the
# significance test needs one (n_eff), and this is the job's default drift window
DEFAULT_RECORDS = 1000

Floats = npt.NDArray[np.float64]

# one Array token: a quoted string (in which \" stands for a quote) or a run of non-blank characters
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


class _Unusable(ValueError):
    """A field's statistics that cannot be turned into bins."""


def model_stats_profile(document: bytes, features: Sequence[Feature]) -> ReferenceProfile | None:
    """The profile of ``features`` that a PMML document's first ModelStats gives, matched to its
    UnivariateStats by field name; features without usable statistics are left out. None when the
    document cannot be read, has no ModelStats, or no feature has usable statistics.

    ``records`` is the largest Counts totalFreq of the profiled fields, else their largest sum of
    frequencies, else DEFAULT_RECORDS (1000: the statistics hold quantiles only)."""
    try:
        check_xml_prolog(document, "PMML document")  # no DOCTYPE, no entities: nothing to expand
        stats = _model_stats(document)
    except (ModelLoadError, ElementTree.ParseError, ValueError, LookupError):
        return None
    if stats is None:
        return None
    by_field: dict[str, Element] = {}
    for child in stats:
        if _local(child) == "UnivariateStats":
            by_field.setdefault(child.get("field", ""), child)
    profile = ReferenceProfile(source=ReferenceProfile.PMML_MODEL_STATS)
    totals: list[float] = []
    frequencies: list[float] = []
    for feature in features:
        univariate = by_field.get(feature.name)
        if univariate is None:
            continue
        try:
            bins, counted = _feature_profile(feature, univariate)
        except _Unusable:
            continue
        profile.features.append(bins)
        if counted:
            frequencies.append(counted)
        counts = _child(univariate, "Counts")
        total = _number(counts.get("totalFreq")) if counts is not None else None
        if total is not None and total > 0:
            totals.append(total)
    if not profile.features:
        return None
    profile.records = round(max(totals or frequencies or [DEFAULT_RECORDS]))
    return profile


def _model_stats(document: bytes) -> Element | None:
    """The document's first ModelStats (the first model's own: it precedes the model's body), parsed
    up to its end; the elements before it are dropped as they end."""
    inside = False
    element: Element
    for event, element in ElementTree.iterparse(io.BytesIO(document), events=("start", "end")):
        if _local(element) == "ModelStats":
            if event == "end":
                return element
            inside = True
        elif event == "end" and not inside:
            element.clear()
    return None


def _feature_profile(feature: Feature, univariate: Element) -> tuple[FeatureProfile, float]:
    """A feature's bins from its UnivariateStats, and the frequencies they sum (0: not known)."""
    discrete = _child(univariate, "DiscrStats")
    if feature.categorical:
        if discrete is None:
            raise _Unusable("no value counts")
        return _categories(feature.name, *_value_counts(discrete))
    sources = (
        (_child(univariate, "ContStats"), _histogram),
        (_child(univariate, "NumericInfo"), _quantiles),
        (discrete, _discrete),
    )
    for element, read in sources:
        if element is None:
            continue
        try:
            edges, weights, counted = read(element)
        except _Unusable:
            continue
        return _numeric(feature.name, edges, weights), counted
    raise _Unusable("no usable statistics")


# -- the three sources ---------------------------------------------------------------------------


def _histogram(cont: Element) -> tuple[Floats, Floats, float]:
    """ContStats: the inner edges (the right margins of all intervals but the last, in order) and each
    interval's frequency (the first array after the intervals). Bins hold (left, right]; an interval
    closed on the left gives its left margin to the bin below, a gap between intervals to the bin
    above (neither had records in the reference)."""
    intervals = [e for e in cont if _local(e) == "Interval"]
    arrays = [e for e in cont if _local(e) == "Array"]
    if not intervals or not arrays:
        raise _Unusable("ContStats without intervals and their frequencies")
    weights = _frequencies(arrays[0])
    if len(weights) != len(intervals):
        raise _Unusable(f"{len(intervals)} intervals, {len(weights)} frequencies")
    lefts = np.asarray([_margin(e, "leftMargin", -math.inf) for e in intervals])
    rights = np.asarray([_margin(e, "rightMargin", math.inf) for e in intervals])
    if np.any(lefts > rights):
        raise _Unusable("an interval's left margin lies past its right one")
    order = np.lexsort((lefts, rights))
    edges = rights[order][:-1]
    if not np.all(np.isfinite(edges)):
        raise _Unusable("an interval other than the last is open to the right")
    return edges, weights[order], float(weights.sum())


def _quantiles(info: Element) -> tuple[Floats, Floats, float]:
    """NumericInfo: the quantile values are the edges, the differences of their limits (percent, with 0
    and 100 added) the shares; a limit of 0 or 100 (the minimum, the maximum) is no inner edge."""
    pairs: list[tuple[float, float]] = []
    for quantile in info:
        if _local(quantile) != "Quantile":
            continue
        limit = _number(quantile.get("quantileLimit"))
        value = _number(quantile.get("quantileValue"))
        if limit is None or value is None or not 0.0 <= limit <= 100.0:
            raise _Unusable("a Quantile without a limit in [0, 100] and a finite value")
        if 0.0 < limit < 100.0:
            pairs.append((limit, value))
    if not pairs:
        raise _Unusable("NumericInfo without inner quantiles")
    pairs.sort()
    limits = np.asarray([p[0] for p in pairs])
    edges = np.asarray([p[1] for p in pairs])
    if np.any(np.diff(edges) < 0):
        raise _Unusable("quantile values that decrease as their limits increase")
    return edges, np.diff(np.concatenate(([0.0], limits, [100.0]))), 0.0


def _discrete(discrete: Element) -> tuple[Floats, Floats, float]:
    """DiscrStats of a numeric field: equal-frequency edges at its values (at most BINS bins) and the
    frequencies of the values each bin holds."""
    values, weights = _value_counts(discrete)
    try:
        numbers = np.asarray([float(v) for v in values])
    except ValueError:
        raise _Unusable("a numeric field's DiscrStats values are not numbers") from None
    if not np.all(np.isfinite(numbers)):
        raise _Unusable("a numeric field's DiscrStats value is not finite")
    order = np.argsort(numbers, kind="stable")
    numbers, weights = numbers[order], weights[order]
    total = float(weights.sum())
    cumulative = np.cumsum(weights) / total
    steps = np.linspace(0.0, 1.0, BINS + 1)[1:-1]
    at = np.minimum(np.searchsorted(cumulative, steps, side="left"), len(numbers) - 1)
    edges: Floats = np.unique(numbers[at])
    shares = np.bincount(np.searchsorted(edges, numbers, side="left"), weights, minlength=len(edges) + 1)
    return edges, shares.astype(np.float64), total


def _value_counts(discrete: Element) -> tuple[list[str], Floats]:
    """DiscrStats' arrays: the values, then their frequencies."""
    arrays = [e for e in discrete if _local(e) == "Array"]
    if len(arrays) < 2:
        raise _Unusable("DiscrStats without the values and their frequencies")
    values = _tokens(arrays[0])
    weights = _frequencies(arrays[1])
    if len(values) != len(weights):
        raise _Unusable(f"{len(values)} values, {len(weights)} frequencies")
    return values, weights


# -- profiles --------------------------------------------------------------------------------------


def _numeric(name: str, edges: Floats, weights: Floats) -> FeatureProfile:
    """Bins at ``edges`` (len(edges) + 1 weights): equal edges merged, each weight going to the bin
    that ends at its edge, then normalised."""
    unique = np.unique(edges)
    positions = np.append(np.searchsorted(unique, edges, side="left"), len(unique))
    merged = np.bincount(positions, weights, minlength=len(unique) + 1)
    profile = FeatureProfile(name=name)
    profile.edges.extend(unique.tolist())
    profile.proportions.extend((merged / merged.sum()).tolist())
    return profile


def _categories(name: str, values: list[str], weights: Floats) -> tuple[FeatureProfile, float]:
    """The TOP_K most frequent values (ties: in value order, as drift.feature_profile) and "other"."""
    found, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    counts = np.bincount(inverse, weights, minlength=len(found))
    return category_profile(name, found, counts), float(counts.sum())


# -- PMML's pieces ---------------------------------------------------------------------------------


def _local(element: Element) -> str:
    """An element's name without its namespace."""
    return element.tag.rpartition("}")[2]


def _child(element: Element, name: str) -> Element | None:
    return next((e for e in element if _local(e) == name), None)


def _number(text: str | None) -> float | None:
    """A finite number, else None."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _margin(interval: Element, attribute: str, absent: float) -> float:
    """An interval's margin: ``absent`` (infinite) where it has none."""
    text = interval.get(attribute)
    if text is None:
        return absent
    try:
        value = float(text)
    except ValueError:
        raise _Unusable(f"{attribute} {text!r} is not a number") from None
    if math.isnan(value):
        raise _Unusable(f"{attribute} is NaN")
    return value


def _tokens(array: Element) -> list[str]:
    """An Array's entries: separated by white space, a string with spaces in double quotes (\\" in
    one stands for a quote). Its ``n``, where given, must be their number."""
    tokens = [bare or quoted.replace('\\"', '"') for quoted, bare in _TOKEN.findall(array.text or "")]
    n = array.get("n")
    if n is not None and _number(n) != len(tokens):
        raise _Unusable(f"an Array of n={n} holds {len(tokens)} entries")
    return tokens


def _frequencies(array: Element) -> Floats:
    """A frequency Array: finite, not negative, not all 0."""
    try:
        weights = np.asarray([float(t) for t in _tokens(array)], dtype=np.float64)
    except ValueError:
        raise _Unusable("a frequency is not a number") from None
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not weights.sum() > 0:
        raise _Unusable("frequencies must be finite, not negative and not all 0")
    return weights
