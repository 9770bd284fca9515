"""A drift reference profile from a PMML file's ModelStats: histograms, quantiles and value counts read
as drift.feature_profile would cut the sample; nothing, rather than an error, from a broken ModelStats."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from modelstream.contract import ModelOptions, ScoreBatch
from modelstream.drift import DRIFT, OK, DriftMonitor, Feature, feature_profile, features_of
from modelstream.pmml_stats import DEFAULT_RECORDS, model_stats_profile
from modelstream.records import WINE, read_wine_csv
from modelstream.registry import load_model
from modelstream.testing import wine_inputs
from protobufs.modelstream_pb2 import DriftReport, ModelDescriptor, ReferenceProfile
from tests.pmml_builders import DECILES, with_model_stats

WINE_DIR = Path(__file__).resolve().parent.parent / "data" / "wine"
ROWS = np.asarray(read_wine_csv(str(WINE_DIR / "winequality_red.csv")), dtype=np.float64)[:, :11]
FOREST = "winequalityRandonForrestClassification.pmml"
TREE = "winequalityDecisionTreeClassification.pmml"
NAMES = [name.replace("_", " ") for name in WINE.features]  # as the PMML files name them ("fixed acidity")
FEATURES = [Feature(name, name, -1, False) for name in NAMES]
ALCOHOL = NAMES.index("alcohol")


def _document(file: str = FOREST, rows: npt.NDArray[np.float64] = ROWS) -> bytes:
    return with_model_stats((WINE_DIR / file).read_bytes(), rows, NAMES)


def _without(document: bytes, *elements: str) -> bytes:
    text = document.decode()
    for name in elements:
        text = re.sub(rf"\s*<{name}\b[^>]*/>|\s*<{name}\b.*?</{name}>", "", text, flags=re.DOTALL)
    return text.encode()


def _stats(body: str, namespace: str = "http://www.dmg.org/PMML-4_4") -> bytes:
    """A small PMML document whose tree model has this ModelStats body."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="{namespace}" version="4.4">
  <Header/>
  <DataDictionary/>
  <TreeModel functionName="classification">
    <MiningSchema/>
    <ModelStats>{body}</ModelStats>
    <Node score="a"><True/></Node>
  </TreeModel>
