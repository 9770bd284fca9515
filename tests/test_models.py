"""Every model format on the tutorial's data: each agrees with its reference runtime called directly,
round-trips through bytes, and is refused with a specific reason when broken."""

from __future__ import annotations

import functools
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import orjson
import pytest

from model import jpmml_jvm
from modelstream.archive import pack_directory
from modelstream.binding import Binder
from modelstream.codecs.json import JsonCodec
from modelstream.codecs.protobuf import UserSchemas
from modelstream.contract import InputArrays, ModelLoadError, ModelOptions, ModelSource, ScoreBatch
from modelstream.records import WINE, read_wine_csv
from modelstream.registry import UnknownModelType, load_model, model_class
from modelstream.scoring import score_isolating
from modelstream.testing import source_record, wine_inputs
from modelstream.topics import Encoding
from protobufs.modelstream_pb2 import ModelDescriptor
from tests import references
from tests.conftest import WINE_DIR

ROWS = np.asarray(read_wine_csv(str(WINE_DIR / "winequality_red.csv")), dtype=np.float64)[:, :11]
PMML_FILES = sorted(p.name for p in WINE_DIR.glob("*.pmml"))
SAVED_DIR = WINE_DIR / "saved" / "1"
OPTIONS = ModelOptions(allowed_roots=(str(WINE_DIR),))
D = ModelDescriptor
WINE_CHLORIDES = WINE.features.index("chlorides")  # its column in ROWS


def file_descriptor(file: str, model_type: ModelDescriptor.ModelType) -> ModelDescriptor:
    return D(name=file, dataType="wine", modeltype=model_type, data=(WINE_DIR / file).read_bytes())


ALL_FORMATS: dict[str, Callable[[], ModelDescriptor]] = {
    "onnx": lambda: file_descriptor("wine_quality_logreg.onnx", D.ONNX),
    "tf-graph": lambda: file_descriptor("optimized_WineQuality.pb", D.TENSORFLOW),
    "tf-saved-location": lambda: D(modeltype=D.TENSORFLOWSAVED, location=str(SAVED_DIR)),
    "tf-saved-bytes": lambda: D(modeltype=D.TENSORFLOWSAVED, data=pack_directory(SAVED_DIR)),
    **{f"pmml-{f}": functools.partial(file_descriptor, f, D.PMML) for f in PMML_FILES},
}


def rows_of(inputs: InputArrays, start: int, stop: int) -> InputArrays:
    return {name: array[start:stop] for name, array in inputs.items()}


