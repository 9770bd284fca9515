"""The tutorial's wine records and models, as the benchmarks publish them (importable from .venv-quix)."""

from __future__ import annotations

from modelstream.archive import pack_directory
from modelstream.settings import PROJECT_ROOT
from protobufs.modelstream_pb2 import ModelDescriptor

WINE_DIR = PROJECT_ROOT / "data" / "wine"
CSV = WINE_DIR / "winequality_red.csv"
D = ModelDescriptor
FILES = {
    "onnx": ("wine_quality_logreg.onnx", D.ONNX),
    "tf-graph": ("optimized_WineQuality.pb", D.TENSORFLOW),
    "pmml": ("winequalityDecisionTreeClassification.pmml", D.PMML),
}


def descriptor(fmt: str, version: str) -> ModelDescriptor:
    """The wine model of ``fmt`` (onnx, tf-graph, tf-saved, pmml) as version ``version``."""
    if fmt == "tf-saved":
        data = pack_directory(WINE_DIR / "saved" / "1")
        return D(name=fmt, dataType="wine", modeltype=D.TENSORFLOWSAVED, data=data, version=version)
    file, model_type = FILES[fmt]
    return D(
        name=fmt, dataType="wine", modeltype=model_type, data=(WINE_DIR / file).read_bytes(), version=version
    )
