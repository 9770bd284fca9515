"""The one contract every model format implements, and what crosses it: named inputs in, scores out.

A runtime declares its inputs (``InputSpec``) and scores a batch given one array per input; it never
sees records. The core binds records to those inputs (``modelstream.binding``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

# one array per model input, the batch first: [n] or [n, k, ...]
InputArrays = Mapping[str, npt.NDArray[np.generic]]


class ModelLoadError(Exception):
    """A model that cannot be built from its bytes (corrupt, wrong format, needs a field we do not have)."""


class UnsafeModel(ModelLoadError):
    """A model refused as hostile before anything is built from it: above a size limit, an archive whose
    entries leave its directory, are links or expand past a limit, an XML document declaring a DOCTYPE
    or entities (docs/security.md)."""


@dataclass(frozen=True)
class ModelOptions:
    """Runtime knobs shared by all formats."""

    onnx_threads: int = 1
    tf_threads: int = 1
    pmml_engine: str = "jpmml"  # jpmml (JPMML-Evaluator via JPype, the reference) | pypmml
    # a descriptor's `location` must resolve under one of these directories
    allowed_roots: tuple[str, ...] = ()
    # hostile files (docs/security.md): a model's bytes or the files at its location, what a SavedModel
    # archive may expand to, and how many entries it may hold
    max_model_bytes: int = 256 * 1024 * 1024
    max_unpacked_bytes: int = 1024 * 1024 * 1024
    max_archive_entries: int = 10_000


@dataclass(frozen=True)
class ModelSource:
    """What a format needs to build a model: its bytes and the descriptor's naming hints."""

    payload: bytes
    input_name: str = ""
    output_name: str = ""
    signature: str = ""


@dataclass(frozen=True)
class InputSpec:
    """One input a model declares: its name, element type and the shape of one record's value.

    ``shape`` excludes the batch dimension: () is a scalar per record ([n]), (1,) a [n, 1] column, (k,)
    a vector of k per record; None is a dimension of any size. ``dtype`` is float32/64, int32/64, bool,
    or object for strings. An ``optional`` input takes a missing value where a record lacks the field
    (PMML's missing value); a required one rejects such a record."""

    name: str
    dtype: np.dtype[np.generic]
    shape: tuple[int | None, ...] = ()
    optional: bool = False

    @property
    def is_string(self) -> bool:
        return self.dtype == np.dtype(object)

    @property
    def type_name(self) -> str:
        return "string" if self.is_string else str(self.dtype)

    def describe(self) -> str:
        dims = ", ".join("n" if d is None else str(d) for d in (None, *self.shape))
        return f"{self.name} {self.type_name}[{dims}]"


@dataclass(frozen=True)
class ScoreBatch:
    """Scores of n records. Classifiers fill ``labels`` (and ``probabilities`` where known); regressions
    fill ``values``; any other output is a named tensor [n, ...] in ``tensors``. ``probabilities[i, j]``
    is the probability of ``classes[j]`` for record i."""

    labels: list[str] | None = None
    values: npt.NDArray[np.float64] | None = None
    probabilities: npt.NDArray[np.float64] | None = None
    classes: tuple[str, ...] = ()
    tensors: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)

    def __len__(self) -> int:
        for part in (self.labels, self.values, self.probabilities, *self.tensors.values()):
            if part is not None:
                return len(part)
        return 0

    def check(self, rows: int) -> None:
        """Raise ValueError unless this holds one finite score per each of ``rows`` records."""
        if self.labels is None and self.values is None and not self.tensors:
            raise ValueError("the model returned neither a class, a value nor any output")
        if len(self) != rows:
            raise ValueError(f"the model returned {len(self)} scores for {rows} records")
        if self.values is not None and not np.all(np.isfinite(self.values)):
            raise ValueError("the model returned a non-finite value")
        if self.labels is not None and "" in self.labels:
            raise ValueError("the model returned an empty class")

    def take(self, rows: npt.NDArray[np.intp]) -> ScoreBatch:
        """The scores of the given rows, in that order."""
        labels = None if self.labels is None else [self.labels[i] for i in rows.tolist()]
        return ScoreBatch(
            labels=labels,
            values=None if self.values is None else self.values[rows],
            probabilities=None if self.probabilities is None else self.probabilities[rows],
            classes=self.classes,
            tensors={name: tensor[rows] for name, tensor in self.tensors.items()},
        )

    @staticmethod
    def concat(parts: list[ScoreBatch]) -> ScoreBatch:
        """One batch of the parts' scores in order (parts of one model: same kinds of output)."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        labels = None if first.labels is None else [x for p in parts for x in p.labels or ()]

        def joined(part: str) -> npt.NDArray[np.float64] | None:
            arrays = [getattr(p, part) for p in parts]
            return None if arrays[0] is None else np.concatenate(arrays)

        tensors = {name: np.concatenate([p.tensors[name] for p in parts]) for name in first.tensors}
        return ScoreBatch(labels, joined("values"), joined("probabilities"), first.classes, tensors)


def scores_from_tensor(output: npt.NDArray[np.generic], classes: tuple[str, ...] = ()) -> ScoreBatch:
    """Read a model's numeric output: [n, k>1] is per-class scores (the class is the arg-max), [n] or [n, 1]
    a value per record."""
    array = np.asarray(output, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] > 1:
        names = classes if len(classes) == array.shape[1] else tuple(str(i) for i in range(array.shape[1]))
        labels = [names[i] for i in array.argmax(axis=1).tolist()]
        return ScoreBatch(labels=labels, probabilities=array, classes=names)
    if array.ndim > 2:
        return ScoreBatch(tensors={"output": array})
    return ScoreBatch(values=array.reshape(-1))


class Model(ABC):
    """A loaded model of one format. Built from bytes, declares its inputs, scores batches, serializes
    back to bytes."""

    format_name: ClassVar[str]
    inputs: tuple[InputSpec, ...]
    # False for a runtime bound to the thread that loaded it (JPMML inside Flink's JVM): a speculative
    # primary is then scored on the task's thread instead of a pool thread
    scores_on_any_thread: bool = True

    @classmethod
    @abstractmethod
    def load(cls, source: ModelSource, options: ModelOptions) -> Model:
        """Build the model from its bytes; raise ModelLoadError with a specific reason on failure."""

    @abstractmethod
    def score_batch(self, inputs: InputArrays) -> ScoreBatch:
        """Score n records given one array per declared input, each of the input's dtype and shape."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The bytes ``load`` rebuilds this model from (what Flink state keeps)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runtimes free themselves
        """Release native resources."""