def assert_same_scores(actual: ScoreBatch, expected: ScoreBatch, rtol: float) -> None:
    assert actual.labels == expected.labels
    for a, e in ((actual.values, expected.values), (actual.probabilities, expected.probabilities)):
        assert (a is None) == (e is None)
        if a is not None and e is not None:
            np.testing.assert_allclose(a, e, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", sorted(ALL_FORMATS))
def test_agrees_with_its_reference_and_round_trips(name: str) -> None:
    descriptor = ALL_FORMATS[name]()
    model = load_model(descriptor, OPTIONS)
    inputs = wine_inputs(model, ROWS)
    batch = model.score_batch(inputs)
    batch.check(len(ROWS))
    assert_same_scores(
        batch, references.score(descriptor, ROWS), rtol=1e-9 if name.startswith("pmml") else 1e-6
    )

    restored = model_class(descriptor.modeltype).load(ModelSource(model.to_bytes()), OPTIONS)
    assert restored.inputs == model.inputs
    assert_same_scores(restored.score_batch(inputs), batch, rtol=0)
    for i in (0, 5, 1598):  # one record at a time, as the job scores them
        single = model.score_batch(rows_of(inputs, i, i + 1))
        assert single.labels == (batch.labels[i : i + 1] if batch.labels else None)
        if batch.values is not None:
            np.testing.assert_allclose(single.values, batch.values[i : i + 1], rtol=1e-12)  # type: ignore[arg-type]
    model.close()


def test_the_pypmml_engine_is_selectable_and_scores_every_row() -> None:
    for file in PMML_FILES:
        model = load_model(file_descriptor(file, D.PMML), ModelOptions(pmml_engine="pypmml"))
        model.score_batch(wine_inputs(model, ROWS)).check(len(ROWS))


def test_jpmml_for_flinks_jvm_ships_its_jars_but_not_a_second_slf4j() -> None:
    names = [jar.name for jar in jpmml_jvm.jars()]
    assert any(n.startswith("pmml-evaluator-") for n in names) and any("python" in n for n in names)
    assert not [n for n in names if n.startswith("slf4j")]  # Flink's JVM has SLF4J bound to its Log4j
    env = jpmml_jvm.with_jpmml_classpath({"HADOOP_CLASSPATH": "/theirs.jar", "OTHER": "x"})
    assert env["HADOOP_CLASSPATH"].split(os.pathsep) == ["/theirs.jar", *map(str, jpmml_jvm.jars())]
    assert env["OTHER"] == "x"


def test_outside_flinks_jvm_jpmml_runs_on_jpype_and_the_pemja_backend_is_refused() -> None:
    assert not jpmml_jvm.in_flink_jvm()  # pemja's module only has findClass inside a JVM
    with pytest.raises(jpmml_jvm.JvmUnavailableError, match="bound when the function opens"):
        jpmml_jvm.backend()
    model = load_model(file_descriptor(PMML_FILES[0], D.PMML), OPTIONS)  # JPype, as before
    model.score_batch(wine_inputs(model, ROWS[:3])).check(3)


COLOR_REGRESSION = b"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="blue"/>
    </DataField>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="color"/><MiningField name="y" usageType="target"/></MiningSchema>
    <RegressionTable intercept="1.0">
      <CategoricalPredictor name="color" value="red" coefficient="2.0"/>
    </RegressionTable>
  </RegressionModel>
</PMML>"""


@pytest.mark.parametrize("rows", [3, 200])  # a call per row, and one call for the batch
def test_a_row_jpmml_refuses_fails_alone_and_the_batch_is_scored(rows: int) -> None:
    model = load_model(D(modeltype=D.PMML, data=COLOR_REGRESSION), OPTIONS)
    colors = np.array(["red", "blue"] * (rows // 2) + ["red"] * (rows % 2), dtype=object)
    colors[1] = "green"  # not a value of the field: JPMML refuses it
    scored = score_isolating(model, {"color": colors}, rows)
    assert list(scored.failed) == [1] and "green" in scored.failed[1]
    assert scored.batch is not None and scored.batch.values is not None
    expected = np.where(np.delete(colors, 1) == "red", 3.0, 1.0)
    np.testing.assert_array_equal(scored.batch.values, expected)


def test_the_training_script_reproduces_the_shipped_onnx_model() -> None:
    from scripts.train_wine_onnx import DEFAULT_CSV, train_onnx

    fresh_model = load_model(D(modeltype=D.ONNX, data=train_onnx(DEFAULT_CSV)), OPTIONS)
    shipped_model = load_model(ALL_FORMATS["onnx"](), OPTIONS)
    fresh = fresh_model.score_batch(wine_inputs(fresh_model, ROWS))
    shipped = shipped_model.score_batch(wine_inputs(shipped_model, ROWS))
    assert fresh.labels == shipped.labels


def test_savedmodel_accepts_a_zip_too() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in SAVED_DIR.rglob("*") if p.is_file()):
            archive.write(path, "model/" + path.relative_to(SAVED_DIR).as_posix())
    model = load_model(D(modeltype=D.TENSORFLOWSAVED, data=buffer.getvalue()), OPTIONS)
    expected = references.score(ALL_FORMATS["tf-saved-bytes"](), ROWS)
    assert_same_scores(model.score_batch(wine_inputs(model, ROWS)), expected, 1e-6)


def _two_placeholder_graph() -> bytes:
    from model.tensorflow_common import tf

    graph = tf.Graph()
    with graph.as_default():
        a = tf.compat.v1.placeholder(tf.float32, [None, 11], name="a")
        b = tf.compat.v1.placeholder(tf.float32, [None, 11], name="b")
        tf.add(a, b, name="sum")
    data: bytes = graph.as_graph_def().SerializeToString()
    return data


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: D(modeltype=D.ONNX, data=b"\x00corrupt"), "onnxruntime cannot load"),
        (lambda: D(modeltype=D.PMML, data=b"<PMML>corrupt"), "jpmml cannot load"),
        (lambda: D(modeltype=D.TENSORFLOW, data=b"\xff\xffcorrupt"), "not a TensorFlow GraphDef"),
        (lambda: D(modeltype=D.TENSORFLOWSAVED, data=b"corrupt"), "not a zip or tar.gz"),
        (lambda: D(modeltype=D.TENSORFLOWSAVED, location="/etc"), "outside the allowed roots"),
        (
            lambda: D(modeltype=D.TENSORFLOWSAVED, location=str(WINE_DIR / "saved/../../../..")),
            "outside the allowed",
        ),
        (
            lambda: D(modeltype=D.TENSORFLOWSAVED, data=pack_directory(SAVED_DIR), signature="nope"),
            "'nope' not in",
        ),
        (lambda: D(modeltype=D.ONNX), "no model bytes"),
        (lambda: D(modeltype=cast(ModelDescriptor.ModelType, 42), data=b"x"), "not served"),
    ],
    ids=[
        "onnx-corrupt",
        "pmml-corrupt",
        "graph-corrupt",
        "saved-corrupt",
        "saved-outside-roots",
        "saved-dot-dot",
        "saved-unknown-signature",
        "empty",
        "unknown-type",
    ],
)
def test_broken_models_are_refused_with_a_specific_reason(make: object, message: str) -> None:
    descriptor = make()  # type: ignore[operator]
    with pytest.raises(ModelLoadError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_model(descriptor, OPTIONS)
    if descriptor.modeltype == 42:
        assert isinstance(error.value, UnknownModelType)


def test_a_graph_takes_every_placeholder_as_an_input_bound_by_name() -> None:
    model = load_model(D(modeltype=D.TENSORFLOW, data=_two_placeholder_graph()), OPTIONS)
    assert [spec.describe() for spec in model.inputs] == ["a float32[n, 11]", "b float32[n, 11]"]
    rows = [{"a": [float(i)] * 11, "b": list(range(11)), "extra": "ignored"} for i in range(3)]
    records = [source_record(orjson.dumps(row), Encoding.JSON, offset=i) for i, row in enumerate(rows)]
    bound = Binder(model.inputs).bind(JsonCodec().decode(records, UserSchemas()))
    assert not bound.failures
    scores = model.score_batch(bound.arrays)  # "sum" = a + b, read as 11 class scores
    expected = np.arange(3, dtype=np.float64)[:, None] + np.arange(11, dtype=np.float64)
    np.testing.assert_array_equal(scores.probabilities, expected)  # type: ignore[arg-type]
    model.close()


def test_a_pmml_field_records_lack_is_bound_missing_and_the_model_scores_with_its_replacement() -> None:
    """PMML inputs are optional: a field the records lack reaches the model as PMML's missing value,
    which the model's MiningField replaces (here 0.05 for a field renamed away from "chlorides")."""
    original = (WINE_DIR / "winequalityLinearRegression.pmml").read_text()
    xml = original.replace('"chlorides"', '"saltiness"').replace(
        '<MiningField name="saltiness"/>', '<MiningField name="saltiness" missingValueReplacement="0.05"/>'
    )
    with_replacement = ROWS.copy()
    with_replacement[:, WINE_CHLORIDES] = 0.05
    for engine in ("jpmml", "pypmml"):
        options = ModelOptions(pmml_engine=engine)
        model = load_model(D(modeltype=D.PMML, data=xml.encode()), options)
        (spec,) = [s for s in model.inputs if s.name == "saltiness"]
        assert spec.optional
        for n in (3, len(ROWS)):  # a call per row and a frame call
            inputs = wine_inputs(model, ROWS[:n])
            assert np.isnan(inputs["saltiness"]).all()
            batch = model.score_batch(inputs)
            batch.check(n)
            reference = load_model(D(modeltype=D.PMML, data=original.encode()), options)
            expected = reference.score_batch(wine_inputs(reference, with_replacement[:n]))
            assert_same_scores(batch, expected, rtol=1e-12)


def test_archives_cannot_escape_their_directory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.pb", b"x")
    with pytest.raises(ModelLoadError, match="outside the archive"):
        load_model(D(modeltype=D.TENSORFLOWSAVED, data=buffer.getvalue()), OPTIONS)
    assert not (tmp_path.parent / "evil.pb").exists()
