"""Drift of a model version's inputs and predictions from its reference profile (docs/drift.md).

A reference profile cuts each numeric input feature into 10 equal-frequency bins (categorical ones: the
top values and "other") and gives each bin's share of a training sample; the prediction likewise. A
``DriftMonitor`` counts the records a version scores into the same bins over tumbling windows of N records
(fixed-size numpy counts, filled per micro-batch with one ``np.searchsorted`` per feature) and, when a
window is complete, computes each feature's PSI

    PSI = sum over bins of (p - q) * ln(p / q)      (p: the window's shares, q: the reference's)

A feature is flagged only when its PSI is both significant, n_eff * PSI above the chi-square(bins - 1)
quantile at 1 - alpha / d (n_eff = n m / (n + m) for a window of n records and a reference of m, d the
features tested, alpha = 0.01), and large: >= 0.1 WARN, >= 0.25 DRIFT. The status is the worst flag of a
window, and it changes only when 2 windows in a row agree. Counts, the pending status and the streak live
in the version's ``ModelStats.drift`` so they are kept in state with the stats and restored with them.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from modelstream.binding import Binder
from modelstream.codecs import SourceRecord, decode_groups
from modelstream.codecs.protobuf import UserSchemas
from modelstream.contract import InputArrays, InputSpec, Model, ScoreBatch
from modelstream.records import WINE
from protobufs.modelstream_pb2 import DriftReport, FeatureProfile, ReferenceProfile

BINS = 10
TOP_K = 10
ALPHA = 0.01
WARN_PSI = 0.1
DRIFT_PSI = 0.25
CONFIRM_WINDOWS = 2
DEFAULT_WINDOW = 1000
PROPORTION_FLOOR = 1e-4  # an empty bin counts as this share: PSI stays finite

OK, WARN, DRIFT = "OK", "WARN", "DRIFT"
_LEVELS = (OK, WARN, DRIFT)
PREDICTION = "prediction"

Counts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Feature:
    """One input feature: a record field feeding a model input (alone, or as a column of an [n, k] one)."""

    name: str
    input: str
    column: int  # -1: the input holds one value per record
    categorical: bool


def features_of(inputs: Sequence[InputSpec], input_fields: Sequence[str] = ()) -> list[Feature]:
    """The features of a model's declared inputs: a scalar input is one, an [n, k] input k (named by the
    descriptor's input_fields, else WineRecord's features for a model's only [n, 11] input); inputs of
    other shapes (images, sequences) are not profiled."""
    features: list[Feature] = []
    for spec in inputs:
        if spec.shape in ((), (1,)):
            features.append(Feature(spec.name, spec.name, -1, spec.is_string))
            continue
        if len(spec.shape) != 1:
            continue
        width = spec.shape[0]
        names: Sequence[str]
        if input_fields and width in (None, len(input_fields)):
            names = input_fields
        elif len(inputs) == 1 and width in (None, len(WINE.features)):
            names = WINE.features
        elif width is not None:
            names = [f"{spec.name}[{j}]" for j in range(width)]
        else:
            continue
        features += [Feature(name, spec.name, j, spec.is_string) for j, name in enumerate(names)]
    return features


def column(feature: Feature, arrays: InputArrays) -> npt.NDArray[np.generic]:
    """A feature's values in bound inputs, one per record (a view: nothing copied)."""
    array = arrays[feature.input]
    if feature.column >= 0:
        return array[:, feature.column]
    return array.reshape(len(array))


def predictions(scores: ScoreBatch) -> npt.NDArray[np.generic] | None:
    """What a version predicted, one per record: the class, else the value; None for other outputs."""
    if scores.labels is not None:
        return np.asarray(scores.labels, dtype=object)
    return scores.values


# -- profiles ------------------------------------------------------------------------------------


