"""The one contract every model format implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from modelstream.records import FeatureMatrix, RecordSchema


class ModelLoadError(Exception):
    """A model that cannot be built from its bytes (corrupt, wrong format, needs a field we do not have)."""


@dataclass(frozen=True)
class ModelOptions:
    """Runtime knobs shared by all formats."""

    onnx_threads: int = 1
    tf_threads: int = 1
    pmml_engine: str = "jpmml"  # jpmml (JPMML-Evaluator via JPype, the reference) | pypmml
    # a descriptor's `location` must resolve under one of these directories
    allowed_roots: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSource:
    """What a format needs to build a model: its bytes and the descriptor's naming hints."""

    payload: bytes
    input_name: str = ""
    output_name: str = ""
    signature: str = ""


@dataclass(frozen=True)
class ScoreBatch:
    """Scores of n records. Classifiers fill ``labels`` (and ``probabilities`` where known); regressions
    fill ``values``. ``probabilities[i, j]`` is the probability of ``classes[j]`` for record i."""

    labels: list[str] | None = None
    values: npt.NDArray[np.float64] | None = None
    probabilities: npt.NDArray[np.float64] | None = None
    classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        for part in (self.labels, self.values, self.probabilities):
            if part is not None:
                return len(part)
        return 0

    def check(self, rows: int) -> None:
        """Raise ValueError unless this holds one finite score per each of ``rows`` records."""
        if self.labels is None and self.values is None:
            raise ValueError("the model returned neither a class nor a value")
        if len(self) != rows:
            raise ValueError(f"the model returned {len(self)} scores for {rows} records")
        if self.values is not None and not np.all(np.isfinite(self.values)):
            raise ValueError("the model returned a non-finite value")
        if self.labels is not None and any(label == "" for label in self.labels):
            raise ValueError("the model returned an empty class")


def scores_from_tensor(output: npt.NDArray[np.generic], classes: tuple[str, ...] = ()) -> ScoreBatch:
    """Read a model's numeric output: [n, k>1] is per-class scores (the class is the arg-max), [n] or [n, 1]
    a value per record."""
    array = np.asarray(output, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] > 1:
        names = classes if len(classes) == array.shape[1] else tuple(str(i) for i in range(array.shape[1]))
        labels = [names[i] for i in array.argmax(axis=1).tolist()]
        return ScoreBatch(labels=labels, probabilities=array, classes=names)
    return ScoreBatch(values=array.reshape(-1))


class Model(ABC):
    """A loaded model of one format. Built from bytes, scores batches, serializes back to bytes."""

    format_name: ClassVar[str]

    @classmethod
    @abstractmethod
    def load(cls, source: ModelSource, schema: RecordSchema, options: ModelOptions) -> Model:
        """Build the model from its bytes; raise ModelLoadError with a specific reason on failure."""

    @abstractmethod
    def score_batch(self, features: FeatureMatrix) -> ScoreBatch:
        """Score n records given as an [n, features] matrix in schema order."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The bytes ``load`` rebuilds this model from (what Flink state keeps)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes free themselves
        """Release native resources."""
