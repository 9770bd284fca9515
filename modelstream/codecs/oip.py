"""Open Inference Protocol (KServe V2) ``inference.ModelInferRequest`` records, as Seldon Core 2 carries
them over Kafka: named input tensors in typed ``contents`` or in ``raw_input_contents`` (little-endian;
BYTES elements as a 4-byte little-endian length and the bytes). A request's first dimension is its batch:
a request of n rows is n rows, with ids ``id`` (one row) or ``id[i]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from google.protobuf.message import DecodeError

from modelstream.codecs.base import (
    MISSING,
    Column,
    Decoded,
    Failure,
    SchemaLookup,
    SourceRecord,
    record_id,
    undecodable,
)
from modelstream.deadletters import Reason
from modelstream.topics import Encoding
from protobufs.open_inference_pb2 import ModelInferRequest

# datatype -> (numpy dtype of its raw bytes, the typed contents field)
DATATYPES: dict[str, tuple[np.dtype[np.generic], str]] = {
    "BOOL": (np.dtype("?"), "bool_contents"),
    "INT8": (np.dtype("<i1"), "int_contents"),
    "INT16": (np.dtype("<i2"), "int_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "INT64": (np.dtype("<i8"), "int64_contents"),
    "UINT8": (np.dtype("<u1"), "uint_contents"),
    "UINT16": (np.dtype("<u2"), "uint_contents"),
    "UINT32": (np.dtype("<u4"), "uint_contents"),
    "UINT64": (np.dtype("<u8"), "uint64_contents"),
    "FP16": (np.dtype("<f2"), ""),
    "FP32": (np.dtype("<f4"), "fp32_contents"),
    "FP64": (np.dtype("<f8"), "fp64_contents"),
    "BYTES": (np.dtype(object), "bytes_contents"),
}


class TensorError(ValueError):
    """A request tensor that cannot be read, with what is wrong."""


def _raw_bytes_elements(raw: bytes) -> list[bytes]:
    elements, position = [], 0
    while position < len(raw):
        if position + 4 > len(raw):
            raise TensorError("a BYTES element's length is cut short")
        length = int.from_bytes(raw[position : position + 4], "little")
        position += 4
        if position + length > len(raw):
            raise TensorError("a BYTES element is cut short")
        elements.append(raw[position : position + length])
        position += length
    return elements


def read_tensor(tensor: ModelInferRequest.InferInputTensor, raw: bytes | None) -> npt.NDArray[np.generic]:
    """One input tensor as an array of its shape; BYTES elements as text."""
    if tensor.datatype not in DATATYPES:
        raise TensorError(
            f"tensor {tensor.name!r} has datatype {tensor.datatype!r} (one of {', '.join(DATATYPES)})"
        )
    dtype, contents_field = DATATYPES[tensor.datatype]
    shape = tuple(tensor.shape)
    if not shape or any(d < 0 for d in shape):
        raise TensorError(f"tensor {tensor.name!r} has shape {list(shape)}: the first dimension is the batch")
    if dtype == np.dtype(object):
        elements = _raw_bytes_elements(raw) if raw is not None else list(tensor.contents.bytes_contents)
        array: npt.NDArray[np.generic] = np.array(
            [e.decode("utf-8", "replace") for e in elements], dtype=object
        )
    elif raw is not None:
        if len(raw) % dtype.itemsize:
            raise TensorError(
                f"tensor {tensor.name!r}: {len(raw)} raw bytes are not whole {tensor.datatype} elements"
            )
        array = np.frombuffer(raw, dtype=dtype)
    elif contents_field:
        array = np.asarray(getattr(tensor.contents, contents_field), dtype=dtype)
    else:
        raise TensorError(f"tensor {tensor.name!r}: {tensor.datatype} travels only in raw_input_contents")
    if array.size != math.prod(shape):
        raise TensorError(
            f"tensor {tensor.name!r} has {array.size} elements, "
            f"its shape {list(shape)} needs {math.prod(shape)}"
        )
    return array.reshape(shape)


class TensorFields:
    """Fields of a batch of requests: each input tensor, the requests' rows concatenated."""

    def __init__(self, parts: list[dict[str, npt.NDArray[np.generic]]], rows: list[int]) -> None:
        self._parts = parts  # per request: input name -> array [rows, ...]
        self._rows = rows  # rows per request

    def names(self) -> Iterable[str]:
        names: set[str] = set()
        for part in self._parts:
            names.update(part)
        return names

    def column(self, name: str) -> Column | None:
        arrays = [part.get(name) for part in self._parts]
        present = [a for a in arrays if a is not None]
        if not present:
            return None
        if len(present) == len(arrays) and len({(a.shape[1:], a.dtype) for a in present}) == 1:
            return present[0] if len(present) == 1 else np.concatenate(present)
        values: list[object] = []
        for array, rows in zip(arrays, self._rows, strict=True):
            values.extend([MISSING] * rows if array is None else list(array))
        return values

    def default_matrix(self) -> tuple[npt.NDArray[np.float64], tuple[str, ...]] | None:
        return None


class OipCodec:
    encoding = Encoding.OIP

    def decode(self, records: Sequence[SourceRecord], schemas: SchemaLookup) -> Decoded:
        sources: list[SourceRecord] = []
        ids: list[str] = []
        timestamps: list[int] = []
        parts: list[dict[str, npt.NDArray[np.generic]]] = []
        rows: list[int] = []
        errors: list[tuple[int, str]] = []
        failures: list[Failure] = []
        for i, record in enumerate(records):
            try:
                request = ModelInferRequest.FromString(record.value)
            except DecodeError as e:
                errors.append((i, str(e)))
                continue
            try:
                tensors = _tensors(request)
            except TensorError as e:
                failures.append(Failure(record, Reason.RECORD_INVALID, str(e)))
                continue
            n = len(next(iter(tensors.values())))
            own = record_id(request.id, record)
            parts.append(tensors)
            rows.append(n)
            sources.extend([record] * n)
            ids.extend([own] if n == 1 else [f"{own}[{row}]" for row in range(n)])
            timestamps.extend([record.timestamp] * n)
        failures += undecodable(records, errors, "an inference.ModelInferRequest")
        return Decoded(sources, ids, timestamps, TensorFields(parts, rows), failures)


def _tensors(request: ModelInferRequest) -> dict[str, npt.NDArray[np.generic]]:
    if not request.inputs:
        raise TensorError("the request has no input tensors")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise TensorError(f"{len(raw)} raw_input_contents for {len(request.inputs)} inputs")
    tensors = {t.name: read_tensor(t, raw[i] if raw else None) for i, t in enumerate(request.inputs)}
    batch = {name: len(array) for name, array in tensors.items()}
    if len(set(batch.values())) != 1:
        raise TensorError(f"the inputs disagree on the batch size (first dimension): {batch}")
    if not next(iter(batch.values())):
        raise TensorError("the request has 0 rows")
    return tensors