def feature_profile(name: str, values: npt.NDArray[np.generic], categorical: bool) -> FeatureProfile:
    """A sample's bins and each one's share: 10 equal-frequency bins, or the top values and other."""
    if categorical or values.dtype == np.dtype(object):
        return category_profile(name, *np.unique(values.astype(str), return_counts=True))
    profile = FeatureProfile(name=name)
    numbers = values.astype(np.float64)
    numbers = numbers[np.isfinite(numbers)]
    edges = np.unique(np.quantile(numbers, np.linspace(0.0, 1.0, BINS + 1)[1:-1])) if numbers.size else []
    profile.edges.extend(list(map(float, edges)))
    counts = np.bincount(np.searchsorted(edges, numbers, side="left"), minlength=len(edges) + 1)
    shares = counts / max(numbers.size, 1)
    profile.proportions.extend(shares.tolist())
    return profile


def category_profile(
    name: str, values: npt.NDArray[np.str_], counts: npt.NDArray[np.generic]
) -> FeatureProfile:
    """The TOP_K most frequent of distinct ``values`` (ties: in the values' order) and "other", each with
    its share of ``counts``."""
    order = np.argsort(-counts, kind="stable")[:TOP_K]
    total = max(float(counts.sum()), 1.0)
    profile = FeatureProfile(name=name)
    profile.categories.extend(values[order].tolist())
    profile.proportions.extend(
        (np.append(counts[order], counts.sum() - counts[order].sum()) / total).tolist()
    )
    return profile


def build_profile(
    features: Sequence[Feature],
    arrays: InputArrays,
    scores: ScoreBatch | None,
    source: int = ReferenceProfile.REFERENCE,
) -> ReferenceProfile:
    """The profile of a sample: its bound inputs and the version's scores of it."""
    profile = ReferenceProfile(source=source)  # type: ignore[arg-type]
    for feature in features:
        values = column(feature, arrays)
        profile.features.append(feature_profile(feature.name, values, feature.categorical))
        profile.records = len(values)
    predicted = None if scores is None else predictions(scores)
    if predicted is not None:
        profile.prediction.CopyFrom(
            feature_profile(PREDICTION, predicted, scores is not None and scores.labels is not None)
        )
        profile.records = len(predicted)
    return profile


class ProfileError(ValueError):
    """A reference sample that cannot be profiled: the message says why."""


def profile_sample(
    model: Model, binder: Binder, input_fields: Sequence[str], records: Sequence[SourceRecord]
) -> ReferenceProfile:
    """The reference profile of a sample of records, as the job sees them: decoded and bound by the job's
    own code and scored by the version itself (publish-model --reference)."""
    arrays: list[InputArrays] = []
    for group in decode_groups(records, UserSchemas()) if records else []:
        if group.failures:
            raise ProfileError(f"reference record: {group.failures[0].message}")
        bound = binder.bind(group)
        if bound.failures:
            raise ProfileError(f"reference record: {bound.failures[0].message}")
        arrays.append(bound.arrays)
    if not arrays:
        raise ProfileError("the reference sample has no records")
    joined = {name: np.concatenate([a[name] for a in arrays]) for name in arrays[0]}
    features = features_of(model.inputs, input_fields)
    if not features:
        raise ProfileError("the model has no input of one value (or one row of values) per record to profile")
    return build_profile(features, joined, model.score_batch(joined))


# -- the test --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def chi2_quantile(p: float, dof: int) -> float:
    """The p-quantile of chi-square with ``dof`` degrees of freedom: scipy's when it is installed, else
    the Wilson-Hilferty approximation (within 1 % for dof >= 3 at the tails used here)."""
    try:
        from scipy.stats import chi2  # type: ignore[import-untyped]

        return float(chi2.ppf(p, dof))
    except ImportError:
        pass
    z = NormalDist().inv_cdf(p)
    k = float(dof)
    return k * (1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k))) ** 3


def psi(observed: Counts, expected: npt.NDArray[np.float64]) -> float:
    """The PSI of observed counts against expected shares (both floored at PROPORTION_FLOOR)."""
    p = np.maximum(observed / max(int(observed.sum()), 1), PROPORTION_FLOOR)
    return float(np.sum((p - expected) * np.log(p / expected)))


