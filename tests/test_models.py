"""Model formats on the tutorial's data: load, score a batch, round-trip through bytes, reject bad input."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest

from model.base import ModelLoadError, ModelOptions
from model.registry import UnknownModelType, load_model, model_class
from modelstream.records import WINE, read_wine_csv
from protobufs.modelstream_pb2 import ModelDescriptor
from tests.conftest import WINE_DIR

ROWS = np.asarray(read_wine_csv(str(WINE_DIR / "winequality_red.csv")), dtype=np.float64)[:, :11]
PMML_FILES = sorted(p.name for p in WINE_DIR.glob("*.pmml"))


def descriptor(file: str, model_type: ModelDescriptor.ModelType) -> ModelDescriptor:
    return ModelDescriptor(
        name=file, dataType="wine", modeltype=model_type, data=(WINE_DIR / file).read_bytes()
    )


@pytest.mark.parametrize(
    ("file", "model_type"),
    [("wine_quality_logreg.onnx", ModelDescriptor.ONNX)] + [(f, ModelDescriptor.PMML) for f in PMML_FILES],
)
def test_scores_every_row_and_round_trips_through_bytes(
    file: str, model_type: ModelDescriptor.ModelType
) -> None:
    model = load_model(descriptor(file, model_type), WINE, ModelOptions())
    batch = model.score_batch(ROWS)
    batch.check(len(ROWS))
    restored = model_class(model_type).load(model.to_bytes(), WINE, ModelOptions())
    again = restored.score_batch(ROWS)
    assert again.labels == batch.labels
    for a, b in ((batch.values, again.values), (batch.probabilities, again.probabilities)):
        assert (a is None and b is None) or np.array_equal(a, b)  # type: ignore[arg-type]
    single = model.score_batch(ROWS[5:6])
    if batch.labels is not None:
        assert single.labels == batch.labels[5:6]
    if batch.values is not None:
        np.testing.assert_allclose(single.values, batch.values[5:6], rtol=1e-12)  # type: ignore[arg-type]


def test_onnx_classifier_agrees_with_onnxruntime_called_directly() -> None:
    import onnxruntime as ort

    payload = (WINE_DIR / "wine_quality_logreg.onnx").read_bytes()
    label, proba = ort.InferenceSession(payload).run(None, {"X": ROWS.astype(np.float32)})
    batch = load_model(
        descriptor("wine_quality_logreg.onnx", ModelDescriptor.ONNX), WINE, ModelOptions()
    ).score_batch(ROWS)
    assert batch.labels == [str(x) for x in label.tolist()]
    assert batch.classes == ("3", "4", "5", "6", "7", "8")
    np.testing.assert_allclose(batch.probabilities, proba, rtol=1e-6)  # type: ignore[arg-type]


def test_training_script_reproduces_the_shipped_onnx_model() -> None:
    from scripts.train_wine_onnx import DEFAULT_CSV, train_onnx

    fresh = load_model(
        ModelDescriptor(modeltype=ModelDescriptor.ONNX, data=train_onnx(DEFAULT_CSV)), WINE, ModelOptions()
    ).score_batch(ROWS)
    shipped = load_model(
        descriptor("wine_quality_logreg.onnx", ModelDescriptor.ONNX), WINE, ModelOptions()
    ).score_batch(ROWS)
    assert fresh.labels == shipped.labels


@pytest.mark.parametrize("model_type", [ModelDescriptor.ONNX, ModelDescriptor.PMML])
def test_corrupt_models_are_refused_with_a_reason(model_type: ModelDescriptor.ModelType) -> None:
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_model(ModelDescriptor(modeltype=model_type, data=b"\x00corrupt"), WINE, ModelOptions())


def test_unknown_and_location_models_are_refused() -> None:
    with pytest.raises(UnknownModelType, match="not served"):
        load_model(
            ModelDescriptor(modeltype=cast(ModelDescriptor.ModelType, 42), data=b"x"), WINE, ModelOptions()
        )
    with pytest.raises(ModelLoadError, match="data"):
        load_model(
            ModelDescriptor(modeltype=ModelDescriptor.ONNX, location="/tmp/m.onnx"), WINE, ModelOptions()
        )