</PMML>""".encode()


def _by_name(profile: ReferenceProfile | None) -> dict[str, tuple[list[float], list[str], list[float]]]:
    assert profile is not None
    return {f.name: (list(f.edges), list(f.categories), list(f.proportions)) for f in profile.features}


# -- the three sources -------------------------------------------------------------------------------


def test_contstats_gives_the_bins_drift_cuts_from_the_same_rows() -> None:
    profile = model_stats_profile(_document(), FEATURES)
    assert profile is not None
    assert profile.source == ReferenceProfile.PMML_MODEL_STATS and profile.records == len(ROWS)
    assert [f.name for f in profile.features] == NAMES
    for j, got in enumerate(profile.features):
        expected = feature_profile(NAMES[j], ROWS[:, j], False)
        np.testing.assert_allclose(got.edges, expected.edges, rtol=1e-12)
        np.testing.assert_allclose(got.proportions, expected.proportions, atol=1e-12)
        assert sum(got.proportions) == pytest.approx(1.0)


def test_quantiles_alone_give_their_values_as_edges_and_tenths_as_shares() -> None:
    document = _without(_document(), "ContStats")
    profile = _by_name(model_stats_profile(document, FEATURES))
    for name in ("alcohol", "pH", "density"):
        column = ROWS[:, NAMES.index(name)]
        edges, _, proportions = profile[name]
        assert edges == pytest.approx(np.quantile(column, DECILES).tolist(), rel=1e-15)
        assert len(edges) == 9 and proportions == pytest.approx([0.1] * 10)
    # with citric acid under 0.1 read as 0 (a quarter of the rows), its first deciles are all 0: one edge
    # whose bin holds their shares
    rows = ROWS.copy()
    citric = rows[:, NAMES.index("citric acid")]
    citric[citric < 0.1] = 0.0
    profile = _by_name(model_stats_profile(_without(_document(rows=rows), "ContStats"), FEATURES))
    deciles = np.quantile(citric, DECILES)
    zeros = int(np.sum(deciles == 0.0))
    assert zeros >= 2
    edges, _, proportions = profile["citric acid"]
    assert edges == pytest.approx(np.unique(deciles).tolist()) and len(edges) == 10 - zeros
    assert proportions == pytest.approx([0.1 * zeros] + [0.1] * (10 - zeros))


def test_without_counts_records_are_the_frequencies_else_a_default() -> None:
    frequencies = model_stats_profile(_without(_document(), "Counts"), FEATURES)
    assert frequencies is not None and frequencies.records == len(ROWS)
    quantiles_only = model_stats_profile(_without(_document(), "Counts", "ContStats"), FEATURES)
    assert quantiles_only is not None and quantiles_only.records == DEFAULT_RECORDS


def test_discrstats_gives_the_top_values_and_other() -> None:
    values = " ".join(f"v{i}" for i in range(10)) + ' "with space" "a \\"quoted\\" one"'
    frequencies = "5 30 10 10 10 10 10 10 10 10 40 20"
    body = f"""
      <UnivariateStats field="grade">
        <DiscrStats modalValue="with space"><Array n="12" type="string">{values}</Array>
          <Array n="12" type="int">{frequencies}</Array></DiscrStats>
      </UnivariateStats>
      <UnivariateStats field="rating">
        <DiscrStats><Array type="string">3 4 5 6 7 8</Array>
          <Array type="int">10 53 681 638 199 18</Array></DiscrStats>
      </UnivariateStats>"""
    features = [Feature("grade", "grade", -1, True), Feature("rating", "rating", -1, False)]
    profile = model_stats_profile(_stats(body), features)
    assert profile is not None and profile.records == 1599  # no Counts: the largest sum of frequencies
    grade, rating = profile.features
    top = ["with space", "v1", 'a "quoted" one', "v2", "v3", "v4", "v5", "v6", "v7", "v8"]
    assert list(grade.categories) == top  # ties (v2..v9: 10 each) in value order; v9 and v0 are other
    assert grade.proportions == pytest.approx(np.asarray([40, 30, 20, *[10] * 7, 15]) / 175)
    sample = np.repeat(np.asarray([*top, "v9", "v0"], dtype=object), [40, 30, 20, *[10] * 8, 5])
    expected = feature_profile("grade", sample, True)
    assert grade.categories == expected.categories
    assert grade.proportions == pytest.approx(expected.proportions)
    # a numeric field's value counts: numeric bins at the values its deciles fall on, as drift cuts them
    ratings = np.repeat([3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [10, 53, 681, 638, 199, 18])
    expected = feature_profile("rating", ratings, False)
    assert list(rating.edges) == list(expected.edges) == [5.0, 6.0, 7.0] and not rating.categories
    assert rating.proportions == pytest.approx(expected.proportions)


def test_intervals_out_of_order_open_ended_or_with_gaps_still_give_increasing_edges() -> None:
    body = """
      <UnivariateStats field="x"><Counts totalFreq="400" missingFreq="20"/>
        <ContStats>
          <Interval closure="openOpen" leftMargin="10"/>
          <Interval closure="openClosed" rightMargin="0"/>
          <Interval closure="closedOpen" leftMargin="5" rightMargin="10"/>
          <Interval closure="openClosed" leftMargin="0" rightMargin="2"/>
          <Array type="int">40 100 60 200</Array>
        </ContStats>
      </UnivariateStats>"""
    profile = model_stats_profile(_stats(body, "http://www.dmg.org/PMML-3_2"), [Feature("x", "x", -1, False)])
    assert profile is not None and profile.records == 400
    (x,) = profile.features
    assert list(x.edges) == [0.0, 2.0, 10.0] and x.proportions == pytest.approx([0.25, 0.5, 0.15, 0.1])


def test_the_best_usable_source_of_each_field_is_taken() -> None:
    body = """
      <UnivariateStats field="x">
        <NumericInfo><Quantile quantileLimit="50" quantileValue="3"/></NumericInfo>
        <ContStats><Interval closure="openClosed" rightMargin="NaN"/>
          <Interval closure="openOpen" leftMargin="1"/><Array type="int">1 1</Array></ContStats>
      </UnivariateStats>
      <UnivariateStats field="y"><Counts totalFreq="50"/>
        <NumericInfo><Quantile quantileLimit="0" quantileValue="-1"/>
          <Quantile quantileLimit="25" quantileValue="2"/><Quantile quantileLimit="75" quantileValue="4"/>
          <Quantile quantileLimit="100" quantileValue="9"/></NumericInfo>
      </UnivariateStats>
      <UnivariateStats field="z"><ContStats/></UnivariateStats>"""
    features = [Feature(name, name, -1, False) for name in ("x", "y", "z", "missing")]
    profile = _by_name(model_stats_profile(_stats(body), features))
    assert profile == {"x": ([3.0], [], [0.5, 0.5]), "y": ([2.0, 4.0], [], [0.25, 0.5, 0.25])}


# -- nothing to read ---------------------------------------------------------------------------------


def test_a_document_without_modelstats_or_stats_for_the_features_gives_none() -> None:
    assert model_stats_profile((WINE_DIR / FOREST).read_bytes(), FEATURES) is None
    assert model_stats_profile(_document(), [Feature("colour", "colour", -1, False)]) is None
    assert model_stats_profile(_stats(""), FEATURES) is None


def _alcohol_histogram(first: str, second: str, frequencies: str) -> bytes:
    """ModelStats with an alcohol histogram of two intervals (their attributes) and a frequency Array."""
    return _stats(
        f'<UnivariateStats field="alcohol"><ContStats><Interval closure="openClosed" {first}/>'
        f'<Interval closure="openOpen" {second}/>{frequencies}</ContStats></UnivariateStats>'
    )


BROKEN = {
    "not xml": b"PMML",
    "cut short": _document()[:5000],
    "a doctype": _stats("").replace(b"?>", b'?><!DOCTYPE PMML [<!ENTITY x "y">]>', 1),
    "a NaN margin": _alcohol_histogram(
        'rightMargin="NaN"', 'leftMargin="0"', '<Array type="int">1 1</Array>'
    ),
    "an open interval before the last": _alcohol_histogram(
        'leftMargin="0"', 'leftMargin="1"', '<Array type="int">1 1</Array>'
    ),
    "a margin past the other": _alcohol_histogram(
        'leftMargin="5" rightMargin="1"', 'leftMargin="5"', '<Array type="int">1 1</Array>'
    ),
    "no frequencies": _alcohol_histogram('rightMargin="9"', 'leftMargin="9"', ""),
    "frequencies short of the intervals": _alcohol_histogram(
        'rightMargin="9"', 'leftMargin="9"', '<Array type="int">5</Array>'
    ),
    "an array of another n": _alcohol_histogram(
        'rightMargin="9"', 'leftMargin="9"', '<Array n="3" type="int">5 5</Array>'
    ),
    "a negative frequency": _alcohol_histogram(
        'rightMargin="9"', 'leftMargin="9"', '<Array type="int">5 -1</Array>'
    ),
    "no records": _alcohol_histogram('rightMargin="9"', 'leftMargin="9"', '<Array type="int">0 0</Array>'),
    "a frequency that is no number": _alcohol_histogram(
        'rightMargin="9"', 'leftMargin="9"', '<Array type="int">5 five</Array>'
    ),
    "quantiles out of order": _stats(
        '<UnivariateStats field="alcohol"><NumericInfo><Quantile quantileLimit="25" quantileValue="9"/>'
        '<Quantile quantileLimit="75" quantileValue="8"/></NumericInfo></UnivariateStats>'
    ),
    "a quantile past 100 %": _stats(
        '<UnivariateStats field="alcohol"><NumericInfo><Quantile quantileLimit="150" quantileValue="9"/>'
        "</NumericInfo></UnivariateStats>"
    ),
    "values without frequencies": _stats(
        '<UnivariateStats field="colour"><DiscrStats><Array type="string">red white</Array></DiscrStats>'
        "</UnivariateStats>"
    ),
    "numeric values that are no numbers": _stats(
        '<UnivariateStats field="alcohol"><DiscrStats><Array type="string">low high</Array>'
        '<Array type="int">3 4</Array></DiscrStats></UnivariateStats>'
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_modelstats_gives_none_not_an_error(case: str) -> None:
    features = [*FEATURES, Feature("colour", "colour", -1, True)]
    assert model_stats_profile(BROKEN[case], features) is None


def test_a_broken_field_is_left_out_and_the_others_kept() -> None:
    document = _document().replace(
        b'rightMargin="', b'rightMargin="oops', 1
    )  # fixed acidity's first interval
    profile = _by_name(model_stats_profile(document, FEATURES))
    assert "fixed acidity" in profile  # from its quantiles
    assert profile["fixed acidity"][0] == pytest.approx(np.quantile(ROWS[:, 0], DECILES).tolist())
    assert len(profile) == 11


# -- in a drift monitor ------------------------------------------------------------------------------


def _replay(monitor: DriftMonitor, windows: int, shift: float) -> list[bool]:
    rng = np.random.default_rng(11)
    changes = []
    for w in range(windows):
        batch = ROWS[rng.permutation(len(ROWS))[:1000]].copy()  # the same rows, shuffled
        batch[:, ALCOHOL] += shift * ROWS[:, ALCOHOL].std()
        for part in np.array_split(np.arange(1000), 7):
            arrays = {name: batch[part, j] for j, name in enumerate(NAMES)}
            changes.append(monitor.observe(arrays, ScoreBatch(labels=["5"] * len(part)), w))
    return changes


def test_a_monitor_on_the_modelstats_profile_stays_ok_on_the_same_rows() -> None:
    report = DriftReport()
    monitor = DriftMonitor(FEATURES, model_stats_profile(_document(), FEATURES), 1000, report)
    assert report.profile_source == ReferenceProfile.PMML_MODEL_STATS and not report.warming_up
    assert not any(_replay(monitor, 6, 0.0))
    assert report.status == OK and report.windows == 6 and not report.flagged


def test_a_monitor_on_the_modelstats_profile_flags_shifted_alcohol() -> None:
    report = DriftReport()
    monitor = DriftMonitor(FEATURES, model_stats_profile(_document(), FEATURES), 1000, report)
    assert not any(_replay(monitor, 1, 0.5)) and report.status == OK  # one window is not enough
    assert any(_replay(monitor, 1, 0.5))
    assert report.status == DRIFT and list(report.flagged) == ["alcohol"]
    assert report.psi["alcohol"] >= 0.25


# -- the builder -------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["jpmml", "pypmml"])
@pytest.mark.parametrize("file", [TREE, FOREST])
def test_the_built_document_loads_and_scores_as_the_original(file: str, engine: str) -> None:
    options = ModelOptions(pmml_engine=engine)
    original = load_model(
        ModelDescriptor(modeltype=ModelDescriptor.PMML, data=(WINE_DIR / file).read_bytes()), options
    )
    fields = {spec.name for spec in original.inputs}  # the tree reads 8 of the 11: stats for those only
    names = [name if name in fields else "" for name in NAMES]
    document = with_model_stats((WINE_DIR / file).read_bytes(), ROWS, names)
    built = load_model(ModelDescriptor(modeltype=ModelDescriptor.PMML, data=document), options)
    assert built.inputs == original.inputs
    rows = ROWS[::7]
    expected = original.score_batch(wine_inputs(original, rows))
    got = built.score_batch(wine_inputs(built, rows))
    assert got.labels == expected.labels
    np.testing.assert_array_equal(got.probabilities, expected.probabilities)  # type: ignore[arg-type]
    profile = model_stats_profile(document, features_of(built.inputs))
    assert profile is not None and {f.name for f in profile.features} == fields