def psi_rows(observed: Counts, expected: npt.NDArray[np.float64], used: npt.NDArray[np.bool_]) -> list[float]:
    """``psi`` of each row of ``observed`` against the same row of ``expected``, over the columns ``used``
    marks (rows of bins of different sizes, padded: ``expected`` 1 where unused)."""
    totals = np.maximum(observed.sum(axis=1, keepdims=True), 1)
    p = np.maximum(observed / totals, PROPORTION_FLOOR)
    terms = np.where(used, (p - expected) * np.log(p / expected), 0.0)
    values: list[float] = terms.sum(axis=1).tolist()
    return values


def threshold(bins: int, tests: int) -> float:
    """The χ² quantile a feature's n_eff x PSI must pass: 1 - ALPHA / tests, bins - 1 degrees of freedom."""
    return chi2_quantile(1.0 - ALPHA / max(tests, 1), bins - 1)


def level(value: float, bins: int, n_eff: float, tests: int) -> str:
    """OK, WARN or DRIFT for one feature's PSI: flagged only when significant and large."""
    if value < WARN_PSI or bins < 2 or n_eff * value <= threshold(bins, tests):
        return OK
    return DRIFT if value >= DRIFT_PSI else WARN


class _Bins:
    """One feature's bins, built once from its profile."""

    def __init__(self, profile: FeatureProfile, categorical: bool) -> None:
        self.edges = np.asarray(profile.edges, dtype=np.float64)
        self.index = {value: i for i, value in enumerate(profile.categories)}
        self.categorical = categorical or bool(profile.categories)
        self.size = len(profile.proportions)
        shares = np.maximum(np.asarray(profile.proportions, dtype=np.float64), PROPORTION_FLOOR)
        self.expected = shares / shares.sum() if self.size else shares

    def add(self, values: Sequence[object] | npt.NDArray[np.generic], into: Counts) -> None:
        """Count ``values`` into ``into[: self.size]``."""
        if self.categorical:
            other = self.size - 1
            listed = values.tolist() if isinstance(values, np.ndarray) else values
            for value, count in Counter(listed).items():
                into[self.index.get(value if isinstance(value, str) else str(value), other)] += count
        else:
            bins = np.searchsorted(self.edges, np.asarray(values), side="left")
            into[: self.size] += np.bincount(bins, minlength=self.size)[: self.size]


