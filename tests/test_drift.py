"""Drift: profiles, PSI, the significance test, windows and the 2-window status change, restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from client.reference import reference_profile
from modelstream.codecs import SourceRecord
from modelstream.contract import InputSpec, ModelOptions, ScoreBatch
from modelstream.drift import (
    DRIFT,
    OK,
    PROPORTION_FLOOR,
    WARN,
    DriftMonitor,
    build_profile,
    chi2_quantile,
    features_of,
    level,
    psi,
    published,
)
from modelstream.interface import Sink
from modelstream.records import WINE, wine_record_from_row
from modelstream.serving import ModelServer, ServingSettings
from modelstream.settings import Settings
from modelstream.testing import MemoryKeyContext, letters, sinks, source_record
from protobufs.modelstream_pb2 import DriftReport, ModelDescriptor, ReferenceProfile, StatsSnapshot
from tests.pmml_builders import with_model_stats

WINE_CSV = Path(__file__).resolve().parent.parent / "data" / "wine" / "winequality_red.csv"
Wine = tuple[npt.NDArray[np.float32], list[str]]
WINE_FEATURES = WINE.features
X_SPEC = InputSpec("X", np.dtype(np.float32), (11,))


@pytest.fixture(scope="module")
def wine() -> Wine:
    rows = np.loadtxt(WINE_CSV, delimiter=";")
    return rows[:, :11].astype(np.float32), [str(int(q)) for q in rows[:, 11]]


def _profile(wine: Wine) -> ReferenceProfile:
    x, labels = wine
    return build_profile(features_of([X_SPEC]), {"X": x}, ScoreBatch(labels=labels))


def _replay(monitor: DriftMonitor, wine: Wine, windows: int, shift: float) -> list[bool]:
    x, labels = wine
    rng = np.random.default_rng(7)
    changes = []
    for w in range(windows):
        rows = rng.integers(0, len(x), 1000)
        batch = x[rows].copy()
        batch[:, 10] += shift * x[:, 10].std()
        for part in np.array_split(np.arange(1000), 7):  # micro-batches that do not line up with windows
            changes.append(
                monitor.observe({"X": batch[part]}, ScoreBatch(labels=[labels[i] for i in rows[part]]), w)
            )
    return changes


def test_features_are_named_after_the_fields_that_feed_them() -> None:
    assert [f.name for f in features_of([X_SPEC])][10] == "alcohol"
    named = features_of([InputSpec("v", np.dtype(np.float32), (2,))], ("a", "b"))
    assert [(f.name, f.column) for f in named] == [("a", 0), ("b", 1)]
    scalar = features_of(
        [InputSpec("grade", np.dtype(object), ()), InputSpec("img", np.dtype(np.float32), (8, 8))]
    )
    assert [(f.name, f.categorical) for f in scalar] == [("grade", True)]


def test_a_profile_has_ten_equal_frequency_bins_and_the_top_categories() -> None:
    values = np.arange(1000, dtype=np.float64)
    grades = np.asarray(["a"] * 600 + ["b"] * 300 + ["c"] * 100, dtype=object)
    specs = [InputSpec("x", np.dtype(np.float64), ()), InputSpec("g", np.dtype(object), ())]
    profile = build_profile(features_of(specs), {"x": values, "g": grades}, ScoreBatch(values=values))
    x, g = profile.features
    assert len(x.edges) == 9 and x.proportions == pytest.approx([0.1] * 10)
    assert list(g.categories) == ["a", "b", "c"] and g.proportions == pytest.approx([0.6, 0.3, 0.1, 0.0])
    assert profile.records == 1000 and len(profile.prediction.edges) == 9


def test_the_status_moves_when_two_windows_in_a_row_lie_beyond_it() -> None:
    monitor = DriftMonitor([], None, 10, DriftReport())
    report = monitor.report
    moves = [
        (monitor._move(seen, 0), report.status) for seen in (DRIFT, OK, DRIFT, WARN, OK, DRIFT, DRIFT, OK, OK)
    ]
    assert moves == [
        (False, OK), (False, OK), (False, OK), (True, WARN), (False, WARN), (False, WARN), (True, DRIFT),
        (False, DRIFT), (True, OK),
    ]  # fmt: skip


def test_psi_and_the_two_conditions_for_a_flag() -> None:
    expected = np.full(10, 0.1)
    assert psi(np.full(10, 100, dtype=np.int64), expected) == pytest.approx(0.0)
    assert chi2_quantile(0.99, 9) == pytest.approx(21.666, rel=0.01)
    assert level(0.3, 10, 1000, 11) == DRIFT
    assert level(0.15, 10, 1000, 11) == WARN
    assert level(0.05, 10, 1e6, 11) == OK  # significant, but small
    assert level(0.3, 10, 20, 11) == OK  # large, but a window too small to tell


def test_wilson_hilferty_is_close_to_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    exact = chi2_quantile(1 - 0.01 / 11, 9)
    real_import = builtins.__import__

    def no_scipy(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    chi2_quantile.cache_clear()
    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert chi2_quantile(1 - 0.01 / 11, 9) == pytest.approx(exact, rel=0.01)
    chi2_quantile.cache_clear()


def test_unchanged_records_raise_no_drift(wine: Wine) -> None:
    report = DriftReport()
    monitor = DriftMonitor(features_of([X_SPEC]), _profile(wine), 1000, report)
    assert not any(_replay(monitor, wine, 20, 0.0))
    assert report.status == OK and report.windows == 20 and not report.flagged


def test_alcohol_shifted_half_a_sigma_drifts_on_alcohol_alone_after_two_windows(
    wine: Wine,
) -> None:
    report = DriftReport()
    monitor = DriftMonitor(features_of([X_SPEC]), _profile(wine), 1000, report)
    changes = _replay(monitor, wine, 1, 0.5)
    assert not any(changes) and report.status == OK  # one window is not enough
    assert any(_replay(monitor, wine, 1, 0.5))
    assert report.status == DRIFT and list(report.flagged) == ["alcohol"]
    assert report.psi["alcohol"] >= 0.25 and max(v for k, v in report.psi.items() if k != "alcohol") < 0.1


def _restored_midway(
    profile: ReferenceProfile, x: npt.NDArray[np.float32], labels: list[str], saved: int, end: int
) -> tuple[DriftMonitor, DriftReport]:
    """A monitor that observed rows [0, saved) and saved its window, restored from its report into a
    second one that observed rows [saved, end) and saved again: the second, and its report."""
    features = features_of([X_SPEC])
    report = DriftReport()
    monitor = DriftMonitor(features, profile, 1000, report)
    monitor.observe({"X": x[:saved]}, ScoreBatch(labels=labels[:saved]), 0)
    monitor.save()
    restored = DriftReport.FromString(report.SerializeToString())
    again = DriftMonitor(features, profile, 1000, restored)
    again.observe({"X": x[saved:end]}, ScoreBatch(labels=labels[saved:end]), 0)
    again.save()
    return again, restored


def test_the_window_and_status_survive_a_restore(wine: Wine) -> None:
    x, labels = wine
    _, restored = _restored_midway(_profile(wine), x, labels, 600, 1000)
    assert restored.windows == 1 and restored.window.records == 0


def test_window_counts_are_each_values_bin_across_batches_and_a_restore_and_psi_is_per_feature(
    wine: Wine,
) -> None:
    profile, features = _profile(wine), features_of([X_SPEC])
    x, labels = wine
    x = x.copy()
    x[3, 2] = np.nan  # counted in the first bin, as np.searchsorted puts it
    again, restored = _restored_midway(profile, x, labels, 250, 700)

    def bins(feature: int, rows: slice) -> npt.NDArray[np.int64]:
        edges = np.asarray(profile.features[feature].edges)
        values = np.nan_to_num(x[rows, feature], nan=-np.inf)
        return np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)

    width = len(restored.window.counts) // (len(features) + 1)  # the features, then the prediction
    counts = np.asarray(restored.window.counts).reshape(-1, width)
    for feature in range(len(features)):
        expected = bins(feature, slice(0, 700))
        assert counts[feature, : expected.size].tolist() == expected.tolist()
        assert not counts[feature, expected.size :].any()
    again.observe({"X": x[700:1000]}, ScoreBatch(labels=labels[700:1000]), 0)  # the window completes
    assert restored.windows == 1 and restored.window.records == 0 and not restored.window.counts  # unsaved
    for feature, name in enumerate(f.name for f in features):
        shares = np.maximum(np.asarray(profile.features[feature].proportions), PROPORTION_FLOOR)
        assert restored.psi[name] == pytest.approx(psi(bins(feature, slice(0, 1000)), shares / shares.sum()),
                                                   abs=1e-6)  # fmt: skip


def test_without_a_reference_the_first_window_is_the_profile(wine: Wine) -> None:
    x, labels = wine
    report = DriftReport()
    monitor = DriftMonitor(features_of([X_SPEC]), None, 500, report)
    assert report.warming_up
    monitor.observe({"X": x[:700]}, ScoreBatch(labels=labels[:700]), 0)
    assert not report.warming_up and report.profile_source == ReferenceProfile.WARM_UP
    assert report.warm_up_profile.records == 500
    assert report.window.records == 0  # the batch's rows past the warm-up are not counted
    outgoing = published(report, "wine", "v1")
    assert outgoing.data_type == "wine" and not outgoing.HasField("warm_up_profile")


# -- in the serving core ---------------------------------------------------------------------------


def _server(window: int = 500) -> ModelServer:
    return ModelServer(ServingSettings(stats_interval_ms=0, drift_window=window), ModelOptions())


def _wine_descriptor(version: str = "v1") -> ModelDescriptor:
    data = (WINE_CSV.parent / "wine_quality_logreg.onnx").read_bytes()
    return ModelDescriptor(
        name="wine", dataType="wine", modeltype=ModelDescriptor.ONNX, version=version, data=data
    )


def _with_reference(descriptor: ModelDescriptor) -> ModelDescriptor:
    descriptor.reference_profile.CopyFrom(
        reference_profile(Settings(), descriptor, WINE_CSV)  # the CLI's --reference
    )
    return descriptor


def _records(rows: npt.NDArray[np.float64], start: int) -> list[SourceRecord]:
    return [
        source_record(wine_record_from_row(list(row), "wine", 0, f"r-{start + i}").SerializeToString())
        for i, row in enumerate(rows)
    ]


def _stream(
    server: ModelServer, ctx: MemoryKeyContext, windows: int, shift: float, window: int = 500
) -> list[DriftReport]:
    rows = np.loadtxt(WINE_CSV, delimiter=";")[:, :11]
    sigma = rows[:, 10].std()
    rng = np.random.default_rng(3)
    reports = []
    for w in range(windows):
        sample = rows[rng.integers(0, len(rows), window)].copy()
        sample[:, 10] += shift * sigma
        for part in np.array_split(sample, 4):
            outputs = server.on_records("wine", _records(part, w * window), ctx)
            reports += [DriftReport.FromString(v) for v in sinks(outputs, Sink.DRIFT)]
    return reports


def test_the_core_reports_drift_in_the_stats_and_on_the_drift_topic_on_a_change() -> None:
    server, ctx = _server(), MemoryKeyContext()
    assert not letters(
        server.on_model("wine", (_with_reference(_wine_descriptor()).SerializeToString(), 0, 0), ctx)
    )
    assert not _stream(server, ctx, 6, 0.0)
    assert ctx.stats is not None and ctx.stats.drift.status == OK and ctx.stats.drift.windows == 6
    changes = _stream(server, ctx, 2, 0.5)
    assert [(r.status, r.data_type, r.model_version, list(r.flagged)) for r in changes] == [
        (DRIFT, "wine", "v1", ["alcohol"])
    ]
    assert not changes[0].HasField("window")
    drift = ctx.stats.drift
    assert drift.status == DRIFT and drift.profile_source == ReferenceProfile.REFERENCE
    assert ctx.stats.current.drift.status == DRIFT


def test_a_restored_worker_continues_the_window_and_the_status() -> None:
    server, ctx = _server(), MemoryKeyContext()
    server.on_model("wine", (_with_reference(_wine_descriptor()).SerializeToString(), 0, 0), ctx)
    _stream(server, ctx, 1, 0.5)  # one window: DRIFT pending
    rows = np.loadtxt(WINE_CSV, delimiter=";")[:, :11]
    shifted = rows[:100].copy()
    shifted[:, 10] += 0.5 * rows[:, 10].std()
    server.on_records("wine", _records(shifted, 9000), ctx)
    assert ctx.stats is not None
    stored = StatsSnapshot.FromString(ctx.stats.SerializeToString())
    assert stored.drift.window.records == 100 and stored.drift.window.pending == DRIFT
    assert stored.drift.window.streak == 1 and stored.drift.status == OK
    restored, again = _server(), MemoryKeyContext()
    again.versions, again.stats = dict(ctx.versions), stored
    assert [r.status for r in _stream(restored, again, 1, 0.5)] == [DRIFT]  # the second window in a row


def test_without_a_reference_the_version_profiles_its_first_window() -> None:
    server, ctx = _server(), MemoryKeyContext()
    server.on_model("wine", (_wine_descriptor().SerializeToString(), 0, 0), ctx)
    _stream(server, ctx, 1, 0.0)
    assert ctx.stats is not None
    drift = ctx.stats.drift
    assert not drift.warming_up and drift.profile_source == ReferenceProfile.WARM_UP
    assert [r.status for r in _stream(server, ctx, 3, 0.5)] == [DRIFT]


def test_a_pmml_model_without_a_reference_is_profiled_from_its_model_stats() -> None:
    rows = np.loadtxt(WINE_CSV, delimiter=";")[:, :11]
    names = [name.replace("_", " ") for name in WINE.features]  # as the PMML file names its fields
    forest = (WINE_CSV.parent / "winequalityRandonForrestClassification.pmml").read_bytes()
    descriptor = ModelDescriptor(name="wine", dataType="wine", modeltype=ModelDescriptor.PMML, version="v1",
                                 data=with_model_stats(forest, rows, names))  # fmt: skip
    server, ctx = _server(), MemoryKeyContext()
    assert not letters(server.on_model("wine", (descriptor.SerializeToString(), 0, 0), ctx))
    assert not _stream(server, ctx, 3, 0.0)
    assert ctx.stats is not None
    drift = ctx.stats.drift
    assert drift.profile_source == ReferenceProfile.PMML_MODEL_STATS and not drift.warming_up
    assert drift.windows == 3 and drift.status == OK and "alcohol" in drift.psi
    assert [(r.status, list(r.flagged)) for r in _stream(server, ctx, 2, 0.5)] == [(DRIFT, ["alcohol"])]


def test_a_window_of_zero_turns_drift_off() -> None:
    server, ctx = _server(window=0), MemoryKeyContext()
    server.on_model("wine", (_with_reference(_wine_descriptor()).SerializeToString(), 0, 0), ctx)
    assert not _stream(server, ctx, 2, 0.5)
    assert ctx.stats is not None and ctx.stats.drift.windows == 0 and ctx.stats.drift.status == ""


def test_stats_detail_holds_a_drift_object_with_status_and_psi_per_feature() -> None:
    from client.cli import _drift_table
    from client.stats_service import stats_detail

    server, ctx = _server(), MemoryKeyContext()
    server.on_model("wine", (_with_reference(_wine_descriptor()).SerializeToString(), 0, 0), ctx)
    assert ctx.stats is not None
    assert stats_detail(ctx.stats)["drift"] == {"status": "OK", "psi": {}, **stats_detail(ctx.stats)["drift"]}
    _stream(server, ctx, 2, 0.5)
    detail = stats_detail(ctx.stats)
    assert detail["drift"]["status"] == "DRIFT" and detail["drift"]["psi"]["alcohol"] >= 0.25
    assert set(detail["drift"]["psi"]) == set(WINE_FEATURES) and "window" not in detail["drift"]
    assert detail["current"]["accuracy"] is None and detail["current"]["labelled"] == 0
    table = _drift_table([detail])
    assert "DRIFT" in table and "alcohol* " in table
