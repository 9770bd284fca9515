"""Every model format on the tutorial's data: each agrees with its reference runtime called directly,
round-trips through bytes, and is refused with a specific reason when broken."""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from modelstream.archive import pack_directory
from modelstream.contract import ModelLoadError, ModelOptions, ModelSource, ScoreBatch
from modelstream.registry import UnknownModelType, load_model, model_class
from modelstream.records import WINE, read_wine_csv
from protobufs.modelstream_pb2 import ModelDescriptor
from tests import references
from tests.conftest import WINE_DIR

ROWS = np.asarray(read_wine_csv(str(WINE_DIR / "winequality_red.csv")), dtype=np.float64)[:, :11]
PMML_FILES = sorted(p.name for p in WINE_DIR.glob("*.pmml"))
SAVED_DIR = WINE_DIR / "saved" / "1"
OPTIONS = ModelOptions(allowed_roots=(str(WINE_DIR),))
D = ModelDescriptor


def file_descriptor(file: str, model_type: ModelDescriptor.ModelType) -> ModelDescriptor:
    return D(name=file, dataType="wine", modeltype=model_type, data=(WINE_DIR / file).read_bytes())


ALL_FORMATS: dict[str, Callable[[], ModelDescriptor]] = {
    "onnx": lambda: file_descriptor("wine_quality_logreg.onnx", D.ONNX),
    "tf-graph": lambda: file_descriptor("optimized_WineQuality.pb", D.TENSORFLOW),
    "tf-saved-location": lambda: D(modeltype=D.TENSORFLOWSAVED, location=str(SAVED_DIR)),
    "tf-saved-bytes": lambda: D(modeltype=D.TENSORFLOWSAVED, data=pack_directory(SAVED_DIR)),
    **{f"pmml-{f}": functools.partial(file_descriptor, f, D.PMML) for f in PMML_FILES},
}


def assert_same_scores(actual: ScoreBatch, expected: ScoreBatch, rtol: float) -> None:
    assert actual.labels == expected.labels
    for a, e in ((actual.values, expected.values), (actual.probabilities, expected.probabilities)):
        assert (a is None) == (e is None)
        if a is not None and e is not None:
            np.testing.assert_allclose(a, e, rtol=rtol, atol=0)


@pytest.mark.parametrize("name", sorted(ALL_FORMATS))
def test_agrees_with_its_reference_and_round_trips(name: str) -> None:
    descriptor = ALL_FORMATS[name]()
    model = load_model(descriptor, WINE, OPTIONS)
    batch = model.score_batch(ROWS)
    batch.check(len(ROWS))
    assert_same_scores(
        batch, references.score(descriptor, ROWS), rtol=1e-9 if name.startswith("pmml") else 1e-6
    )

    restored = model_class(descriptor.modeltype).load(ModelSource(model.to_bytes()), WINE, OPTIONS)
    assert_same_scores(restored.score_batch(ROWS), batch, rtol=0)
    for i in (0, 5, 1598):  # one record at a time, as the job scores them
        single = model.score_batch(ROWS[i : i + 1])
        assert single.labels == (batch.labels[i : i + 1] if batch.labels else None)
        if batch.values is not None:
            np.testing.assert_allclose(single.values, batch.values[i : i + 1], rtol=1e-12)  # type: ignore[arg-type]
    model.close()


def test_the_pypmml_engine_is_selectable_and_scores_every_row() -> None:
    for file in PMML_FILES:
        model = load_model(file_descriptor(file, D.PMML), WINE, ModelOptions(pmml_engine="pypmml"))
        model.score_batch(ROWS).check(len(ROWS))


def test_the_training_script_reproduces_the_shipped_onnx_model() -> None:
    from scripts.train_wine_onnx import DEFAULT_CSV, train_onnx

    fresh = load_model(D(modeltype=D.ONNX, data=train_onnx(DEFAULT_CSV)), WINE, OPTIONS).score_batch(ROWS)
    shipped = load_model(ALL_FORMATS["onnx"](), WINE, OPTIONS).score_batch(ROWS)
    assert fresh.labels == shipped.labels


def test_savedmodel_accepts_a_zip_too() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(p for p in SAVED_DIR.rglob("*") if p.is_file()):
            archive.write(path, "model/" + path.relative_to(SAVED_DIR).as_posix())
    model = load_model(D(modeltype=D.TENSORFLOWSAVED, data=buffer.getvalue()), WINE, OPTIONS)
    assert_same_scores(model.score_batch(ROWS), references.score(ALL_FORMATS["tf-saved-bytes"](), ROWS), 1e-6)


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
        (lambda: D(modeltype=D.TENSORFLOW, data=_two_placeholder_graph()), "2 placeholders (a, b)"),
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
        "graph-ambiguous-input",
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
        load_model(descriptor, WINE, OPTIONS)
    if descriptor.modeltype == 42:
        assert isinstance(error.value, UnknownModelType)


def test_pmml_needing_a_missing_field_names_it() -> None:
    xml = (WINE_DIR / "winequalityLinearRegression.pmml").read_text().replace('"chlorides"', '"saltiness"')
    for engine in ("jpmml", "pypmml"):
        with pytest.raises(ModelLoadError, match="needs field 'saltiness'"):
            load_model(D(modeltype=D.PMML, data=xml.encode()), WINE, ModelOptions(pmml_engine=engine))


def test_archives_cannot_escape_their_directory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.pb", b"x")
    with pytest.raises(ModelLoadError, match="outside the archive"):
        load_model(D(modeltype=D.TENSORFLOWSAVED, data=buffer.getvalue()), WINE, OPTIONS)
    assert not (tmp_path.parent / "evil.pb").exists()