class DriftMonitor:
    """One version's drift: the counts of the window being filled, and the report (its ``ModelStats.drift``,
    which it keeps up to date and from which it is restored)."""

    def __init__(self, features: Sequence[Feature], profile: ReferenceProfile | None, window: int,
                 report: DriftReport) -> None:  # fmt: skip
        self.features = list(features)
        self.window = max(int(window), 1)
        self.report = report
        report.window_records = self.window
        self._warm: list[tuple[InputArrays, ScoreBatch]] = []
        self._warm_records = 0
        self._bins: list[_Bins] = []
        self._numeric: list[int] = []
        self._whole_input = ""
        self._categorical: list[int] = []
        self._counts: Counts = np.zeros((0, 0), dtype=np.int64)
        self._above: Counts = np.zeros((0, 0), dtype=np.int64)
        self._used: npt.NDArray[np.bool_] = np.zeros((0, 0), dtype=np.bool_)
        self._expected: npt.NDArray[np.float64] = np.ones((0, 0), dtype=np.float64)
        self._records = 0
        self._reference_records = 0
        self._prediction: _Bins | None = None
        if profile is None or not (profile.features or profile.HasField("prediction")):
            profile = report.warm_up_profile if report.HasField("warm_up_profile") else None
        if profile is None:
            report.warming_up = True
            report.profile_source = ReferenceProfile.WARM_UP
            report.status = report.status or OK
        else:
            self._start(profile)

    def _start(self, profile: ReferenceProfile) -> None:
        by_name = {f.name: f for f in profile.features}
        self.features = [f for f in self.features if f.name in by_name]
        self._bins = [_Bins(by_name[f.name], f.categorical) for f in self.features]
        self._prediction = _Bins(profile.prediction, False) if profile.HasField("prediction") else None
        if self._prediction is not None:
            self._bins.append(self._prediction)
        self._reference_records = profile.records
        for bins in self._bins[: len(self.features)]:  # the test's thresholds now, not as a window closes
            if bins.size >= 2:  # (scipy's import, the first time, takes a second)
                threshold(bins.size, len(self.features))
        width = max((b.size for b in self._bins), default=0)
        self._counts = np.zeros((len(self._bins), width), dtype=np.int64)
        self._used = np.zeros(self._counts.shape, dtype=np.bool_)
        self._expected = np.ones(self._counts.shape, dtype=np.float64)
        for row, bins in enumerate(self._bins):
            self._used[row, : bins.size] = True
            self._expected[row, : bins.size] = bins.expected
        # the numeric features are counted together: one comparison of the batch with every edge
        rows = [row for row, bins in enumerate(self._bins[: len(self.features)]) if not bins.categorical]
        self._numeric = rows
        self._categorical = sorted(set(range(len(self.features))) - set(rows))
        edges = np.full((len(rows), max((self._bins[r].edges.size for r in rows), default=0)), np.inf)
        for at, row in enumerate(rows):
            edges[at, : self._bins[row].edges.size] = self._bins[row].edges
        self._edges = edges[:, :, np.newaxis].copy()  # [feature, edge, 1]
        # per numeric feature and edge, the window's values above it: a feature's bin counts follow
        # (``_numeric_counts``), so a batch adds one count per feature and edge, not one per value
        self._above = np.zeros(edges.shape, dtype=np.int64)  # [feature, edge]
        # the usual case: feature i is column i of one [n, k] input, so a batch's rows are counted as they are
        inputs = {self.features[row].input for row in rows}
        in_order = rows == list(range(len(rows))) and all(self.features[r].column == r for r in rows)
        self._whole_input = inputs.pop() if len(inputs) == 1 and in_order else ""
        self.report.profile_source = profile.source
        self.report.warming_up = False
        self.report.status = self.report.status or OK
        stored = self.report.window
        if stored.records and len(stored.counts) == self._counts.size:
            self._counts[:] = np.asarray(stored.counts, dtype=np.int64).reshape(self._counts.shape)
            self._records = stored.records
            # the values above edge j: those in the bins after j
            numeric = self._counts[self._numeric, : self._above.shape[1] + 1]
            self._above[:] = np.cumsum(numeric[:, ::-1], axis=1)[:, ::-1][:, 1:]

    def observe(self, arrays: InputArrays, scores: ScoreBatch, now_ms: int) -> bool:
        """Count a micro-batch's scored records (``arrays``: their bound inputs, in ``scores``' order);
        True when a window completed and the status changed."""
        n = len(scores)
        if not n:
            return False
        if self.report.warming_up:
            return self._warm_up(arrays, scores, n)
        predicted: Sequence[object] | npt.NDArray[np.generic] | None = None
        if self._prediction is not None:
            predicted = scores.labels if scores.labels is not None else scores.values
        changed = False
        start = 0
        while start < n:
            stop = start + min(n - start, self.window - self._records)
            if self._numeric:
                self._count_numeric(arrays, start, stop)
            for row in self._categorical:
                self._bins[row].add(column(self.features[row], arrays)[start:stop], self._counts[row])
            if self._prediction is not None and predicted is not None:
                self._prediction.add(predicted[start:stop], self._counts[-1])
            self._records += stop - start
            start = stop
            if self._records >= self.window:
                changed = self._close(now_ms) or changed
        return changed

    def _count_numeric(self, arrays: InputArrays, start: int, stop: int) -> None:
        """Count rows [start, stop) of every numeric feature: per edge, the values above it. A value's
        bin is the number of its feature's edges below it (as ``np.searchsorted(edges, value,
        side="left")``)."""
        if self._whole_input:  # the features are the columns of one [n, k] input: the batch as it is
            values = arrays[self._whole_input][start:stop]
        else:
            values = np.column_stack(
                [column(self.features[row], arrays)[start:stop] for row in self._numeric]
            )
        # [feature, edge, record]: the comparison reads and the sum runs along the last, contiguous axis
        columns = np.ascontiguousarray(values.T, dtype=np.float64)
        self._above += (columns[:, np.newaxis, :] > self._edges).sum(axis=2)

    def _numeric_counts(self) -> None:
        """The numeric features' bin counts of the window so far, into ``_counts``: bin 0 holds the
        values above no edge, bin b those above edge b - 1 and not edge b, the last those above all."""
        if not self._numeric:
            return
        above = self._above
        bins = np.empty((above.shape[0], above.shape[1] + 1), dtype=np.int64)
        bins[:, 0] = self._records - (above[:, 0] if above.shape[1] else 0)
        bins[:, 1:-1] = above[:, :-1] - above[:, 1:]
        if above.shape[1]:
            bins[:, -1] = above[:, -1]
        self._counts[self._numeric, : bins.shape[1]] = bins

    def _warm_up(self, arrays: InputArrays, scores: ScoreBatch, n: int) -> bool:
        """Keep the version's first window of records (at most ``window``) and profile them."""
        take = min(n, self.window - self._warm_records)
        kept = {name: array[:take].copy() for name, array in arrays.items()}
        self._warm.append((kept, scores.take(np.arange(take)) if take < n else scores))
        self._warm_records += take
        if self._warm_records < self.window:
            return False
        joined = {name: np.concatenate([a[name] for a, _ in self._warm]) for name in self._warm[0][0]}
        batch = ScoreBatch.concat([s for _, s in self._warm])
        profile = build_profile(self.features, joined, batch, ReferenceProfile.WARM_UP)
        self._warm, self._warm_records = [], 0
        self.report.warm_up_profile.CopyFrom(profile)
        self._start(profile)
        return False

    def _close(self, now_ms: int) -> bool:
        """Test the complete window, move the status if 2 windows in a row agree, start the next one."""
        report = self.report
        n = self._records
        m = self._reference_records or n
        n_eff = n * m / (n + m)
        tested = len(self.features)
        worst = 0
        report.psi.clear()
        del report.flagged[:]
        self._numeric_counts()
        values = psi_rows(self._counts, self._expected, self._used)
        for row, (feature, bins) in enumerate(zip(self.features, self._bins, strict=False)):
            value = values[row]
            report.psi[feature.name] = round(value, 6)
            flag = _LEVELS.index(level(value, bins.size, n_eff, tested))
            if flag:
                report.flagged.append(feature.name)
            worst = max(worst, flag)
        if self._prediction is not None:
            report.prediction_psi = round(values[-1], 6)
        report.windows += 1
        self._counts[:] = 0
        self._above[:] = 0
        self._records = 0
        report.window.records = 0  # a window saved before is done with: a restore starts the next empty
        del report.window.counts[:]
        return self._move(_LEVELS[worst], now_ms)

    def _move(self, seen: str, now_ms: int) -> bool:
        """The status moves when this window and the one before both lie beyond it, to the nearer of the
        two (OK, DRIFT, WARN from OK: WARN); True when it moved."""
        report, state = self.report, self.report.window
        current = _LEVELS.index(report.status) if report.status in _LEVELS else 0
        now, before = _LEVELS.index(seen), _LEVELS.index(state.pending) if state.pending else current
        state.pending = seen
        if (now > current) == (before > current) and now != current and before != current:
            state.streak += 1
        else:
            state.streak = int(now != current)
        if state.streak < CONFIRM_WINDOWS:
            return False
        target = min(now, before) if now > current else max(now, before)
        report.status, report.changed_at = _LEVELS[target], now_ms
        state.streak = 0
        return True

    def save(self) -> None:
        """Write the window being filled into the report (before the stats are stored)."""
        state = self.report.window
        state.records = self._records
        del state.counts[:]
        if self._records:
            self._numeric_counts()
            state.counts.extend(self._counts.ravel().tolist())

    def max_psi(self) -> float:
        return max(self.report.psi.values(), default=0.0)


def status_level(status: str) -> int:
    """0 OK, 1 WARN, 2 DRIFT (a gauge's value)."""
    return _LEVELS.index(status) if status in _LEVELS else 0


def published(report: DriftReport, data_type: str, version: str) -> DriftReport:
    """The report as the drift topic carries it: whose, without the job's window state."""
    out = DriftReport()
    out.CopyFrom(report)
    out.ClearField("window")
    out.ClearField("warm_up_profile")
    out.data_type, out.model_version = data_type, version
    return out
